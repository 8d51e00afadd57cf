//! Streamed writes: the network side hands batches to a blocking thread that writes them to a
//! temp file in `tmp/` while a second thread hashes them; `finish` syncs and returns the staged
//! file. Dropping a writer or a staged file removes the file.

use bytes::Bytes;
use ring::digest;
use std::fs::{self, File};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{hex, Storage};
use crate::ids::random_id;

/// Bytes gathered from the network before one hand-off to the writer thread and one write:
/// large writes keep the disk streaming, and few hand-offs keep threads from ping-ponging.
const WRITE_BATCH: usize = 512 << 10;
/// Batches queued for the writer thread. With the one being gathered and the one being written,
/// an upload holds at most about 2 MiB, however large and however slow the disk.
const WRITE_QUEUE: usize = 2;

impl Storage {
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
            gather: Gather::default(),
        })
    }
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
    gather: Gather,
}

/// Chunks gathered from the network until about `WRITE_BATCH` bytes, for one hand-off to a
/// writer thread: shared by the PUT's writer and the resumable part files'.
#[derive(Default)]
pub(super) struct Gather {
    written: u64,
    batch: Vec<Bytes>,
    batched: usize,
}

impl Gather {
    /// Adds a chunk; a full batch comes back, to be sent.
    pub(super) fn push(&mut self, chunk: Bytes) -> Option<Vec<Bytes>> {
        self.written += chunk.len() as u64;
        self.batched += chunk.len();
        self.batch.push(chunk);
        (self.batched >= WRITE_BATCH).then(|| self.rest())
    }

    /// What is gathered, however little.
    pub(super) fn rest(&mut self) -> Vec<Bytes> {
        self.batched = 0;
        std::mem::take(&mut self.batch)
    }

    /// Bytes pushed so far.
    pub(super) fn written(&self) -> u64 {
        self.written
    }
}

impl ObjectWriter {
    pub fn written(&self) -> u64 {
        self.gather.written()
    }

    pub async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        match self.gather.push(chunk) {
            Some(batch) => self.send_batch(batch).await,
            None => Ok(()),
        }
    }

    async fn send_batch(&mut self, batch: Vec<Bytes>) -> io::Result<()> {
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
        let rest = self.gather.rest();
        if !rest.is_empty() {
            self.send_batch(rest).await?;
        }
        let tx = self.tx.take().expect("finish twice");
        // A failed send means the thread already ended; join() reports why.
        let _ = tx.send(Msg::Finish).await;
        drop(tx);
        self.join().await
    }

    /// Stops the write and waits until its temp file is gone.
    pub(crate) async fn abort(mut self) {
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
    pub(crate) fn temp_name(&self) -> String {
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
        crate::metrics::timed(&crate::metrics::METRICS.disk_sync_seconds, || {
            file.sync_all()
        })?;
    }
    let digest = hasher
        .join()
        .map_err(|_| io::Error::other("the upload's hasher panicked"))?;
    Ok((size, hex(digest.as_ref())))
}

/// Batches (of `WRITE_BATCH` bytes) the hasher may fall behind the writes.
const HASH_QUEUE: usize = 1;

pub(super) fn write_all_vectored(file: &mut File, chunks: &[Bytes]) -> io::Result<()> {
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
