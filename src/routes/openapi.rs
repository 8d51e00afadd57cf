//! `GET /api/openapi.json`: the OpenAPI 3.1 description of every route, kept true by tests.

use actix_web::http::header;
use actix_web::HttpResponse;

pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(OPENAPI_JSON)
}
