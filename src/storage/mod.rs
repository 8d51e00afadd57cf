//! Objects on disk: where each lives, publication by rename, removal. Streamed writes are in
//! `write`, reads in `read`, what fsck looks at in `inventory`.
//!
//! Layout: `DATA_DIR/objects/VIDEO_ID/composite/FILE`, with uploads in progress under
//! `DATA_DIR/tmp/` (the same file system, so the final step is a `rename`). An object is only
//! ever replaced whole by that rename, never written in place, so an open reader keeps the bytes
//! it started with and a new reader gets the new ones.
//!
//! This is the seam for other object stores: the rest of flare sees `ObjectKey`, `ObjectWriter`,
//! `Staged`, `ObjectMeta` and a byte stream, never a path.

use ring::rand::SystemRandom;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ids::random_id;

#[cfg(feature = "s3")]
mod bucket;
#[cfg(not(feature = "s3"))]
#[path = "no_bucket.rs"]
mod bucket;
#[cfg(feature = "s3")]
mod bucket_session;
mod derived;
mod inventory;
mod part;
mod read;
mod write;

pub use bucket::{Bucket, BucketWriter, Written};
#[cfg(not(feature = "s3"))]
pub(crate) use bucket::{Finished, SessionWriter};
#[cfg(feature = "s3")]
pub(crate) use bucket_session::{Finished, SessionWriter};
pub(crate) use part::{PartWriter, PARTS_DIR};
pub use read::is_cached;
pub(crate) use read::{cache_probe, load_into_cache, CacheProbe, FileChunks};
pub use write::{ObjectWriter, Staged};

/// Where a resumable session kept in a bucket puts its tails (`bucket_session`): removed whole
/// when the session ends.
pub(crate) fn tails_prefix(video_id: &str, upload_id: &str) -> String {
    format!("{video_id}/sessions/{upload_id}")
}

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
    /// `[s3]`: objects live in this bucket, and `objects/` stays empty. An upload's bytes go
    /// straight into the bucket; `tmp/` holds only media jobs' working copies.
    bucket: Option<Bucket>,
}

impl Storage {
    /// Creates `objects/` and `tmp/` under `data_dir` if needed. Blocking.
    pub fn open(data_dir: &Path, sync: bool) -> io::Result<Storage> {
        let objects = data_dir.join("objects");
        let tmp = data_dir.join("tmp");
        create_private_dir_all(&objects)?;
        create_private_dir_all(&tmp.join(PARTS_DIR))?;
        Ok(Storage {
            objects,
            tmp,
            lost_found: data_dir.join("lost+found"),
            sync,
            rng: SystemRandom::new(),
            bucket: None,
        })
    }

    /// As `open`, with the objects in `bucket`.
    pub fn with_bucket(mut self, bucket: Option<Bucket>) -> Storage {
        // A local file is never what is kept: the bucket's copy is, and its durability is the
        // store's. Syncing a working copy would only slow the job.
        self.sync &= bucket.is_none();
        self.bucket = bucket;
        self
    }

    /// The bucket objects live in, when not on this machine's disk.
    pub fn bucket(&self) -> Option<&Bucket> {
        self.bucket.as_ref()
    }

    /// Where `tmp/NAME` is, to copy a staged upload into the bucket.
    pub(crate) fn temp_path(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    /// Removes what a stopped server left in `tmp/`: unfinished uploads and half-removed
    /// video folders. Resumable sessions' part files stay: their sessions outlive a restart
    /// (`domain::resumable::reconcile` looks after them). Only call before serving.
    pub(crate) fn sweep_temp(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            if entry.file_name() == PARTS_DIR {
                continue;
            }
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
    pub(crate) fn remove_video(&self, video_id: &str) -> io::Result<()> {
        if let Some(bucket) = &self.bucket {
            return bucket.delete_under(video_id);
        }
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
        if self.bucket.is_some() {
            // The object went into the bucket before its record was committed
            // (`uploads::publish`); the old one is removed by the caller, who knows its key.
            return self.remove_temp(temp_name);
        }
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
    pub(crate) fn probe_writable(&self) -> io::Result<()> {
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
    pub(crate) fn remove_temp(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.tmp.join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Opens `tmp/NAME` for reading (a staged upload, before publication). Blocking.
    pub(crate) fn open_temp(&self, name: &str) -> io::Result<File> {
        File::open(self.tmp.join(name))
    }

    /// Whether `tmp/NAME` exists. Blocking.
    pub(crate) fn temp_exists(&self, name: &str) -> bool {
        self.tmp.join(name).is_file()
    }

    /// Opens an object for reading; `None` when there is none. Blocking.
    pub(crate) fn open_object(&self, key: &ObjectKey) -> io::Result<Option<(File, ObjectMeta)>> {
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

/// Creates a folder and its missing parents readable by flare's user alone (0700): on a shared
/// machine, other users must not read the objects of password-protected videos.
pub(crate) fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::read::{read_waiting, MAX_READ, SLICE};
    use super::*;
    use crate::sys;
    use bytes::Bytes;
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
                .all(|e| e.unwrap().file_name() == PARTS_DIR)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(fs::read_dir(dir.path().join("tmp"))
            .unwrap()
            .all(|e| e.unwrap().file_name() == PARTS_DIR));
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
