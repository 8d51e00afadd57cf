//! Video passwords and the access grants they unlock. Pure functions, no IO.
//!
//! A password is stored as `pbkdf2-sha256$ITERATIONS$SALT$HASH` (base64url), never in clear.
//! Knowing it earns an access grant: a cookie value `EXPIRES.SIGNATURE` whose HMAC covers the
//! video id, the expiry and the stored hash, so a grant opens one video only, lapses, and dies
//! when the password changes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hmac, pbkdf2};
use std::num::NonZeroU32;

/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
const ITERATIONS: u32 = 600_000;
const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;
pub(crate) const MAX_PASSWORD_CHARS: usize = 1024;
/// How long an unlocked video stays unlocked in a browser.
pub(crate) const GRANT_SECS: i64 = 24 * 3600;

pub fn hash(rng: &SystemRandom, password: &str) -> String {
    let mut salt = [0u8; SALT_BYTES];
    rng.fill(&mut salt)
        .expect("the system random source failed");
    let mut out = [0u8; HASH_BYTES];
    let iterations = NonZeroU32::new(ITERATIONS).expect("non-zero");
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${ITERATIONS}${}${}",
        URL_SAFE_NO_PAD.encode(salt),
        URL_SAFE_NO_PAD.encode(out)
    )
}

/// Whether `password` matches a stored hash; compared in constant time by ring.
pub fn verify(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(iterations), Ok(salt), Ok(hash)) = (
        iter.parse().ok().and_then(NonZeroU32::new),
        URL_SAFE_NO_PAD.decode(salt),
        URL_SAFE_NO_PAD.decode(hash),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// The name of the cookie that carries the grant for one video (ids are `[A-Za-z0-9_-]`).
pub(crate) fn cookie_name(video_id: &str) -> String {
    format!("flare_access_{video_id}")
}

fn grant_message(video_id: &str, expires: i64, stored_hash: &str) -> Vec<u8> {
    format!("FLARE-ACCESS-V1\n{video_id}\n{expires}\n{stored_hash}").into_bytes()
}

/// A grant for `video_id` valid until `expires` (Unix seconds).
pub fn grant(key: &hmac::Key, video_id: &str, stored_hash: &str, expires: i64) -> String {
    let tag = hmac::sign(key, &grant_message(video_id, expires, stored_hash));
    format!("{expires}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Whether a cookie value is a live grant for this video and this password.
pub(crate) fn check_grant(
    key: &hmac::Key,
    video_id: &str,
    stored_hash: &str,
    value: &str,
    now: i64,
) -> bool {
    let Some((expires, sig)) = value.split_once('.') else {
        return false;
    };
    let (Ok(expires), Ok(tag)) = (expires.parse::<i64>(), URL_SAFE_NO_PAD.decode(sig)) else {
        return false;
    };
    // The signature first, in constant time; then the expiry it vouches for.
    hmac::verify(key, &grant_message(video_id, expires, stored_hash), &tag).is_ok() && now < expires
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let rng = SystemRandom::new();
        let h = hash(&rng, "secret123");
        assert!(h.starts_with("pbkdf2-sha256$600000$"));
        assert!(!h.contains("secret123"));
        assert!(verify(&h, "secret123"));
        assert!(!verify(&h, "secret124"));
        assert!(!verify(&h, ""));
        assert_ne!(h, hash(&rng, "secret123"), "the salt must differ");
        assert!(!verify("pbkdf2-sha256$0$AA$AA", "x"));
        assert!(!verify("garbage", "x"));
    }

    #[test]
    fn a_grant_opens_one_video_until_it_expires_or_the_password_changes() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let g = grant(&key, "vid_a", "hash1", 1_000);
        assert!(check_grant(&key, "vid_a", "hash1", &g, 999));
        assert!(!check_grant(&key, "vid_a", "hash1", &g, 1_000));
        assert!(!check_grant(&key, "vid_b", "hash1", &g, 999));
        assert!(!check_grant(&key, "vid_a", "hash2", &g, 999));
        let moved = g.replacen("1000", "9000", 1);
        assert!(!check_grant(&key, "vid_a", "hash1", &moved, 999));
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"other");
        assert!(!check_grant(&other, "vid_a", "hash1", &g, 999));
        assert!(!check_grant(&key, "vid_a", "hash1", "junk", 999));
    }
}
