//! The headers flare adds to every response, on both serving paths: added here once.

use actix_web::http::header::{self, HeaderName, HeaderValue};

/// Headers on every response (a `DefaultHeaders` middleware).
pub(crate) const EVERY_RESPONSE: [(HeaderName, HeaderValue); 2] = [
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    ),
];

/// Headers on every response that does not set its own `Content-Security-Policy`: only the embed
/// page may be framed by other sites, and it sets its own policy.
pub(crate) const NO_FRAMING: [(HeaderName, HeaderValue); 2] = [
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
];
