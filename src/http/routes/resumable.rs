//! The resumable upload URL (presign's `resumable.url`): tus 1.0 and the IETF draft
//! (draft-ietf-httpbis-resumable-upload, interop versions 6 and 8) on the wire. The protocol is
//! told by its header (`Tus-Resumable`, `Upload-Draft-Interop-Version`); the session itself is
//! `domain::resumable`'s, whichever protocol speaks to it.
//!
//! Not sent: the draft's `104 Upload Resumption Supported` (actix-http writes no informational
//! response but `100 Continue`). Clients that know the URL before the first byte (every client
//! of presign) lose nothing by it.

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::digest;
use serde_json::json;

use crate::domain::resumable::{self, Append, Checksum, Creation, UploadState};
use crate::domain::signing::UploadGrant;
use crate::error::ApiError;
use crate::state::AppState;

pub const TUS_VERSION: &str = "1.0.0";
pub const TUS_EXTENSIONS: &str =
    "creation,creation-with-upload,creation-defer-length,termination,expiration,checksum";
const TUS_BODY: &str = "application/offset+octet-stream";
const IETF_BODY: &str = "application/partial-upload";

/// The protocol a request speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    Tus,
    Ietf(u8),
}

impl Protocol {
    fn of(headers: &HeaderMap) -> Result<Protocol, ApiError> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(v) = get("tus-resumable") {
            return match v.trim() {
                TUS_VERSION => Ok(Protocol::Tus),
                other => Err(ApiError::UnsupportedProtocol(format!(
                    "Tus-Resumable is {other:?}; this server speaks tus {TUS_VERSION}"
                ))),
            };
        }
        if let Some(v) = get("upload-draft-interop-version") {
            return match v.trim() {
                "6" => Ok(Protocol::Ietf(6)),
                "8" => Ok(Protocol::Ietf(8)),
                other => Err(ApiError::UnsupportedProtocol(format!(
                    "Upload-Draft-Interop-Version is {other:?}; this server speaks 6 and 8"
                ))),
            };
        }
        Err(ApiError::UnsupportedProtocol(format!(
            "a resumable upload URL needs `Tus-Resumable: {TUS_VERSION}` (tus) or \
             `Upload-Draft-Interop-Version: 6` or `8` (the IETF draft); a plain PUT goes to \
             presign's uploadUrl"
        )))
    }

    fn name(self) -> &'static str {
        match self {
            Protocol::Tus => "tus",
            Protocol::Ietf(6) => "ietf-6",
            Protocol::Ietf(_) => "ietf-8",
        }
    }
}

/// Every request to a resumable URL.
pub async fn handle(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    let (video_id, file_name) = path.into_inner();
    if req.method() == actix_web::http::Method::OPTIONS {
        return options(&app, &req, &video_id, &file_name);
    }
    let (protocol, refused) = match Protocol::of(req.headers()) {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(e)),
    };
    let carries_body = !matches!(req.method().as_str(), "HEAD" | "GET" | "DELETE");
    let answer = match protocol {
        Some(protocol) => {
            // Polled by the connection itself: a client that vanishes mid-body ends the body
            // with an error, and the append records what reached the disk before answering.
            serve(&app, &req, protocol, &video_id, &file_name, payload).await
        }
        None => Err(refused.expect("no protocol, so a refusal")),
    };
    let mut res = match answer {
        Ok(res) => res,
        Err(e) => {
            let mut res = e.error_response();
            if carries_body {
                // The body may still be on its way: do not read it, close after the answer.
                res.head_mut()
                    .set_connection_type(actix_http::ConnectionType::Close);
            }
            if let (Some(Protocol::Ietf(_)), ApiError::OffsetMismatch { .. }) = (protocol, &e) {
                res.headers_mut()
                    .insert(header("upload-complete"), HeaderValue::from_static("?0"));
            }
            res
        }
    };
    let headers = res.headers_mut();
    match protocol {
        None | Some(Protocol::Tus) => {
            headers.insert(
                header("tus-resumable"),
                HeaderValue::from_static(TUS_VERSION),
            );
            if protocol.is_none() {
                headers.insert(header("tus-version"), HeaderValue::from_static(TUS_VERSION));
            }
        }
        Some(Protocol::Ietf(n)) => {
            headers.insert(
                header("upload-draft-interop-version"),
                HeaderValue::from(n as u32),
            );
        }
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn header(name: &'static str) -> header::HeaderName {
    header::HeaderName::from_static(name)
}

async fn serve(
    app: &AppState,
    req: &HttpRequest,
    protocol: Protocol,
    video_id: &str,
    file_name: &str,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let headers = req.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // tus-java-client sends PATCH as POST with X-HTTP-Method-Override where PATCH is blocked.
    let method = match (req.method().as_str(), text("x-http-method-override")) {
        ("POST", Some(m)) => m.trim().to_ascii_uppercase(),
        (m, _) => m.to_string(),
    };
    let grant = resumable::authorize(app, &method, video_id, file_name, req.query_string())?;
    let content_length = text("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let body_type = text("content-type").map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if headers.contains_key("upload-concat") {
        return Err(ApiError::InvalidField(
            "Upload-Concat: this server does not take parallel (concatenated) uploads; send one \
             upload through one URL"
                .into(),
        ));
    }
    match (protocol, method.as_str()) {
        (_, "HEAD") | (Protocol::Ietf(_), "GET") => {
            let state = resumable::state(app, &grant).await?;
            let status = match protocol {
                Protocol::Tus => StatusCode::OK,
                Protocol::Ietf(_) => StatusCode::NO_CONTENT,
            };
            Ok(describe(app, protocol, &grant, &state, status, false).finish())
        }
        (_, "DELETE") => {
            resumable::cancel(app, &grant).await?;
            Ok(HttpResponse::NoContent().finish())
        }
        (Protocol::Tus, "POST") => {
            let length = tus_length(headers)?;
            let creation = Creation {
                length,
                metadata: text("upload-metadata").map(String::from),
                protocol: protocol.name(),
            };
            let with_body = content_length.unwrap_or(0) > 0 || body_type.is_some();
            let state = if with_body {
                expect_type(&body_type, TUS_BODY)?;
                let append = Append {
                    offset: 0,
                    length: None,
                    complete: None,
                    content_length,
                    checksum: checksum(headers)?,
                    create: Some(creation),
                    protocol: protocol.name(),
                };
                resumable::append(app, &grant, append, payload).await?
            } else {
                resumable::create(app, &grant, creation).await?
            };
            Ok(describe(app, protocol, &grant, &state, StatusCode::CREATED, true).finish())
        }
        (Protocol::Ietf(version), "POST" | "PUT") => {
            let complete = upload_complete(headers)?;
            if let Some(sent) = &body_type {
                // The representation's type, on a creation: it must be what was signed.
                if !sent.eq_ignore_ascii_case(&grant.content_type) {
                    return Err(ApiError::ContentTypeMismatch {
                        expected: grant.content_type.clone(),
                    });
                }
            }
            let creation = Creation {
                length: ietf_length(headers)?,
                metadata: None,
                protocol: protocol.name(),
            };
            let state = if content_length.unwrap_or(0) > 0 || complete {
                let append = Append {
                    offset: 0,
                    length: None,
                    complete: Some(complete),
                    content_length,
                    checksum: None,
                    create: Some(creation),
                    protocol: protocol.name(),
                };
                resumable::append(app, &grant, append, payload).await?
            } else {
                resumable::create(app, &grant, creation).await?
            };
            let _ = version;
            Ok(answer(app, protocol, &grant, &state, StatusCode::CREATED))
        }
        (_, "PATCH") => {
            let offset = text("upload-offset")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::InvalidField(
                        "Upload-Offset is required: the offset HEAD reports, as a whole number"
                            .into(),
                    )
                })?;
            let (expected_type, complete, length) = match protocol {
                Protocol::Tus => (
                    TUS_BODY,
                    None,
                    text("upload-length")
                        .map(|v| parse_len("Upload-Length", v))
                        .transpose()?,
                ),
                Protocol::Ietf(_) => (
                    IETF_BODY,
                    Some(upload_complete(headers)?),
                    ietf_length(headers)?,
                ),
            };
            expect_type(&body_type, expected_type)?;
            let append = Append {
                offset,
                length,
                complete,
                content_length,
                checksum: checksum(headers)?,
                create: None,
                protocol: protocol.name(),
            };
            let state = resumable::append(app, &grant, append, payload).await?;
            Ok(answer(
                app,
                protocol,
                &grant,
                &state,
                StatusCode::NO_CONTENT,
            ))
        }
        (_, other) => Err(ApiError::SignatureMismatch(match other {
            "PUT" => {
                "a resumable upload URL takes PUT only in the IETF draft (with Upload-Complete)"
            }
            _ => "a resumable upload URL takes POST, HEAD, PATCH, DELETE or OPTIONS",
        })),
    }
}

/// The answer to a request that may have completed the upload: tus keeps its status; the IETF
/// draft answers a completed upload as the target would (the PUT's `200` JSON).
fn answer(
    app: &AppState,
    protocol: Protocol,
    grant: &UploadGrant,
    state: &UploadState,
    status: StatusCode,
) -> HttpResponse {
    let location = status == StatusCode::CREATED;
    match (&state.published, protocol) {
        (Some(done), Protocol::Ietf(_)) => {
            let mut res = describe(app, protocol, grant, state, StatusCode::OK, location);
            res.insert_header((header::ETAG, done.meta.etag.clone()))
                .json(json!({
                    "success": true,
                    "size": done.size,
                    "sha256": done.sha256,
                    "publicUrl": done.public_url,
                }))
        }
        _ => describe(app, protocol, grant, state, status, location).finish(),
    }
}

/// The headers that say where an upload stands, in the request's protocol.
fn describe(
    app: &AppState,
    protocol: Protocol,
    grant: &UploadGrant,
    state: &UploadState,
    status: StatusCode,
    location: bool,
) -> HttpResponseBuilder {
    let mut res = HttpResponse::build(status);
    if location {
        // The upload resource is the signed URL itself, built on public_url (never on Host).
        res.insert_header((
            header::LOCATION,
            format!("{}{}", app.base_url, grant.sign(app.signing_key())),
        ));
    }
    res.insert_header(("Upload-Offset", state.offset.to_string()));
    let remaining = ((state.until - crate::time::now_ms()) / 1000).max(0);
    match protocol {
        Protocol::Tus => {
            match state.length {
                Some(n) => res.insert_header(("Upload-Length", n.to_string())),
                None => res.insert_header(("Upload-Defer-Length", "1")),
            };
            if let Some(m) = &state.metadata {
                res.insert_header(("Upload-Metadata", m.clone()));
            }
            if !state.complete {
                let until = std::time::UNIX_EPOCH
                    + std::time::Duration::from_millis(state.until.max(0) as u64);
                res.insert_header(("Upload-Expires", header::HttpDate::from(until).to_string()));
            }
        }
        Protocol::Ietf(_) => {
            res.insert_header(("Upload-Complete", if state.complete { "?1" } else { "?0" }));
            if let Some(n) = state.length {
                res.insert_header(("Upload-Length", n.to_string()));
            }
            res.insert_header((
                "Upload-Limit",
                upload_limit(app, state.limit, Some(remaining)),
            ));
        }
    }
    res
}

/// The IETF `Upload-Limit` dictionary.
fn upload_limit(app: &AppState, max: u64, max_age: Option<i64>) -> String {
    let mut out = format!("max-size={max}, min-size=0");
    if let Some(cap) = app.settings.max_append_bytes {
        out.push_str(&format!(", max-append-size={cap}"));
    }
    if let Some(age) = max_age {
        out.push_str(&format!(", max-age={age}"));
    }
    out
}

/// `OPTIONS` (not a CORS preflight, which is answered before routing): tus discovery and the
/// IETF draft's limits, from configuration; a URL that verifies adds its own limit.
fn options(app: &AppState, req: &HttpRequest, video_id: &str, file_name: &str) -> HttpResponse {
    let max = resumable::authorize(app, "POST", video_id, file_name, req.query_string())
        .map(|g| g.limit)
        .unwrap_or(app.settings.max_upload_bytes);
    HttpResponse::NoContent()
        .insert_header(("Tus-Resumable", TUS_VERSION))
        .insert_header(("Tus-Version", TUS_VERSION))
        .insert_header(("Tus-Extension", TUS_EXTENSIONS))
        .insert_header(("Tus-Max-Size", max.to_string()))
        .insert_header(("Tus-Checksum-Algorithm", "sha1,sha256"))
        .insert_header(("Upload-Limit", upload_limit(app, max, None)))
        .insert_header((header::ALLOW, "OPTIONS, HEAD, POST, PATCH, DELETE, PUT"))
        .finish()
}

fn expect_type(sent: &Option<String>, expected: &'static str) -> Result<(), ApiError> {
    match sent {
        Some(t) if t == expected => Ok(()),
        _ => Err(ApiError::WrongBodyType { expected }),
    }
}

fn parse_len(name: &str, v: &str) -> Result<u64, ApiError> {
    v.trim()
        .parse()
        .map_err(|_| ApiError::InvalidField(format!("{name} must be a whole number of bytes")))
}

/// tus creation: `Upload-Length: N` or `Upload-Defer-Length: 1`.
fn tus_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match (text("upload-length"), text("upload-defer-length")) {
        (Some(v), None) => parse_len("Upload-Length", v).map(Some),
        (None, Some("1")) => Ok(None),
        _ => Err(ApiError::InvalidField(
            "a tus creation needs Upload-Length (the upload's size in bytes) or \
             Upload-Defer-Length: 1, not both"
                .into(),
        )),
    }
}

fn ietf_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    headers
        .get("upload-length")
        .map(|v| parse_len("Upload-Length", v.to_str().unwrap_or("")))
        .transpose()
}

/// The IETF `Upload-Complete` structured boolean, required on creation and append.
fn upload_complete(headers: &HeaderMap) -> Result<bool, ApiError> {
    match headers.get("upload-complete").and_then(|v| v.to_str().ok()) {
        Some("?1") => Ok(true),
        Some("?0") => Ok(false),
        _ => Err(ApiError::InvalidField(
            "Upload-Complete is required: ?1 when this request ends the upload, else ?0".into(),
        )),
    }
}

/// tus `Upload-Checksum: sha1|sha256 BASE64`.
fn checksum(headers: &HeaderMap) -> Result<Option<Checksum>, ApiError> {
    let Some(value) = headers.get("upload-checksum") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::InvalidField(
            "Upload-Checksum must be `sha1 BASE64` or `sha256 BASE64` (the algorithms this \
             server offers in Tus-Checksum-Algorithm)"
                .into(),
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    let (name, sum) = text.trim().split_once(' ').ok_or_else(bad)?;
    let (algorithm, name) = match name {
        "sha1" => (&digest::SHA1_FOR_LEGACY_USE_ONLY, "sha1"),
        "sha256" => (&digest::SHA256, "sha256"),
        _ => return Err(bad()),
    };
    let expected = STANDARD.decode(sum.trim()).map_err(|_| bad())?;
    if expected.len() != algorithm.output_len() {
        return Err(bad());
    }
    Ok(Some(Checksum {
        algorithm,
        name,
        expected,
    }))
}
