//! Random ids for tokens, videos, uploads and temp files.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

/// `prefix` followed by `bytes` (at most 64) random bytes in base64url: ids for tokens, videos
/// and uploads.
pub(crate) fn random_id(rng: &SystemRandom, prefix: &str, bytes: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + bytes * 4 / 3 + 3);
    id.push_str(prefix);
    push_random(rng, &mut id, bytes);
    id
}

/// Appends `bytes` (at most 64) random bytes, base64url-encoded.
fn push_random(rng: &SystemRandom, out: &mut String, bytes: usize) {
    let mut buf = [0u8; 64];
    let buf = &mut buf[..bytes];
    rng.fill(buf).expect("the system random source failed");
    URL_SAFE_NO_PAD.encode_string(buf, out);
}

/// `random_id` led by the time in hex, so ids made later sort later: new rows land at the end
/// of the id index instead of on a random page of it, and a batch of inserts shares pages.
pub(crate) fn time_ordered_id(
    rng: &SystemRandom,
    prefix: &str,
    bytes: usize,
    now_ms: i64,
) -> String {
    use std::fmt::Write;
    let mut id = String::with_capacity(prefix.len() + 12 + bytes * 4 / 3 + 3);
    let _ = write!(id, "{prefix}{:012x}", now_ms.max(0));
    push_random(rng, &mut id, bytes);
    id
}

/// The time (ms) a `time_ordered_id` with `prefix` was made at.
pub(crate) fn time_of(id: &str, prefix: &str) -> Option<i64> {
    let hex = id.strip_prefix(prefix)?.get(..12)?;
    i64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_sort_by_time_and_stay_distinct() {
        let rng = SystemRandom::new();
        let a = time_ordered_id(&rng, "up_", 9, 1_700_000_000_000);
        let b = time_ordered_id(&rng, "up_", 9, 1_700_000_000_001);
        let c = time_ordered_id(&rng, "up_", 9, 1_700_000_000_001);
        assert!(a < b && a < c, "{a} {b} {c}");
        assert_ne!(b, c);
        assert!(a.starts_with("up_018bcfe56800"), "{a}");
        assert_eq!(a.len(), "up_".len() + 12 + 12);
        assert_eq!(time_of(&a, "up_"), Some(1_700_000_000_000));
        assert_eq!(time_of("up_zz", "up_"), None);
    }
}
