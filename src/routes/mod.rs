//! Thin HTTP handlers: extract, call the domain, map to a response. The route table is here.

mod health;
mod media;
mod presign;
mod upload;
mod videos;

use actix_web::{web, HttpResponse, Resource};

use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/api/video/create").route(web::post().to(videos::create)))
        .service(resource("/api/video/upload/presign").route(web::post().to(presign::presign)))
        // Every method reaches the PUT handler: the method is part of what was signed, so a
        // GET or POST on an upload URL is a signature mismatch (403), not a 405.
        .service(
            web::resource("/upload/{video_id}/composite/{file_name}")
                .route(web::route().to(upload::put)),
        )
        .service(
            resource("/media/{video_id}/composite/{file_name}")
                .route(web::get().to(media::get))
                .route(web::head().to(media::get)),
        );
}

/// A resource whose unmatched methods get the JSON 405.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(|| async {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed)
    }))
}

/// Every path no route matches.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("there is nothing at this path".into()))
}
