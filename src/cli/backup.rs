//! `flare backup DEST` and `flare restore SRC`: a consistent copy of a data folder, taken while
//! the server runs, and its return, verified byte for byte.
//!
//! A backup is a folder: `flare.db` (SQLite's online backup API: one consistent snapshot, taken
//! beside a running server's writes), every object and poster or rendition the snapshot names
//! (hard links when the backup is on the same file system — objects are never written in place,
//! only replaced by a rename, so a link is a snapshot too — else copies, checked against their
//! recorded SHA-256 on the way), `signing.key` (without it, every upload URL and password cookie
//! the server handed out stops working), and last `manifest.json`, listing every file with its
//! size and SHA-256: a folder without it is not a finished backup.
//!
//! Restore refuses a data folder that holds anything, or that a server uses; it builds the new
//! folder beside the target, checks every file against the manifest (re-hashing each one) and
//! the database's integrity, and only then renames it into place: a failed restore leaves
//! nothing.

use ring::digest;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::datadir::shown;

const FORMAT: &str = "flare-backup/1";
const MANIFEST: &str = "manifest.json";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub flare_version: String,
    pub created_at: String,
    pub videos: usize,
    /// Every file but the manifest, relative to the backup folder.
    pub files: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// What a backup found and did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub videos: usize,
    pub files: usize,
    pub bytes: u64,
    pub linked: usize,
    pub copied: usize,
}

fn io_err<'a>(what: &str, path: &'a Path) -> impl Fn(io::Error) -> String + 'a {
    let what = what.to_string();
    move |e| format!("{what} {}: {e}", shown(path))
}

/// Reads `path` whole through SHA-256 (and into `out`, if given): its size and digest.
fn hash_file(path: &Path, mut out: Option<&mut File>) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        if let Some(out) = out.as_deref_mut() {
            out.write_all(&buf[..n])?;
        }
        size += n as u64;
    }
    Ok((size, crate::storage::hex(ctx.finish().as_ref())))
}

/// Puts `from` at `to`: a hard link when both are on one file system, else a synced copy.
/// Returns whether it linked, and the copy's size and digest when it copied.
fn link_or_copy(from: &Path, to: &Path) -> io::Result<(bool, Option<(u64, String)>)> {
    if let Some(dir) = to.parent() {
        crate::storage::create_private_dir_all(dir)?;
    }
    match fs::hard_link(from, to) {
        Ok(()) => Ok((true, None)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
        Err(_) => {
            let mut out = File::options().write(true).create_new(true).open(to)?;
            let made = hash_file(from, Some(&mut out))?;
            out.sync_all()?;
            Ok((false, Some(made)))
        }
    }
}

/// The files a database names: (path under the data folder, size, sha256).
fn named_files(db: &Path) -> Result<(usize, Vec<Entry>), String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("cannot read {}: {e}", shown(db)))?;
    let sql = |e: rusqlite::Error| format!("cannot read {}: {e}", shown(db));
    let mut files = Vec::new();
    let mut stmt = conn
        .prepare(
            "SELECT id, object_name, size, sha256 FROM videos
             WHERE status = 'ready' AND object_name IS NOT NULL ORDER BY seq",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Entry {
                path: format!(
                    "objects/{}/composite/{}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?
                ),
                size: r.get::<_, i64>(2)? as u64,
                sha256: r.get(3)?,
            })
        })
        .map_err(sql)?;
    for row in rows {
        files.push(row.map_err(sql)?);
    }
    let videos = files.len();
    let mut stmt = conn
        .prepare(
            "SELECT a.video_id, a.file_name, a.size, a.sha256 FROM assets a
             JOIN videos v ON v.id = a.video_id WHERE v.status = 'ready' ORDER BY a.video_id, a.kind",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Entry {
                path: format!(
                    "objects/{}/derived/{}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?
                ),
                size: r.get::<_, i64>(2)? as u64,
                sha256: r.get(3)?,
            })
        })
        .map_err(sql)?;
    for row in rows {
        files.push(row.map_err(sql)?);
    }
    Ok((videos, files))
}

/// Backups, restores and bundles copy a data folder's objects and its flare.db, which with
/// `[s3]` or `database_url` are not in it: refused, saying where they are and what backs them up.
pub(crate) fn refuse_unless_local(settings: &Settings, command: &str) -> Result<(), String> {
    let (elsewhere, tools) = match (&settings.s3, &settings.database_url) {
        (None, None) => return Ok(()),
        (Some(s3), None) => (
            format!("its objects are in S3 bucket {:?} ([s3])", s3.bucket),
            "back the bucket up with the store's own tools (its replication, or rclone sync), \
             and the database with sqlite3's .backup",
        ),
        (None, Some(_)) => (
            "its records are in PostgreSQL (database_url)".to_string(),
            "back them up with pg_dump",
        ),
        (Some(s3), Some(_)) => (
            format!(
                "its objects are in S3 bucket {:?} ([s3]) and its records in PostgreSQL \
                 (database_url)",
                s3.bucket
            ),
            "back the bucket up with the store's own tools (its replication, or rclone sync), \
             and the records with pg_dump",
        ),
    };
    Err(format!(
        "{command} works on a data folder that holds everything, and {elsewhere}: {tools}"
    ))
}

/// `flare backup DEST`. Safe beside a running server.
pub fn backup(settings: &Settings, dest: &Path) -> Result<Summary, String> {
    refuse_unless_local(settings, "flare backup")?;
    let data = &settings.data_dir;
    let db = data.join("flare.db");
    if !db.is_file() {
        return Err(format!("there is no flare database in {}", shown(data)));
    }
    if dest.exists()
        && fs::read_dir(dest)
            .map_err(io_err("cannot read", dest))?
            .next()
            .is_some()
    {
        return Err(format!(
            "{} is not empty: back up into a new or empty folder",
            shown(dest)
        ));
    }
    crate::storage::create_private_dir_all(dest).map_err(io_err("cannot create", dest))?;
    // A video published or replaced between the snapshot and the links names a file that moved:
    // take the snapshot again (a publication's rename follows its commit within milliseconds).
    let mut last = String::new();
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(200 * attempt));
            for entry in fs::read_dir(dest).map_err(io_err("cannot read", dest))? {
                let path = entry.map_err(io_err("cannot read", dest))?.path();
                let removed = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.map_err(io_err("cannot clear", &path))?;
            }
        }
        match backup_once(data, dest) {
            Ok(summary) => return Ok(summary),
            Err(Retry::Moved(path)) => last = path,
            Err(Retry::Fatal(e)) => return Err(e),
        }
    }
    Err(format!(
        "the videos kept changing during the backup ({last} moved each time); try again when \
         fewer uploads are finishing"
    ))
}

enum Retry {
    Moved(String),
    Fatal(String),
}

fn backup_once(data: &Path, dest: &Path) -> Result<Summary, Retry> {
    let fatal = Retry::Fatal;
    let db = data.join("flare.db");
    let copy_db = dest.join("flare.db");
    {
        let src =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| fatal(format!("cannot open {}: {e}", shown(&db))))?;
        let mut out = rusqlite::Connection::open(&copy_db)
            .map_err(|e| fatal(format!("cannot create {}: {e}", shown(&copy_db))))?;
        // All pages in one step: one read transaction, so one consistent snapshot, while the
        // server goes on writing (WAL: a reader never holds a writer back).
        let backup = rusqlite::backup::Backup::new(&src, &mut out)
            .map_err(|e| fatal(format!("cannot back up the database: {e}")))?;
        loop {
            use rusqlite::backup::StepResult;
            match backup
                .step(-1)
                .map_err(|e| fatal(format!("cannot back up the database: {e}")))?
            {
                StepResult::Done => break,
                // A writer held a lock this instant: try again.
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
    }
    let mut entries = Vec::new();
    let mut summary = Summary::default();
    let (videos, files) = named_files(&copy_db).map_err(fatal)?;
    summary.videos = videos;
    for f in files {
        let (from, to) = (data.join(&f.path), dest.join(&f.path));
        match link_or_copy(&from, &to) {
            Ok((true, _)) => {
                let size = fs::metadata(&to).map(|m| m.len()).unwrap_or(0);
                if size != f.size {
                    return Err(fatal(format!(
                        "{} has {size} bytes, the database says {}: run `flare fsck` first",
                        f.path, f.size
                    )));
                }
                summary.linked += 1;
            }
            Ok((false, Some((size, sha)))) => {
                if size != f.size || sha != f.sha256 {
                    return Err(fatal(format!(
                        "{} is not what the database recorded (sha256 {sha}, recorded {}): run \
                         `flare fsck --verify` first",
                        f.path, f.sha256
                    )));
                }
                summary.copied += 1;
            }
            Ok((false, None)) => unreachable!("a copy has a digest"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Retry::Moved(f.path)),
            Err(e) => return Err(fatal(format!("cannot copy {}: {e}", f.path))),
        }
        summary.bytes += f.size;
        entries.push(f);
    }
    let key = data.join("signing.key");
    if key.is_file() {
        let out = dest.join("signing.key");
        crate::datadir::create_private_file(&out)
            .map_err(|e| fatal(format!("cannot create {}: {e}", shown(&out))))?;
        fs::copy(&key, &out).map_err(|e| fatal(format!("cannot copy the signing key: {e}")))?;
        let (size, sha256) = hash_file(&out, None).map_err(|e| fatal(e.to_string()))?;
        entries.push(Entry {
            path: "signing.key".into(),
            size,
            sha256,
        });
    }
    File::open(&copy_db)
        .and_then(|f| f.sync_all())
        .map_err(|e| fatal(format!("cannot sync the database copy: {e}")))?;
    let (size, sha256) = hash_file(&copy_db, None).map_err(|e| fatal(e.to_string()))?;
    entries.push(Entry {
        path: "flare.db".into(),
        size,
        sha256,
    });
    summary.files = entries.len();
    let manifest = Manifest {
        format: FORMAT.into(),
        flare_version: env!("CARGO_PKG_VERSION").into(),
        created_at: crate::time::iso8601(crate::time::now_ms()),
        videos,
        files: entries,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| fatal(e.to_string()))?;
    let tmp = dest.join(".manifest.json.tmp");
    File::create(&tmp)
        .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, dest.join(MANIFEST)))
        .and_then(|()| File::open(dest).and_then(|d| d.sync_all()))
        .map_err(|e| fatal(format!("cannot write the manifest: {e}")))?;
    Ok(summary)
}

/// `flare restore SRC`: into the settings' data folder, which must be new or empty.
pub fn restore(settings: &Settings, src: &Path) -> Result<Summary, String> {
    refuse_unless_local(settings, "flare restore")?;
    let target = &settings.data_dir;
    if target.exists() {
        if let Some(server) = crate::datadir::running_server(target) {
            return Err(format!(
                "a flare server (pid {}) is using {}: restore into another folder",
                server.pid,
                shown(target)
            ));
        }
        let holds_anything = fs::read_dir(target)
            .map_err(io_err("cannot read", target))?
            .next()
            .is_some();
        if holds_anything {
            return Err(format!(
                "{} already holds files; restore refuses to overwrite a data folder: restore into \
                 a new or empty folder (--data-dir), or move this one aside",
                shown(target)
            ));
        }
    }
    let manifest_path = src.join(MANIFEST);
    let text = fs::read(&manifest_path).map_err(|_| {
        format!(
            "{} is not a finished flare backup: it has no manifest.json",
            shown(src)
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| format!("{} cannot be read: {e}", shown(&manifest_path)))?;
    if manifest.format != FORMAT {
        return Err(format!(
            "{} is a {:?} backup; this flare reads {FORMAT:?}",
            shown(src),
            manifest.format
        ));
    }
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::storage::create_private_dir_all(parent).map_err(io_err("cannot create", parent))?;
    let staging: PathBuf = parent.join(format!(
        ".{}.restoring-{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into()),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&staging);
    let result = restore_into(src, &manifest, &staging);
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if target.exists() {
        fs::remove_dir(target).map_err(io_err("cannot replace the empty folder", target))?;
    }
    fs::rename(&staging, target).map_err(io_err("cannot move the restored folder to", target))?;
    Ok(summary)
}

fn restore_into(src: &Path, manifest: &Manifest, staging: &Path) -> Result<Summary, String> {
    crate::storage::create_private_dir_all(staging).map_err(io_err("cannot create", staging))?;
    let mut summary = Summary {
        videos: manifest.videos,
        ..Summary::default()
    };
    for entry in &manifest.files {
        let rel = Path::new(&entry.path);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!(
                "the manifest names a path outside the backup: {}",
                entry.path
            ));
        }
        let (from, to) = (src.join(rel), staging.join(rel));
        let (linked, made) =
            link_or_copy(&from, &to).map_err(|e| format!("cannot restore {}: {e}", entry.path))?;
        // Every file is read back and checked, linked or copied.
        let (size, sha) = match made {
            Some(made) => made,
            None => hash_file(&to, None).map_err(|e| format!("cannot read {}: {e}", entry.path))?,
        };
        if size != entry.size || sha != entry.sha256 {
            return Err(format!(
                "{} in the backup is damaged: {size} bytes with sha256 {sha}, the manifest says {} \
                 bytes with sha256 {}; nothing was restored",
                entry.path, entry.size, entry.sha256
            ));
        }
        if linked {
            summary.linked += 1;
        } else {
            summary.copied += 1;
        }
        summary.bytes += size;
        summary.files += 1;
    }
    let db = staging.join("flare.db");
    let conn = rusqlite::Connection::open(&db)
        .map_err(|e| format!("cannot open the restored database: {e}"))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("cannot check the restored database: {e}"))?;
    if integrity != "ok" {
        return Err(format!(
            "the database in the backup is damaged: {integrity}"
        ));
    }
    drop(conn);
    for dir in ["objects", "tmp"] {
        crate::storage::create_private_dir_all(&staging.join(dir))
            .map_err(io_err("cannot create", staging))?;
    }
    Ok(summary)
}
