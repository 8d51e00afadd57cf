//! The web app at `/` and `/static/FILE`: the pages' files, compiled into the binary so it
//! works offline and alone.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "flare.css",
        "text/css; charset=utf-8",
        include_str!("../../../static/flare.css"),
    ),
    (
        "player.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../static/player.js"),
    ),
    (
        "watch.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../static/watch.js"),
    ),
    // tus-js-client 4.3.1 (MIT), its dist/tus.min.js byte for byte: the web app's resumable
    // uploads, vendored so the page works offline (tests/browser/tus.test.mjs checks the bytes).
    (
        "tus.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../static/tus.min.js"),
    ),
    // qrcode-generator 1.4.4 (MIT, Kazuhiko Arase), its qrcode.js byte for byte: the watch
    // page's QR code, drawn in the page with no network (tests/browser/media.test.mjs checks
    // the bytes).
    (
        "qrcode.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../static/qrcode.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../static/app.js"),
    ),
];

const INDEX: &str = include_str!("../../../static/index.html");

/// `GET /`: the web app. Its script talks to the API on this origin and PUTs to upload URLs,
/// which are built on `public_url` and so may be another origin.
pub(crate) async fn index(app: web::Data<AppState>) -> HttpResponse {
    let policy = format!(
        "default-src 'self'; connect-src 'self' {base}; media-src 'self' blob: {media}; img-src 'self' data: blob: {media}; \
         style-src 'self' 'unsafe-inline'; script-src 'self'; frame-src 'self'; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'",
        base = super::pages::origin(&app.base_url),
        media = super::pages::origin(&app.media_url),
    );
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_SECURITY_POLICY, policy))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(INDEX)
}

pub async fn get(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file.as_str())
        .ok_or_else(|| ApiError::NotFound("there is no such file".into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, *content_type))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(*body))
}
