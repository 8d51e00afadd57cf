//! ApiError: every refusal the HTTP API can give, with one status table and one JSON shape.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use std::fmt;

use crate::domain::tokens::Scope;

/// Every error a route can return. `code()` and `status()` are the spec's table, in one place.
#[derive(Debug)]
pub enum ApiError {
    InvalidJson(String),
    /// A field missing, of the wrong type or out of range; the message names the field.
    InvalidField(String),
    /// The message names the extension and lists the accepted ones (`names::content_type_for`).
    UnsupportedFileType(String),
    MissingToken,
    InvalidToken,
    TokenRevoked,
    TokenExpired,
    /// A password-protected video's bytes, asked for without an access grant.
    PasswordRequired {
        video_id: String,
    },
    MissingScope(Scope),
    UrlExpired,
    SignatureMismatch(&'static str),
    NotFound(String),
    /// With the methods the path does take, for the `Allow` header.
    MethodNotAllowed(String),
    Conflict(String),
    UrlUsed,
    TooLarge(String),
    ContentTypeMismatch {
        expected: String,
    },
    RangeNotSatisfiable {
        size: u64,
    },
    /// `If-Match` or `If-Unmodified-Since` did not hold for the stored object.
    PreconditionFailed,
    /// The disk is full (or would be); the message says what did not fit, when known.
    InsufficientStorage(Option<String>),
    /// A client stopped sending its body for longer than the idle timeout.
    Timeout(String),
    /// The server cannot do this now (its database cannot be written); the message says what.
    Unavailable(String),
    /// A resumable upload's window has ended; the message says when.
    UploadExpired(String),
    /// A resumable session (or a PUT) already holds this upload; the message says what to do.
    UploadInProgress(String),
    /// A resumable append at the wrong offset: `Upload-Offset` carries the right one.
    OffsetMismatch {
        expected: u64,
        sent: u64,
    },
    /// Another request on the same upload would not let go in time.
    UploadLocked,
    /// A resumable request's `Upload-Checksum` did not match its body; nothing of it was kept.
    ChecksumMismatch(String),
    /// A resumable request's body was not of the protocol's media type.
    WrongBodyType {
        expected: &'static str,
    },
    /// A resumable request in no protocol version flare speaks; the message lists them.
    UnsupportedProtocol(String),
    /// The cause goes to the log; the client sees an opaque message.
    Internal(String),
}

/// tus's `460 Checksum Mismatch`, which is not in RFC 9110's table.
pub(crate) fn checksum_mismatch_status() -> StatusCode {
    StatusCode::from_u16(460).expect("460 is a valid status code")
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid-json",
            ApiError::InvalidField(_) => "invalid-field",
            ApiError::UnsupportedFileType(_) => "unsupported-file-type",
            ApiError::MissingToken => "missing-token",
            ApiError::InvalidToken => "invalid-token",
            ApiError::TokenRevoked => "token-revoked",
            ApiError::TokenExpired => "token-expired",
            ApiError::PasswordRequired { .. } => "password-required",
            ApiError::MissingScope(_) => "missing-scope",
            ApiError::UrlExpired => "url-expired",
            ApiError::SignatureMismatch(_) => "signature-mismatch",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed(_) => "method-not-allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::UrlUsed => "url-used",
            ApiError::TooLarge(_) => "too-large",
            ApiError::ContentTypeMismatch { .. } => "content-type-mismatch",
            ApiError::RangeNotSatisfiable { .. } => "range-not-satisfiable",
            ApiError::PreconditionFailed => "precondition-failed",
            ApiError::InsufficientStorage(_) => "insufficient-storage",
            ApiError::Timeout(_) => "request-timeout",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::UploadExpired(_) => "upload-expired",
            ApiError::UploadInProgress(_) => "upload-in-progress",
            ApiError::OffsetMismatch { .. } => "offset-mismatch",
            ApiError::UploadLocked => "upload-locked",
            ApiError::ChecksumMismatch(_) => "checksum-mismatch",
            ApiError::WrongBodyType { .. } => "content-type-mismatch",
            ApiError::UnsupportedProtocol(_) => "unsupported-protocol",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_)
            | ApiError::InvalidField(_)
            | ApiError::UnsupportedFileType(_) => StatusCode::BAD_REQUEST,
            ApiError::MissingToken
            | ApiError::InvalidToken
            | ApiError::TokenRevoked
            | ApiError::TokenExpired
            | ApiError::PasswordRequired { .. } => StatusCode::UNAUTHORIZED,
            ApiError::MissingScope(_) | ApiError::UrlExpired | ApiError::SignatureMismatch(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::UrlUsed => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::ContentTypeMismatch { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UploadExpired(_) => StatusCode::GONE,
            ApiError::UploadInProgress(_) | ApiError::OffsetMismatch { .. } => StatusCode::CONFLICT,
            ApiError::UploadLocked => StatusCode::LOCKED,
            ApiError::ChecksumMismatch(_) => checksum_mismatch_status(),
            ApiError::WrongBodyType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::UnsupportedProtocol(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// One sentence a person can act on. Never a server path or a secret.
    pub fn message(&self) -> String {
        match self {
            ApiError::InvalidJson(m)
            | ApiError::InvalidField(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::TooLarge(m)
            | ApiError::UnsupportedFileType(m) => m.clone(),
            ApiError::MissingToken => {
                "send a personal access token as `Authorization: Bearer flr_pat_...`".into()
            }
            ApiError::InvalidToken => {
                "the token is not valid; check that it was copied whole".into()
            }
            ApiError::TokenRevoked => "the token has been revoked; create a new one".into(),
            ApiError::TokenExpired => "the token has expired; create a new one".into(),
            ApiError::PasswordRequired { video_id } => format!(
                "this video is password-protected; enter the password on its watch page, /v/{video_id}"
            ),
            ApiError::MissingScope(scope) => {
                format!(
                    "the token lacks the `{}` scope this request needs",
                    scope.as_str()
                )
            }
            ApiError::UrlExpired => "the upload URL has expired; ask for a new one".into(),
            ApiError::SignatureMismatch(why) => {
                format!("the upload URL's signature does not match: {why}")
            }
            ApiError::MethodNotAllowed(_) => "this method is not allowed on this path".into(),
            ApiError::UrlUsed => {
                "this upload URL has already stored an object; ask for a new one".into()
            }
            ApiError::ContentTypeMismatch { expected } => {
                format!(
                    "the upload URL was signed for `Content-Type: {expected}`; send exactly that"
                )
            }
            ApiError::RangeNotSatisfiable { size } => {
                format!("the requested range is outside the object's {size} bytes")
            }
            ApiError::PreconditionFailed => {
                "the stored object does not match If-Match or If-Unmodified-Since: it has changed"
                    .into()
            }
            ApiError::InsufficientStorage(None) => {
                "the server's disk is full; nothing was stored, try again later".into()
            }
            ApiError::InsufficientStorage(Some(m))
            | ApiError::Timeout(m)
            | ApiError::Unavailable(m)
            | ApiError::UploadExpired(m)
            | ApiError::UploadInProgress(m)
            | ApiError::ChecksumMismatch(m)
            | ApiError::UnsupportedProtocol(m) => m.clone(),
            ApiError::OffsetMismatch { expected, sent } => format!(
                "Upload-Offset is {sent} but the server holds {expected} bytes of this upload; \
                 continue from {expected} (it is in the Upload-Offset header)"
            ),
            ApiError::UploadLocked => "another request on this upload is still running and did \
                 not stop in time; try again in a moment"
                .into(),
            ApiError::WrongBodyType { expected } => {
                format!("a request that carries upload bytes must send `Content-Type: {expected}`")
            }
            ApiError::Internal(_) => "the server failed; the cause is in its log".into(),
        }
    }

    /// The JSON body of every refusal.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "success": false,
            "error": { "code": self.code(), "message": self.message() },
        })
    }

    /// An internal error with what we were doing; a full disk becomes 507.
    pub(crate) fn internal(what: &str, cause: impl fmt::Display) -> ApiError {
        ApiError::Internal(format!("{what}: {cause}"))
    }

    pub(crate) fn from_io(what: &str, err: std::io::Error) -> ApiError {
        if is_disk_full(&err) {
            ApiError::InsufficientStorage(None)
        } else {
            ApiError::internal(what, err)
        }
    }
}

pub(crate) fn is_disk_full(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl From<crate::db::sql::Error> for ApiError {
    fn from(err: crate::db::sql::Error) -> Self {
        crate::db::DbError::from(err).into()
    }
}

impl From<crate::db::DbError> for ApiError {
    /// A full disk is the client's 507; a database that cannot be written (made read-only,
    /// replaced, its folder's permissions changed) is the server's 503; anything else a 500.
    fn from(err: crate::db::DbError) -> Self {
        use crate::db::DbError;
        match err {
            DbError::DiskFull => ApiError::InsufficientStorage(None),
            DbError::Unavailable(why) => {
                log::error!("the database cannot be used: {why}");
                ApiError::Unavailable(
                    "the server cannot write its database; nothing was stored. The operator has \
                     been told in the log"
                        .into(),
                )
            }
            DbError::Failed(why) => ApiError::internal("database", why),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => log::error!("internal error: {cause}"),
            ApiError::InsufficientStorage(_) => log::warn!("refused a write: disk full"),
            _ => {}
        }
        let mut res = HttpResponse::build(self.status());
        match self {
            // RFC 6750 §3: no error attribute when the request carried no credentials.
            ApiError::MissingToken => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"flare\""));
            }
            ApiError::InvalidToken | ApiError::TokenRevoked | ApiError::TokenExpired => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        "Bearer realm=\"flare\", error=\"invalid_token\", error_description=\"{}\"",
                        self.code()
                    ),
                ));
            }
            ApiError::RangeNotSatisfiable { size } => {
                res.insert_header((header::CONTENT_RANGE, format!("bytes */{size}")));
            }
            ApiError::OffsetMismatch { expected, .. } => {
                res.insert_header(("Upload-Offset", expected.to_string()));
            }
            // RFC 9110 §15.5.6: a 405 lists what the path does take.
            ApiError::MethodNotAllowed(allow) => {
                res.insert_header((header::ALLOW, allow.clone()));
            }
            // RFC 9110 §11.6.1: a 401 names how to authenticate; here, a password form.
            ApiError::PasswordRequired { video_id } => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("FlarePassword realm=\"flare\", form=\"/v/{video_id}\""),
                ));
            }
            _ => {}
        }
        // For the metrics middleware: which refusal this was.
        res.extensions_mut()
            .insert(crate::metrics::ErrorCode(self.code()));
        res.json(self.body())
    }
}
