//! Personal access tokens: the `flr_pat_` format, generation, hashing and scopes.
//!
//! A token is `flr_pat_` followed by 32 random bytes (256 bits) in unpadded base64url. Only its
//! SHA-256 is stored: a fast hash is enough because the secret has full entropy, so there is
//! nothing for a slow hash to protect against. Each token also has a short public id
//! (`tok_…`, not derived from the secret) for `list` and `revoke`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;

pub const PREFIX: &str = "flr_pat_";
const SECRET_BYTES: usize = 32;
/// Length of the base64url text of `SECRET_BYTES` bytes.
const SECRET_CHARS: usize = 43;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    VideosRead,
    VideosWrite,
    UploadsWrite,
    EmbedsWrite,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::VideosRead,
        Scope::VideosWrite,
        Scope::UploadsWrite,
        Scope::EmbedsWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::VideosRead => "videos:read",
            Scope::VideosWrite => "videos:write",
            Scope::UploadsWrite => "uploads:write",
            Scope::EmbedsWrite => "embeds:write",
        }
    }

    pub fn parse(text: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown scope `{text}`; the scopes are: {}",
                    Scope::ALL.map(Scope::as_str).join(", ")
                )
            })
    }
}

/// Scopes as stored: space-separated names. Unknown names (from a newer flare) are skipped.
pub fn scopes_from_text(text: &str) -> Vec<Scope> {
    text.split_whitespace()
        .filter_map(|s| Scope::parse(s).ok())
        .collect()
}

pub fn scopes_to_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A secret value whose `Debug` never shows it, so it cannot reach a log by accident.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The SHA-256 of a token's full text: the only form in which it is stored.
pub type TokenHash = [u8; 32];

pub fn hash(token: &str) -> TokenHash {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A new token and its hash.
pub fn generate(rng: &SystemRandom) -> (Secret, TokenHash) {
    let mut bytes = [0u8; SECRET_BYTES];
    rng.fill(&mut bytes)
        .expect("the system random source failed");
    let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let h = hash(&token);
    (Secret(token), h)
}

/// Whether a presented string has the shape of a token; lets junk be refused before any lookup.
pub fn well_formed(token: &str) -> bool {
    token.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == SECRET_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// `prefix` followed by `bytes` (at most 64) random bytes in base64url: ids for tokens, videos
/// and uploads.
pub fn random_id(rng: &SystemRandom, prefix: &str, bytes: usize) -> String {
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
pub fn time_ordered_id(rng: &SystemRandom, prefix: &str, bytes: usize, now_ms: i64) -> String {
    use std::fmt::Write;
    let mut id = String::with_capacity(prefix.len() + 12 + bytes * 4 / 3 + 3);
    let _ = write!(id, "{prefix}{:012x}", now_ms.max(0));
    push_random(rng, &mut id, bytes);
    id
}

/// Constant-time equality for secrets and their digests: every byte is looked at whatever the
/// first difference (ring's own helper for this is deprecated; `hmac::verify` covers signatures).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    diff == 0
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
    }

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let rng = SystemRandom::new();
        let (a, ha) = generate(&rng);
        let (b, _) = generate(&rng);
        assert!(well_formed(a.expose()), "{}", a.expose());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(hash(a.expose()), ha);
        assert_eq!(format!("{a:?}"), "[redacted]");
    }

    #[test]
    fn malformed_tokens_are_spotted() {
        assert!(!well_formed("flr_pat_"));
        assert!(!well_formed("flr_pat_short"));
        assert!(!well_formed(&format!("ghp_{}", "a".repeat(43))));
        assert!(!well_formed(&format!("flr_pat_{}!", "a".repeat(42))));
        assert!(well_formed(&format!("flr_pat_{}", "a".repeat(43))));
    }

    #[test]
    fn scopes_round_trip() {
        let text = scopes_to_text(&Scope::ALL);
        assert_eq!(text, "videos:read videos:write uploads:write embeds:write");
        assert_eq!(scopes_from_text(&text), Scope::ALL.to_vec());
        assert!(Scope::parse("videos:admin")
            .unwrap_err()
            .contains("uploads:write"));
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
