//! What every handler and command can reach: the settings, the database, the objects, the
//! signing key and the in-process bookkeeping. The bottom of the house: it opens the data folder
//! and imports no HTTP.

use ring::hmac;
use ring::rand::SystemRandom;
use std::sync::Arc;

use crate::config::Settings;
use crate::db::Db;
use crate::domain::in_flight::InFlight;
use crate::domain::throttle::Throttle;
use crate::storage::Storage;

/// What every handler can reach.
pub struct AppState {
    pub settings: Settings,
    /// `public_url`, or `http://` + the bound address; for the command-line tools, the running
    /// server's.
    pub base_url: String,
    /// Where `base_url` and `media_url` came from, for the command-line tools to say.
    pub links_from: String,
    /// `media_url`, or `base_url` + `/media`.
    pub media_url: String,
    pub db: Db,
    pub storage: Arc<Storage>,
    /// Every key that verifies: the one that signs first (`signing_key`), then the operator's
    /// earlier keys. Never empty.
    pub verifying_keys: Vec<hmac::Key>,
    pub rng: SystemRandom,
    pub in_flight: InFlight,
    /// The database's `signed_until` as last seen: a presign without a size whose URL would
    /// outlive it raises it first (`domain::uploads::presign`).
    pub signed_until: std::sync::atomic::AtomicI64,
    /// Resumable uploads with a request running, and their running digests.
    pub sessions: crate::domain::sessions::Sessions,
    pub throttle: Throttle,
    pub tokens: crate::domain::token_cache::TokenCache,
    /// ffmpeg, if found, and the bell of the poster and rendition workers.
    pub media: crate::domain::ffmpeg::MediaJobs,
}

impl AppState {
    /// Opens the data folder: the database (migrated), the signing key (made on first use) and
    /// storage. `addr` is the bound address when serving, for the default public URL. Blocking.
    pub fn open(
        mut settings: Settings,
        addr: Option<std::net::SocketAddr>,
    ) -> Result<AppState, String> {
        let serving = addr.is_some();
        let data_dir = settings.data_dir.clone();
        crate::datadir::ensure(&data_dir, serving)?;
        let db = match &settings.database_url {
            Some(url) => Db::open_url(&url.0)?,
            None => {
                let db_path = data_dir.join("flare.db");
                if !db_path.exists() {
                    crate::datadir::refuse_new_database_beside_objects(&data_dir)?;
                    if !serving {
                        return Err(format!(
                            "there is no flare database in {}: start `flare serve` on it once, \
                             or check --data-dir",
                            crate::datadir::shown(&data_dir)
                        ));
                    }
                }
                crate::datadir::create_private_file(&db_path)
                    .map_err(|e| format!("cannot create {}: {e}", db_path.display()))?;
                Db::open(&db_path)?
            }
        };
        let verifying_keys = if let Some(source) = &settings.signing_keys {
            let (keys, ids) = crate::keys::configured(source)?;
            if serving {
                log::info!("{} (from the settings)", crate::keys::describe(&ids));
            }
            keys
        } else if serving {
            if db.is_postgres() {
                log::warn!(
                    "the records are in PostgreSQL, but upload URLs are signed with this \
                     folder's signing.key: another node would refuse them. For several nodes, \
                     give every one the same key (FLARE_SIGNING_KEY or signing_key_file)"
                );
            }
            vec![crate::keys::load_or_create(&data_dir, &db)?]
        } else {
            // The command-line tools sign nothing: without the key file they use a key of their
            // own for this run, and never write one (fsck reports the missing file).
            vec![crate::keys::load(&data_dir)?.unwrap_or_else(crate::keys::ephemeral)]
        };
        #[cfg(feature = "s3")]
        let bucket = settings
            .s3
            .as_ref()
            .map(crate::storage::Bucket::open)
            .transpose()?;
        #[cfg(not(feature = "s3"))]
        let bucket: Option<crate::storage::Bucket> = None;
        if let Some(bucket) = &bucket {
            if serving {
                log::info!(
                    "objects in S3 bucket {:?}; media jobs work in {}",
                    bucket.name(),
                    data_dir.join("tmp").display()
                );
            }
            // sendfile sends a local file.
            settings.sendfile = false;
        }
        if bucket.is_some() && serving {
            let on_disk = db
                .blocking(|c| crate::db::videos::count_not_in_bucket(c))
                .map_err(|e| format!("cannot read the database: {e}"))?;
            if on_disk > 0 {
                log::warn!(
                    "{on_disk} ready video(s) have their objects in {}, not in the bucket: they \
                     answer 404 until `flare migrate-store` copies them",
                    data_dir.join("objects").display()
                );
            }
        }
        let storage = Storage::open(&data_dir, settings.sync_uploads)
            .map_err(|e| format!("cannot prepare storage in {}: {e}", data_dir.display()))?
            .with_bucket(bucket);
        // The command-line tools build links on what the server running on this folder uses
        // (it may have been given other settings by flag); with none running, on the settings.
        let running = (!serving)
            .then(|| crate::datadir::running_server(&data_dir))
            .flatten();
        let base_url = match (&running, &settings.public_url, addr) {
            (Some(server), _, _) => server.public_url.clone(),
            (None, Some(url), _) => url.clone(),
            (None, None, Some(addr)) => format!("{}://{addr}", settings.scheme()),
            (None, None, None) => format!("{}://{}", settings.scheme(), settings.listen),
        };
        let media_url = match (&running, &settings.media_url) {
            (Some(server), _) => server.media_url.clone(),
            (None, Some(url)) => url.clone(),
            (None, None) => format!("{base_url}/media"),
        };
        let links_from = match &running {
            Some(server) => format!("the running server (pid {})", server.pid),
            None => "the settings (no server is running on this data folder)".into(),
        };
        let settings_for_media = settings.clone();
        Ok(AppState {
            settings,
            links_from,
            base_url,
            media_url,
            db,
            storage: Arc::new(storage),
            verifying_keys,
            rng: SystemRandom::new(),
            in_flight: InFlight::default(),
            signed_until: std::sync::atomic::AtomicI64::new(0),
            sessions: Default::default(),
            throttle: Throttle::default(),
            tokens: Default::default(),
            media: crate::domain::ffmpeg::MediaJobs::new(&settings_for_media),
        })
    }

    /// The key that signs upload URLs and password cookies.
    pub fn signing_key(&self) -> &hmac::Key {
        &self.verifying_keys[0]
    }

    /// Work a stopped server may have left: temp files and half-done deletions. Only before
    /// serving, since a running server's uploads live in `tmp/`. Blocking.
    pub(crate) fn recover(&self) -> Result<(), String> {
        // First the publications a crash interrupted: their staged files are in tmp/, which is
        // swept next.
        let finished = crate::domain::publish::roll_forward(&self.db, &self.storage)?;
        if finished > 0 {
            log::info!("finished {finished} publication(s) interrupted by an earlier stop");
        }
        let swept = self
            .storage
            .sweep_temp()
            .map_err(|e| format!("cannot clear unfinished uploads: {e}"))?;
        if swept > 0 {
            log::info!(
                "removed {swept} unfinished upload(s) or deletion(s) left by an earlier run"
            );
        }
        let (ended, removed) = crate::domain::sessions::reconcile(&self.db, &self.storage)?;
        if ended + removed > 0 {
            log::info!(
                "resumable uploads: ended {ended} session(s) whose window passed or whose bytes a \
                 crash took, removed {removed} part file(s) without a session"
            );
        }
        let requeued = self
            .db
            .blocking(|c| crate::db::jobs::requeue_running(c, crate::time::now_ms()))
            .map_err(|e| format!("cannot read the database: {e}"))?;
        if requeued > 0 {
            log::info!(
                "queued again {requeued} poster or rendition job(s) an earlier stop interrupted"
            );
        }
        let pending: Vec<String> = self
            .db
            .blocking(|c| crate::db::videos::unfinished_deletes(c))
            .map_err(|e| format!("cannot read the database: {e}"))?;
        for id in pending {
            self.storage
                .remove_video(&id)
                .map_err(|e| format!("cannot finish deleting video {id}: {e}"))?;
            self.db
                .blocking(|c| crate::db::videos::finish_delete(c, &id))
                .map_err(|e| format!("cannot finish deleting video {id}: {e}"))?;
            log::info!("finished deleting video {id}, interrupted by an earlier stop");
        }
        Ok(())
    }
}
