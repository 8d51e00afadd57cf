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

pub(crate) const PREFIX: &str = "flr_pat_";
const SECRET_BYTES: usize = 32;
/// Length of the base64url text of `SECRET_BYTES` bytes.
const SECRET_CHARS: usize = 43;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    VideosRead,
    VideosWrite,
    UploadsWrite,
    EmbedsWrite,
    /// `/api/webhooks`: add, list and delete webhooks, read their deliveries.
    WebhooksWrite,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::VideosRead,
        Scope::VideosWrite,
        Scope::UploadsWrite,
        Scope::EmbedsWrite,
        Scope::WebhooksWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::VideosRead => "videos:read",
            Scope::VideosWrite => "videos:write",
            Scope::UploadsWrite => "uploads:write",
            Scope::EmbedsWrite => "embeds:write",
            Scope::WebhooksWrite => "webhooks:write",
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
pub(crate) fn scopes_from_text(text: &str) -> Vec<Scope> {
    text.split_whitespace()
        .filter_map(|s| Scope::parse(s).ok())
        .collect()
}

pub(crate) fn scopes_to_text(scopes: &[Scope]) -> String {
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
pub(crate) type TokenHash = [u8; 32];

pub fn hash(token: &str) -> TokenHash {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A new token and its hash.
pub(crate) fn generate(rng: &SystemRandom) -> (Secret, TokenHash) {
    let mut bytes = [0u8; SECRET_BYTES];
    rng.fill(&mut bytes)
        .expect("the system random source failed");
    let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let h = hash(&token);
    (Secret(token), h)
}

/// Whether a presented string has the shape of a token; lets junk be refused before any lookup.
pub(crate) fn well_formed(token: &str) -> bool {
    token.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == SECRET_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            text,
            "videos:read videos:write uploads:write embeds:write webhooks:write"
        );
        assert_eq!(scopes_from_text(&text), Scope::ALL.to_vec());
        assert!(Scope::parse("videos:admin")
            .unwrap_err()
            .contains("uploads:write"));
    }
}
