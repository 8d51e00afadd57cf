//! Air-gap bundles: `flare export … FILE.tar` writes chosen videos into one tar archive (read and
//! written with the `tar` crate) and `flare import FILE.tar` adds them to another node.
//!
//! The archive's first entry, `flare-bundle.json`, describes every video: its record (title,
//! embed settings, password hash, what the probe learnt), its captions, its posters and
//! renditions, and every file with its size and SHA-256. The files follow, each read once and
//! streamed: memory stays flat however large the bundle. Import checks every byte against the
//! manifest while it copies, is idempotent (a video already here with the same bytes is left
//! alone, one that differs is reported as a conflict and not touched), and records a video only
//! once all its files arrived whole. Tokens, upload URLs and the signing key stay behind: they
//! belong to a node.

use ring::digest;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::db::{self, jobs::Asset, videos::VideoRow};
use crate::state::AppState;
use crate::storage::ObjectKey;

const FORMAT: &str = "flare-bundle/1";
const MANIFEST: &str = "flare-bundle.json";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub format: String,
    pub created_at: String,
    pub videos: Vec<BundledVideo>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundledVideo {
    pub record: Record,
    pub captions: Vec<Caption>,
    pub assets: Vec<Asset>,
    pub files: Vec<BundledFile>,
}

/// A video's record, as its row holds it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: String,
    pub title: Option<String>,
    pub file_name: String,
    pub source: String,
    pub width: Option<f64>,
    pub height: Option<f64>,
    pub duration: Option<f64>,
    pub status: String,
    pub object_name: Option<String>,
    pub size: Option<i64>,
    pub content_type: Option<String>,
    pub sha256: Option<String>,
    pub password_hash: Option<String>,
    pub embed_settings: Option<String>,
    pub media: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Caption {
    pub lang: String,
    pub label: String,
    pub vtt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundledFile {
    /// `objects/ID/composite/FILE` or `objects/ID/derived/FILE`.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Which videos to export.
pub enum Selection {
    All,
    Ids(Vec<String>),
    /// Updated at or after this time (ms).
    Since(i64),
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub videos: usize,
    pub files: usize,
    pub bytes: u64,
    /// Import: videos already here with the same bytes.
    pub already_here: usize,
    /// Import: videos here under the same id with other bytes; left untouched.
    pub conflicts: Vec<String>,
}

fn record_of(v: &VideoRow) -> Record {
    Record {
        id: v.id.clone(),
        title: v.title.clone(),
        file_name: v.file_name.clone(),
        source: v.source.clone(),
        width: v.width,
        height: v.height,
        duration: v.duration,
        status: v.status.as_str().into(),
        object_name: v.object_name.clone(),
        size: v.size,
        content_type: v.content_type.clone(),
        sha256: v.sha256.clone(),
        password_hash: v.password_hash.clone(),
        embed_settings: v.embed_settings.clone(),
        media: v.media.clone(),
        created_at: v.created_at,
        updated_at: v.updated_at,
    }
}

/// `flare export`: the chosen videos into `out` (a new file). Safe beside a running server:
/// objects are only ever replaced by rename, so an open file keeps the bytes it was opened on.
pub fn export(app: &AppState, which: Selection, out: &Path) -> Result<Summary, String> {
    crate::cli::backup::refuse_unless_local(&app.settings, "flare export")?;
    let sql = |e: crate::db::sql::Error| format!("cannot read the database: {e}");
    let rows: Vec<VideoRow> = app
        .db
        .blocking(|c| db::videos::all_for_export(c))
        .map_err(sql)?
        .into_iter()
        .filter(|v| match &which {
            Selection::All => true,
            Selection::Ids(ids) => ids.contains(&v.id),
            Selection::Since(t) => v.updated_at >= *t,
        })
        .collect();
    if let Selection::Ids(ids) = &which {
        if let Some(missing) = ids.iter().find(|id| !rows.iter().any(|v| &v.id == *id)) {
            return Err(format!("there is no video with id {missing}"));
        }
    }
    // Every asset in one read, not one read of all of them per video.
    let mut assets_by_video: HashMap<String, Vec<Asset>> = HashMap::new();
    for (video_id, asset) in app.db.blocking(|c| db::jobs::all_assets(c)).map_err(sql)? {
        assets_by_video.entry(video_id).or_default().push(asset);
    }
    let mut videos = Vec::new();
    for v in &rows {
        let id = v.id.clone();
        let assets = assets_by_video.remove(&v.id).unwrap_or_default();
        let captions = app
            .db
            .blocking(|c| {
                c.rows(
                    "SELECT lang, label, vtt FROM captions WHERE video_id = ?1 ORDER BY lang",
                    crate::args![id],
                    |r| {
                        Ok(Caption {
                            lang: r.get(0)?,
                            label: r.get(1)?,
                            vtt: r.get(2)?,
                        })
                    },
                )
            })
            .map_err(sql)?;
        let mut files = Vec::new();
        if let (Some(name), Some(size), Some(sha)) = (&v.object_name, v.size, &v.sha256) {
            files.push(BundledFile {
                path: format!("objects/{}/composite/{name}", v.id),
                size: size as u64,
                sha256: sha.clone(),
            });
        }
        for a in &assets {
            files.push(BundledFile {
                path: format!("objects/{}/derived/{}", v.id, a.file_name),
                size: a.size,
                sha256: a.sha256.clone(),
            });
        }
        videos.push(BundledVideo {
            record: record_of(v),
            captions,
            assets,
            files,
        });
    }
    let bundle = Bundle {
        format: FORMAT.into(),
        created_at: crate::time::iso8601(crate::time::now_ms()),
        videos,
    };
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut tar = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, file));
    let manifest = serde_json::to_vec_pretty(&bundle).map_err(|e| e.to_string())?;
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o600);
    header.set_mtime((crate::time::now_ms() / 1000) as u64);
    let io_err = |e: io::Error| format!("cannot write {}: {e}", out.display());
    tar.append_data(&mut header, MANIFEST, manifest.as_slice())
        .map_err(io_err)?;
    let mut summary = Summary {
        videos: bundle.videos.len(),
        ..Summary::default()
    };
    for v in &bundle.videos {
        for f in &v.files {
            let path = app.settings.data_dir.join(&f.path);
            let mut src = File::open(&path).map_err(|e| format!("cannot open {}: {e}", f.path))?;
            let mut header = tar::Header::new_gnu();
            header.set_size(f.size);
            header.set_mode(0o600);
            header.set_mtime((crate::time::now_ms() / 1000) as u64);
            // Exactly the recorded length: an object changed since is caught at import.
            tar.append_data(&mut header, &f.path, (&mut src).take(f.size))
                .map_err(io_err)?;
            summary.files += 1;
            summary.bytes += f.size;
        }
    }
    let mut inner = tar.into_inner().map_err(io_err)?;
    inner.flush().map_err(io_err)?;
    inner.get_ref().sync_all().map_err(io_err)?;
    Ok(summary)
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    ctx: digest::Context,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.ctx.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `flare import FILE.tar` into this data folder (a server may be running on it).
pub fn import(app: &AppState, bundle_path: &Path) -> Result<Summary, String> {
    crate::cli::backup::refuse_unless_local(&app.settings, "flare import")?;
    let file = File::open(bundle_path)
        .map_err(|e| format!("cannot open {}: {e}", bundle_path.display()))?;
    let mut archive = tar::Archive::new(io::BufReader::with_capacity(1 << 20, file));
    let mut entries = archive
        .entries()
        .map_err(|e| format!("{} is not a tar archive: {e}", bundle_path.display()))?;
    let first = entries
        .next()
        .ok_or("the archive is empty")?
        .map_err(|e| format!("cannot read the archive: {e}"))?;
    let mut first = first;
    if first.path().map_err(|e| e.to_string())?.to_string_lossy() != MANIFEST {
        return Err(format!(
            "not a flare bundle: its first entry is not {MANIFEST}"
        ));
    }
    let mut text = Vec::new();
    first
        .read_to_end(&mut text)
        .map_err(|e| format!("cannot read {MANIFEST}: {e}"))?;
    let bundle: Bundle =
        serde_json::from_slice(&text).map_err(|e| format!("{MANIFEST} cannot be read: {e}"))?;
    if bundle.format != FORMAT {
        return Err(format!(
            "a {:?} bundle; this flare reads {FORMAT:?}",
            bundle.format
        ));
    }
    let sql = |e: crate::db::sql::Error| format!("database: {e}");
    // What to do with each video: add it, or leave it (here already, or a conflict).
    let mut summary = Summary::default();
    let mut wanted: HashMap<String, (usize, BundledFile)> = HashMap::new();
    let mut waiting: HashMap<usize, usize> = HashMap::new();
    for (i, v) in bundle.videos.iter().enumerate() {
        let here = app
            .db
            .blocking(|c| db::videos::get(c, &v.record.id))
            .map_err(sql)?;
        match here {
            Some(h) if h.sha256 == v.record.sha256 => summary.already_here += 1,
            Some(_) => summary.conflicts.push(v.record.id.clone()),
            None => {
                for f in &v.files {
                    wanted.insert(f.path.clone(), (i, f.clone()));
                }
                waiting.insert(i, v.files.len());
            }
        }
    }
    let mut staged: HashMap<usize, Vec<(String, String)>> = HashMap::new();
    // Videos with no file are recorded at once.
    let empty: Vec<usize> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(i, _)| *i)
        .collect();
    for i in empty {
        add_video(app, &bundle.videos[i], Vec::new())?;
        summary.videos += 1;
    }
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("cannot read the archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let Some((i, expected)) = wanted.remove(&path) else {
            continue; // a video left alone, or not named by the manifest
        };
        let (temp, tmp_path) = app.storage.temp_for_tool("import", "part");
        let out = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .map_err(|e| format!("cannot write in tmp/: {e}"))?;
        let mut hashing = Hashing {
            inner: io::BufWriter::with_capacity(1 << 20, out),
            ctx: digest::Context::new(&digest::SHA256),
            size: 0,
        };
        let copied = io::copy(&mut entry, &mut hashing)
            .and_then(|_| hashing.flush())
            .and_then(|()| hashing.inner.get_ref().sync_all());
        let sha = crate::storage::hex(hashing.ctx.clone().finish().as_ref());
        if let Err(e) = copied {
            let _ = app.storage.remove_temp(&temp);
            return Err(format!("cannot copy {path}: {e}"));
        }
        if hashing.size != expected.size || sha != expected.sha256 {
            let _ = app.storage.remove_temp(&temp);
            drop_staged(app, &staged);
            return Err(format!(
                "{path} in the bundle is damaged: {} bytes with sha256 {sha}, the manifest says {} \
                 bytes with sha256 {}; no video of this bundle that was not complete was added",
                hashing.size, expected.size, expected.sha256
            ));
        }
        staged.entry(i).or_default().push((temp, path));
        summary.bytes += expected.size;
        summary.files += 1;
        let left = waiting.get_mut(&i).expect("a waiting video");
        *left -= 1;
        if *left == 0 {
            let files = staged.remove(&i).unwrap_or_default();
            add_video(app, &bundle.videos[i], files)?;
            summary.videos += 1;
        }
    }
    if let Some((path, _)) = wanted.into_iter().next() {
        drop_staged(app, &staged);
        return Err(format!("the bundle ends before {path}: it was cut short"));
    }
    Ok(summary)
}

fn drop_staged(app: &AppState, staged: &HashMap<usize, Vec<(String, String)>>) {
    for files in staged.values() {
        for (temp, _) in files {
            let _ = app.storage.remove_temp(temp);
        }
    }
}

/// Moves a video's verified files into place and records it with its captions and assets.
fn add_video(app: &AppState, v: &BundledVideo, files: Vec<(String, String)>) -> Result<(), String> {
    let r = &v.record;
    for (temp, path) in &files {
        let mut parts = path.splitn(4, '/').skip(1);
        let (id, dir, name) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let safe = crate::domain::names::check_path_name("videoId", id).is_ok()
            && crate::domain::names::check_path_name("fileName", name).is_ok()
            && id == r.id;
        if !safe {
            return Err(format!("the bundle names an unsafe path: {path}"));
        }
        let moved = match dir {
            "composite" => app.storage.publish(
                temp,
                &ObjectKey {
                    video_id: id.into(),
                    file_name: name.into(),
                },
                None,
            ),
            "derived" => app.storage.publish_derived(temp, id, name),
            _ => return Err(format!("the bundle names an unknown folder: {path}")),
        };
        moved.map_err(|e| format!("cannot move {path} into place: {e}"))?;
    }
    let now = crate::time::now_ms();
    app.db
        .blocking(|conn| conn.transaction(|c| import_record(c, v, now)))
        .map_err(|e: crate::db::sql::Error| format!("cannot record video {}: {e}", r.id))
}

/// Writes one bundled video's rows.
fn import_record(c: &crate::db::Conn, v: &BundledVideo, now: i64) -> crate::db::sql::Result<()> {
    let r = &v.record;
    db::videos::insert_whole(
        c,
        &VideoRow {
            id: r.id.clone(),
            title: r.title.clone(),
            file_name: r.file_name.clone(),
            source: r.source.clone(),
            width: r.width,
            height: r.height,
            duration: r.duration,
            status: if r.status == "ready" && r.object_name.is_some() {
                db::videos::VideoStatus::Ready
            } else {
                db::videos::VideoStatus::Pending
            },
            object_name: r.object_name.clone(),
            size: r.size,
            content_type: r.content_type.clone(),
            sha256: r.sha256.clone(),
            password_hash: r.password_hash.clone(),
            embed_settings: r.embed_settings.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            seq: 0,
            media: r.media.clone(),
            captions: None,
            derived: None,
            object_key: None,
        },
    )?;
    for cap in &v.captions {
        db::captions::put(
            c,
            &r.id,
            &db::captions::CaptionTrack {
                lang: cap.lang.clone(),
                label: cap.label.clone(),
            },
            &cap.vtt,
            now,
        )?;
    }
    for a in &v.assets {
        db::jobs::put_asset(c, &r.id, a, now)?;
    }
    Ok(())
}
