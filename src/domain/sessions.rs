//! The in-process side of resumable sessions, apart from the protocol (`resumable`): which
//! request holds each upload and each session's running SHA-256 (`Sessions`, held by
//! `AppState`), and what a restart does about sessions a crash interrupted (`reconcile`). It
//! imports no `state`, so `state` can hold it.

use ring::digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::db;
use crate::error::ApiError;
use crate::storage::Storage;
use crate::time::now_ms;

/// How long a request waits for the one holding its upload to let go before answering 423.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// At start-up, before serving: sessions whose part file lost bytes a crash took (shorter than
/// the recorded offset) are ended, as the draft asks, and part files with no session are removed.
/// Blocking. Returns (sessions ended, files removed).
pub(crate) fn reconcile(db: &db::Db, storage: &Storage) -> Result<(usize, usize), String> {
    let sessions = db
        .blocking(|c| db::uploads::sessions(c, None))
        .map_err(|e| format!("cannot read the database: {e}"))?;
    let io = |e: std::io::Error| format!("cannot check resumable uploads' part files: {e}");
    let mut ended = 0;
    for row in &sessions {
        let offset = row.session.as_ref().map_or(0, |s| s.offset);
        let expired = row.session.as_ref().is_some_and(|s| s.until <= now_ms());
        // A session kept in the bucket has no part file here, and may be another node's.
        let stored = row.session.as_ref().and_then(|s| s.stored.as_deref());
        let lost = match (storage.bucket(), stored) {
            (Some(_), Some(_)) => false,
            _ => storage.part_len(&row.id).map_err(io)?.unwrap_or(0) < offset,
        };
        if expired || lost {
            db.blocking(|c| db::uploads::end_session(c, &row.id))
                .map_err(|e| format!("cannot update the database: {e}"))?;
            storage
                .remove_session(&row.video_id, &row.id, stored)
                .map_err(|e| format!("cannot remove an ended upload's bytes: {e}"))?;
            ended += 1;
        }
    }
    let live: std::collections::HashSet<&str> = sessions.iter().map(|r| r.id.as_str()).collect();
    let mut removed = 0;
    for id in storage.part_ids().map_err(io)? {
        if !live.contains(id.as_str()) {
            storage.remove_part(&id).map_err(io)?;
            removed += 1;
        }
    }
    Ok((ended, removed))
}

/// Which uploads have a request running in this process, and each session's running SHA-256.
#[derive(Default)]
pub struct Sessions {
    slots: Mutex<HashMap<String, Slot>>,
}

#[derive(Default)]
struct Slot {
    held: Option<Arc<Held>>,
    /// The whole upload's SHA-256 state at an offset, kept between requests (after a restart it
    /// is rebuilt from the part file, once).
    hasher: Option<(u64, digest::Context)>,
}

pub(crate) struct Held {
    /// Asks the holder to stop reading and let go.
    pub(crate) stop: CancellationToken,
    /// Cancelled when the holder has let go.
    released: CancellationToken,
}

/// The right to touch one upload; let go on drop.
pub(crate) struct Lease<'a> {
    sessions: &'a Sessions,
    id: String,
    pub(crate) held: Arc<Held>,
}

impl Sessions {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the upload, asking any request holding it to stop first: a client that lost its
    /// connection and resumes is not locked out by its own dead request. 423 if the holder does
    /// not let go within `RELEASE_WAIT`.
    pub(crate) async fn acquire(&self, id: &str) -> Result<Lease<'_>, ApiError> {
        let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
        loop {
            let holder = match self.try_acquire(id) {
                Some(lease) => return Ok(lease),
                None => self.slots().get(id).and_then(|s| s.held.clone()),
            };
            if let Some(holder) = holder {
                holder.stop.cancel();
                if tokio::time::timeout_at(deadline, holder.released.cancelled())
                    .await
                    .is_err()
                {
                    return Err(ApiError::UploadLocked);
                }
            }
        }
    }

    /// Takes the upload if no request holds it.
    pub(crate) fn try_acquire(&self, id: &str) -> Option<Lease<'_>> {
        let mut slots = self.slots();
        let slot = slots.entry(id.to_string()).or_default();
        if slot.held.is_some() {
            return None;
        }
        let held = Arc::new(Held {
            stop: CancellationToken::new(),
            released: CancellationToken::new(),
        });
        slot.held = Some(held.clone());
        Some(Lease {
            sessions: self,
            id: id.to_string(),
            held,
        })
    }

    /// The running SHA-256 if it is at `offset`.
    pub(crate) fn hasher(&self, id: &str, offset: u64) -> Option<digest::Context> {
        let slots = self.slots();
        match slots.get(id).and_then(|s| s.hasher.as_ref()) {
            Some((at, h)) if *at == offset => Some(h.clone()),
            _ => None,
        }
    }

    pub(crate) fn set_hasher(&self, id: &str, offset: u64, hasher: digest::Context) {
        self.slots().entry(id.to_string()).or_default().hasher = Some((offset, hasher));
    }

    pub(crate) fn forget(&self, id: &str) {
        if let Some(slot) = self.slots().get_mut(id) {
            slot.hasher = None;
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut slots = self.sessions.slots();
        if let Some(slot) = slots.get_mut(&self.id) {
            if slot
                .held
                .as_ref()
                .is_some_and(|h| Arc::ptr_eq(h, &self.held))
            {
                slot.held = None;
            }
            if slot.held.is_none() && slot.hasher.is_none() {
                slots.remove(&self.id);
            }
        }
        self.held.released.cancel();
    }
}
