//! The key that signs upload URLs and password cookies: `DATA_DIR/signing.key`, 32 random
//! bytes, mode 0600.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::db::Db;
use crate::domain::signing::key_from_bytes;

/// The operator's signing keys (`FLARE_SIGNING_KEY`, or `signing_key_file`): base64, 32 bytes or
/// more each, separated by commas or new lines. The first signs; the others are earlier keys
/// that still verify, so that a key can be replaced without voiding the URLs and cookies it
/// signed: add the new key first, and drop the old one once they have expired (7 days at most
/// for URLs). With the ids of each, for the log (never the keys).
pub fn configured(
    source: &crate::config::KeySource,
) -> Result<(Vec<hmac::Key>, Vec<String>), String> {
    use crate::config::KeySource;
    use base64::Engine;
    let (text, from) = match source {
        KeySource::Env(secret) => (secret.0.clone(), "FLARE_SIGNING_KEY".to_string()),
        KeySource::File(path) => (
            fs::read_to_string(path)
                .map_err(|e| format!("signing_key_file {}: {e}", path.display()))?,
            format!("signing_key_file {}", path.display()),
        ),
    };
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    for (n, item) in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(item)
            .ok()
            .filter(|b| b.len() >= 32)
            .ok_or_else(|| {
                format!(
                    "{from}: key {} is not 32 or more bytes in base64 (make one with: \
                     head -c 32 /dev/urandom | base64)",
                    n + 1
                )
            })?;
        ids.push(key_id(&bytes));
        keys.push(key_from_bytes(&bytes));
    }
    if keys.is_empty() {
        return Err(format!("{from} holds no key"));
    }
    Ok((keys, ids))
}

/// What the log and `flare doctor` say of the operator's keys: their ids, never the keys.
pub fn describe(ids: &[String]) -> String {
    let mut text = format!("signing with key {}", ids[0]);
    if ids.len() > 1 {
        text.push_str(&format!(
            "; earlier keys {} still verify",
            ids[1..].join(", ")
        ));
    }
    text
}

/// A key's public name: the first 8 hex digits of its SHA-256, so that operators can see that
/// nodes agree without seeing the key.
fn key_id(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A key for one run of a command-line tool, which signs nothing and never writes a key file.
pub(crate) fn ephemeral() -> hmac::Key {
    key_from_bytes(&random_bytes())
}

/// The key in `DATA_DIR/signing.key`, if there is one.
pub fn load(data_dir: &Path) -> Result<Option<hmac::Key>, String> {
    let path = data_dir.join("signing.key");
    match fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => {
            if let Ok(meta) = fs::metadata(&path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    log::warn!(
                        "{} is readable by other users; run chmod 600 on it",
                        path.display()
                    );
                }
            }
            Ok(Some(key_from_bytes(&bytes)))
        }
        Ok(_) => Err(format!("{} is damaged: expected 32 bytes", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    bytes
}

/// The URL-signing key: 32 random bytes in `DATA_DIR/signing.key`, mode 0600. Only `serve`
/// makes one, and only when nothing signed with an earlier key can be in use: a new key voids
/// every open upload URL and every password cookie, so a folder restored without its key is
/// refused with what the key is for rather than silently given a new one.
pub(crate) fn load_or_create(data_dir: &Path, db: &Db) -> Result<hmac::Key, String> {
    let path = data_dir.join("signing.key");
    if let Some(key) = load(data_dir)? {
        return Ok(key);
    }
    let (open_urls, protected): (i64, i64) = db
        .blocking(|c| {
            Ok::<_, crate::db::sql::Error>((
                c.row::<i64>(
                    "SELECT count(*) FROM uploads WHERE completed_at IS NULL AND expires_at > ?1",
                    crate::args![crate::time::now_ms()],
                    |r| r.get(0),
                )? + i64::from(crate::db::uploads::signed_until(c)? > crate::time::now_ms()),
                c.row(
                    "SELECT count(*) FROM videos WHERE password_hash IS NOT NULL",
                    &[],
                    |r| r.get(0),
                )?,
            ))
        })
        .map_err(|e| format!("cannot read the database: {e}"))?;
    if open_urls > 0 || protected > 0 {
        return Err(format!(
            "{} is missing. It signs upload URLs ({open_urls} still open, or some) and the password \
             cookies of protected videos ({protected}) in this database, and a new key would void \
             them all. Restore signing.key from the backup this folder came from; to void them \
             and go on, make a new key yourself: head -c 32 /dev/urandom > {0} && chmod 600 {0}{1}",
            path.display(),
            if db.is_postgres() {
                ". With PostgreSQL, several nodes share these records: give every node the same \
                 key instead (FLARE_SIGNING_KEY or signing_key_file)"
            } else {
                ""
            }
        ));
    }
    let bytes = random_bytes();
    // Written whole under a temporary name, then linked into place: link() fails if another
    // process made the key first, and then both use that one.
    let tmp = data_dir.join(format!("signing.key.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        match fs::hard_link(&tmp, &path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        fs::File::open(data_dir)?.sync_all()
    };
    let written = write();
    let _ = fs::remove_file(&tmp);
    written.map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    log::info!("created a new URL-signing key in {}", path.display());
    load(data_dir)?.ok_or_else(|| format!("{} vanished after it was created", path.display()))
}
