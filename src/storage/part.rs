//! Resumable uploads' part files: `tmp/resumable/UPLOAD_ID.part`, one per session, on the same
//! file system as `objects/`, so that completion is the same rename as a PUT's. A request appends
//! at the session's durable offset (anything past it, left by a crash or a refused chunk, is cut
//! off first) and syncs before the new offset is recorded; an interrupted request keeps what
//! reached the disk.

use bytes::Bytes;
use ring::digest;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::read::MAX_READ;
use super::write::{write_all_vectored, Gather};
use super::Storage;

/// The folder in `tmp/` the start-up sweep leaves alone: sessions outlive restarts.
pub(crate) const PARTS_DIR: &str = "resumable";

impl Storage {
    /// `resumable/UPLOAD_ID.part`: the name in `tmp/` a publication records.
    pub(crate) fn part_name(upload_id: &str) -> String {
        format!("{PARTS_DIR}/{upload_id}.part")
    }

    /// The part file's length, `None` when there is none. Blocking.
    pub(crate) fn part_len(&self, upload_id: &str) -> io::Result<Option<u64>> {
        match fs::metadata(self.tmp.join(Self::part_name(upload_id))) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes a part file (gone already is fine). Blocking.
    pub(crate) fn remove_part(&self, upload_id: &str) -> io::Result<()> {
        self.remove_temp(&Self::part_name(upload_id))
    }

    /// Removes a resumable session's bytes: its part file or, with a bucket and `stored` (its
    /// row's record of them there), its multipart upload and tails. Blocking.
    pub(crate) fn remove_session(
        &self,
        video_id: &str,
        upload_id: &str,
        stored: Option<&str>,
    ) -> io::Result<()> {
        match (self.bucket(), stored) {
            (Some(bucket), Some(stored)) => {
                bucket.end_session(stored, &super::tails_prefix(video_id, upload_id))
            }
            _ => self.remove_part(upload_id),
        }
    }

    /// The upload ids that have a part file. Blocking.
    pub(crate) fn part_ids(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.tmp.join(PARTS_DIR))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".part") {
                out.push(id.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// The SHA-256 state after the first `len` bytes of a part file: after a restart, the one
    /// time a part is read back. Blocking.
    pub(crate) fn rehash_part(&self, upload_id: &str, len: u64) -> io::Result<digest::Context> {
        let file = File::open(self.tmp.join(Self::part_name(upload_id)))?;
        let mut hasher = digest::Context::new(&digest::SHA256);
        let mut buf = vec![0u8; MAX_READ];
        let mut rest = file.take(len);
        loop {
            let n = rest.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        if rest.limit() > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the part file is shorter than its recorded offset",
            ));
        }
        Ok(hasher)
    }

    /// Starts appending to a part file at `offset` (created when missing), carrying the whole
    /// upload's SHA-256 state. The file is opened before the body is read.
    pub(crate) async fn append_part(
        &self,
        upload_id: &str,
        offset: u64,
        hasher: digest::Context,
    ) -> io::Result<PartWriter> {
        let path = self.tmp.join(Self::part_name(upload_id));
        let sync = self.sync;
        let file = tokio::task::spawn_blocking(move || {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)?;
            // Whatever lies past the durable offset was never acknowledged: drop it.
            file.set_len(offset)?;
            file.seek(SeekFrom::Start(offset))?;
            Ok::<_, io::Error>(file)
        })
        .await
        .map_err(io::Error::other)??;
        let (tx, rx) = mpsc::channel(2);
        let task = tokio::task::spawn_blocking(move || append_loop(rx, file, hasher, sync));
        Ok(PartWriter {
            tx: Some(tx),
            task,
            gather: Gather::default(),
        })
    }
}

/// What an append made durable.
pub(crate) struct Appended {
    /// Bytes this request added.
    pub written: u64,
    /// The whole upload's SHA-256 state after them.
    pub hasher: digest::Context,
}

enum Msg {
    Data(Vec<Bytes>),
    /// Sync what is written and report it, with the digest state after it.
    Checkpoint(oneshot::Sender<io::Result<Appended>>),
}

/// The network side of an append. `finish` syncs and reports; dropping it also ends the write
/// (its bytes stay on disk, unrecorded, and the next append cuts them off).
pub(crate) struct PartWriter {
    tx: Option<mpsc::Sender<Msg>>,
    task: JoinHandle<io::Result<Appended>>,
    gather: Gather,
}

impl PartWriter {
    pub(crate) fn written(&self) -> u64 {
        self.gather.written()
    }

    pub(crate) async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        match self.gather.push(chunk) {
            Some(batch) => self.send_batch(batch).await,
            None => Ok(()),
        }
    }

    async fn send_batch(&mut self, batch: Vec<Bytes>) -> io::Result<()> {
        let tx = self.tx.as_ref().expect("write after finish");
        if tx.send(Msg::Data(batch)).await.is_err() {
            // The thread ended early, which only an IO error does: finish() reports it.
            return Err(io::Error::other("the part file's writer stopped"));
        }
        Ok(())
    }

    /// Makes what was written so far durable and says how much it is (this request's bytes)
    /// and the digest state after it, so that it can be recorded while the request goes on.
    pub(crate) async fn checkpoint(&mut self) -> io::Result<Appended> {
        let rest = self.gather.rest();
        if !rest.is_empty() {
            self.send_batch(rest).await?;
        }
        let (reply, answer) = oneshot::channel();
        let tx = self.tx.as_ref().expect("checkpoint after finish");
        if tx.send(Msg::Checkpoint(reply)).await.is_err() {
            return Err(io::Error::other("the part file's writer stopped"));
        }
        answer
            .await
            .map_err(|_| io::Error::other("the part file's writer stopped"))?
    }

    /// Stops without recording anything, once the thread has stopped writing (so a next append
    /// never races it). Its bytes lie past the recorded offset and are cut off by the next one.
    pub(crate) async fn abandon(mut self) {
        self.gather.rest();
        self.tx = None;
        let _ = (&mut self.task).await;
    }

    /// Writes what is batched, syncs, and returns what is now durable: everything written when
    /// `Ok`.
    pub(crate) async fn finish(mut self) -> io::Result<Appended> {
        let rest = self.gather.rest();
        if !rest.is_empty() {
            // An error here is the thread's, reported by the join below.
            let _ = self.send_batch(rest).await;
        }
        self.tx = None;
        (&mut self.task).await.map_err(io::Error::other)?
    }
}

/// The writing thread: writes the batches while a second thread hashes them, as a PUT's writer
/// does (one thread doing both ran at half a PUT's speed).
fn append_loop(
    mut rx: mpsc::Receiver<Msg>,
    mut file: File,
    hasher: digest::Context,
    sync: bool,
) -> io::Result<Appended> {
    let (to_hasher, work) = std::sync::mpsc::sync_channel::<Hash>(1);
    let hashing = std::thread::Builder::new()
        .name("flare-part-hash".into())
        .spawn(move || {
            let mut hasher = hasher;
            for job in work {
                match job {
                    Hash::Data(batch) => batch.iter().for_each(|c| hasher.update(c)),
                    Hash::Snapshot(reply) => drop(reply.send(hasher.clone())),
                }
            }
            hasher
        })?;
    let stopped = || io::Error::other("the upload's hasher stopped");
    let mut written = 0u64;
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Msg::Data(batch) => {
                written += batch.iter().map(|c| c.len() as u64).sum::<u64>();
                // Clones of `Bytes` share the buffers: nothing is copied for the hasher.
                to_hasher
                    .send(Hash::Data(batch.clone()))
                    .map_err(|_| stopped())?;
                write_all_vectored(&mut file, &batch)?;
            }
            Msg::Checkpoint(reply) => {
                let (tx, rx) = std::sync::mpsc::channel();
                to_hasher.send(Hash::Snapshot(tx)).map_err(|_| stopped())?;
                let synced = if sync { file.sync_data() } else { Ok(()) };
                let state = rx.recv().map_err(|_| stopped());
                let _ = reply.send(synced.and(state).map(|hasher| Appended { written, hasher }));
            }
        }
    }
    drop(to_hasher);
    if sync {
        file.sync_data()?;
    }
    let hasher = hashing.join().map_err(|_| stopped())?;
    Ok(Appended { written, hasher })
}

/// Work for the hashing thread.
enum Hash {
    Data(Vec<Bytes>),
    /// The digest state after every batch sent before this.
    Snapshot(std::sync::mpsc::Sender<digest::Context>),
}
