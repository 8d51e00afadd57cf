//! `/static/FILE`: the stylesheet and script of the pages, compiled into the binary.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::error::ApiError;

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "flare.css",
        "text/css; charset=utf-8",
        include_str!("../../static/flare.css"),
    ),
    (
        "player.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/player.js"),
    ),
];

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
