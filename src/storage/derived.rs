//! Files made from an object (a poster, a rendition) or sent beside it (a poster), under
//! `objects/VIDEO_ID/derived/FILE`: staged in `tmp/` and renamed into place like objects, so a
//! reader sees a whole file or none. The video's folder holds them, so its deletion takes them.
//! With a bucket they are at `VIDEO_ID/derived/FILE` there (`Bucket::derived_key`).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{create_private_dir_all, Bucket, ObjectKey, ObjectMeta, Storage};
use crate::ids::random_id;

impl Storage {
    fn derived_path(&self, video_id: &str, file_name: &str) -> PathBuf {
        self.objects.join(video_id).join("derived").join(file_name)
    }

    /// A fresh name in `tmp/` for a tool to write into, and its path. Blocking-free.
    pub(crate) fn temp_for_tool(&self, prefix: &str, extension: &str) -> (String, PathBuf) {
        let name = format!("{prefix}-{}.{extension}", random_id(&self.rng, "", 9));
        let path = self.tmp.join(&name);
        (name, path)
    }

    /// Where a local tool (ffmpeg) reads an object from.
    pub(crate) fn object_file_path(&self, key: &ObjectKey) -> PathBuf {
        self.object_path(key)
    }

    /// Writes `bytes` to a new file in `tmp/` (synced when uploads are); returns its name.
    /// Blocking.
    pub(crate) fn stage_bytes(
        &self,
        prefix: &str,
        extension: &str,
        bytes: &[u8],
    ) -> io::Result<String> {
        let (name, path) = self.temp_for_tool(prefix, extension);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let written =
            file.write_all(bytes)
                .and_then(|()| if self.sync { file.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(name)
    }

    /// Moves `tmp/TEMP_NAME` to `objects/VIDEO_ID/derived/FILE` (synced when uploads are).
    /// Blocking.
    pub(crate) fn publish_derived(
        &self,
        temp_name: &str,
        video_id: &str,
        file_name: &str,
    ) -> io::Result<()> {
        if let Some(bucket) = &self.bucket {
            let key = Bucket::derived_key(video_id, file_name);
            bucket.put_file_blocking(&self.tmp.join(temp_name), &key)?;
            return self.remove_temp(temp_name);
        }
        let dest = self.derived_path(video_id, file_name);
        let dir = dest.parent().expect("derived/ has a parent").to_path_buf();
        create_private_dir_all(&dir)?;
        let staged = self.tmp.join(temp_name);
        if self.sync {
            File::open(&staged)?.sync_all()?;
        }
        fs::rename(&staged, &dest)?;
        if self.sync {
            File::open(&dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Opens a derived file for reading; `None` when there is none. Blocking.
    pub(crate) fn open_derived(
        &self,
        video_id: &str,
        file_name: &str,
    ) -> io::Result<Option<(File, ObjectMeta)>> {
        match File::open(self.derived_path(video_id, file_name)) {
            Ok(file) => {
                let meta = file.metadata()?;
                Ok(meta.is_file().then(|| (file, ObjectMeta::of(&meta))))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes a derived file; one already gone is fine. Folders it leaves empty go too, so a
    /// job that finished after its video was deleted leaves no trace. Blocking.
    pub(crate) fn remove_derived(&self, video_id: &str, file_name: &str) -> io::Result<()> {
        if let Some(bucket) = &self.bucket {
            return bucket.delete_blocking(&Bucket::derived_key(video_id, file_name));
        }
        let path = self.derived_path(video_id, file_name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        // Fails, harmlessly, while a folder holds anything.
        let derived = path.parent().expect("derived/");
        if fs::remove_dir(derived).is_ok() {
            let _ = fs::remove_dir(derived.parent().expect("the video's folder"));
        }
        Ok(())
    }

    /// Size of a derived file, `None` when it is missing. Blocking.
    pub(crate) fn derived_size(&self, video_id: &str, file_name: &str) -> io::Result<Option<u64>> {
        if let Some(bucket) = &self.bucket {
            return bucket.size_blocking(&Bucket::derived_key(video_id, file_name));
        }
        match fs::metadata(self.derived_path(video_id, file_name)) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
