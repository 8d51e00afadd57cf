//! A resumable session's bytes in the bucket, so that any node can take the next request of a
//! session another node started (tusd's s3store does the same).
//!
//! A session is one multipart upload at the key its object will have. Bytes are cut into parts
//! of `part_size` (at least S3's 5 MiB) as they arrive and sent while the request goes on; the
//! bytes past the last whole part, when a request ends, are kept as a small object of their own
//! (the tail, under `VIDEO/sessions/UPLOAD/`) and become the head of the next part. What is
//! durable is what the session's row says (`uploads.session_store`, the JSON of `Stored`): the
//! parts completed, the tail, and the SHA-256 state after them, saved with sha2's serializable
//! state, so that the node that finishes the upload knows the digest of bytes it never saw.
//! The last byte completes the multipart upload: the object appears whole, or not at all.
//!
//! Part numbers follow from the recorded parts: two requests at one offset (a client resuming
//! on another node while its dead request lingers) write the same bytes under the same numbers;
//! only the row's compare-and-set on the offset decides which request's record stands, and the
//! store checks every part's ETag when the upload is completed.

use bytes::{Bytes, BytesMut};
use object_store::multipart::{MultipartStore, PartId};
use object_store::{ObjectStoreExt, PutPayload};
use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io;

use super::bucket::{io_error, key_of, meta_of, Bucket, Written};

/// The smallest part: S3 refuses smaller ones, except the last.
const MIN_PART: u64 = 8 << 20;
/// The largest part: what a session may hold in memory is about three of them.
const MAX_PART: u64 = 64 << 20;
/// S3 takes at most 10,000 parts in one upload: parts are made large enough for the upload's
/// length (or limit) to fit in this many.
const PARTS_PLANNED: u64 = 9_000;
/// Parts being sent at once by one request.
const IN_FLIGHT: usize = 2;

/// What the session's row keeps of its bytes in the bucket.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub(crate) struct Stored {
    /// The key the object will have.
    key: String,
    /// The store's multipart upload id.
    upload: String,
    part_size: u64,
    parts: Vec<Part>,
    tail: Option<Tail>,
    /// base64 of the SHA-256 state after the parts (the tail's bytes are hashed when they go
    /// into one).
    sha256: String,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
struct Part {
    /// The part's index (its S3 part number less one).
    n: usize,
    etag: String,
    size: u64,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
struct Tail {
    key: String,
    size: u64,
}

impl Stored {
    fn parse(json: &str) -> io::Result<Stored> {
        serde_json::from_str(json).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a resumable session's record of its parts cannot be read: {e}"),
            )
        })
    }

    fn json(&self) -> String {
        serde_json::to_string(self).expect("a session record serializes")
    }

    /// Bytes durable: the parts and the tail.
    fn durable(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum::<u64>() + self.tail.as_ref().map_or(0, |t| t.size)
    }

    fn hasher(&self) -> io::Result<Sha256> {
        use base64::Engine;
        let bad = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a resumable session's SHA-256 state cannot be read: {why}"),
            )
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&self.sha256)
            .map_err(|e| bad(&e.to_string()))?;
        let state =
            SerializedState::<Sha256>::try_from(raw.as_slice()).map_err(|_| bad("wrong length"))?;
        Sha256::deserialize(&state).map_err(|_| bad("not a SHA-256 state"))
    }

    fn set_hasher(&mut self, hasher: &Sha256) {
        use base64::Engine;
        self.sha256 = base64::engine::general_purpose::STANDARD.encode(hasher.serialize());
    }
}

/// An append's bytes going into the session's multipart upload (`Bucket::append_session`).
pub(crate) struct SessionWriter {
    bucket: Bucket,
    state: Stored,
    tails: String,
    /// Durable bytes when this request began.
    base: u64,
    /// The tail this request began with: no longer needed once the row names another.
    first_tail: Option<String>,
    /// The SHA-256 state after every byte cut into a part (not the tail's).
    hasher: Option<Sha256>,
    /// Bytes not yet in a part: the tail read back, then this request's, copied into one
    /// buffer of the part's size (holding the network's chunks instead would hold the larger
    /// buffers they are cut from).
    buffer: BytesMut,
    /// This request's bytes.
    written: u64,
    /// Parts being sent, in order: index, size, the SHA-256 state after it.
    sending: VecDeque<(
        usize,
        u64,
        Sha256,
        tokio::task::JoinHandle<io::Result<PartId>>,
    )>,
    /// Parts sent, not yet recorded, and the state after the last.
    sent: Vec<Part>,
    sent_hasher: Option<Sha256>,
}

/// What an append made durable, to record in the session's row.
pub(crate) struct SessionAppended {
    /// This request's bytes now durable.
    pub written: u64,
    /// The row's new `session_store`.
    pub stored: String,
    /// A tail that record no longer names: to remove once it is recorded.
    pub stale: Option<String>,
}

impl Bucket {
    /// Starts a session's multipart upload at `key`, for an upload of at most `limit` bytes;
    /// returns what its row keeps.
    pub(crate) async fn begin_session(&self, key: &str, limit: u64) -> io::Result<String> {
        let (store, path) = (self.store(), key_of(key));
        let upload = self
            .on_runtime(async move { store.create_multipart(&path).await })
            .await
            .map_err(io_error)?;
        let mut state = Stored {
            key: key.to_string(),
            upload,
            part_size: (limit.div_ceil(PARTS_PLANNED).div_ceil(1 << 20) << 20)
                .clamp(MIN_PART, MAX_PART),
            parts: Vec::new(),
            tail: None,
            sha256: String::new(),
        };
        state.set_hasher(&Sha256::new());
        Ok(state.json())
    }

    /// Ends a session: its multipart upload aborted, its tails removed. Blocking.
    pub(crate) fn end_session(&self, stored: &str, tails: &str) -> io::Result<()> {
        let state = Stored::parse(stored)?;
        let (store, path) = (self.store(), key_of(&state.key));
        self.block(async move {
            match store.abort_multipart(&path, &state.upload).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(io_error(e)),
            }
        })?;
        self.delete_under(tails)
    }

    /// Continues a session from what its row keeps: the tail is read back first.
    pub(crate) async fn append_session(
        &self,
        stored: &str,
        tails: &str,
    ) -> io::Result<SessionWriter> {
        let state = Stored::parse(stored)?;
        let hasher = state.hasher()?;
        let mut buffer = BytesMut::new();
        if let Some(tail) = &state.tail {
            let (store, key) = (self.store(), key_of(&tail.key));
            let bytes = self
                .on_runtime(async move { store.get(&key).await?.bytes().await })
                .await
                .map_err(io_error)?;
            if bytes.len() as u64 != tail.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "a resumable session's tail {} holds {} bytes, not the {} recorded",
                        tail.key,
                        bytes.len(),
                        tail.size
                    ),
                ));
            }
            // Room for a whole part at once: the tail is its head.
            buffer.reserve(state.part_size as usize);
            buffer.extend_from_slice(&bytes);
        }
        Ok(SessionWriter {
            bucket: self.clone(),
            base: state.durable(),
            first_tail: state.tail.as_ref().map(|t| t.key.clone()),
            state,
            tails: tails.to_string(),
            hasher: Some(hasher),
            buffer,
            written: 0,
            sending: VecDeque::new(),
            sent: Vec::new(),
            sent_hasher: None,
        })
    }
}

impl Drop for SessionWriter {
    fn drop(&mut self) {
        // However the request ended, its part buffers go back to the kernel.
        crate::sys::release_free_memory();
    }
}

impl SessionWriter {
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    pub(crate) async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        self.written += chunk.len() as u64;
        let part_size = self.state.part_size as usize;
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            if self.buffer.capacity() == 0 {
                // Untouched pages cost nothing: a short request never fills them.
                self.buffer.reserve(part_size);
            }
            let take = (part_size - self.buffer.len()).min(rest.len());
            self.buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buffer.len() == part_size {
                let part = std::mem::take(&mut self.buffer).freeze();
                self.send(vec![part]).await?;
            }
        }
        Ok(())
    }

    /// The SHA-256 state after `bytes`, hashed on a blocking thread (a part is megabytes).
    async fn hash(&mut self, bytes: &[Bytes]) -> io::Result<Sha256> {
        let (mut hasher, bytes) = (
            self.hasher.take().expect("a hasher between parts"),
            bytes.to_vec(),
        );
        tokio::task::spawn_blocking(move || {
            bytes.iter().for_each(|b| hasher.update(b));
            hasher
        })
        .await
        .map_err(io::Error::other)
    }

    /// Hashes a part (off the async thread) and starts sending it, once fewer than
    /// `IN_FLIGHT` are being sent: a session holds at most that many parts and the one filling.
    async fn send(&mut self, part: Vec<Bytes>) -> io::Result<()> {
        while self.sending.len() >= IN_FLIGHT {
            self.settle_one().await?;
        }
        let hasher = self.hash(&part).await?;
        self.hasher = Some(hasher.clone());
        let n = self.state.parts.len() + self.sent.len() + self.sending.len();
        let size = part.iter().map(|b| b.len() as u64).sum();
        let (store, path, upload) = (
            self.bucket.store(),
            key_of(&self.state.key),
            self.state.upload.clone(),
        );
        let task = self.bucket.spawn(async move {
            store
                .put_part(&path, &upload, n, part.into_iter().collect())
                .await
                .map_err(io_error)
        });
        self.sending.push_back((n, size, hasher, task));
        Ok(())
    }

    async fn settle_one(&mut self) -> io::Result<()> {
        if let Some((n, size, hasher, task)) = self.sending.pop_front() {
            let id = task.await.map_err(io::Error::other)??;
            self.sent.push(Part {
                n,
                etag: id.content_id,
                size,
            });
            self.sent_hasher = Some(hasher);
        }
        Ok(())
    }

    /// Waits for the parts being sent, and returns what the row should now say: the parts
    /// sent so far (a tail they took in is no longer needed).
    pub(crate) async fn checkpoint(&mut self) -> io::Result<SessionAppended> {
        while !self.sending.is_empty() {
            self.settle_one().await?;
        }
        if let Some(hasher) = self.sent_hasher.take() {
            self.state.parts.append(&mut self.sent);
            self.state.tail = None;
            self.state.set_hasher(&hasher);
        }
        Ok(self.appended())
    }

    fn appended(&self) -> SessionAppended {
        let tail = self.state.tail.as_ref().map(|t| &t.key);
        SessionAppended {
            written: self.state.durable() - self.base,
            stored: self.state.json(),
            stale: self.first_tail.clone().filter(|first| Some(first) != tail),
        }
    }

    /// Ends the request: the bytes past the last part become the session's tail (`last`:
    /// false), or its last part, and the multipart upload is completed (`last`: true).
    pub(crate) async fn finish(mut self, last: bool) -> io::Result<Finished> {
        let appended = self.checkpoint().await?;
        let rest_len = self.buffer.len() as u64;
        let rest = vec![std::mem::take(&mut self.buffer).freeze()];
        if !last {
            let carried = self.state.tail.as_ref().map_or(0, |t| t.size);
            if rest_len == carried {
                // Nothing new past the parts: the tail (if any) stays as it is.
                return Ok(Finished::Kept(appended));
            }
            let key = format!(
                "{}/tail-{}",
                self.tails,
                crate::ids::random_id(&ring::rand::SystemRandom::new(), "", 12)
            );
            let size = rest_len;
            let (store, path) = (self.bucket.store(), key_of(&key));
            let payload: PutPayload = rest.into_iter().collect();
            self.bucket
                .on_runtime(async move { store.put(&path, payload).await })
                .await
                .map_err(io_error)?;
            self.state.tail = Some(Tail { key, size });
            return Ok(Finished::Kept(self.appended()));
        }
        let hasher = self.hash(&rest).await?;
        let size = self.state.parts.iter().map(|p| p.size).sum::<u64>() + rest_len;
        let (store, path, upload) = (
            self.bucket.store(),
            key_of(&self.state.key),
            self.state.upload.clone(),
        );
        let mut parts: Vec<PartId> = self
            .state
            .parts
            .iter()
            .map(|p| PartId {
                content_id: p.etag.clone(),
            })
            .collect();
        let next = self.state.parts.len();
        let meta = self
            .bucket
            .on_runtime(async move {
                if size == 0 {
                    // S3 completes no upload without a part: an empty object is put whole.
                    let _ = store.abort_multipart(&path, &upload).await;
                    store.put(&path, PutPayload::default()).await?;
                } else {
                    if rest_len > 0 {
                        let payload: PutPayload = rest.into_iter().collect();
                        parts.push(store.put_part(&path, &upload, next, payload).await?);
                    }
                    store.complete_multipart(&path, &upload, parts).await?;
                }
                store.head(&path).await
            })
            .await
            .map_err(io_error)?;
        // The tails are in the object now.
        let (bucket, tails) = (self.bucket.clone(), self.tails.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || bucket.delete_under(&tails))
            .await
            .map_err(io::Error::other)
            .and_then(|removed| removed)
        {
            log::warn!("could not remove a finished upload's tails (fsck names them): {e}");
        }
        let written = Written {
            meta: meta_of(meta),
            size,
            sha256: super::hex(hasher.finalize().as_slice()),
        };
        Ok(Finished::Complete(written, self.state.key.clone()))
    }
}

/// How a request that was not abandoned ended.
pub(crate) enum Finished {
    /// The session goes on: record this.
    Kept(SessionAppended),
    /// The object is complete, at this key.
    Complete(Written, String),
}
