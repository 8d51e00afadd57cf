//! The upload flow. `presign` mints a signed URL and its upload row; `receive` checks a PUT
//! against both, streams the body to a temp file and commits it as the object.

use crate::db::Conn;
use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::db::{self, publications::Publication, tokens::TokenRow, uploads::UploadRow};
use crate::domain::auth::check_live;
use crate::domain::names::content_type_for;
use crate::domain::signing::{self, UploadGrant, VerifyError};
use crate::domain::videos::public_url;
use crate::error::ApiError;
use crate::ids::time_ordered_id;
use crate::state::AppState;
use crate::storage::{Bucket, ObjectKey, ObjectMeta, ObjectWriter};
use crate::time::{iso8601, now_ms};

/// The answer to a presign request: the documented body, in the documented order, plus
/// `expiresAt`. Serialized straight from this struct (it is on every presign's path).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Presigned {
    pub upload_url: String,
    /// Always `PUT`.
    pub method: &'static str,
    pub headers: UploadHeaders,
    pub public_url: String,
    /// ISO 8601, UTC, milliseconds.
    pub expires_at: String,
    /// Only when the request asked for `"resumable": true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumable: Option<ResumableAnswer>,
}

/// The resumable URL of a presign, for tus 1.0 and IETF draft clients.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumableAnswer {
    pub url: String,
    pub protocols: [&'static str; 3],
    /// The bytes a client should send per request (`max_append_bytes`, else 50 MiB).
    pub chunk_size: u64,
    /// The end of the resume window: the session, and its partial bytes, are gone after it.
    pub expires_at: String,
}

/// What presign's `resumable.protocols` lists.
pub const PROTOCOLS: [&str; 3] = ["tus/1.0.0", "ietf-draft-interop/6", "ietf-draft-interop/8"];
/// `chunkSize` when no `max_append_bytes` caps a request.
const DEFAULT_CHUNK: u64 = 50 << 20;

/// The headers the PUT must send.
#[derive(serde::Serialize)]
pub struct UploadHeaders {
    #[serde(rename = "Content-Type")]
    pub content_type: &'static str,
}

/// A presign request, its fields already checked (`http::requests`): names safe as paths, the
/// lifetime and size within the settings' bounds.
pub struct PresignRequest {
    pub video_id: String,
    pub file_name: String,
    /// Seconds; `None`: `upload_url_ttl`.
    pub expires_in: Option<u64>,
    /// The exact byte count the PUT will carry; `None`: up to `max_upload_bytes`.
    pub size: Option<u64>,
    /// Also hand out a resumable URL for the same upload.
    pub resumable: bool,
}

pub async fn presign(
    app: &AppState,
    token: &TokenRow,
    request: PresignRequest,
) -> Result<Presigned, ApiError> {
    let PresignRequest {
        video_id,
        file_name,
        expires_in,
        size,
        resumable,
    } = request;
    let content_type = content_type_for(&file_name)?;
    let settings = &app.settings;
    let ttl = expires_in.unwrap_or(settings.upload_url_ttl_secs);

    let now = now_ms();
    // Whole seconds: the URL carries Unix seconds. A URL never outlives the token that made it.
    let mut expires_at_ms = (now / 1000 + ttl as i64) * 1000;
    if let Some(token_expiry) = token.expires_at {
        expires_at_ms = expires_at_ms.min(token_expiry / 1000 * 1000);
    }
    let row = UploadRow {
        id: time_ordered_id(&app.rng, "up_", 9, now),
        video_id: video_id.clone(),
        file_name: file_name.clone(),
        content_type: content_type.to_string(),
        byte_limit: size.unwrap_or(settings.max_upload_bytes),
        exact_size: size.is_some(),
        token_id: token.id.clone(),
        created_at: now,
        expires_at: expires_at_ms,
        completed_at: None,
        session: None,
    };
    let grant = UploadGrant {
        video_id: row.video_id.clone(),
        file_name: row.file_name.clone(),
        expires: expires_at_ms / 1000,
        content_type: row.content_type.clone(),
        limit: row.byte_limit,
        exact: row.exact_size,
        upload_id: row.id.clone(),
        token_id: row.token_id.clone(),
        resumable_until: None,
    };
    // The window counts from the presign; like the URL, it never outlives the token.
    let mut until_ms = (now / 1000 + settings.resumable_window_secs as i64) * 1000;
    if let Some(token_expiry) = token.expires_at {
        until_ms = until_ms.min(token_expiry / 1000 * 1000);
    }
    let until_ms = until_ms.max(expires_at_ms);
    let storage = app.storage.clone();
    let reserve = settings.disk_reserve_bytes;
    if !row.exact_size {
        // Nothing to write: every fact of the upload is signed into its URL, and its row is
        // made when the URL is first used (`check_open`, `spend`). Only a presign that promises
        // disk space must record the promise.
        let id = row.video_id.clone();
        let exists = app
            .db
            .read_on_executor::<_, ApiError, _>(move |c| db::videos::exists(c, &id))
            .await?;
        if !exists {
            return Err(ApiError::NotFound(format!(
                "there is no video with id `{}`",
                row.video_id
            )));
        }
        // What a lost signing key would void is known ahead: `signed_until` is raised 10
        // minutes beyond the newest URL, so that only one presign in many waits on a write.
        let lives_until = if resumable { until_ms } else { expires_at_ms };
        use std::sync::atomic::Ordering;
        if lives_until > app.signed_until.load(Ordering::Relaxed) {
            let at = lives_until + 600_000;
            let stored = app
                .db
                .write(move |c| Ok::<_, ApiError>(db::uploads::raise_signed_until(c, at)?))
                .await?;
            app.signed_until.fetch_max(stored, Ordering::Relaxed);
        }
    } else {
        app.db
        .write(move |conn| {
            // One write transaction: two presigns cannot both be promised the same free space.
            let tx: &crate::db::Conn = conn;
            if !db::videos::exists(tx, &row.video_id)? {
                return Err(ApiError::NotFound(format!("there is no video with id `{}`", row.video_id)));
            }
            if row.exact_size {
                // Refuse up front what cannot fit, counting what open URLs were promised.
                let free = storage.free_bytes().map_err(|e| ApiError::from_io("reading free space", e))?;
                let promised = db::uploads::declared_open_bytes(tx, now)?;
                if row.byte_limit.saturating_add(reserve).saturating_add(promised) > free {
                    return Err(ApiError::InsufficientStorage(Some(format!(
                        "the server cannot hold {} more bytes: {free} are free, {reserve} are kept in reserve \
                         and {promised} are promised to uploads in progress",
                        row.byte_limit
                    ))));
                }
            }
            db::uploads::insert(tx, &row)?;
            Ok(())
        })
        .await?;
    }
    let resumable = resumable.then(|| ResumableAnswer {
        url: format!(
            "{}{}",
            app.base_url,
            UploadGrant {
                resumable_until: Some(until_ms / 1000),
                ..grant.clone()
            }
            .sign(app.signing_key())
        ),
        protocols: PROTOCOLS,
        chunk_size: settings.max_append_bytes.unwrap_or(DEFAULT_CHUNK),
        expires_at: iso8601(until_ms),
    });
    Ok(Presigned {
        upload_url: format!("{}{}", app.base_url, grant.sign(app.signing_key())),
        method: "PUT",
        headers: UploadHeaders { content_type },
        public_url: public_url(app, &video_id, &file_name),
        expires_at: iso8601(expires_at_ms),
        resumable,
    })
}

/// A PUT as it arrived, before anything is trusted.
pub struct PutRequest<'a> {
    pub method: &'a str,
    pub video_id: &'a str,
    pub file_name: &'a str,
    pub raw_query: &'a str,
    pub content_type: Option<&'a str>,
    pub content_length: Option<u64>,
}

pub struct Received {
    pub size: u64,
    pub sha256: String,
    pub public_url: String,
    pub meta: ObjectMeta,
}

pub async fn receive<S>(
    app: &AppState,
    put: PutRequest<'_>,
    mut body: S,
) -> Result<Received, ApiError>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    // 1. The signature and the expiry: no IO, so a forged URL costs nothing.
    let grant = signing::parse_query(put.raw_query)
        .and_then(|query| {
            signing::verify(
                &app.verifying_keys,
                put.method,
                put.video_id,
                put.file_name,
                &query,
                now_ms() / 1000,
            )
        })
        .map_err(|e| match e {
            VerifyError::Mismatch(why) => ApiError::SignatureMismatch(why),
            VerifyError::Expired | VerifyError::SessionExpired => ApiError::UrlExpired,
        })?;

    // 2. What the headers promise, against what was signed.
    let sent_type = put
        .content_type
        .map(|ct| ct.split(';').next().unwrap_or("").trim());
    if !sent_type.is_some_and(|ct| ct.eq_ignore_ascii_case(&grant.content_type)) {
        return Err(ApiError::ContentTypeMismatch {
            expected: grant.content_type,
        });
    }
    if let Some(declared) = put.content_length {
        if declared > grant.limit {
            return Err(too_large(&grant));
        }
        if grant.exact && declared != grant.limit {
            return Err(ApiError::InvalidField(format!(
                "Content-Length is {declared} but this upload URL was signed for a size of exactly {} bytes",
                grant.limit
            )));
        }
    }

    // 3. The upload row: not spent, its token still live, its video still there, and no
    //    resumable session on it. Claimed first, so that a session starting meanwhile sees the
    //    claim (`resumable::start`).
    let _in_flight = app.in_flight.claim(&grant.upload_id).ok_or_else(|| {
        ApiError::Conflict("an upload through this URL is already in progress".into())
    })?;
    let check = grant.clone();
    app.db
        .read(move |conn| {
            check_open(conn, &check, now_ms())?;
            match db::uploads::get(conn, &check.upload_id)?.and_then(|r| r.session) {
                Some(session) => Err(ApiError::UploadInProgress(format!(
                    "a resumable upload through this upload's other URL holds {} bytes; finish it \
                     there, or send DELETE to that URL before a PUT",
                    session.offset
                ))),
                None => Ok(()),
            }
        })
        .await?;

    // 4. Stream to a temp file (or, with a bucket, straight into the object's own key),
    //    counting as we go. On any refusal the write is aborted and its temp file removed (or
    //    its parts abandoned) before the answer goes out, so a client retrying at once finds
    //    the space free again.
    let mut sink = match app.storage.bucket() {
        None => Sink::Disk(
            app.storage
                .writer()
                .await
                .map_err(|e| ApiError::from_io("creating a temp file", e))?,
        ),
        Some(bucket) => {
            // Its own for this attempt: two PUTs racing on one URL write two objects, one
            // published.
            let attempt = crate::ids::random_id(&app.rng, "put-", 16);
            let key = Bucket::object_key(&grant.video_id, &attempt, &grant.file_name);
            Sink::Bucket(bucket.writer(&key), attempt, key)
        }
    };
    let idle = app.settings.upload_idle_timeout;
    let streamed = stream_body(&grant, &mut sink, &mut body, idle).await;
    if let Err(e) = streamed {
        if let Sink::Disk(writer) = sink {
            writer.abort().await;
        }
        crate::domain::webhooks::upload_failed(app, &grant.video_id, &grant.file_name, &e).await;
        return Err(e);
    }
    let finished = match sink {
        Sink::Disk(writer) => writer
            .finish()
            .await
            .map(|staged| {
                let arrived = Arrived {
                    temp_name: staged.temp_name(),
                    size: staged.size,
                    sha256: staged.sha256.clone(),
                    streamed: None,
                };
                (arrived, Some(staged))
            })
            .map_err(|e| ApiError::from_io("finishing an upload", e)),
        Sink::Bucket(writer, attempt, key) => writer
            .finish()
            .await
            .map(|w| {
                let arrived = Arrived {
                    temp_name: attempt,
                    size: w.size,
                    sha256: w.sha256,
                    streamed: Some((key, w.meta)),
                };
                (arrived, None)
            })
            .map_err(|e| ApiError::from_io("storing an upload in the S3 bucket", e)),
    };
    let (arrived, staged) = match finished {
        Ok(done) => done,
        Err(e) => {
            crate::domain::webhooks::upload_failed(app, &grant.video_id, &grant.file_name, &e)
                .await;
            return Err(e);
        }
    };
    let (size, sha256) = (arrived.size, arrived.sha256.clone());

    // 5. Publish (the record first, then the file).
    let meta = publish(app, &grant, arrived, staged, |staged| {
        if let Some(staged) = staged {
            staged.keep();
        }
    })
    .await?;
    Ok(Received {
        size,
        sha256,
        public_url: public_url(app, &grant.video_id, &grant.file_name),
        meta,
    })
}

/// Where a PUT's body goes: a temp file, or with a bucket the object's own key (`put-RANDOM`,
/// the attempt's name, then the key).
enum Sink {
    Disk(ObjectWriter),
    Bucket(crate::storage::BucketWriter, String, String),
}

/// What arrived of an upload, to publish.
pub(crate) struct Arrived {
    /// The staged file in `tmp/`; with a bucket, the name of the upload attempt, which no
    /// other attempt has (the publication's journal row is keyed by it).
    pub temp_name: String,
    pub size: u64,
    pub sha256: String,
    /// With a bucket: the key and the object the bytes were streamed to as they arrived;
    /// `None` copies the staged file there first (a resumable upload).
    pub streamed: Option<(String, ObjectMeta)>,
}

/// Publishes a staged file (`tmp/TEMP_NAME`: a PUT's temp file or a resumable session's part
/// file) as the grant's object: the record first, then the file. One durable transaction checks
/// the URL again (unspent, its token live, its video there), spends it, marks the video ready and
/// records which staged file is to become which object; only once that is on disk is `keep`
/// called with `guard` and the file renamed into place (on the writer thread, in commit order,
/// before the next transaction). A failed commit leaves the old record and the old object as
/// they were, and drops `guard`; a crash after the commit is rolled forward at the next start
/// (`AppState::recover`). Either way the public URL serves exactly the bytes its record
/// describes.
///
/// With a bucket, whatever stops the publication removes the object written for it, unless the
/// record names it after all.
pub(crate) async fn publish<G: Send + 'static>(
    app: &AppState,
    grant: &UploadGrant,
    arrived: Arrived,
    guard: G,
    keep: fn(G),
) -> Result<ObjectMeta, ApiError> {
    let bucket_key = app.storage.bucket().map(|_| match &arrived.streamed {
        Some((key, _)) => key.clone(),
        None => Bucket::object_key(&grant.video_id, &arrived.temp_name, &grant.file_name),
    });
    let published = publish_staged(app, grant, arrived, bucket_key.as_deref(), guard, keep).await;
    if let (Err(_), Some(key)) = (&published, bucket_key) {
        forget_unpublished(app, &grant.video_id, &key).await;
    }
    published
}

/// `publish`, with the object's key in the bucket when there is one.
async fn publish_staged<G: Send + 'static>(
    app: &AppState,
    grant: &UploadGrant,
    arrived: Arrived,
    bucket_key: Option<&str>,
    guard: G,
    keep: fn(G),
) -> Result<ObjectMeta, ApiError> {
    let Arrived {
        temp_name,
        size,
        sha256,
        streamed,
    } = arrived;
    // What the object is, read from its headers before the record that makes it ready: from
    // the staged file, or from the bucket's object when the bytes went straight there.
    let media = {
        let (storage, name) = (app.storage.clone(), temp_name.clone());
        let ext = grant.file_name.rsplit('.').next().unwrap_or("").to_string();
        let in_bucket = streamed.as_ref().map(|(key, _)| key.clone());
        tokio::task::spawn_blocking(move || match (storage.bucket(), in_bucket) {
            (Some(bucket), Some(key)) => Ok(crate::domain::probe::probe(
                &mut bucket.reader_blocking(&key, size),
                size,
                &ext,
            )),
            _ => storage
                .open_temp(&name)
                .map(|mut f| crate::domain::probe::probe(&mut f, size, &ext)),
        })
        .await
        .map_err(|e| ApiError::internal("probing an upload", e))?
        .map_err(|e| ApiError::from_io("probing an upload", e))?
    };
    let media_json = serde_json::to_string(&media).unwrap_or_default();
    // Posters and renditions are queued with the record, so a crash cannot lose them.
    let jobs = crate::domain::media_jobs::jobs_for(app, &media);
    let hooks = app.settings.webhooks_for("video.ready");
    let storage = app.storage.clone();
    let key = ObjectKey {
        video_id: grant.video_id.clone(),
        file_name: grant.file_name.clone(),
    };
    // With a bucket, the object is there whole before the record names it, at a key of its
    // own upload that no other upload writes: streamed while the body came (a PUT), or copied
    // from the staged file now (a resumable upload's parts).
    let in_bucket = match (app.storage.bucket(), bucket_key, streamed) {
        (Some(_), Some(_), Some((_, meta))) => Some(meta),
        (Some(bucket), Some(key), None) => Some(
            bucket
                .put_file(&app.storage.temp_path(&temp_name), key, None)
                .await
                .map_err(|e| ApiError::from_io("copying an upload into the S3 bucket", e))?,
        ),
        _ => None,
    };
    let committed = grant.clone();
    let staged_name = temp_name.clone();
    let bucket_key_committed = bucket_key.map(str::to_string);
    let publication = {
        let temp_name = temp_name.clone();
        move |conn: &mut Conn| {
            let now = now_ms();
            check_open(conn, &committed, now)?;
            let before = db::videos::get(conn, &committed.video_id)?;
            let replaces = before.as_ref().and_then(|v| v.object_name.clone());
            let replaced_in_bucket = before.and_then(|v| v.object_key);
            db::uploads::spend(conn, &row_of(&committed)?, now)?;
            db::videos::mark_ready(
                conn,
                &committed.video_id,
                &db::videos::Stored {
                    object_name: &committed.file_name,
                    size,
                    content_type: &committed.content_type,
                    sha256: &sha256,
                    media: &media_json,
                    duration: media.duration,
                    width: media.width.map(f64::from),
                    height: media.height.map(f64::from),
                    object_key: bucket_key_committed.as_deref(),
                },
                now,
            )?;
            db::publications::insert(
                conn,
                &Publication {
                    temp_name,
                    video_id: committed.video_id.clone(),
                    object_name: committed.file_name.clone(),
                    replaces: replaces.clone(),
                    replaced_key: replaced_in_bucket.clone(),
                },
            )?;
            // The old object's posters and renditions no longer describe it.
            let stale = db::jobs::forget_video(conn, &committed.video_id)?;
            for kind in &jobs {
                db::jobs::enqueue(conn, &committed.video_id, kind, &sha256, now)?;
            }
            db::jobs::refresh(conn, &committed.video_id)?;
            if let Some(v) = db::videos::get(conn, &committed.video_id)? {
                crate::domain::webhooks::record(conn, &hooks, "video.ready", &v, now)?;
            }
            Ok((guard, (replaces, stale, replaced_in_bucket)))
        }
    };
    let published = app
        .db
        .write_durable_then(
            publication,
            move |(guard, (replaces, stale, replaced_in_bucket))| {
                keep(guard);
                crate::faults::crash_at("crash-after-commit");
                storage
                    .publish(&staged_name, &key, replaces.as_deref())
                    .map_err(|e| {
                        ApiError::from_io(
                            "moving an upload into place (finished at the next start)",
                            e,
                        )
                    })?;
                for file in stale {
                    // Left behind by a crash, fsck finds it; nothing serves an unrecorded file.
                    if let Err(e) = storage.remove_derived(&key.video_id, &file) {
                        log::warn!("could not remove an old poster or rendition: {e}");
                    }
                }
                if let Some(meta) = in_bucket {
                    return Ok((meta, replaced_in_bucket));
                }
                storage
                    .open_object(&key)
                    .map_err(|e| ApiError::from_io("reading a published object", e))?
                    .map(|(_, meta)| (meta, None))
                    .ok_or_else(|| ApiError::internal("publishing", "the object vanished"))
            },
        )
        .await;
    let (meta, replaced_in_bucket) = published?;
    app.media.wake();
    crate::domain::webhooks::wake();
    match (app.storage.bucket(), replaced_in_bucket) {
        (Some(bucket), Some(old)) => {
            // A reader that read the old record a moment ago may be about to GET the old
            // object: it is removed a little later, then the journal row that names it (a
            // crash before that is finished at the next start).
            let (bucket, db) = (bucket.clone(), app.db.clone());
            actix_web::rt::spawn(async move {
                tokio::time::sleep(REPLACED_GRACE).await;
                remove_replaced(&bucket, &old).await;
                clear_journal(&db, temp_name).await;
            });
        }
        // The rename is done; forget its journal row (a crash before this is harmless: the
        // next start finds the staged file gone and drops the row).
        _ => clear_journal(&app.db, temp_name).await,
    }
    log::info!(
        "stored {size} bytes for video {} through upload {}",
        grant.video_id,
        grant.upload_id
    );
    Ok(meta)
}

/// How long an object replaced in a bucket stays readable after its replacement's commit.
const REPLACED_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Removes a replaced object from the bucket (keys are never reused: nothing else names it).
async fn remove_replaced(bucket: &Bucket, old: &str) {
    if let Err(e) = bucket.delete(old).await {
        log::warn!("could not remove a replaced object from the S3 bucket: {e}");
    }
}

async fn clear_journal(db: &db::Db, temp_name: String) {
    if let Err(e) = db
        .write(move |conn| Ok::<_, ApiError>(db::publications::remove(conn, &temp_name)?))
        .await
    {
        log::warn!("could not clear a finished publication (cleared at the next start): {e}");
    }
}

/// After a publication that failed (the URL was spent meanwhile, the probe could not read the
/// file…): removes what it wrote to the bucket, unless the record names it after all (a commit
/// that succeeded before a later step failed).
async fn forget_unpublished(app: &AppState, video_id: &str, bucket_key: &str) {
    let Some(bucket) = app.storage.bucket() else {
        return;
    };
    let id = video_id.to_string();
    let named = app
        .db
        .read::<_, ApiError, _>(move |c| Ok(db::videos::get(c, &id)?))
        .await
        .map(|v| v.and_then(|v| v.object_key));
    match named {
        Ok(named) if named.as_deref() != Some(bucket_key) => {
            if let Err(e) = bucket.delete(bucket_key).await {
                log::warn!("could not remove an unpublished object from the S3 bucket: {e}");
            }
        }
        // Named, or unknown: left for fsck to name if nothing does.
        _ => {}
    }
}

/// Reads the body into `sink`, enforcing the idle timeout, the byte limit and an exact size.
async fn stream_body<S>(
    grant: &UploadGrant,
    sink: &mut Sink,
    body: &mut S,
    idle: std::time::Duration,
) -> Result<(), ApiError>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let mut written = 0u64;
    loop {
        let next = tokio::time::timeout(idle, body.next()).await.map_err(|_| {
            log::info!(
                "upload {} cut off: no data for {} s after {written} bytes",
                grant.upload_id,
                idle.as_secs(),
            );
            ApiError::Timeout(format!(
                "no data arrived for {} s after {written} bytes; nothing was stored, start the upload again",
                idle.as_secs(),
            ))
        })?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| {
            log::info!(
                "upload {} aborted after {written} bytes: {e}",
                grant.upload_id,
            );
            ApiError::InvalidField(format!(
                "the body ended early or could not be read after {written} bytes"
            ))
        })?;
        written += chunk.len() as u64;
        if written > grant.limit {
            return Err(too_large(grant));
        }
        match sink {
            Sink::Disk(writer) => writer
                .write(chunk)
                .await
                .map_err(|e| ApiError::from_io("writing an upload", e))?,
            Sink::Bucket(writer, _, _) => writer
                .put(chunk)
                .await
                .map_err(|e| ApiError::from_io("storing an upload in the S3 bucket", e))?,
        }
    }
    if grant.exact && written != grant.limit {
        return Err(ApiError::InvalidField(format!(
            "the body carried {written} bytes but this upload URL was signed for a size of exactly {} bytes",
            grant.limit
        )));
    }
    Ok(())
}

pub(crate) fn too_large(grant: &UploadGrant) -> ApiError {
    if grant.exact {
        ApiError::TooLarge(format!(
            "this upload URL was signed for exactly {} bytes and the body is larger",
            grant.limit
        ))
    } else {
        ApiError::TooLarge(format!(
            "the body is larger than this upload URL's limit of {} bytes",
            grant.limit
        ))
    }
}

/// The upload row a grant stands for. Every fact of it is signed into the URL (the id carries
/// its presign time), so a URL presigned without a size has no row until it is first used.
pub(crate) fn row_of(grant: &UploadGrant) -> Result<UploadRow, ApiError> {
    let created_at = crate::ids::time_of(&grant.upload_id, "up_").ok_or(
        ApiError::SignatureMismatch("the URL's upload id is not one flare makes"),
    )?;
    Ok(UploadRow {
        id: grant.upload_id.clone(),
        video_id: grant.video_id.clone(),
        file_name: grant.file_name.clone(),
        content_type: grant.content_type.clone(),
        byte_limit: grant.limit,
        exact_size: grant.exact,
        token_id: grant.token_id.clone(),
        created_at,
        expires_at: grant.expires * 1000,
        completed_at: None,
        session: None,
    })
}

/// Whether a URL with no row is still good: presigned without a size (a sized URL's row is
/// written at presign, so without it its video was deleted), for a video that exists and is
/// older than the URL.
pub(crate) fn open_without_row(conn: &Conn, grant: &UploadGrant) -> Result<bool, ApiError> {
    if grant.exact {
        return Ok(false);
    }
    let presigned_at = row_of(grant)?.created_at;
    Ok(db::videos::created_at(conn, &grant.video_id)?.is_some_and(|c| c <= presigned_at))
}

/// The URL must be unspent and match its row, when it has one; its token must be live and its
/// video must exist. A URL without a row yet (presigned without a size) must be younger than
/// its video: one made for a video that was deleted and then made again under the same id is
/// refused, as its row would have been deleted with the video.
pub(crate) fn check_open(conn: &Conn, grant: &UploadGrant, now: i64) -> Result<(), ApiError> {
    let gone = || ApiError::NotFound(format!("video `{}` no longer exists", grant.video_id));
    let row = match db::uploads::get(conn, &grant.upload_id)? {
        Some(row) => row,
        None if open_without_row(conn, grant)? => row_of(grant)?,
        None => return Err(gone()),
    };
    if row.video_id != grant.video_id
        || row.file_name != grant.file_name
        || row.token_id != grant.token_id
    {
        return Err(ApiError::SignatureMismatch(
            "the URL does not match its upload",
        ));
    }
    if row.completed_at.is_some() {
        return Err(ApiError::UrlUsed);
    }
    let token = db::tokens::get(conn, &row.token_id)?.ok_or(ApiError::TokenRevoked)?;
    check_live(&token, now)?;
    if !db::videos::exists(conn, &row.video_id)? {
        return Err(gone());
    }
    Ok(())
}
