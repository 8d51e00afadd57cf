//! The watch page (`/v/ID`), the embed player (`/embed/ID`) and their password gate.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::db::videos::VideoRow;
use crate::domain::embed::EmbedSettings;
use crate::domain::passwords;
use crate::domain::videos::{self, UnlockRefused};
use crate::error::ApiError;
use crate::http::body::read_limited;
use crate::state::AppState;

type Id = web::Path<String>;

/// Which page a gate protects: they differ in path, framing and what they show once open.
#[derive(Clone, Copy)]
enum Page {
    Watch,
    Embed,
}

impl Page {
    fn path(self, id: &str) -> String {
        match self {
            Page::Watch => format!("/v/{id}"),
            Page::Embed => format!("/embed/{id}"),
        }
    }
}

pub async fn watch(app: web::Data<AppState>, req: HttpRequest, id: Id) -> HttpResponse {
    show(&app, &req, &id, Page::Watch).await
}

pub async fn embed(app: web::Data<AppState>, req: HttpRequest, id: Id) -> HttpResponse {
    show(&app, &req, &id, Page::Embed).await
}

pub(crate) async fn watch_unlock(
    app: web::Data<AppState>,
    req: HttpRequest,
    id: Id,
    body: web::Payload,
) -> HttpResponse {
    unlock(&app, &req, &id, body, Page::Watch).await
}

pub(crate) async fn embed_unlock(
    app: web::Data<AppState>,
    req: HttpRequest,
    id: Id,
    body: web::Payload,
) -> HttpResponse {
    unlock(&app, &req, &id, body, Page::Embed).await
}

/// The video, or the response to send instead (the friendly 404 page, or an error).
async fn find(app: &AppState, id: &str, page: Page) -> Result<VideoRow, HttpResponse> {
    match videos::get(app, id).await {
        Ok(v) => Ok(v),
        Err(ApiError::NotFound(_)) => Err(html(
            app,
            page,
            StatusCode::NOT_FOUND,
            crate::http::html::not_found(),
        )),
        Err(e) => Err(e.error_response()),
    }
}

async fn show(app: &AppState, req: &HttpRequest, id: &str, page: Page) -> HttpResponse {
    let video = match find(app, id, page).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    if !videos::unlocked(
        app,
        &video,
        cookie(req, &passwords::cookie_name(&video.id)).as_deref(),
    ) {
        return html(
            app,
            page,
            StatusCode::OK,
            crate::http::html::password_form(&video, &page.path(id), None),
        );
    }
    html(app, page, StatusCode::OK, render(app, &video, page))
}

fn render(app: &AppState, video: &VideoRow, page: Page) -> String {
    let media = videos::object_url(app, video);
    let extras = crate::http::html::Extras {
        poster: videos::poster_url(app, video),
        renditions: videos::rendition_sources(app, video),
    };
    match page {
        Page::Watch => {
            let watch = format!("{}/v/{}", app.base_url, video.id);
            let links = crate::http::html::WatchLinks {
                embed: format!("{}/embed/{}", app.base_url, video.id),
                oembed: format!(
                    "{}/oembed?url={}",
                    app.base_url,
                    crate::domain::signing::encode_segment(&watch)
                ),
                watch,
            };
            crate::http::html::watch(video, media.as_deref(), &extras, &links)
        }
        Page::Embed => {
            let settings = EmbedSettings::from_stored(video.embed_settings.as_deref());
            let watch = format!("{}/v/{}", app.base_url, video.id);
            crate::http::html::embed(video, media.as_deref(), &extras, &settings, &watch)
        }
    }
}

async fn unlock(
    app: &AppState,
    req: &HttpRequest,
    id: &str,
    body: web::Payload,
    page: Page,
) -> HttpResponse {
    let video = match find(app, id, page).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let back = page.path(id);
    let form = match read_limited(req, body, 4096).await {
        Ok(bytes) => bytes,
        Err(e) => return e.error_response(),
    };
    let password = web::Query::<Vec<(String, String)>>::from_query(&String::from_utf8_lossy(&form))
        .ok()
        .and_then(|q| {
            q.iter()
                .find(|(k, _)| k == "password")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_default();
    // Behind a proxy every viewer shares its address: the throttle buckets by the client the
    // trusted proxy names, so one guesser does not lock everyone out.
    let client = crate::http::proxies::client_of(&app.settings.trusted_proxies, req);
    let refused = |status, message: String| {
        html(
            app,
            page,
            status,
            crate::http::html::password_form(&video, &back, Some(&message)),
        )
    };
    match videos::unlock(app, &video, client, password).await {
        Err(e) => e.error_response(),
        Ok(Err(UnlockRefused::Wrong)) => refused(
            StatusCode::UNAUTHORIZED,
            "That password is not right. Try again.".into(),
        ),
        Ok(Err(UnlockRefused::Slowed(wait))) => refused(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many wrong passwords. Wait {wait} seconds, then try again."),
        ),
        Ok(Ok(grant)) => {
            let mut res = HttpResponse::SeeOther();
            res.insert_header((header::LOCATION, back));
            if video.password_hash.is_some() {
                let secure = if app.base_url.starts_with("https://") {
                    "; Secure"
                } else {
                    ""
                };
                res.insert_header((
                    header::SET_COOKIE,
                    format!(
                        "{}={grant}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
                        passwords::cookie_name(&video.id),
                        passwords::GRANT_SECS
                    ),
                ));
            }
            res.finish()
        }
    }
}

/// The value of one cookie of the request.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// An HTML page with a policy that allows only flare's own script and style, the media host,
/// and framing by other sites for the embed page alone.
fn html(app: &AppState, page: Page, status: StatusCode, body: String) -> HttpResponse {
    let frame = match page {
        Page::Watch => "'none'",
        Page::Embed => "*",
    };
    let policy = format!(
        "default-src 'self'; media-src 'self' {media}; img-src 'self' data: blob: {media}; style-src 'self' 'unsafe-inline'; \
         script-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {frame}",
        media = origin(&app.media_url),
    );
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_SECURITY_POLICY, policy))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Page::Watch = page {
        res.insert_header((header::X_FRAME_OPTIONS, "DENY"));
    }
    res.body(body)
}

/// `scheme://host[:port]` of a URL.
pub(super) fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// `GET /oembed?url=WATCH_OR_EMBED_URL`: the embed as oEmbed 1.0 JSON (`type: video`), for
/// sites and chat tools that turn a pasted link into a player. `maxwidth` and `maxheight` are
/// honoured; `format` other than json is refused.
pub async fn oembed(app: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|_| ApiError::InvalidField("the query string could not be read".into()))?;
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if param("format").is_some_and(|f| f != "json") {
        return Err(ApiError::InvalidField(
            "format: only json is offered".into(),
        ));
    }
    let url = param("url").ok_or_else(|| {
        ApiError::InvalidField("url is required: a watch page's address (…/v/VIDEO_ID)".into())
    })?;
    let id = [
        format!("{}/v/", app.base_url),
        format!("{}/embed/", app.base_url),
    ]
    .iter()
    .find_map(|prefix| url.strip_prefix(prefix.as_str()))
    .map(|rest| rest.split(['?', '#', '/']).next().unwrap_or(""))
    .filter(|id| !id.is_empty())
    .ok_or_else(|| {
        ApiError::NotFound(format!(
            "url is not a watch or embed page of this server ({}/v/VIDEO_ID)",
            app.base_url
        ))
    })?;
    let video = videos::get(&app, id).await?;
    let info: crate::domain::probe::MediaInfo = video
        .media
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    let (mut w, mut h) = match (info.width, info.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => {
            (640u64, (640 * h as u64 / w as u64).clamp(1, 16_384))
        }
        _ => (640, 360),
    };
    let bound = |name: &str| {
        param(name)
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| *n > 0)
    };
    if let Some(max) = bound("maxwidth").filter(|m| *m < w) {
        h = (h * max / w).max(1);
        w = max;
    }
    if let Some(max) = bound("maxheight").filter(|m| *m < h) {
        w = (w * max / h).max(1);
        h = max;
    }
    let embed = format!("{}/embed/{}", app.base_url, video.id);
    let title = video
        .title
        .clone()
        .unwrap_or_else(|| video.file_name.clone());
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "version": "1.0",
        "type": "video",
        "provider_name": "flare",
        "provider_url": app.base_url,
        "title": title,
        "width": w,
        "height": h,
        "html": format!(
            "<iframe src=\"{}\" width=\"{w}\" height=\"{h}\" allow=\"fullscreen\" style=\"border:0\" title=\"{}\"></iframe>",
            crate::http::html::esc(&embed),
            crate::http::html::esc(&title)
        ),
    })))
}
