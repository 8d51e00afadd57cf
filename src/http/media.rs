//! The one answer to a GET or HEAD of a stored object, whichever path sends it: actix's
//! (`routes::media`, which also settles conditionals and passwords) or the sendfile path
//! (`fastpath`). Status, headers and byte range come from here; the headers every response
//! carries come from `headers`, so a new one is added once for both.

use actix_web::http::header::{self, HeaderName, HeaderValue, HttpDate};
use actix_web::http::StatusCode;

use crate::error::ApiError;
use crate::http::ranges::RangeAnswer;
use crate::storage::ObjectMeta;

/// What a GET or HEAD of a stored object answers once its conditionals are settled: the status,
/// the headers of this route (the middlewares and the HTTP layer add theirs), and which bytes.
/// `routes::media` and the `sendfile` path (`http::fastpath`) both answer from this.
pub(crate) struct Plan {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub start: u64,
    pub len: u64,
}

/// `range` is what the request's `Range` asks for (`Full` when it has none, or when `If-Range`
/// did not match); an unsatisfiable one is the 416 error.
pub(crate) fn plan(
    meta: &ObjectMeta,
    content_type: &'static str,
    protected: bool,
    range: RangeAnswer,
) -> Result<Plan, ApiError> {
    let mut headers = validator_headers(meta, protected);
    let (status, start, len) = match range {
        RangeAnswer::Full => (StatusCode::OK, 0, meta.size),
        RangeAnswer::Partial { start, end } => {
            let value = format!("bytes {start}-{end}/{}", meta.size);
            headers.push((header::CONTENT_RANGE, header_value(value)));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeAnswer::Unsatisfiable => {
            return Err(ApiError::RangeNotSatisfiable { size: meta.size })
        }
    };
    headers.push((header::CONTENT_TYPE, HeaderValue::from_static(content_type)));
    Ok(Plan {
        status,
        headers,
        start,
        len,
    })
}

/// What a 304 repeats of the full answer.
pub(crate) fn validator_headers(
    meta: &ObjectMeta,
    protected: bool,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::with_capacity(6);
    if protected {
        headers.push((
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        ));
    }
    headers.push((header::ACCEPT_RANGES, HeaderValue::from_static("bytes")));
    headers.push((header::ETAG, header_value(meta.etag.clone())));
    headers.push((
        header::LAST_MODIFIED,
        header_value(HttpDate::from(meta.modified).to_string()),
    ));
    headers
}

/// Values made here are ASCII digits, quotes, dashes and dates.
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("a visible-ASCII header value")
}
