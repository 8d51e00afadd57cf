//! What `flare fsck` looks at: every file under `objects/` and `tmp/`, sizes, digests, free
//! space, and moving a file aside into `lost+found/`.

use ring::digest;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::read::MAX_READ;
use super::{create_private_dir_all, hex, ObjectKey, Storage};

/// One file found under `objects/`, for `fsck`.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// Relative to `objects/`.
    pub path: PathBuf,
    /// Set when the file sits where an object belongs: `VIDEO_ID/composite/FILE`.
    pub key: Option<ObjectKey>,
    /// Set when the file sits where a poster or rendition belongs: `VIDEO_ID/derived/FILE`.
    pub derived: Option<(String, String)>,
    pub size: u64,
}

/// A file in `tmp/`, for `fsck`.
#[derive(Debug, Clone)]
pub(crate) struct TempEntry {
    pub name: String,
    pub size: u64,
    pub age: std::time::Duration,
}

impl Storage {
    /// Bytes an unprivileged writer can still put on the file system holding the data. Blocking.
    pub(crate) fn free_bytes(&self) -> io::Result<u64> {
        crate::sys::free_bytes(&self.objects)
    }

    /// Every file under `objects/`. Blocking.
    pub(crate) fn inventory(&self) -> io::Result<Vec<Found>> {
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
                let derived = match parts.as_slice() {
                    [video_id, dir, file_name] if dir == "derived" => {
                        Some((video_id.clone(), file_name.clone()))
                    }
                    _ => None,
                };
                out.push(Found {
                    path: rel,
                    key,
                    derived,
                    size: entry.metadata()?.len(),
                });
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Size of an object, `None` when it is missing. Blocking.
    pub(crate) fn size_of(&self, key: &ObjectKey) -> io::Result<Option<u64>> {
        match fs::metadata(self.object_path(key)) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The SHA-256 of an object, read whole. Blocking.
    pub(crate) fn sha256_of(&self, key: &ObjectKey) -> io::Result<String> {
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
    pub(crate) fn temp_files(&self) -> io::Result<Vec<TempEntry>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            // Resumable sessions' part files are checked against their sessions instead.
            if entry.file_name() == super::PARTS_DIR {
                continue;
            }
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
    pub(crate) fn to_lost_found(&self, rel: &Path, from_temp: bool) -> io::Result<PathBuf> {
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
