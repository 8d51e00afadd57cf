//! Resumable uploads at the signed URL, whatever the protocol (tus 1.0 or the IETF draft; the
//! wire is `http::routes::resumable`). A presign with `"resumable": true` signs a second URL for
//! the same upload row; its session lives on that row (`db::uploads::Session`) and its bytes in
//! one part file (`storage::part`).
//!
//! The promises, and where each is kept:
//! - The URL is the only credential: verified on every request, and so are the row (unspent,
//!   its token live, its video there): `authorize`.
//! - An offset is reported only once durable: the part file is synced, then the row advanced.
//! - An interrupted request keeps its durable prefix; a refused one (checksum, limit) keeps
//!   nothing of itself: its bytes past the recorded offset are cut off at the next append.
//! - Completion is a PUT's publication (`uploads::publish`): one durable transaction, then the
//!   rename, so a public URL shows old bytes or new, never a mix; the SHA-256 is of the whole.
//! - One upload, one writer: a request on a busy upload asks the one holding it to stop and
//!   waits for it (`Sessions::acquire`), else 423. A PUT and a session exclude each other.

use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use ring::digest;

use crate::db::{self, uploads::Session};
use crate::domain::signing::{self, UploadGrant, VerifyError};
use crate::domain::uploads::{check_open, publish, Received};
use crate::domain::videos::public_url;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::{tails_prefix, Bucket, Finished, PartWriter, SessionWriter, Storage};
use crate::time::now_ms;

/// Within one long request, bytes are made durable and recorded every this many: a server
/// killed mid-request loses at most this much of it (tus-js-client and Uppy send a whole file
/// in one request unless told otherwise).
const CHECKPOINT: u64 = 32 << 20;
/// The most `Upload-Metadata` kept (it is echoed on every HEAD).
const MAX_METADATA: usize = 4096;

/// Checks a resumable URL's signature and window. No IO.
pub fn authorize(
    app: &AppState,
    method: &str,
    video_id: &str,
    file_name: &str,
    raw_query: &str,
) -> Result<UploadGrant, ApiError> {
    signing::parse_query(raw_query)
        .and_then(|q| {
            signing::verify(
                &app.verifying_keys,
                method,
                video_id,
                file_name,
                &q,
                now_ms() / 1000,
            )
        })
        .map_err(|e| match e {
            VerifyError::Mismatch(why) => ApiError::SignatureMismatch(why),
            VerifyError::Expired => ApiError::UrlExpired,
            VerifyError::SessionExpired => expired(),
        })
        .and_then(|grant| match grant.resumable_until {
            Some(_) => Ok(grant),
            None => Err(ApiError::SignatureMismatch(
                "this is a PUT URL; resumable requests go to presign's resumable.url",
            )),
        })
}

fn expired() -> ApiError {
    ApiError::UploadExpired(
        "this resumable upload's window has ended and its partial bytes are gone; nothing was \
         stored, ask for a new upload URL"
            .into(),
    )
}

/// The upload as a client sees it.
pub struct UploadState {
    /// Bytes durable (the whole size once complete).
    pub offset: u64,
    /// The whole upload's length, when known.
    pub length: Option<u64>,
    /// tus `Upload-Metadata` as sent at creation.
    pub metadata: Option<String>,
    /// The object is stored and the URL spent.
    pub complete: bool,
    /// Milliseconds: the end of the resume window.
    pub until: i64,
    /// The most bytes this upload may have, and whether exactly that many.
    pub limit: u64,
    pub exact: bool,
    /// Set by the request that completed the upload.
    pub published: Option<Received>,
}

impl UploadState {
    fn of(grant: &UploadGrant, session: Option<&Session>) -> UploadState {
        UploadState {
            offset: session.map_or(0, |s| s.offset),
            length: session
                .and_then(|s| s.length)
                .or(grant.exact.then_some(grant.limit)),
            metadata: session.and_then(|s| s.metadata.clone()),
            complete: false,
            until: grant.resumable_until.unwrap_or(0) * 1000,
            limit: grant.limit,
            exact: grant.exact,
            published: None,
        }
    }
}

/// The session's row, checked: unspent (else `Ok(Err(size))`), its token live, its video there,
/// and begun before the URL's start deadline.
async fn load(
    app: &AppState,
    grant: &UploadGrant,
) -> Result<Result<Option<Session>, u64>, ApiError> {
    let check = grant.clone();
    app.db
        .read(move |conn| {
            let row = db::uploads::get(conn, &check.upload_id)?;
            if let Some(row) = row.filter(|r| r.completed_at.is_some()) {
                if row.video_id != check.video_id || row.token_id != check.token_id {
                    return Err(ApiError::SignatureMismatch(
                        "the URL does not match its upload",
                    ));
                }
                let size = db::videos::get(conn, &check.video_id)?
                    .and_then(|v| v.size)
                    .unwrap_or(0);
                return Ok(Err(size.max(0) as u64));
            }
            check_open(conn, &check, now_ms())?;
            let session = db::uploads::get(conn, &check.upload_id)?.and_then(|r| r.session);
            if session.is_none() && now_ms() / 1000 >= check.expires {
                return Err(ApiError::UrlExpired);
            }
            Ok(Ok(session))
        })
        .await
}

/// `HEAD`: where the upload stands.
pub async fn state(app: &AppState, grant: &UploadGrant) -> Result<UploadState, ApiError> {
    let _lease = app.sessions.acquire(&grant.upload_id).await?;
    Ok(match load(app, grant).await? {
        Ok(session) => UploadState::of(grant, session.as_ref()),
        Err(size) => complete_state(grant, size),
    })
}

fn complete_state(grant: &UploadGrant, size: u64) -> UploadState {
    UploadState {
        offset: size,
        length: Some(size),
        complete: true,
        ..UploadState::of(grant, None)
    }
}

/// What a creation request declares.
pub struct Creation {
    /// `None`: deferred (tus `Upload-Defer-Length: 1`, or an IETF creation without a length).
    pub length: Option<u64>,
    pub metadata: Option<String>,
    /// `tus`, `ietf-6` or `ietf-8`.
    pub protocol: &'static str,
}

/// `POST` (tus creation, IETF creation): starts the session, or finds the same one already
/// started (a client that lost the answer to its creation may send it again).
pub async fn create(
    app: &AppState,
    grant: &UploadGrant,
    creation: Creation,
) -> Result<UploadState, ApiError> {
    let _lease = app.sessions.acquire(&grant.upload_id).await?;
    start(app, grant, creation).await
}

async fn start(
    app: &AppState,
    grant: &UploadGrant,
    creation: Creation,
) -> Result<UploadState, ApiError> {
    if let Some(length) = creation.length {
        check_length(grant, length)?;
    }
    if creation
        .metadata
        .as_ref()
        .is_some_and(|m| m.len() > MAX_METADATA)
    {
        return Err(ApiError::InvalidField(format!(
            "Upload-Metadata is longer than {MAX_METADATA} bytes"
        )));
    }
    match load(app, grant).await? {
        Err(_) => return Err(ApiError::UrlUsed),
        Ok(Some(session)) => {
            let same = creation.length.is_none() || creation.length == session.length;
            return if same {
                Ok(UploadState::of(grant, Some(&session)))
            } else {
                Err(ApiError::UploadInProgress(format!(
                    "this upload was started with a length of {}; send DELETE to its URL to start \
                     again with another",
                    session
                        .length
                        .map_or("(deferred)".into(), |n| n.to_string())
                )))
            };
        }
        Ok(None) => {}
    }
    let length = creation.length.or(grant.exact.then_some(grant.limit));
    // With a bucket, the session's bytes go into a multipart upload of its own, at a key of
    // its own, which any node can continue.
    let stored = match app.storage.bucket() {
        Some(bucket) => {
            let attempt = crate::ids::random_id(&app.rng, "sess-", 16);
            let key = Bucket::object_key(&grant.video_id, &attempt, &grant.file_name);
            Some(
                bucket
                    .begin_session(&key, length.unwrap_or(grant.limit))
                    .await
                    .map_err(|e| ApiError::from_io("starting an upload in the S3 bucket", e))?,
            )
        }
        None => None,
    };
    let session = Session {
        offset: 0,
        length,
        protocol: creation.protocol.into(),
        metadata: creation.metadata,
        until: grant.resumable_until.unwrap_or(0) * 1000,
        stored,
    };
    let (id, started) = (grant.upload_id.clone(), session.clone());
    let checked = grant.clone();
    let began = app
        .db
        .write(move |conn| {
            // A URL presigned without a size gets its row now, if it is still good.
            crate::domain::uploads::check_open(conn, &checked, now_ms())?;
            db::uploads::insert_if_absent(conn, &crate::domain::uploads::row_of(&checked)?)?;
            Ok::<_, ApiError>(db::uploads::start_session(conn, &id, &started)?)
        })
        .await?;
    // A PUT through the sibling URL claims the upload before it reads the row, so either it saw
    // this session, or this sees its claim.
    if !began || app.in_flight.contains(&grant.upload_id) {
        let (video, id, stored) = (&grant.video_id, &grant.upload_id, session.stored);
        if began {
            end(app, video, id, stored).await?;
        } else {
            remove_bytes(app, video, id, stored).await?;
        }
        return Err(ApiError::UploadInProgress(
            "a PUT through this upload's other URL is in progress".into(),
        ));
    }
    if session.stored.is_none() {
        let storage = app.storage.clone();
        let id = grant.upload_id.clone();
        blocking(move || storage.remove_part(&id)).await?;
        app.sessions
            .set_hasher(&grant.upload_id, 0, digest::Context::new(&digest::SHA256));
    }
    log::info!(
        "resumable upload {} for video {} started ({})",
        grant.upload_id,
        grant.video_id,
        creation.protocol
    );
    Ok(UploadState::of(grant, Some(&session)))
}

fn check_length(grant: &UploadGrant, length: u64) -> Result<(), ApiError> {
    if length > grant.limit {
        return Err(crate::domain::uploads::too_large(grant));
    }
    if grant.exact && length != grant.limit {
        return Err(ApiError::InvalidField(format!(
            "Upload-Length is {length} but this upload URL was signed for a size of exactly {} bytes",
            grant.limit
        )));
    }
    Ok(())
}

/// A per-request checksum (tus `Upload-Checksum`).
pub struct Checksum {
    pub algorithm: &'static digest::Algorithm,
    pub name: &'static str,
    pub expected: Vec<u8>,
}

/// What one append request declares.
pub struct Append {
    /// Where the client says its bytes start.
    pub offset: u64,
    /// The whole length, when this request declares it (tus deferred length, IETF
    /// `Upload-Length`).
    pub length: Option<u64>,
    /// IETF `Upload-Complete`: `Some(true)` when this request ends the upload. `None` (tus): the
    /// upload is complete when its offset reaches its length.
    pub complete: Option<bool>,
    pub content_length: Option<u64>,
    pub checksum: Option<Checksum>,
    /// Start the session first if none is (an IETF creation with content, a tus creation with
    /// upload).
    pub create: Option<Creation>,
    /// The protocol speaking, should this request start the session.
    pub protocol: &'static str,
}

/// `PATCH` (and a creation that carries bytes): appends at the durable offset, and completes the
/// upload when its last byte arrives.
pub async fn append<S>(
    app: &AppState,
    grant: &UploadGrant,
    request: Append,
    mut body: S,
) -> Result<UploadState, ApiError>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let lease = app.sessions.acquire(&grant.upload_id).await?;
    let session = match request.create {
        Some(creation) => {
            start(app, grant, creation).await?;
            match load(app, grant).await? {
                Ok(Some(session)) => session,
                _ => return Err(ApiError::UrlUsed),
            }
        }
        None => match load(app, grant).await? {
            Ok(Some(session)) => session,
            // A client that knows the URL from presign may skip creation (tus-js-client's
            // uploadUrl, tuspy's url=): its first append at 0 starts the session.
            Ok(None) if request.offset == 0 => {
                let creation = Creation {
                    length: request.length,
                    metadata: None,
                    protocol: request.protocol,
                };
                start(app, grant, creation).await?;
                match load(app, grant).await? {
                    Ok(Some(session)) => session,
                    _ => return Err(ApiError::UrlUsed),
                }
            }
            Ok(None) => {
                return Err(ApiError::OffsetMismatch {
                    expected: 0,
                    sent: request.offset,
                })
            }
            // The last answer may have been lost: an empty append at the end replays it.
            Err(size) if request.offset == size && request.content_length.unwrap_or(0) == 0 => {
                return Ok(complete_state(grant, size))
            }
            Err(_) => return Err(ApiError::UrlUsed),
        },
    };
    if request.offset != session.offset {
        return Err(ApiError::OffsetMismatch {
            expected: session.offset,
            sent: request.offset,
        });
    }
    // The whole length, from what this request says and what the session knows.
    let mut length = session.length;
    let declared = match (request.complete, request.content_length) {
        (Some(true), Some(n)) => Some(session.offset + n),
        _ => None,
    };
    for said in [request.length, declared].into_iter().flatten() {
        match length {
            Some(known) if known != said => {
                return Err(ApiError::InvalidField(format!(
                    "the upload's length is {known} bytes but this request says {said}"
                )))
            }
            _ => {
                check_length(grant, said)?;
                length = Some(said);
            }
        }
    }
    let ceiling = length.unwrap_or(grant.limit);
    if let Some(n) = request.content_length {
        if session.offset + n > ceiling {
            return Err(match length {
                Some(len) => ApiError::TooLarge(format!(
                    "this request carries {n} bytes from offset {} but the upload is {len} bytes long",
                    session.offset
                )),
                None => crate::domain::uploads::too_large(grant),
            });
        }
        if let Some(cap) = app.settings.max_append_bytes.filter(|cap| n > *cap) {
            return Err(ApiError::TooLarge(format!(
                "one request may carry at most {cap} bytes (max_append_bytes); send the upload in \
                 chunks"
            )));
        }
    }

    // Stream into the part file (or the bucket's multipart upload), on top of the durable
    // offset.
    let mut writer = match (app.storage.bucket(), session.stored.as_deref()) {
        (Some(bucket), Some(stored)) => Writer::Bucket(Box::new(
            bucket
                .append_session(stored, &tails_prefix(&grant.video_id, &grant.upload_id))
                .await
                .map_err(|e| ApiError::from_io("continuing an upload in the S3 bucket", e))?,
        )),
        _ => {
            let hasher = match app.sessions.hasher(&grant.upload_id, session.offset) {
                Some(h) => h,
                None => {
                    let storage = app.storage.clone();
                    let (id, offset) = (grant.upload_id.clone(), session.offset);
                    blocking(move || storage.rehash_part(&id, offset)).await?
                }
            };
            Writer::Disk(
                app.storage
                    .append_part(&grant.upload_id, session.offset, hasher)
                    .await
                    .map_err(|e| ApiError::from_io("opening an upload's part file", e))?,
            )
        }
    };
    let mut check = request
        .checksum
        .as_ref()
        .map(|c| digest::Context::new(c.algorithm));
    let idle = app.settings.upload_idle_timeout;
    let stop = lease.held.stop.clone();
    let mut cut: Option<ApiError> = None;
    // The offset the row holds: the session's, then each checkpoint's.
    let mut committed = session.offset;
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => {
                cut = Some(ApiError::UploadInProgress(
                    "a newer request on this upload took over; this one stopped".into(),
                ));
                break;
            }
            next = tokio::time::timeout(idle, body.next()) => next,
        };
        let chunk = match next {
            Err(_) => {
                cut = Some(ApiError::Timeout(format!(
                    "no data arrived for {} s; what arrived before is kept, continue from the \
                     offset HEAD reports",
                    idle.as_secs()
                )));
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                log::info!(
                    "resumable upload {} interrupted after {} bytes of a request: {e}",
                    grant.upload_id,
                    writer.written()
                );
                cut = Some(ApiError::InvalidField(
                    "the request's body ended early; what arrived is kept, continue from the \
                     offset HEAD reports"
                        .into(),
                ));
                break;
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        if session.offset + writer.written() + chunk.len() as u64 > ceiling {
            // Nothing of this request past its last checkpoint is kept.
            writer.abandon().await;
            return Err(match length {
                Some(len) => ApiError::TooLarge(format!(
                    "this request carries more than the {} bytes left of the upload's {len}",
                    len - session.offset
                )),
                None => crate::domain::uploads::too_large(grant),
            });
        }
        if let Some(c) = check.as_mut() {
            c.update(&chunk);
        }
        if let Err(e) = writer.write(chunk).await {
            writer.abandon().await;
            return Err(ApiError::from_io("writing an upload's part file", e));
        }
        // A checksummed request keeps nothing unless all of it verifies: no checkpoints.
        if check.is_none() && session.offset + writer.written() - committed >= CHECKPOINT {
            let done = match writer.checkpoint().await {
                Ok(done) => done,
                Err(e) => {
                    writer.abandon().await;
                    return Err(ApiError::from_io("syncing an upload's part file", e));
                }
            };
            let to = session.offset + done.written;
            advance(app, &grant.upload_id, committed, to, None, done.stored).await?;
            forget_tail(app, done.stale).await;
            committed = to;
            if let Some(hasher) = done.hasher {
                app.sessions.set_hasher(&grant.upload_id, to, hasher);
            }
        }
    }
    if let (Some(c), Some(sum)) = (check, &request.checksum) {
        // An interrupted request cannot be checked, and a mismatched one is not kept: either
        // way nothing of it is recorded.
        if cut.is_some() || c.finish().as_ref() != sum.expected.as_slice() {
            writer.abandon().await;
            return Err(cut.unwrap_or_else(|| {
                ApiError::ChecksumMismatch(format!(
                    "the request's {} checksum does not match its body; nothing of it was kept, \
                     send it again",
                    sum.name
                ))
            }));
        }
    }
    // Whether this request ends the upload, and can: with a bucket the object is completed as
    // the request ends, so the checks come first (a request that fails them keeps its bytes).
    let received = session.offset + writer.written();
    let finished = cut.is_none()
        && match request.complete {
            Some(done) => done,
            None => length == Some(received),
        };
    let refusal = if !finished {
        None
    } else if length.is_some_and(|len| len != received) {
        Some(ApiError::InvalidField(format!(
            "Upload-Complete says this request ends the upload, but it holds {received} of its {} bytes",
            length.unwrap_or(0)
        )))
    } else if grant.exact && received != grant.limit {
        Some(ApiError::InvalidField(format!(
            "the upload holds {received} bytes but its URL was signed for exactly {}",
            grant.limit
        )))
    } else {
        None
    };
    let ended = writer
        .finish(finished && refusal.is_none())
        .await
        .map_err(|e| ApiError::from_io("storing an upload's bytes", e))?;
    let (offset, hasher, object) = match ended {
        Ended::Kept(kept) => {
            let offset = session.offset + kept.written;
            if offset != committed || length != session.length || kept.stored.is_some() {
                advance(
                    app,
                    &grant.upload_id,
                    committed,
                    offset,
                    length,
                    kept.stored,
                )
                .await?;
                forget_tail(app, kept.stale).await;
            }
            (offset, kept.hasher, None)
        }
        Ended::Complete(written, key) => (written.size, None, Some((written, key))),
    };
    if let Some(error) = cut {
        if let Some(hasher) = hasher {
            app.sessions.set_hasher(&grant.upload_id, offset, hasher);
        }
        log::info!(
            "resumable upload {} kept {} bytes of an interrupted request (now at {offset})",
            grant.upload_id,
            offset - session.offset
        );
        return Err(error);
    }
    let mut state = UploadState::of(
        grant,
        Some(&Session {
            offset,
            length,
            ..session
        }),
    );
    if !finished || refusal.is_some() {
        if let Some(hasher) = hasher {
            app.sessions.set_hasher(&grant.upload_id, offset, hasher);
        }
        return match refusal {
            Some(error) => Err(error),
            None => Ok(state),
        };
    }
    app.sessions.forget(&grant.upload_id);
    let arrived = match (object, hasher) {
        // With a bucket: the object is whole at the session's key.
        (Some((written, key)), _) => crate::domain::uploads::Arrived {
            temp_name: key.split('/').nth(2).unwrap_or_default().to_string(),
            size: written.size,
            sha256: written.sha256,
            streamed: Some((key, written.meta)),
        },
        (None, Some(hasher)) => crate::domain::uploads::Arrived {
            temp_name: Storage::part_name(&grant.upload_id),
            size: offset,
            sha256: crate::storage::hex(hasher.finish().as_ref()),
            streamed: None,
        },
        (None, None) => {
            return Err(ApiError::internal(
                "completing a resumable upload",
                "no digest of its bytes",
            ))
        }
    };
    let sha256 = arrived.sha256.clone();
    let meta = publish(app, grant, arrived, (), |()| {}).await?;
    state.complete = true;
    state.length = Some(offset);
    state.published = Some(Received {
        size: offset,
        sha256,
        public_url: public_url(app, &grant.video_id, &grant.file_name),
        meta,
    });
    Ok(state)
}

/// Where an append's bytes go: the session's part file, or its multipart upload in the bucket.
enum Writer {
    Disk(PartWriter),
    Bucket(Box<SessionWriter>),
}

/// Removes a session's tail its row no longer names (left for the session's end on failure).
async fn forget_tail(app: &AppState, stale: Option<String>) {
    if let (Some(bucket), Some(key)) = (app.storage.bucket(), stale) {
        if let Err(e) = bucket.delete(&key).await {
            log::warn!("could not remove an upload's old tail from the S3 bucket: {e}");
        }
    }
}

/// What a request made durable.
struct Durable {
    /// This request's bytes.
    written: u64,
    /// The whole upload's SHA-256 state after them (a part file's).
    hasher: Option<digest::Context>,
    /// The session's new record of its bytes in the bucket, and the tail it no longer names.
    stored: Option<String>,
    stale: Option<String>,
}

enum Ended {
    Kept(Durable),
    /// With a bucket: the object, complete at this key.
    Complete(crate::storage::Written, String),
}

impl Writer {
    fn written(&self) -> u64 {
        match self {
            Writer::Disk(w) => w.written(),
            Writer::Bucket(w) => w.written(),
        }
    }

    async fn write(&mut self, chunk: Bytes) -> std::io::Result<()> {
        match self {
            Writer::Disk(w) => w.write(chunk).await,
            Writer::Bucket(w) => w.write(chunk).await,
        }
    }

    async fn checkpoint(&mut self) -> std::io::Result<Durable> {
        Ok(match self {
            Writer::Disk(w) => w.checkpoint().await.map(|a| Durable {
                written: a.written,
                hasher: Some(a.hasher),
                stored: None,
                stale: None,
            })?,
            Writer::Bucket(w) => w.checkpoint().await.map(|a| Durable {
                written: a.written,
                hasher: None,
                stored: Some(a.stored),
                stale: a.stale,
            })?,
        })
    }

    /// Stops without recording anything.
    async fn abandon(self) {
        match self {
            Writer::Disk(w) => w.abandon().await,
            // Parts sent are left out of the upload when it is completed or aborted.
            Writer::Bucket(_) => {}
        }
    }

    /// Ends the request; `last`: it ends the upload (a part file is then published by the
    /// caller; a multipart upload is completed here).
    async fn finish(self, last: bool) -> std::io::Result<Ended> {
        Ok(match self {
            Writer::Disk(w) => {
                let a = w.finish().await?;
                Ended::Kept(Durable {
                    written: a.written,
                    hasher: Some(a.hasher),
                    stored: None,
                    stale: None,
                })
            }
            Writer::Bucket(w) => match w.finish(last).await? {
                Finished::Kept(a) => Ended::Kept(Durable {
                    written: a.written,
                    hasher: None,
                    stored: Some(a.stored),
                    stale: a.stale,
                }),
                Finished::Complete(written, key) => Ended::Complete(written, key),
            },
        })
    }
}

/// Records bytes made durable (`from` → `to`), in a durable write when uploads are synced: an
/// offset reported is one a power cut keeps.
async fn advance(
    app: &AppState,
    upload_id: &str,
    from: u64,
    to: u64,
    length: Option<u64>,
    stored: Option<String>,
) -> Result<(), ApiError> {
    let id = upload_id.to_string();
    let change = move |conn: &mut crate::db::Conn| {
        Ok::<_, ApiError>(db::uploads::advance_session(
            conn,
            &id,
            from,
            to,
            length,
            stored.as_deref(),
        )?)
    };
    // With sync_uploads off the bytes themselves are not synced, so neither is their offset
    // (a killed process loses nothing either way; a power cut may, as for a PUT).
    let moved = if app.settings.sync_uploads {
        app.db.write_durable_then(change, Ok).await?
    } else {
        app.db.write(change).await?
    };
    if moved {
        Ok(())
    } else {
        Err(ApiError::UploadInProgress(
            "the upload changed while this request ran (cancelled or completed)".into(),
        ))
    }
}

/// `DELETE`: ends the session and removes its bytes; the URL is unspent and may start again.
pub async fn cancel(app: &AppState, grant: &UploadGrant) -> Result<(), ApiError> {
    let _lease = app.sessions.acquire(&grant.upload_id).await?;
    match load(app, grant).await? {
        Err(_) => Err(ApiError::UrlUsed),
        Ok(None) => Ok(()),
        Ok(Some(session)) => {
            end(app, &grant.video_id, &grant.upload_id, session.stored).await?;
            log::info!("resumable upload {} cancelled", grant.upload_id);
            Ok(())
        }
    }
}

/// Ends a session: the row first (no offset is reported after this), then its bytes.
async fn end(
    app: &AppState,
    video_id: &str,
    upload_id: &str,
    stored: Option<String>,
) -> Result<(), ApiError> {
    let id = upload_id.to_string();
    app.db
        .write(move |conn| Ok::<_, ApiError>(db::uploads::end_session(conn, &id)?))
        .await?;
    app.sessions.forget(upload_id);
    remove_bytes(app, video_id, upload_id, stored).await
}

/// Removes a session's bytes (`Storage::remove_session`).
async fn remove_bytes(
    app: &AppState,
    video_id: &str,
    upload_id: &str,
    stored: Option<String>,
) -> Result<(), ApiError> {
    let storage = app.storage.clone();
    let (video, id) = (video_id.to_string(), upload_id.to_string());
    blocking(move || storage.remove_session(&video, &id, stored.as_deref())).await
}

/// Ends every session whose window has passed; run every few minutes. Returns how many.
pub async fn sweep(app: &AppState) -> Result<usize, ApiError> {
    let now = now_ms();
    let expired = app
        .db
        .read(move |conn| Ok::<_, ApiError>(db::uploads::sessions(conn, Some(now))?))
        .await?;
    let mut swept = 0;
    for row in expired {
        // One still being written to is left to finish its request (it is refused next time).
        let Some(_lease) = app.sessions.try_acquire(&row.id) else {
            continue;
        };
        let stored = row.session.and_then(|s| s.stored);
        end(app, &row.video_id, &row.id, stored).await?;
        swept += 1;
    }
    if swept > 0 {
        log::info!("swept {swept} resumable upload(s) whose window ended");
    }
    Ok(swept)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("a resumable upload's file work", e))?
        .map_err(|e| ApiError::from_io("a resumable upload's part file", e))
}
