//! Objects in an S3-compatible bucket (`[s3]`, cargo feature `s3`), through object_store.
//!
//! Keys: `VIDEO_ID/composite/UPLOAD/FILE`, where UPLOAD is the staged upload's own name. An
//! object is written whole at a key of its own (streamed in parts while the body arrives) before
//! the record that names it (`videos.object_key`) is committed, and is never written again, so a
//! reader never sees part of one, two uploads racing for one video never overwrite each other,
//! and the record alone says which object is public. What a crash leaves (an object written but
//! never recorded, an old one not yet removed) is an object no record names, which `flare fsck`
//! lists and `--repair` moves under `lost+found/`.
//!
//! The client runs on its own small runtime, so the requests it makes never depend on which of
//! actix's single-threaded runtimes (or which blocking thread) asked for them.

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::buffered::BufWriter;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncReadExt;

use super::ObjectMeta;
use crate::config::S3Settings;

/// Bytes sent per multipart part, and parts in flight at once: an upload holds at most
/// `PART * (CONCURRENCY + 1)` in memory, whatever its size.
const PART: usize = 8 << 20;
const CONCURRENCY: usize = 2;
/// Chunks of a GET waiting for a slow client, of about `GET_CHUNK` bytes each: the rest waits
/// in the store.
const GET_QUEUE: usize = 4;
const GET_CHUNK: usize = 256 << 10;

#[derive(Clone)]
pub struct Bucket {
    store: Arc<AmazonS3>,
    runtime: Arc<Runtime>,
    name: String,
    public_base_url: Option<String>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("name", &self.name).finish()
    }
}

/// An object being written while its bytes arrive (`Bucket::writer`). Dropped without
/// `finish`, the parts sent are abandoned and no object appears.
pub struct BucketWriter {
    tx: Option<tokio::sync::mpsc::Sender<Bytes>>,
    task: Option<tokio::task::JoinHandle<io::Result<Sent>>>,
    runtime: Arc<Runtime>,
}

/// What a writer's task has sent, before the object is completed.
struct Sent {
    writer: BufWriter,
    store: Arc<AmazonS3>,
    key: Key,
    size: u64,
    digest: ring::digest::Context,
}

/// An object completed by `BucketWriter::finish`: what a reader will see, and what was sent.
pub struct Written {
    pub meta: ObjectMeta,
    pub size: u64,
    pub sha256: String,
}

impl BucketWriter {
    /// Queues a chunk; waits when the store is slower than the sender.
    pub async fn put(&mut self, chunk: Bytes) -> io::Result<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(chunk).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writing task stopped: its error says why.
        self.tx = None;
        match self.task.take() {
            Some(task) => match task.await {
                Ok(Err(e)) => Err(e),
                _ => Err(io::Error::other("the S3 upload stopped")),
            },
            None => Err(io::Error::other("the S3 upload stopped")),
        }
    }

    /// Sends the last part and completes the object: what a reader will see of it, with the
    /// size and SHA-256 of the bytes sent.
    pub async fn finish(mut self) -> io::Result<Written> {
        self.tx = None;
        let task = self.task.take().expect("finish once");
        let Sent {
            mut writer,
            store,
            key,
            size,
            digest,
        } = task
            .await
            .map_err(|_| io::Error::other("the S3 upload task failed"))??;
        let meta = self
            .runtime
            .spawn(async move {
                use tokio::io::AsyncWriteExt;
                if let Err(e) = writer.shutdown().await {
                    let _ = writer.abort().await;
                    return Err(e);
                }
                store.head(&key).await.map(meta_of).map_err(io_error)
            })
            .await
            .map_err(|_| io::Error::other("the S3 upload task failed"))??;
        Ok(Written {
            meta,
            size,
            sha256: super::hex(digest.finish().as_ref()),
        })
    }
}

impl Drop for BucketWriter {
    fn drop(&mut self) {
        // Finished or not, its part buffers go back to the kernel.
        crate::sys::release_free_memory();
        // Unfinished: the task sees its queue close and is told to abort.
        if let Some(task) = self.task.take() {
            self.tx = None;
            self.runtime.spawn(async move {
                if let Ok(Ok(mut sent)) = task.await {
                    let _ = sent.writer.abort().await;
                }
            });
        }
    }
}

/// The client's runtime. The last `Bucket` may be dropped on an async thread (a server
/// stopping), where a runtime may not wait for its threads: they are left to finish alone.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.as_ref().expect("a live runtime").spawn(f)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// One object the bucket holds, for fsck.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: SystemTime,
}

pub(super) fn io_error(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        other => io::Error::other(format!("the S3 bucket: {other}")),
    }
}

impl Bucket {
    /// Builds the client (credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`) and
    /// lists one key, so that a wrong endpoint, bucket or key stops the start with the store's
    /// own answer. Blocking.
    pub fn open(s: &S3Settings) -> Result<Bucket, String> {
        // reqwest runs TLS on the process's rustls provider: ring, which flare already has.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_virtual_hosted_style_request(!s.path_style)
            // SigV4 would otherwise hash every part's bytes once more to sign them (flare already
            // hashes the upload for its record); TLS, for a store reached over a network, keeps
            // them intact on the way.
            .with_unsigned_payload(true);
        for (var, set) in [
            (
                "AWS_ACCESS_KEY_ID",
                AmazonS3Builder::with_access_key_id as fn(AmazonS3Builder, String) -> _,
            ),
            (
                "AWS_SECRET_ACCESS_KEY",
                AmazonS3Builder::with_secret_access_key,
            ),
            ("AWS_SESSION_TOKEN", AmazonS3Builder::with_token),
        ] {
            if let Ok(value) = std::env::var(var) {
                builder = set(builder, value);
            }
        }
        if let Some(endpoint) = &s.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder
            .build()
            .map_err(|e| format!("[s3]: cannot set up the S3 client: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("flare-s3")
            .enable_all()
            .build()
            .map_err(|e| format!("[s3]: cannot start the S3 client's threads: {e}"))?;
        let bucket = Bucket {
            store: Arc::new(store),
            runtime: Arc::new(Runtime(Some(runtime))),
            name: s.bucket.clone(),
            public_base_url: s.public_base_url.clone(),
        };
        let probe = bucket.clone();
        bucket
            .block(async move { probe.store.list(None).next().await.transpose() })
            .map_err(|e| {
                format!(
                    "[s3]: cannot list bucket {:?} at {}: {e}",
                    s.bucket,
                    s.endpoint.as_deref().unwrap_or("AWS")
                )
            })?;
        Ok(bucket)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn store(&self) -> Arc<AmazonS3> {
        self.store.clone()
    }

    /// Starts `f` on the bucket's runtime.
    pub(super) fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(f)
    }

    /// Runs `f` on the bucket's runtime and waits for it: for blocking threads only.
    pub(super) fn block<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().expect("an S3 task panicked")
    }

    /// Runs `f` on the bucket's runtime, for async callers on any runtime.
    pub(super) async fn on_runtime<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        self.runtime.spawn(f).await.expect("an S3 task panicked")
    }

    /// Where the object of one upload lives: `upload` is its staged file's name, unique.
    pub fn object_key(video_id: &str, upload: &str, file_name: &str) -> String {
        format!(
            "{video_id}/composite/{}/{file_name}",
            upload.replace('/', "-")
        )
    }

    /// Where a poster or rendition of a video lives.
    pub fn derived_key(video_id: &str, file_name: &str) -> String {
        format!("{video_id}/derived/{file_name}")
    }

    /// `put_file`, for blocking threads.
    pub fn put_file_blocking(&self, path: &Path, key: &str) -> io::Result<ObjectMeta> {
        let (bucket, path, key) = (self.clone(), path.to_path_buf(), key.to_string());
        self.block(async move { bucket.put_file(&path, &key, None).await })
    }

    /// Copies `key` into a new local file at `path` (a media job's input), streamed.
    pub async fn get_to_file(&self, key: &str, path: &Path) -> io::Result<()> {
        let (store, key, path) = (self.store.clone(), key_of(key), path.to_path_buf());
        self.on_runtime(async move {
            use tokio::io::AsyncWriteExt;
            let mut body = store.get(&key).await.map_err(io_error)?.into_stream();
            let mut file = tokio::fs::File::create(&path).await?;
            while let Some(chunk) = body.next().await {
                file.write_all(&chunk.map_err(io_error)?).await?;
            }
            file.flush().await
        })
        .await
    }

    /// Starts writing `key` in parts while the bytes arrive (`BucketWriter::put`): memory stays
    /// at most `PART * (CONCURRENCY + 1)` plus a short queue, and the object appears whole at
    /// `finish`, or never. The bytes are hashed on the way, on the client's threads.
    pub fn writer(&self, key: &str) -> BucketWriter {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let (store, key) = (self.store.clone(), key_of(key));
        let task = self.runtime.spawn(async move {
            let mut writer = BufWriter::with_capacity(store.clone(), key.clone(), PART)
                .with_max_concurrency(CONCURRENCY);
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            let mut size = 0u64;
            while let Some(chunk) = rx.recv().await {
                digest.update(&chunk);
                size += chunk.len() as u64;
                if let Err(e) = writer.put(chunk).await {
                    let _ = writer.abort().await;
                    return Err(io_error(e));
                }
            }
            Ok::<_, io::Error>(Sent {
                writer,
                store,
                key,
                size,
                digest,
            })
        });
        BucketWriter {
            tx: Some(tx),
            task: Some(task),
            runtime: self.runtime.clone(),
        }
    }

    /// `public_base_url/KEY`, when public media is to be fetched from there.
    pub fn public_url(&self, key: &str) -> Option<String> {
        use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
        // What a URL path segment may not hold as it is.
        const SEGMENT: &AsciiSet = &CONTROLS
            .add(b' ')
            .add(b'"')
            .add(b'#')
            .add(b'%')
            .add(b'<')
            .add(b'>')
            .add(b'?')
            .add(b'`')
            .add(b'{')
            .add(b'}');
        let path: Vec<String> = key
            .split('/')
            .map(|part| utf8_percent_encode(part, SEGMENT).to_string())
            .collect();
        self.public_base_url
            .as_ref()
            .map(|base| format!("{base}/{}", path.join("/")))
    }

    /// Copies a local file to `key` in parts of `PART` bytes, `CONCURRENCY` at a time (memory
    /// flat in the file's size); the object appears whole when the last part is in, or not at
    /// all. With `expect_sha256`, the bytes are hashed on the way and the object is completed
    /// only when they match. Returns what a reader will see of it.
    pub async fn put_file(
        &self,
        path: &Path,
        key: &str,
        expect_sha256: Option<&str>,
    ) -> io::Result<ObjectMeta> {
        let (store, path, key) = (self.store.clone(), path.to_path_buf(), key_of(key));
        let expect = expect_sha256.map(str::to_string);
        self.on_runtime(async move {
            let mut file = tokio::fs::File::open(&path).await?;
            let mut writer = BufWriter::with_capacity(store.clone(), key.clone(), PART)
                .with_max_concurrency(CONCURRENCY);
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            let mut buf = vec![0u8; 1 << 20];
            let copied: io::Result<()> = async {
                loop {
                    let n = file.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    if expect.is_some() {
                        digest.update(&buf[..n]);
                    }
                    writer
                        .put(Bytes::copy_from_slice(&buf[..n]))
                        .await
                        .map_err(io_error)?;
                }
                match expect {
                    Some(want) if super::hex(digest.finish().as_ref()) != want => {
                        Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "{} does not hold the bytes recorded (sha256 {want})",
                                path.display()
                            ),
                        ))
                    }
                    _ => Ok(()),
                }
            }
            .await;
            use tokio::io::AsyncWriteExt;
            if let Err(e) = match copied {
                Ok(()) => writer.shutdown().await,
                Err(e) => Err(e),
            } {
                let _ = writer.abort().await;
                return Err(e);
            }
            store.head(&key).await.map(meta_of).map_err(io_error)
        })
        .await
    }

    /// `key`'s bytes as a blocking reader that can seek, fetched by ranged GETs of at least
    /// `READ_AHEAD` bytes: what the probe reads an object's headers through, without a copy
    /// of it on this machine. For blocking threads.
    pub fn reader_blocking(&self, key: &str, size: u64) -> BucketReader {
        BucketReader {
            bucket: self.clone(),
            key: key_of(key),
            size,
            pos: 0,
            buf: Bytes::new(),
            buf_at: 0,
        }
    }

    /// What a reader would see of `key`; `None` when there is no such object.
    pub async fn head(&self, key: &str) -> io::Result<Option<ObjectMeta>> {
        let (store, key) = (self.store.clone(), key_of(key));
        self.on_runtime(async move {
            match store.head(&key).await {
                Ok(m) => Ok(Some(meta_of(m))),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(io_error(e)),
            }
        })
        .await
    }

    /// `len` bytes of `key` from `start`, as one GET streamed through a short queue: memory
    /// stays flat however large the range and however slow the client. `None` when the object
    /// is gone (replaced since its record was read): the GET has begun before this returns.
    pub async fn read(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> io::Result<Option<impl Stream<Item = io::Result<Bytes>> + 'static>> {
        let (store, key) = (self.store.clone(), key_of(key));
        let options = GetOptions {
            range: (len > 0).then_some(GetRange::Bounded(start..start + len)),
            ..GetOptions::default()
        };
        let got = self
            .on_runtime(async move { store.get_opts(&key, options).await })
            .await;
        let mut body = match got {
            Ok(got) => got.into_stream(),
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(io_error(e)),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(GET_QUEUE);
        self.runtime.spawn(async move {
            // The client hands over small pieces; larger ones cost the response fewer hops.
            let mut pending = bytes::BytesMut::new();
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(c) => {
                        pending.extend_from_slice(&c);
                        if pending.len() >= GET_CHUNK
                            && tx.send(Ok(pending.split().freeze())).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(io_error(e))).await;
                        return;
                    }
                }
            }
            if !pending.is_empty() {
                let _ = tx.send(Ok(pending.freeze())).await;
            }
        });
        Ok(Some(stream_of(rx)))
    }

    /// The size of `key`, `None` when there is no such object. Blocking.
    pub fn size_blocking(&self, key: &str) -> io::Result<Option<u64>> {
        let (bucket, key) = (self.clone(), key.to_string());
        self.block(async move { bucket.head(&key).await.map(|m| m.map(|m| m.size)) })
    }

    /// Removes `key`; no error when it is already gone.
    pub async fn delete(&self, key: &str) -> io::Result<()> {
        let (store, key) = (self.store.clone(), key_of(key));
        self.on_runtime(async move {
            match store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(io_error(e)),
            }
        })
        .await
    }

    /// `delete`, for blocking threads.
    pub fn delete_blocking(&self, key: &str) -> io::Result<()> {
        let (bucket, key) = (self.clone(), key.to_string());
        self.block(async move { bucket.delete(&key).await })
    }

    /// Removes every object under `prefix/`. Blocking.
    pub fn delete_under(&self, prefix: &str) -> io::Result<()> {
        let (store, prefix) = (self.store.clone(), key_of(prefix));
        self.block(async move {
            let keys: Vec<_> = store
                .list(Some(&prefix))
                .map_ok(|m| m.location)
                .try_collect()
                .await
                .map_err(io_error)?;
            for key in keys {
                match store.delete(&key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(io_error(e)),
                }
            }
            Ok(())
        })
    }

    /// Every object in the bucket. Blocking.
    pub fn list(&self) -> io::Result<Vec<Listed>> {
        let store = self.store.clone();
        self.block(async move {
            store
                .list(None)
                .map_ok(|m| Listed {
                    key: m.location.to_string(),
                    size: m.size,
                    modified: UNIX_EPOCH
                        + Duration::from_secs(m.last_modified.timestamp().max(0) as u64),
                })
                .try_collect()
                .await
                .map_err(io_error)
        })
    }

    /// The SHA-256 of `key`'s bytes, read as one stream. Blocking.
    pub fn sha256_of(&self, key: &str) -> io::Result<String> {
        let (store, key) = (self.store.clone(), key_of(key));
        self.block(async move {
            let mut body = store.get(&key).await.map_err(io_error)?.into_stream();
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            while let Some(chunk) = body.next().await {
                digest.update(&chunk.map_err(io_error)?);
            }
            Ok(super::hex(digest.finish().as_ref()))
        })
    }

    /// Moves `key` to `lost+found/KEY` (a copy, then the original removed): nothing is
    /// deleted. Blocking.
    pub fn to_lost_found(&self, key: &str) -> io::Result<String> {
        let moved = format!("lost+found/{key}");
        let (store, from, to) = (self.store.clone(), key_of(key), key_of(&moved));
        self.block(async move {
            store.copy(&from, &to).await.map_err(io_error)?;
            store.delete(&from).await.map_err(io_error)
        })?;
        Ok(moved)
    }
}

/// Bytes fetched per ranged GET at least, by a `BucketReader`.
const READ_AHEAD: u64 = 256 << 10;

/// A blocking `Read + Seek` over an object (`Bucket::reader_blocking`).
pub struct BucketReader {
    bucket: Bucket,
    key: Key,
    size: u64,
    pos: u64,
    buf: Bytes,
    buf_at: u64,
}

impl io::Read for BucketReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || out.is_empty() {
            return Ok(0);
        }
        let held = self.buf_at..self.buf_at + self.buf.len() as u64;
        if !held.contains(&self.pos) {
            let len = (out.len() as u64).max(READ_AHEAD).min(self.size - self.pos);
            let (store, key, range) = (
                self.bucket.store.clone(),
                self.key.clone(),
                self.pos..self.pos + len,
            );
            self.buf = self
                .bucket
                .block(async move { store.get_range(&key, range).await })
                .map_err(io_error)?;
            self.buf_at = self.pos;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let from = (self.pos - self.buf_at) as usize;
        let n = out.len().min(self.buf.len() - from);
        out[..n].copy_from_slice(&self.buf[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Seek for BucketReader {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let pos = match to {
            io::SeekFrom::Start(n) => Some(n),
            io::SeekFrom::End(d) => self.size.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the object's start",
            )
        })?;
        Ok(self.pos)
    }
}

/// The key as flare names it. `Path::from` would percent-encode every byte outside ASCII (a
/// file named `Été.webm` would be stored as `%C3%89t%C3%A9.webm`); names flare accepted
/// (`names::check_path_name`) parse as they are.
pub(super) fn key_of(key: &str) -> Key {
    Key::parse(key).unwrap_or_else(|_| Key::from(key))
}

/// A receiver as a stream, without another crate for the adapter.
fn stream_of(
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
) -> impl Stream<Item = io::Result<Bytes>> + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

pub(super) fn meta_of(m: object_store::ObjectMeta) -> ObjectMeta {
    let secs = m.last_modified.timestamp().max(0) as u64;
    ObjectMeta {
        size: m.size,
        modified: UNIX_EPOCH + Duration::from_secs(secs),
        // Stores quote their entity tags; one that does not gets quotes, as HTTP wants.
        etag: match m.e_tag {
            Some(t) if t.starts_with('"') || t.starts_with("W/") => t,
            Some(t) => format!("\"{t}\""),
            None => format!("\"{:x}-{secs:x}\"", m.size),
        },
    }
}
