//! Signed upload URLs: the canonical string, signing and verification. Pure functions, no IO.
//!
//! Why this shape:
//! - Every value that decides what a PUT may do is in the URL and under the HMAC, so a refused URL
//!   costs no database read, and nothing can be changed without breaking the signature.
//! - Each field is length-prefixed in the canonical string, so no value can move bytes into its
//!   neighbour (`type=video/mp4\n5` cannot pose as a different `limit`).
//! - Values are signed as they arrive (after percent-decoding), not re-formatted, so `limit=0100`
//!   is a different string from `limit=100` and fails.
//! - The string starts with a version tag, so a future scheme cannot be confused with this one.
//! - Verification uses `ring::hmac::verify`, which compares in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

const VERSION: &str = "FLARE-UPLOAD-V1";

/// What a signed upload URL allows: one PUT of at most `limit` bytes of `content_type` to one
/// object, until `expires`, on behalf of the upload row `upload_id` minted by token `token_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadGrant {
    pub video_id: String,
    pub file_name: String,
    /// Unix seconds.
    pub expires: i64,
    pub content_type: String,
    pub limit: u64,
    /// The body must be exactly `limit` bytes (a `size` was declared at presign).
    pub exact: bool,
    pub upload_id: String,
    pub token_id: String,
    /// A resumable URL (Unix seconds): the session may go on until then, through every method
    /// of tus and the IETF draft, while `expires` is the deadline to start it. `None`: a PUT URL.
    pub resumable_until: Option<i64>,
}

/// The query parameters of a signed URL, in the order they are written; `resumable` only on a
/// resumable URL.
const PARAMS: [&str; 8] = [
    "upload",
    "token",
    "expires",
    "type",
    "limit",
    "exact",
    "resumable",
    "sig",
];

/// The methods a resumable URL takes (tus and the IETF draft); a PUT URL takes only `PUT`.
pub const RESUMABLE_METHODS: [&str; 6] = ["POST", "HEAD", "GET", "PATCH", "DELETE", "PUT"];

impl UploadGrant {
    /// Appends the path the URL points at. Names were validated at presign; they are still
    /// percent-encoded here because a file name may hold spaces or non-ASCII letters.
    fn push_path(&self, out: &mut String) {
        out.push_str("/upload/");
        out.extend(encode(&self.video_id));
        out.push_str("/composite/");
        out.extend(encode(&self.file_name));
    }

    /// The path and query of the signed URL. Built in one buffer: it runs on every presign.
    pub fn sign(&self, key: &hmac::Key) -> String {
        let (expires, limit) = (self.expires.to_string(), self.limit.to_string());
        let until = self.resumable_until.map(|u| u.to_string());
        let mut values = vec![
            self.upload_id.as_str(),
            &self.token_id,
            &expires,
            &self.content_type,
            &limit,
            if self.exact { "1" } else { "0" },
        ];
        values.extend(until.as_deref());
        let tag = hmac::sign(
            key,
            &canonical(&self.video_id, &self.file_name, until.is_some(), &values),
        );
        let mut url = String::with_capacity(256);
        self.push_path(&mut url);
        for (i, (name, value)) in PARAMS.iter().zip(values).enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(name);
            url.push('=');
            url.extend(encode(value));
        }
        url.push_str("&sig=");
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut url);
        url
    }
}

/// `FLARE-UPLOAD-V1`, the method class (`PUT`, or `RESUMABLE`), the object's names, then each
/// signed query value, each length-prefixed.
fn canonical(video_id: &str, file_name: &str, resumable: bool, values: &[&str]) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::with_capacity(256);
    let mut push = |v: &str| {
        let _ = write!(out, "{}", v.len());
        out.push(b':');
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    };
    push(VERSION);
    push(if resumable { "RESUMABLE" } else { "PUT" });
    push(video_id);
    push(file_name);
    for v in values {
        push(v);
    }
    out
}

/// Why a URL was refused before its signature could even be checked, or after.
#[derive(Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// Malformed, missing, duplicated or unknown parameter, or a wrong signature.
    Mismatch(&'static str),
    Expired,
    /// A resumable URL past its window (`resumable_until`).
    SessionExpired,
}

/// Checks a PUT's method, object names and decoded query pairs against the signature, then the
/// expiry. `now` is Unix seconds.
pub fn verify(
    keys: &[hmac::Key],
    method: &str,
    video_id: &str,
    file_name: &str,
    query: &[(String, String)],
    now: i64,
) -> Result<UploadGrant, VerifyError> {
    use VerifyError::Mismatch;
    let mut found: [Option<&str>; PARAMS.len()] = [None; PARAMS.len()];
    for (name, value) in query {
        let slot = PARAMS
            .iter()
            .position(|p| p == name)
            .ok_or(Mismatch("the URL carries a parameter that was not signed"))?;
        if found[slot].replace(value).is_some() {
            return Err(Mismatch("a parameter appears twice"));
        }
    }
    let [Some(upload), Some(token), Some(expires), Some(ctype), Some(limit), Some(exact), until, Some(sig)] =
        found
    else {
        return Err(Mismatch("a signed parameter is missing"));
    };
    // The method class is signed: a PUT URL takes only PUT, a resumable URL only its protocols'.
    match until {
        None if method != "PUT" => return Err(Mismatch("the URL was signed for PUT")),
        Some(_) if !RESUMABLE_METHODS.contains(&method) => {
            return Err(Mismatch(
                "a resumable upload URL takes POST, HEAD, PATCH, DELETE, PUT or OPTIONS",
            ))
        }
        _ => {}
    }
    let tag = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| Mismatch("the signature is not valid base64url"))?;
    let mut values = vec![upload, token, expires, ctype, limit, exact];
    values.extend(until);
    let message = canonical(video_id, file_name, until.is_some(), &values);
    // Each key that may have signed it: the operator's current one, then earlier ones.
    if !keys
        .iter()
        .any(|key| hmac::verify(key, &message, &tag).is_ok())
    {
        return Err(Mismatch(
            "the URL was changed or was not signed by this server",
        ));
    }

    // Signed by us, so these parse; a failure here means a bug or a changed key format.
    let grant = UploadGrant {
        video_id: video_id.to_string(),
        file_name: file_name.to_string(),
        expires: expires.parse().map_err(|_| Mismatch("bad expires"))?,
        content_type: ctype.to_string(),
        limit: limit.parse().map_err(|_| Mismatch("bad limit"))?,
        exact: exact == "1",
        upload_id: upload.to_string(),
        token_id: token.to_string(),
        resumable_until: until
            .map(|u| u.parse().map_err(|_| Mismatch("bad resumable")))
            .transpose()?,
    };
    match grant.resumable_until {
        // A resumable URL's start deadline depends on whether its session began: the caller
        // checks `expires` against the upload's row.
        Some(until) if now >= until => return Err(VerifyError::SessionExpired),
        Some(_) => {}
        None if now >= grant.expires => return Err(VerifyError::Expired),
        None => {}
    }
    Ok(grant)
}

pub fn key_from_bytes(bytes: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, bytes)
}

const SEGMENT_SAFE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub(crate) fn encode_segment(s: &str) -> String {
    encode(s).collect()
}

fn encode(s: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(s, SEGMENT_SAFE)
}

/// Splits a raw query string into decoded pairs, keeping duplicates and order so that
/// `verify` can refuse them. A `+` is a literal plus: these URLs never encode spaces as `+`.
pub fn parse_query(raw: &str) -> Result<Vec<(String, String)>, VerifyError> {
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| VerifyError::Mismatch("a parameter is not valid UTF-8"))
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> UploadGrant {
        UploadGrant {
            video_id: "vid_1".into(),
            file_name: "my demo.mp4".into(),
            expires: 2_000,
            content_type: "video/mp4".into(),
            limit: 1_000,
            exact: false,
            upload_id: "up_1".into(),
            token_id: "tok_1".into(),
            resumable_until: None,
        }
    }

    fn check(
        key: &hmac::Key,
        method: &str,
        url: &str,
        now: i64,
    ) -> Result<UploadGrant, VerifyError> {
        let (path, query) = url.split_once('?').unwrap();
        let segs: Vec<String> = path
            .split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            })
            .collect();
        verify(
            std::slice::from_ref(key),
            method,
            &segs[2],
            &segs[4],
            &parse_query(query)?,
            now,
        )
    }

    #[test]
    fn a_signed_url_verifies_and_round_trips() {
        let key = key_from_bytes(b"k");
        let url = grant().sign(&key);
        assert!(
            url.starts_with("/upload/vid_1/composite/my%20demo.mp4?upload=up_1&"),
            "{url}"
        );
        assert_eq!(check(&key, "PUT", &url, 1_000), Ok(grant()));
    }

    #[test]
    fn a_resumable_url_takes_its_methods_until_its_window_ends() {
        let key = key_from_bytes(b"k");
        let resumable = UploadGrant {
            resumable_until: Some(5_000),
            ..grant()
        };
        let url = resumable.sign(&key);
        assert!(url.contains("&resumable=5000&sig="), "{url}");
        for method in RESUMABLE_METHODS {
            // Past `expires` (the start deadline, checked against the row) but in the window.
            assert_eq!(check(&key, method, &url, 3_000), Ok(resumable.clone()));
        }
        assert!(matches!(
            check(&key, "OPTIONS", &url, 1_000),
            Err(VerifyError::Mismatch(_))
        ));
        assert_eq!(
            check(&key, "PATCH", &url, 5_000),
            Err(VerifyError::SessionExpired)
        );
        // Without the class the signature no longer holds, and the window cannot be moved.
        let as_put = url.replace("&resumable=5000", "");
        assert!(matches!(
            check(&key, "PUT", &as_put, 1_000),
            Err(VerifyError::Mismatch(_))
        ));
        let longer = url.replace("resumable=5000", "resumable=9000");
        assert!(matches!(
            check(&key, "PATCH", &longer, 1_000),
            Err(VerifyError::Mismatch(_))
        ));
    }

    #[test]
    fn expiry_is_checked_after_the_signature() {
        let key = key_from_bytes(b"k");
        let url = grant().sign(&key);
        assert_eq!(check(&key, "PUT", &url, 2_000), Err(VerifyError::Expired));
        let moved = url.replace("expires=2000", "expires=9000");
        assert!(matches!(
            check(&key, "PUT", &moved, 2_000),
            Err(VerifyError::Mismatch(_))
        ));
    }

    #[test]
    fn any_change_is_a_mismatch() {
        let key = key_from_bytes(b"k");
        let url = grant().sign(&key);
        let mismatch =
            |u: &str, m: &str| matches!(check(&key, m, u, 1_000), Err(VerifyError::Mismatch(_)));
        assert!(mismatch(&url, "GET"));
        assert!(mismatch(&url.replace("vid_1", "vid_2"), "PUT"));
        assert!(mismatch(&url.replace("my%20demo", "my%20demo2"), "PUT"));
        assert!(mismatch(&url.replace("limit=1000", "limit=01000"), "PUT"));
        assert!(mismatch(&url.replace("limit=1000", "limit=1001"), "PUT"));
        assert!(mismatch(&url.replace("exact=0", "exact=1"), "PUT"));
        assert!(mismatch(&url.replace("video%2Fmp4", "video%2Fwebm"), "PUT"));
        assert!(mismatch(&url.replace("token=tok_1", "token=tok_2"), "PUT"));
        assert!(mismatch(&url.replace("upload=up_1", "upload=up_2"), "PUT"));
        assert!(mismatch(&url.replace("&exact=0", ""), "PUT"));
        assert!(mismatch(&format!("{url}&limit=1000"), "PUT"));
        assert!(mismatch(&format!("{url}&extra=1"), "PUT"));
        // Every single-character change of the signature.
        let (head, sig) = url.rsplit_once("sig=").unwrap();
        for i in 0..sig.len() {
            let mut s = sig.as_bytes().to_vec();
            s[i] = if s[i] == b'A' { b'B' } else { b'A' };
            let tampered = format!("{head}sig={}", String::from_utf8(s).unwrap());
            assert!(
                mismatch(&tampered, "PUT"),
                "signature change at {i} accepted"
            );
        }
        // A PUT URL cannot pose as a resumable one (the method class is signed).
        assert!(mismatch(
            &url.replace("&sig=", "&resumable=9000&sig="),
            "PATCH"
        ));
        assert!(mismatch(
            &url.replace("&sig=", "&resumable=9000&sig="),
            "PUT"
        ));
        let other_key = key_from_bytes(b"another node");
        assert!(matches!(
            check(&other_key, "PUT", &url, 1_000),
            Err(VerifyError::Mismatch(_))
        ));
    }
}
