//! `GET /api/openapi.json`: the OpenAPI 3.1 description of every route, kept true by tests.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::state::AppState;

pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// The document with `servers` naming this server's public URL, so generated clients and
/// "try it" tools reach it the way its users do (through a proxy, say).
pub async fn document(app: web::Data<AppState>) -> HttpResponse {
    // Made per request: a rare request, and a test process runs many servers at once.
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(with_server(&app.base_url))
}

fn with_server(base_url: &str) -> String {
    let mut doc: serde_json::Value =
        serde_json::from_str(OPENAPI_JSON).expect("the embedded document is JSON");
    doc["servers"] = serde_json::json!([{ "url": base_url }]);
    serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
}
