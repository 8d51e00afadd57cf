//! `flare doctor`: what an operator gets wrong, each with how to fix it; and `flare url explain
//! URL`: whether an upload or media URL would be accepted now, and if not, why.

use serde::Serialize;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::config::Settings;
use crate::datadir::shown;
use crate::time::{iso8601, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do, when something is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    /// No check failed (warnings allowed).
    pub ok: bool,
    pub checks: Vec<Check>,
}

fn check(name: &'static str, status: Status, detail: String, fix: Option<String>) -> Check {
    Check {
        name,
        status,
        detail,
        fix,
    }
}

/// Whether the bucket of `[s3]` answers a listing with the credentials given.
#[cfg(feature = "s3")]
fn bucket_check(s3: &crate::config::S3Settings) -> Check {
    match crate::storage::Bucket::open(s3) {
        Ok(_) => check(
            "S3 bucket",
            Status::Ok,
            format!(
                "bucket {:?} at {} answers with the credentials given",
                s3.bucket,
                s3.endpoint.as_deref().unwrap_or("AWS")
            ),
            None,
        ),
        Err(e) => check(
            "S3 bucket",
            Status::Fail,
            e,
            Some(
                "check [s3] endpoint, region and bucket, and AWS_ACCESS_KEY_ID / \
                 AWS_SECRET_ACCESS_KEY (the key needs read, write and list on the bucket)"
                    .into(),
            ),
        ),
    }
}

#[cfg(not(feature = "s3"))]
fn bucket_check(_: &crate::config::S3Settings) -> Check {
    unreachable!("settings with [s3] are refused without the s3 feature")
}

/// Runs every check; changes nothing.
pub fn doctor(settings: &Settings) -> Report {
    let data = &settings.data_dir;
    let mut checks = Vec::new();

    // The data folder.
    if !data.is_dir() {
        checks.push(check(
            "data folder",
            Status::Fail,
            format!("{} does not exist", shown(data)),
            Some("start `flare serve` once to create it, or point --data-dir / FLARE_DATA_DIR at the right folder".into()),
        ));
        return Report { ok: false, checks };
    }
    let probe = data.join(format!(".doctor-{}", std::process::id()));
    match fs::write(&probe, b"ok").and_then(|()| fs::remove_file(&probe)) {
        Ok(()) => checks.push(check(
            "data folder",
            Status::Ok,
            format!("{} is writable", shown(data)),
            None,
        )),
        Err(e) => checks.push(check(
            "data folder",
            Status::Fail,
            format!("cannot write in {}: {e}", shown(data)),
            Some("give the user flare runs as write access to it (chown -R)".into()),
        )),
    }
    let dev = |p: &Path| fs::metadata(p).ok().map(|m| m.dev());
    let (tmp, objects) = (data.join("tmp"), data.join("objects"));
    match (dev(&tmp), dev(&objects)) {
        (Some(a), Some(b)) if a != b => checks.push(check(
            "one file system",
            Status::Fail,
            "tmp/ and objects/ are on different file systems: publishing an upload is a rename, which cannot cross them".into(),
            Some("keep tmp/ and objects/ on one file system (do not mount either separately)".into()),
        )),
        (Some(_), Some(_)) => checks.push(check("one file system", Status::Ok, "tmp/ and objects/ share a file system".into(), None)),
        _ => checks.push(check("one file system", Status::Warn, "tmp/ or objects/ is missing (made at the next start)".into(), None)),
    }
    match crate::sys::free_bytes(data) {
        Ok(free) if free <= settings.disk_reserve_bytes => checks.push(check(
            "free space",
            Status::Fail,
            format!(
                "{free} bytes free, at or below disk_reserve_bytes ({}): sized uploads are refused",
                settings.disk_reserve_bytes
            ),
            Some("free space on the disk, or move the data folder to a larger one".into()),
        )),
        Ok(free) if free < settings.disk_reserve_bytes.saturating_mul(4) => checks.push(check(
            "free space",
            Status::Warn,
            format!(
                "{free} bytes free, close to disk_reserve_bytes ({})",
                settings.disk_reserve_bytes
            ),
            Some("free space soon".into()),
        )),
        Ok(free) => checks.push(check(
            "free space",
            Status::Ok,
            format!("{free} bytes free"),
            None,
        )),
        Err(e) => checks.push(check(
            "free space",
            Status::Warn,
            format!("cannot read free space: {e}"),
            None,
        )),
    }

    // The database.
    let db = data.join("flare.db");
    let mut newest_record = None;
    if let Some(url) = &settings.database_url {
        let read = crate::db::read_only(data, Some(&url.0)).and_then(|c| {
            let version = crate::db::schema_version(&c).map_err(|e| e.to_string())?;
            let newest: Option<i64> = c
                .row("SELECT MAX(updated_at) FROM videos", &[], |r| r.get(0))
                .unwrap_or(None);
            Ok((version, newest))
        });
        let current = crate::db::SCHEMA_VERSION;
        checks.push(match read {
            Ok((v, newest)) => {
                newest_record = newest;
                match v {
                    v if v == current => check("database", Status::Ok, format!("PostgreSQL (database_url), schema version {v}"), None),
                    v if v < current => check("database", Status::Warn, format!("PostgreSQL (database_url), schema version {v}; this flare migrates it to {current} at its next start"), Some("back it up first (pg_dump)".into())),
                    v => check("database", Status::Fail, format!("PostgreSQL (database_url), schema version {v} is newer than this flare knows ({current})"), Some("run the newer flare that wrote it".into())),
                }
            }
            Err(e) => check("database", Status::Fail, e, Some("check database_url (user, password, host, port, database) and that PostgreSQL is running; `flare serve` makes the tables at its first start".into())),
        });
    } else if !db.is_file() {
        checks.push(check(
            "database",
            Status::Fail,
            format!("there is no flare.db in {}", shown(data)),
            Some(
                "start `flare serve` once on this folder, or restore a backup (`flare restore`)"
                    .into(),
            ),
        ));
    } else {
        match rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| {
                let integrity: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
                let version: usize = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                let newest: Option<i64> = c
                    .query_row("SELECT MAX(updated_at) FROM videos", [], |r| r.get(0))
                    .unwrap_or(None);
                Ok((integrity, version, newest))
            }) {
            Ok((integrity, _, _)) if integrity != "ok" => checks.push(check(
                "database",
                Status::Fail,
                format!("integrity check: {integrity}"),
                Some("stop the server and restore the last backup (`flare restore`); `flare fsck` says what the files hold".into()),
            )),
            Ok((_, version, newest)) => {
                newest_record = newest;
                let current = crate::db::SCHEMA_VERSION;
                checks.push(match version {
                    v if v == current => check("database", Status::Ok, format!("intact, schema version {v}"), None),
                    v if v < current => check("database", Status::Warn, format!("schema version {v}; this flare migrates it to {current} at its next start"), Some("back it up first (`flare backup`)".into())),
                    v => check("database", Status::Fail, format!("schema version {v} is newer than this flare knows ({current})"), Some("run the newer flare that wrote it".into())),
                });
            }
            Err(e) => checks.push(check("database", Status::Fail, format!("cannot read flare.db: {e}"), Some("check the file's owner and mode".into()))),
        }
    }

    // The signing key: the operator's, or the data folder's.
    let key = data.join("signing.key");
    if let Some(source) = &settings.signing_keys {
        checks.push(match crate::keys::configured(source) {
            Ok((_, ids)) => check(
                "signing key",
                Status::Ok,
                format!(
                    "from the settings: {}; every node must be given the same",
                    crate::keys::describe(&ids)
                ),
                None,
            ),
            Err(e) => check(
                "signing key",
                Status::Fail,
                e,
                Some(
                    "give FLARE_SIGNING_KEY or signing_key_file base64 keys of 32 bytes or more"
                        .into(),
                ),
            ),
        });
    } else {
        match fs::metadata(&key) {
        Err(_) => checks.push(check(
            "signing key",
            Status::Fail,
            "signing.key is missing: every upload URL and password cookie handed out is invalid".into(),
            Some("restore it from a backup; `flare serve` makes a new one only when nothing it signed is still open".into()),
        )),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => checks.push(check(
            "signing key",
            Status::Fail,
            format!("signing.key has mode {:o}: other users can read it and sign upload URLs", m.permissions().mode() & 0o777),
            Some(format!("chmod 600 {}", shown(&key))),
        )),
        Ok(m) if m.len() != 32 => checks.push(check("signing key", Status::Fail, format!("signing.key has {} bytes, not 32", m.len()), Some("restore it from a backup".into()))),
        Ok(_) => checks.push(check("signing key", Status::Ok, "present, mode 600".into(), None)),
    }
    }

    // The bucket, when objects live in one.
    if let Some(s3) = &settings.s3 {
        checks.push(bucket_check(s3));
    }

    // The server and its URL.
    let running = crate::datadir::running_server(data);
    let public = running
        .as_ref()
        .map(|s| s.public_url.clone())
        .or_else(|| settings.public_url.clone())
        .unwrap_or_else(|| format!("{}://{}", settings.scheme(), settings.listen));
    if let Some(files) = &settings.tls {
        checks.push(match crate::http::tls::Tls::load(&files.cert, &files.key) {
            Ok(_) => check(
                "TLS",
                Status::Ok,
                format!(
                    "{} and {} make a usable pair; after renewing them, `kill -HUP` the server",
                    files.cert.display(),
                    files.key.display()
                ),
                None,
            ),
            Err(e) => check(
                "TLS",
                Status::Fail,
                e,
                Some(
                    "point tls_cert at the PEM certificate chain and tls_key at its private key"
                        .into(),
                ),
            ),
        });
        if public.starts_with("http://") {
            checks.push(check(
                "TLS",
                Status::Fail,
                format!("flare serves HTTPS but public_url is {public}: every link it hands out would fail"),
                Some(format!("set public_url to {}", public.replacen("http://", "https://", 1))),
            ));
        }
    }
    let host = url::Url::parse(&public)
        .ok()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_default();
    if host == "0.0.0.0" || host == "[::]" || host == "::" {
        checks.push(check(
            "public URL",
            Status::Fail,
            format!("{public} names every interface, which no client can reach"),
            Some(
                "set public_url to the address clients use, such as http://192.168.1.20:8080"
                    .into(),
            ),
        ));
    } else if let Some(server) = &running {
        let url = format!("{}/healthz", server.public_url);
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(3)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        match agent.get(&url).call() {
            Ok(res) if res.status() == 200 => checks.push(check(
                "public URL",
                Status::Ok,
                format!("{public} answers from this machine (server pid {})", server.pid),
                None,
            )),
            Ok(res) => checks.push(check("public URL", Status::Fail, format!("{url} answered {}", res.status()), Some("check that public_url names this server, not another one".into()))),
            Err(e) => checks.push(check(
                "public URL",
                Status::Warn,
                format!("{url} does not answer from this machine: {e}"),
                Some("if clients reach flare through a proxy or another name, check it from a client; else fix public_url".into()),
            )),
        }
    } else {
        checks.push(check(
            "public URL",
            Status::Ok,
            format!("{public} (no server running: not tried)"),
            None,
        ));
    }
    checks.push(match &running {
        Some(s) => check(
            "server",
            Status::Ok,
            format!(
                "one server (pid {}) holds the data folder; a second one would be refused",
                s.pid
            ),
            None,
        ),
        None => check(
            "server",
            Status::Ok,
            "no server is running on this data folder".into(),
            None,
        ),
    });

    // The clock: a record written in the future means it went back.
    let now = now_ms();
    match newest_record {
        Some(t) if t > now + 5 * 60_000 => checks.push(check(
            "clock",
            Status::Fail,
            format!("a video was updated at {}, after now ({}): the clock went back", iso8601(t), iso8601(now)),
            Some("set the system clock (timedatectl, or an NTP server on the LAN); upload URLs expire by it".into()),
        )),
        _ if now < 1_700_000_000_000 => checks.push(check("clock", Status::Fail, format!("the clock says {}", iso8601(now)), Some("set the system clock".into()))),
        _ => checks.push(check("clock", Status::Ok, format!("{} (UTC)", iso8601(now)), None)),
    }

    // ffmpeg.
    let media = crate::domain::ffmpeg::MediaJobs::new(settings);
    checks.push(match media.ffmpeg() {
        Some(p) => check(
            "ffmpeg",
            Status::Ok,
            format!("{}: posters and renditions are made", p.display()),
            None,
        ),
        None if settings
            .ffmpeg_path
            .as_deref()
            .is_some_and(|p| p != "off" && !p.is_empty()) =>
        {
            check(
                "ffmpeg",
                Status::Warn,
                format!(
                    "ffmpeg_path = {:?} is not an executable",
                    settings.ffmpeg_path.as_deref().unwrap_or("")
                ),
                Some("install ffmpeg (apt install ffmpeg) or fix ffmpeg_path".into()),
            )
        }
        None => check(
            "ffmpeg",
            Status::Ok,
            "not used: the web app makes posters in the browser; no renditions".into(),
            None,
        ),
    });

    let ok = checks.iter().all(|c| c.status != Status::Fail);
    Report { ok, checks }
}

/// What `flare url explain` found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub kind: &'static str,
    pub accepted: bool,
    /// Each fact, in order; the reasons for a refusal among them.
    pub facts: Vec<String>,
}

/// Decodes an upload or media URL and says whether this node would accept it now.
pub fn explain_url(settings: &Settings, raw: &str) -> Result<Explanation, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    let segments: Vec<String> = url
        .path_segments()
        .map(|s| {
            s.map(|p| {
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect()
        })
        .unwrap_or_default();
    let conn = crate::db::read_only(
        &settings.data_dir,
        settings.database_url.as_ref().map(|u| u.0.as_str()),
    )?;
    let sql = |e: crate::db::sql::Error| format!("cannot read the database: {e}");
    let now = now_ms();
    let mut facts = Vec::new();
    let mut refused = false;
    match segments.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["upload", video_id, "composite", file_name] => {
            let keys = match &settings.signing_keys {
                Some(source) => crate::keys::configured(source)?.0,
                None => match crate::keys::load(&settings.data_dir)? {
                    Some(key) => vec![key],
                    None => return Err("there is no signing.key in the data folder: no signature can be checked".into()),
                },
            };
            let query = crate::domain::signing::parse_query(url.query().unwrap_or(""))
                .map_err(|_| "the query string cannot be read".to_string())?;
            let resumable = query.iter().any(|(k, _)| k == "resumable");
            let method = if resumable { "PATCH" } else { "PUT" };
            // Checked at time 0, so that an expired URL still shows what it carries.
            let grant = match crate::domain::signing::verify(&keys, method, video_id, file_name, &query, 0) {
                Ok(g) => g,
                Err(e) => {
                    return Ok(Explanation {
                        kind: "upload",
                        accepted: false,
                        facts: vec![match e {
                            crate::domain::signing::VerifyError::Mismatch(why) => format!(
                                "signature: refused, {why}"
                            ),
                            other => format!("signature: refused ({other:?})"),
                        }],
                    })
                }
            };
            facts.push("signature: good (signed by this data folder's key)".into());
            facts.push(format!(
                "for video {} as {} ({}), at most {} bytes{}",
                grant.video_id,
                grant.file_name,
                grant.content_type,
                grant.limit,
                if grant.exact { ", exactly" } else { "" }
            ));
            let expires = grant.expires * 1000;
            let open_until = grant.resumable_until.map_or(expires, |u| u * 1000);
            if now >= open_until {
                refused = true;
                facts.push(format!("expired at {}", iso8601(open_until)));
            } else {
                facts.push(format!("valid until {}", iso8601(open_until)));
            }
            match crate::db::uploads::get(&conn, &grant.upload_id).map_err(sql)? {
                // A URL presigned without a size gets its record at its first use; until then
                // it is good for a video made before it.
                None if crate::domain::uploads::open_without_row(&conn, &grant)
                    .map_err(|e| e.to_string())? =>
                {
                    facts.push("not used yet (its record is made at its first use)".into());
                }
                None => {
                    refused = true;
                    facts.push(format!("upload {}: no record (its video was deleted, or fsck forgot it)", grant.upload_id));
                }
                Some(row) => {
                    if let Some(at) = row.completed_at {
                        refused = true;
                        facts.push(format!("spent at {}: an upload URL works once", iso8601(at)));
                    } else if let Some(s) = &row.session {
                        facts.push(format!("a resumable session holds {} bytes", s.offset));
                    } else {
                        facts.push("not used yet".into());
                    }
                }
            }
            match crate::db::tokens::get(&conn, &grant.token_id).map_err(sql)? {
                None => {
                    refused = true;
                    facts.push(format!("token {}: deleted", grant.token_id));
                }
                Some(t) => {
                    if let Some(at) = t.revoked_at {
                        refused = true;
                        facts.push(format!("token {} ({}) revoked at {}", t.id, t.name, iso8601(at)));
                    } else if let Some(at) = t.expires_at.filter(|at| *at <= now) {
                        refused = true;
                        facts.push(format!("token {} ({}) expired at {}", t.id, t.name, iso8601(at)));
                    } else {
                        facts.push(format!("token {} ({}) is live", t.id, t.name));
                    }
                }
            }
            if crate::db::videos::get(&conn, video_id).map_err(sql)?.is_none() {
                refused = true;
                facts.push(format!("video {video_id}: deleted"));
            }
            Ok(Explanation { kind: "upload", accepted: !refused, facts })
        }
        ["media", video_id, dir, file] => {
            match crate::db::videos::get(&conn, video_id).map_err(sql)? {
                None => {
                    refused = true;
                    facts.push(format!("video {video_id}: there is none (deleted, or never made)"));
                }
                Some(v) => {
                    let named = match *dir {
                        "composite" => v.object_name.as_deref() == Some(*file),
                        "derived" => v.derived.as_deref().is_some_and(|d| d.contains(&format!("\"{file}\""))),
                        "captions" => v.captions.as_deref().is_some_and(|c| file.strip_suffix(".vtt").is_some_and(|l| c.contains(&format!("\"{l}\"")))),
                        _ => false,
                    };
                    facts.push(format!("video {video_id}: {}", v.status.as_str()));
                    if v.status != crate::db::videos::VideoStatus::Ready && *dir == "composite" {
                        refused = true;
                        facts.push("its file has not been uploaded yet".into());
                    } else if !named {
                        refused = true;
                        facts.push(format!("{dir}/{file} is not a file its record names (replaced by a later upload?)"));
                    } else {
                        facts.push(format!("{dir}/{file} is its current file"));
                    }
                    if v.password_hash.is_some() {
                        facts.push("password-protected: a browser needs the password (its cookie); others get 401".into());
                    } else {
                        facts.push("public: anyone with the link can fetch it".into());
                    }
                }
            }
            Ok(Explanation { kind: "media", accepted: !refused, facts })
        }
        _ => Err(format!(
            "{raw} is neither an upload URL (/upload/VIDEO_ID/composite/FILE?…) nor a media URL (/media/VIDEO_ID/…)"
        )),
    }
}
