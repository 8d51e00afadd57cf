//! Which upload URLs have a PUT in progress in this process.

use std::collections::HashSet;
use std::sync::Mutex;

/// Upload ids with a PUT in progress in this process: a second PUT through the same URL waits
/// for no one and is refused, so one URL can never race itself into storing two objects.
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<String>>);

pub(crate) struct InFlightGuard<'a> {
    set: &'a InFlight,
    id: String,
}

impl InFlight {
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    pub(crate) fn claim(&self, id: &str) -> Option<InFlightGuard<'_>> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(id.to_string()).then(|| InFlightGuard {
            set: self,
            id: id.to_string(),
        })
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        let mut set = self.set.0.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.id);
    }
}
