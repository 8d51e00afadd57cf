//! Objects on disk: where each lives, atomic streamed writes, and chunked reads.
//!
//! Layout: `DATA_DIR/objects/VIDEO_ID/composite/FILE`, with uploads in progress under
//! `DATA_DIR/tmp/` (the same file system, so the final step is a `rename`). An object is only
//! ever replaced whole by that rename, never written in place, so an open reader keeps the bytes
//! it started with and a new reader gets the new ones.
//!
//! This is the seam for other object stores: the rest of flare sees `ObjectKey`, `ObjectWriter`,
//! `Staged`, `ObjectMeta` and a byte stream, never a path.

use bytes::Bytes;
use futures_util::Stream;
use ring::digest;
use ring::rand::SystemRandom;
use std::fs::{self, File, Metadata};
use std::future::Future;
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ids::random_id;
use crate::sys;

/// Bytes gathered from the network before one hand-off to the writer thread and one write:
/// large writes keep the disk streaming, and few hand-offs keep threads from ping-ponging.
const WRITE_BATCH: usize = 512 << 10;
/// Batches queued for the writer thread. With the one being gathered and the one being written,
/// an upload holds at most about 2 MiB, however large and however slow the disk.
const WRITE_QUEUE: usize = 2;
/// Smallest and largest read when serving. A response of at most `MAX_READ` (a player's seek)
/// is read at once. A longer one starts small and reads large only once the client has shown
/// it keeps up (and drops back when it stalls), because the HTTP layer copies each chunk into the connection's write buffer and
/// a slow viewer would pin that copy for seconds.
const FIRST_READ: usize = 64 << 10;
const MAX_READ: usize = 1 << 20;
/// Delivered before reads may grow: about what a loopback socket buffer swallows at once, so a
/// slow client cannot pass for a fast one before it has had to keep up.
const PROVEN_BYTES: u64 = 4 << 20;

/// The address of an object. Both names must have passed `names::check_path_name`.
#[derive(Debug, Clone)]
pub struct ObjectKey {
    pub video_id: String,
    pub file_name: String,
}

/// What a reader needs to know about a stored object.
#[derive(Debug, Clone)]
pub struct ObjectMeta {
    pub size: u64,
    /// Whole seconds, as `Last-Modified` carries.
    pub modified: SystemTime,
    /// A strong entity tag: changes whenever the object is replaced.
    pub etag: String,
}

impl ObjectMeta {
    fn of(meta: &Metadata) -> ObjectMeta {
        let nanos = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
        ObjectMeta {
            size: meta.len(),
            modified: UNIX_EPOCH + std::time::Duration::from_secs(meta.mtime().max(0) as u64),
            etag: format!("\"{:x}-{:x}-{:x}\"", meta.ino(), nanos, meta.len()),
        }
    }
}

pub struct Storage {
    objects: PathBuf,
    tmp: PathBuf,
    lost_found: PathBuf,
    sync: bool,
    rng: SystemRandom,
}

impl Storage {
    /// Creates `objects/` and `tmp/` under `data_dir` if needed. Blocking.
    pub fn open(data_dir: &Path, sync: bool) -> io::Result<Storage> {
        let objects = data_dir.join("objects");
        let tmp = data_dir.join("tmp");
        create_private_dir_all(&objects)?;
        create_private_dir_all(&tmp)?;
        Ok(Storage {
            objects,
            tmp,
            lost_found: data_dir.join("lost+found"),
            sync,
            rng: SystemRandom::new(),
        })
    }

    /// Removes what a stopped server left in `tmp/`: unfinished uploads and half-removed
    /// video folders. Only call before serving.
    pub fn sweep_temp(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else {
                fs::remove_file(entry.path())?;
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// Removes every object of a video. The folder is first renamed into `tmp/` (one atomic
    /// step: its public URLs stop at once), then deleted. Blocking.
    pub fn remove_video(&self, video_id: &str) -> io::Result<()> {
        let doomed = self
            .tmp
            .join(format!("deleted-{}", random_id(&self.rng, "", 9)));
        match fs::rename(self.objects.join(video_id), &doomed) {
            Ok(()) => fs::remove_dir_all(&doomed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn object_path(&self, key: &ObjectKey) -> PathBuf {
        self.objects
            .join(&key.video_id)
            .join("composite")
            .join(&key.file_name)
    }

    /// Starts a streamed write to a new temp file. The file is created and written on a
    /// blocking thread; the caller feeds it with `ObjectWriter::write`.
    pub async fn writer(&self) -> io::Result<ObjectWriter> {
        let path = self.tmp.join(random_id(&self.rng, "", 12) + ".part");
        let sync = self.sync;
        // Created before the first byte is accepted, so a full disk or a permission problem is
        // reported before the body is read, and the file exists whenever a writer does.
        let (file, temp) = tokio::task::spawn_blocking(move || {
            let file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            Ok::<_, io::Error>((file, TempFile { path: Some(path) }))
        })
        .await
        .map_err(io::Error::other)??;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let task = tokio::task::spawn_blocking(move || write_loop(rx, file, temp, sync));
        Ok(ObjectWriter {
            tx: Some(tx),
            task: Some(task),
            written: 0,
            batch: Vec::with_capacity(64),
            batched: 0,
        })
    }

    /// Moves a staged upload (`tmp/TEMP_NAME`) to its object's place, replacing any previous
    /// object of that name whole, then removes the video's previous object when it had another
    /// name (`replaces`): one video has one object. Called after the record naming it was
    /// committed, and again at start-up for any publication a crash interrupted, so it may find
    /// the rename already done. Blocking; the caller serialises publications.
    pub fn publish(
        &self,
        temp_name: &str,
        key: &ObjectKey,
        replaces: Option<&str>,
    ) -> io::Result<()> {
        let dir = self.objects.join(&key.video_id).join("composite");
        create_private_dir_all(&dir)?;
        let staged = self.tmp.join(temp_name);
        let previous = [Some(key.file_name.as_str()), replaces]
            .into_iter()
            .flatten()
            .filter_map(|name| fs::metadata(dir.join(name)).ok())
            .map(|m| m.mtime())
            .max();
        if let (Some(previous), Ok(file)) = (previous, File::options().write(true).open(&staged)) {
            // `Last-Modified` carries whole seconds: a replacement gets a later second than what
            // it replaces, so a date names one version and `If-Range` on it never splices two.
            if file.metadata()?.mtime() <= previous {
                let later = UNIX_EPOCH + std::time::Duration::from_secs(previous.max(0) as u64 + 1);
                file.set_modified(later)?;
            }
        }
        match fs::rename(&staged, self.object_path(key)) {
            Ok(()) => {}
            // Already published by an earlier call: the temp name is never reused.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Some(old) = replaces.filter(|old| *old != key.file_name) {
            match fs::remove_file(dir.join(old)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        if self.sync {
            // The rename is durable once the directories holding it are.
            for d in [&dir, dir.parent().unwrap_or(&dir), &self.objects] {
                File::open(d)?.sync_all()?;
            }
        }
        Ok(())
    }

    /// Creates, syncs and removes a small file in `tmp/`: the folder takes writes. Blocking.
    pub fn probe_writable(&self) -> io::Result<()> {
        let path = self
            .tmp
            .join(format!("ready-{}.probe", random_id(&self.rng, "", 6)));
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(b"ok").and_then(|()| f.sync_data()));
        let _ = fs::remove_file(&path);
        written
    }

    /// Removes `tmp/NAME`. Blocking.
    pub fn remove_temp(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.tmp.join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Whether `tmp/NAME` exists. Blocking.
    pub fn temp_exists(&self, name: &str) -> bool {
        self.tmp.join(name).is_file()
    }

    /// Removes one object file. Blocking.
    pub fn remove_object(&self, key: &ObjectKey) -> io::Result<()> {
        match fs::remove_file(self.object_path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Opens an object for reading; `None` when there is none. Blocking.
    pub fn open_object(&self, key: &ObjectKey) -> io::Result<Option<(File, ObjectMeta)>> {
        match File::open(self.object_path(key)) {
            Ok(file) => {
                let meta = file.metadata()?;
                if !meta.is_file() {
                    return Ok(None);
                }
                Ok(Some((file, ObjectMeta::of(&meta))))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One file found under `objects/`, for `fsck`.
#[derive(Debug, Clone)]
pub struct Found {
    /// Relative to `objects/`.
    pub path: PathBuf,
    /// Set when the file sits where an object belongs: `VIDEO_ID/composite/FILE`.
    pub key: Option<ObjectKey>,
    pub size: u64,
}

/// A file in `tmp/`, for `fsck`.
#[derive(Debug, Clone)]
pub struct TempEntry {
    pub name: String,
    pub size: u64,
    pub age: std::time::Duration,
}

impl Storage {
    /// Bytes an unprivileged writer can still put on the file system holding the data. Blocking.
    pub fn free_bytes(&self) -> io::Result<u64> {
        crate::sys::free_bytes(&self.objects)
    }

    /// Every file under `objects/`. Blocking.
    pub fn inventory(&self) -> io::Result<Vec<Found>> {
        let mut out = Vec::new();
        let mut stack = vec![self.objects.clone()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    stack.push(entry.path());
                    continue;
                }
                let rel = entry
                    .path()
                    .strip_prefix(&self.objects)
                    .unwrap_or(&entry.path())
                    .to_path_buf();
                let parts: Vec<String> = rel
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                let key = match parts.as_slice() {
                    [video_id, composite, file_name] if composite == "composite" => {
                        Some(ObjectKey {
                            video_id: video_id.clone(),
                            file_name: file_name.clone(),
                        })
                    }
                    _ => None,
                };
                out.push(Found {
                    path: rel,
                    key,
                    size: entry.metadata()?.len(),
                });
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Size of an object, `None` when it is missing. Blocking.
    pub fn size_of(&self, key: &ObjectKey) -> io::Result<Option<u64>> {
        match fs::metadata(self.object_path(key)) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The SHA-256 of an object, read whole. Blocking.
    pub fn sha256_of(&self, key: &ObjectKey) -> io::Result<String> {
        let mut file = File::open(self.object_path(key))?;
        let mut hasher = digest::Context::new(&digest::SHA256);
        let mut buf = vec![0u8; MAX_READ];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hex(hasher.finish().as_ref()))
    }

    /// Files in `tmp/` and how long since each was written. Blocking.
    pub fn temp_files(&self) -> io::Result<Vec<TempEntry>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            out.push(TempEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                size: meta.len(),
                age: meta.modified()?.elapsed().unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Moves a file from `objects/` (or `tmp/` when `from_temp`) into `lost+found/`, keeping its
    /// relative path and never overwriting. Returns where it went, relative to the data folder.
    pub fn to_lost_found(&self, rel: &Path, from_temp: bool) -> io::Result<PathBuf> {
        let (base, sub) = if from_temp {
            (&self.tmp, "tmp")
        } else {
            (&self.objects, "objects")
        };
        let stamp = crate::time::iso8601(crate::time::now_ms()).replace(':', "-");
        let dest_rel = Path::new("lost+found")
            .join(format!("{stamp}-{sub}"))
            .join(rel);
        let dest = self.lost_found.parent().expect("data dir").join(&dest_rel);
        create_private_dir_all(dest.parent().expect("has a parent"))?;
        if dest.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "already in lost+found",
            ));
        }
        fs::rename(base.join(rel), &dest)?;
        Ok(dest_rel)
    }
}

/// Creates a folder and its missing parents readable by flare's user alone (0700): on a shared
/// machine, other users must not read the objects of password-protected videos.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

enum Msg {
    /// A batch of chunks, about `WRITE_BATCH` bytes: one hand-off per half megabyte, not per packet.
    Data(Vec<Bytes>),
    Finish,
}

/// The network side of a streamed write. Dropping it without `finish` aborts the write and
/// removes the temp file.
pub struct ObjectWriter {
    tx: Option<mpsc::Sender<Msg>>,
    task: Option<JoinHandle<io::Result<Staged>>>,
    written: u64,
    batch: Vec<Bytes>,
    batched: usize,
}

impl ObjectWriter {
    pub fn written(&self) -> u64 {
        self.written
    }

    pub async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        self.written += chunk.len() as u64;
        self.batched += chunk.len();
        self.batch.push(chunk);
        if self.batched >= WRITE_BATCH {
            self.send_batch().await?;
        }
        Ok(())
    }

    async fn send_batch(&mut self) -> io::Result<()> {
        let batch = std::mem::take(&mut self.batch);
        self.batched = 0;
        let tx = self.tx.as_ref().expect("write after finish");
        if tx.send(Msg::Data(batch)).await.is_err() {
            // The writer thread stopped early, which only happens on an IO error: report it.
            return Err(self
                .join()
                .await
                .err()
                .unwrap_or_else(|| io::Error::other("writer stopped")));
        }
        Ok(())
    }

    /// Flushes, syncs (unless turned off) and returns the staged file with its size and digest.
    pub async fn finish(mut self) -> io::Result<Staged> {
        if !self.batch.is_empty() {
            self.send_batch().await?;
        }
        let tx = self.tx.take().expect("finish twice");
        // A failed send means the thread already ended; join() reports why.
        let _ = tx.send(Msg::Finish).await;
        drop(tx);
        self.join().await
    }

    /// Stops the write and waits until its temp file is gone.
    pub async fn abort(mut self) {
        let _ = self.join().await;
    }

    async fn join(&mut self) -> io::Result<Staged> {
        self.tx = None;
        // Already joined when a write failed: the thread is gone, and its file with it.
        let Some(task) = self.task.take() else {
            return Err(io::Error::other("the write already ended"));
        };
        task.await.map_err(io::Error::other)?
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        // Closing the channel without `Finish` tells the thread to abort and remove its file.
        self.tx = None;
    }
}

/// A complete temp file, synced, waiting to be committed. Dropping it removes the file.
pub struct Staged {
    temp: TempFile,
    pub size: u64,
    pub sha256: String,
}

impl Staged {
    /// Its name in `tmp/`, as a publication records it.
    pub fn temp_name(&self) -> String {
        self.temp
            .path
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Keeps the file: its record now names it, and `Storage::publish` moves it into place.
    pub fn keep(mut self) {
        self.temp.path = None;
    }
}

/// Removes its file on drop unless the path was taken by a successful rename.
struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    /// Removes the file now, on this (blocking) thread, so that a refusal is answered only once
    /// the space is free again.
    fn remove_now(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Off the async executor when there is one; a leftover is swept at the next start.
            let remove = move || {
                let _ = fs::remove_file(path);
            };
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => drop(handle.spawn_blocking(remove)),
                Err(_) => remove(),
            }
        }
    }
}

/// The writer thread: writes in large vectored batches and syncs at the end, while a second
/// thread hashes the same batches. SHA-256 was a fifth of the PUT path's CPU time
/// (`bench/profile.sh put`); beside the writes, it runs while they wait on the disk.
fn write_loop(
    rx: mpsc::Receiver<Msg>,
    file: File,
    mut temp: TempFile,
    sync: bool,
) -> io::Result<Staged> {
    match write_and_hash(rx, file, sync) {
        Ok((size, sha256)) => Ok(Staged { temp, size, sha256 }),
        Err(e) => {
            // The file is closed by now (it was moved into write_and_hash), so removing it
            // frees its space at once.
            temp.remove_now();
            Err(e)
        }
    }
}

fn write_and_hash(
    mut rx: mpsc::Receiver<Msg>,
    mut file: File,
    sync: bool,
) -> io::Result<(u64, String)> {
    let (to_hasher, batches) = std::sync::mpsc::sync_channel::<Vec<Bytes>>(HASH_QUEUE);
    let hasher = std::thread::Builder::new()
        .name("flare-upload-hash".into())
        .spawn(move || {
            let mut hasher = digest::Context::new(&digest::SHA256);
            for batch in batches {
                for chunk in &batch {
                    hasher.update(chunk);
                }
            }
            hasher.finish()
        })?;
    let mut size = 0u64;
    loop {
        match rx.blocking_recv() {
            Some(Msg::Data(batch)) => {
                size += batch.iter().map(|c| c.len() as u64).sum::<u64>();
                // Clones of `Bytes` share the buffers: nothing is copied for the hasher.
                if to_hasher.send(batch.clone()).is_err() {
                    return Err(io::Error::other("the upload's hasher stopped"));
                }
                write_all_vectored(&mut file, &batch)?;
            }
            Some(Msg::Finish) => break,
            None => return Err(io::Error::new(io::ErrorKind::Interrupted, "upload aborted")),
        }
    }
    drop(to_hasher);
    if sync {
        file.sync_all()?;
    }
    let digest = hasher
        .join()
        .map_err(|_| io::Error::other("the upload's hasher panicked"))?;
    Ok((size, hex(digest.as_ref())))
}

/// Batches (of `WRITE_BATCH` bytes) the hasher may fall behind the writes.
const HASH_QUEUE: usize = 1;

fn write_all_vectored(file: &mut File, chunks: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Streams `len` bytes of `file` from `offset`. What the page cache holds is read on the
/// calling thread (`read_cached`), as nginx does; a read that needs the disk goes to a blocking
/// thread.
///
/// The read size adapts to the reader: a client that takes each chunk at once gets larger reads
/// (up to `MAX_READ`, for disk and wire speed), one that drains slowly gets smaller ones (down to
/// `FIRST_READ`), so a crowd of slow viewers does not hold a megabyte each.
pub struct FileChunks {
    file: Arc<File>,
    /// What is left of the last read, handed out `slice` bytes at a time.
    pending: Bytes,
    slice: usize,
    reading: Option<JoinHandle<io::Result<Bytes>>>,
    /// Where the next read starts.
    offset: u64,
    remaining: u64,
    next_read: usize,
    delivered: Option<std::time::Instant>,
    sent: u64,
    /// Holds one of the `MAX_BIG_STREAMS` places for large reads.
    big: bool,
}

/// Streams reading large chunks at once, across the process: slow clients fool any
/// per-stream measure for a while (the kernel's socket buffer swallows megabytes), so the
/// number of streams that may hold a megabyte each is bounded outright.
const MAX_BIG_STREAMS: usize = 16;
static BIG_STREAMS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl FileChunks {
    fn claim_big(&mut self) -> bool {
        use std::sync::atomic::Ordering;
        self.big = BIG_STREAMS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_BIG_STREAMS).then_some(n + 1)
            })
            .is_ok();
        self.big
    }

    fn release_big(&mut self) {
        if std::mem::take(&mut self.big) {
            BIG_STREAMS.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

impl Drop for FileChunks {
    fn drop(&mut self) {
        self.release_big();
    }
}

/// Largest piece handed to the HTTP layer at once. actix-web copies each piece into the
/// connection's write buffer, and reallocates that buffer once it has grown past 128 KiB: a
/// megabyte handed over whole cost a fresh, zeroed, page-faulted allocation on every response
/// (`bench/profile.sh range`). Pieces are slices of one read, so no byte is copied to make them.
const SLICE: usize = 64 << 10;

/// A reader that takes longer than this to come back for more is slow: back to small reads.
const SLOW_READER: std::time::Duration = std::time::Duration::from_millis(50);

impl FileChunks {
    pub fn new(file: File, offset: u64, len: u64) -> FileChunks {
        FileChunks {
            file: Arc::new(file),
            pending: Bytes::new(),
            slice: if len <= MAX_READ as u64 {
                SLICE
            } else {
                usize::MAX
            },
            reading: None,
            offset,
            remaining: len,
            next_read: if len <= MAX_READ as u64 {
                MAX_READ
            } else {
                FIRST_READ
            },
            delivered: None,
            sent: 0,
            big: false,
        }
    }
}

impl Stream for FileChunks {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if !this.pending.is_empty() {
            let n = this.pending.len().min(this.slice);
            return Poll::Ready(Some(Ok(this.pending.split_to(n))));
        }
        if this.reading.is_none() {
            if this.remaining == 0 {
                return Poll::Ready(None);
            }
            if let Some(at) = this.delivered {
                if at.elapsed() > SLOW_READER {
                    this.next_read = FIRST_READ;
                    this.release_big();
                } else if this.sent >= PROVEN_BYTES && (this.big || this.claim_big()) {
                    this.next_read = (this.next_read * 2).min(MAX_READ);
                }
            }
            let n = this.remaining.min(this.next_read as u64) as usize;
            if let Some(bytes) = sys::read_cached(&this.file, this.offset, n).map(Bytes::from) {
                return Poll::Ready(Some(Ok(this.hand_out(bytes))));
            }
            let (file, offset) = (this.file.clone(), this.offset);
            this.reading = Some(tokio::task::spawn_blocking(move || {
                read_waiting(&file, offset, n)
            }));
        }
        let handle = this.reading.as_mut().expect("set above");
        match Pin::new(handle).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(joined) => {
                this.reading = None;
                match joined {
                    Ok(Ok(bytes)) => Poll::Ready(Some(Ok(this.hand_out(bytes)))),
                    Ok(Err(e)) => Poll::Ready(Some(Err(e))),
                    Err(e) => Poll::Ready(Some(Err(io::Error::other(e)))),
                }
            }
        }
    }
}

impl FileChunks {
    /// Accounts for a read and returns its first piece; the rest waits in `pending`.
    fn hand_out(&mut self, mut bytes: Bytes) -> Bytes {
        let n = bytes.len() as u64;
        self.offset += n;
        self.remaining -= n;
        self.sent += n;
        self.delivered = Some(std::time::Instant::now());
        let first = bytes.split_to(bytes.len().min(self.slice));
        self.pending = bytes;
        first
    }
}

/// Which call finds out whether pages are in the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheProbe {
    /// `cachestat(2)`, Linux 6.5 and later: counts pages without mapping anything.
    Cachestat,
    /// `mmap` + `mincore(2)` + `munmap`, on every Linux: maps the range without touching it.
    Mincore,
}

/// The probe this kernel allows, found once per process. `FLARE_FAULTS=no-cachestat` makes it
/// take the older kernels' way, for the tests.
pub fn cache_probe() -> Option<CacheProbe> {
    static PROBE: std::sync::OnceLock<Option<CacheProbe>> = std::sync::OnceLock::new();
    *PROBE.get_or_init(|| {
        let file = File::open("/proc/self/exe").ok()?;
        if !crate::faults::armed_at("no-cachestat") && sys::cachestat(&file, 0, 1).is_some() {
            return Some(CacheProbe::Cachestat);
        }
        sys::mincore(&file, 0, 1).map(|_| CacheProbe::Mincore)
    })
}

/// Whether the page cache holds every page of `len` bytes at `offset`, without reading or
/// faulting any of them. `None` when the kernel allows no probe (a seccomp filter).
pub fn is_cached(file: &File, offset: u64, len: u64) -> Option<bool> {
    match cache_probe()? {
        CacheProbe::Cachestat => sys::cachestat(file, offset, len),
        CacheProbe::Mincore => sys::mincore(file, offset, len),
    }
}

/// Reads `len` bytes at `offset` into the page cache, waiting for the disk. Blocking.
pub fn load_into_cache(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let n = usize::try_from(len).map_err(io::Error::other)?;
    read_waiting(file, offset, n).map(drop)
}

/// Exactly `n` bytes at `offset`, waiting for the disk if need be. Blocking.
fn read_waiting(file: &File, offset: u64, n: usize) -> io::Result<Bytes> {
    use std::io::Read;
    // read_to_end fills spare capacity without zeroing it first.
    let mut buf = Vec::with_capacity(n);
    PositionedReader { file, offset }
        .take(n as u64)
        .read_to_end(&mut buf)?;
    if buf.len() < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Bytes::from(buf))
}

/// `Read` at an explicit position, so a file shared between reads never moves its offset.
struct PositionedReader<'a> {
    file: &'a File,
    offset: u64,
}

impl io::Read for PositionedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn key() -> ObjectKey {
        ObjectKey {
            video_id: "vid".into(),
            file_name: "a.mp4".into(),
        }
    }

    fn publish(storage: &Storage, staged: Staged) -> u64 {
        let (name, size) = (staged.temp_name(), staged.size);
        staged.keep();
        storage.publish(&name, &key(), None).unwrap();
        size
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_streamed_write_lands_whole_and_a_dropped_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), true).unwrap();
        let mut w = storage.writer().await.unwrap();
        w.write(Bytes::from_static(b"hello ")).await.unwrap();
        w.write(Bytes::from(vec![b'x'; 3 << 20])).await.unwrap();
        let staged = w.finish().await.unwrap();
        assert_eq!(staged.size, 6 + (3 << 20));
        let size = publish(&storage, staged);
        let path = dir.path().join("objects/vid/composite/a.mp4");
        assert_eq!(fs::metadata(&path).unwrap().len(), size);

        let mut aborted = storage.writer().await.unwrap();
        aborted.write(Bytes::from_static(b"partial")).await.unwrap();
        drop(aborted);
        // The abort is noticed by the writer thread; give it a moment, bounded.
        for _ in 0..100 {
            if fs::read_dir(dir.path().join("tmp"))
                .unwrap()
                .next()
                .is_none()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(fs::read_dir(dir.path().join("tmp"))
            .unwrap()
            .next()
            .is_none());
        assert_eq!(fs::metadata(&path).unwrap().len(), size);

        let (file, meta) = storage.open_object(&key()).unwrap().unwrap();
        let chunks: Vec<Bytes> = FileChunks::new(file, 3, meta.size - 3)
            .map(|c| c.unwrap())
            .collect()
            .await;
        let all: Vec<u8> = chunks.concat();
        assert_eq!(&all[..3], b"lo ");
        assert_eq!(all.len() as u64, meta.size - 3);
    }

    #[test]
    fn both_probes_see_a_file_just_written_as_cached() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, vec![7u8; 3 << 20]).unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(sys::mincore(&file, 4096 * 3 + 17, 1 << 20), Some(true));
        assert_eq!(sys::mincore(&file, 0, 3 << 20), Some(true));
        if let Some(seen) = sys::cachestat(&file, 0, 3 << 20) {
            assert!(seen);
        }
        assert!(cache_probe().is_some());
        // Dropped from the cache, it is seen as not cached.
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .sync_all()
            .unwrap();
        sys::drop_from_cache(&file);
        assert_eq!(sys::mincore(&file, 0, 3 << 20), Some(false));
    }

    #[test]
    fn reads_come_back_exact_from_the_cache_or_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        // Just written, so cached: the no-wait read answers, and never past the end.
        let cached = sys::read_cached(&file, 1000, 5000).expect("a cached read");
        assert_eq!(&cached[..], &bytes[1000..6000]);
        let tail = sys::read_cached(&file, 299_990, 64).expect("a cached read");
        assert_eq!(&tail[..], &bytes[299_990..]);
        assert!(
            sys::read_cached(&file, 300_000, 64).is_none(),
            "past the end"
        );
        // The waiting read, which the no-wait one falls back to.
        assert_eq!(
            &read_waiting(&file, 7, 200_000).unwrap()[..],
            &bytes[7..200_007]
        );
        let short = read_waiting(&file, 299_990, 64).unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_seek_sized_range_comes_back_exact_in_small_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), false).unwrap();
        let bytes: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
        let mut w = storage.writer().await.unwrap();
        w.write(Bytes::from(bytes.clone())).await.unwrap();
        publish(&storage, w.finish().await.unwrap());
        let (file, _) = storage.open_object(&key()).unwrap().unwrap();
        let (start, len) = (1000, MAX_READ - 7);
        let pieces: Vec<Bytes> = FileChunks::new(file, start as u64, len as u64)
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert!(
            pieces.iter().all(|p| p.len() <= SLICE),
            "a piece over {SLICE}"
        );
        assert_eq!(pieces.len(), len.div_ceil(SLICE));
        assert_eq!(pieces.concat(), &bytes[start..start + len]);
    }
}
