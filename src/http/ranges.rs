//! HTTP `Range` and conditional requests (RFC 9110 §13–14) for one stored object. Pure, no IO.

use actix_web::http::header::{self, HeaderMap, HttpDate};
use std::str::FromStr;
use std::time::SystemTime;

/// What to send for a `Range` header against an object of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No usable Range: 200 with the whole object (a malformed or multi-range header is ignored,
    /// as RFC 9110 §14.2 allows).
    Full,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

pub fn parse_range(header: &str, size: u64) -> RangeAnswer {
    let Some(spec) = header
        .trim()
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| header.trim()[6..].trim())
    else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    match (digits(first), digits(last)) {
        // bytes=-N: the last N bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || size == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial {
                    start: size - n.min(size),
                    end: size - 1,
                }
            }
        }
        // bytes=N-
        (Some(start), None) if last.is_empty() => {
            if start >= size {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial {
                    start,
                    end: size - 1,
                }
            }
        }
        // bytes=N-M
        (Some(start), Some(end)) if start <= end => {
            if start >= size {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial {
                    start,
                    end: end.min(size - 1),
                }
            }
        }
        _ => RangeAnswer::Full,
    }
}

/// A non-empty run of ASCII digits; numbers too large for u64 saturate, which still means
/// "past any end" for a first position and "to the end" for a last one.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// The validators of one stored object.
pub(crate) struct Validators {
    /// Quoted strong entity tag, e.g. `"1a2b-3c"`.
    pub etag: String,
    /// Whole seconds, as HTTP dates carry.
    pub last_modified: SystemTime,
    /// Whether no two versions of the object can carry one date: true on disk, where
    /// publication gives a replacing object a later second; false in a bucket, whose store sets
    /// the date. When false, `If-Range` with a date never matches (the whole object is sent).
    pub date_is_strong: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// 412 Precondition Failed: `If-Match` or `If-Unmodified-Since` did not hold.
    Failed,
    /// 304 Not Modified.
    NotModified,
    /// Send the object; `use_range` is false when `If-Range` did not match.
    Send { use_range: bool },
}

/// Evaluates the conditional headers of a GET or HEAD in the order RFC 9110 §13.2.2 gives:
/// `If-Match`, else `If-Unmodified-Since` (412 when false); `If-None-Match`, else
/// `If-Modified-Since` (304 when false); then `If-Range`. `now` is the response's `Date`.
pub(crate) fn evaluate(headers: &HeaderMap, v: &Validators, now: SystemTime) -> Precondition {
    if let Some(im) = header_str(headers, &header::IF_MATCH) {
        // Strong comparison (§13.1.1): a weak tag never matches.
        if !(im == "*" || im.split(',').any(|t| t.trim() == v.etag)) {
            return Precondition::Failed;
        }
    } else if let Some(ius) = header_str(headers, &header::IF_UNMODIFIED_SINCE) {
        if let Ok(since) = HttpDate::from_str(ius) {
            if v.last_modified > SystemTime::from(since) {
                return Precondition::Failed;
            }
        }
    }
    if let Some(inm) = header_str(headers, &header::IF_NONE_MATCH) {
        if etag_list_matches(inm, &v.etag) {
            return Precondition::NotModified;
        }
    } else if let Some(ims) = header_str(headers, &header::IF_MODIFIED_SINCE) {
        if let Ok(since) = HttpDate::from_str(ims) {
            if v.last_modified <= SystemTime::from(since) {
                return Precondition::NotModified;
            }
        }
    }
    let use_range = match header_str(headers, &header::IF_RANGE) {
        None => true,
        Some(cond) if cond.starts_with('"') || cond.starts_with("W/") => {
            // If-Range needs a strong match; a weak tag never matches.
            cond == v.etag
        }
        // A date is a strong validator only when it is at least a second older than the
        // response's Date (§13.1.5, §8.8.2.2): an object replaced within the same second could
        // otherwise carry the same date, and a resuming client would splice old and new bytes.
        // (Publication also gives a replacing object a later second than the one it replaces.)
        Some(cond) => HttpDate::from_str(cond)
            .map(|d| {
                v.date_is_strong
                    && SystemTime::from(d) == v.last_modified
                    && v.last_modified + std::time::Duration::from_secs(1) <= now
            })
            .unwrap_or(false),
    };
    Precondition::Send { use_range }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|h| h.to_str().ok())
        .map(str::trim)
}

/// `*` or a comma-separated list of entity tags; weak comparison strips `W/`.
fn etag_list_matches(list: &str, etag: &str) -> bool {
    if list == "*" {
        return true;
    }
    let bare = |t: &str| {
        let t = t.trim();
        t.strip_prefix("W/").unwrap_or(t).to_string()
    };
    list.split(',')
        .any(|candidate| bare(candidate) == bare(etag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};
    use std::time::{Duration, UNIX_EPOCH};
    use RangeAnswer::*;

    #[test]
    fn ranges_against_a_1000_byte_object() {
        let cases = [
            ("bytes=0-1", Partial { start: 0, end: 1 }),
            ("bytes=0-0", Partial { start: 0, end: 0 }),
            (
                "bytes=-500",
                Partial {
                    start: 500,
                    end: 999,
                },
            ),
            ("bytes=-5000", Partial { start: 0, end: 999 }),
            (
                "bytes=990-",
                Partial {
                    start: 990,
                    end: 999,
                },
            ),
            (
                "bytes=500-99999",
                Partial {
                    start: 500,
                    end: 999,
                },
            ),
            (
                "bytes=999-999",
                Partial {
                    start: 999,
                    end: 999,
                },
            ),
            ("BYTES=1-2", Partial { start: 1, end: 2 }),
            ("bytes= 1-2 ", Partial { start: 1, end: 2 }),
            (
                "bytes=0-99999999999999999999999",
                Partial { start: 0, end: 999 },
            ),
            ("bytes=1000-", Unsatisfiable),
            ("bytes=1000-1001", Unsatisfiable),
            ("bytes=99999999999999999999999-", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=5-1", Full),
            ("bytes=0-1,5-6", Full),
            ("bytes=abc", Full),
            ("bytes=-", Full),
            ("bytes=", Full),
            ("bytes=1", Full),
            ("bytes=--1", Full),
            ("bytes=+1-2", Full),
            ("items=0-1", Full),
            ("", Full),
        ];
        for (header, want) in cases {
            assert_eq!(parse_range(header, 1000), want, "{header}");
        }
    }

    #[test]
    fn an_empty_object_satisfies_no_range() {
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-1", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn conditionals_follow_rfc_9110_order() {
        let lm = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let v = Validators {
            etag: "\"abc\"".into(),
            last_modified: lm,
            date_is_strong: true,
        };
        let date = HttpDate::from(lm).to_string();
        let earlier = HttpDate::from(lm - Duration::from_secs(1)).to_string();
        let now = lm + Duration::from_secs(60);
        let send = Precondition::Send { use_range: true };
        let no_range = Precondition::Send { use_range: false };
        assert_eq!(evaluate(&headers(&[]), &v, now), send);
        assert_eq!(
            evaluate(&headers(&[("if-none-match", "\"abc\"")]), &v, now),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&headers(&[("if-none-match", "W/\"abc\"")]), &v, now),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&headers(&[("if-none-match", "\"x\", \"abc\"")]), &v, now),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&headers(&[("if-none-match", "*")]), &v, now),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&headers(&[("if-none-match", "\"x\"")]), &v, now),
            send
        );
        assert_eq!(
            evaluate(&headers(&[("if-modified-since", &date)]), &v, now),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&headers(&[("if-modified-since", &earlier)]), &v, now),
            send
        );
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            evaluate(
                &headers(&[("if-none-match", "\"x\""), ("if-modified-since", &date)]),
                &v,
                now
            ),
            send
        );
        assert_eq!(
            evaluate(&headers(&[("if-range", "\"abc\"")]), &v, now),
            send
        );
        assert_eq!(
            evaluate(&headers(&[("if-range", "W/\"abc\"")]), &v, now),
            no_range
        );
        assert_eq!(
            evaluate(&headers(&[("if-range", "\"old\"")]), &v, now),
            no_range
        );
        assert_eq!(evaluate(&headers(&[("if-range", &date)]), &v, now), send);
        assert_eq!(
            evaluate(&headers(&[("if-range", &earlier)]), &v, now),
            no_range
        );
        // A date within a second of the response's Date is weak: no range on it.
        assert_eq!(
            evaluate(
                &headers(&[("if-range", &date)]),
                &v,
                lm + Duration::from_millis(900)
            ),
            no_range
        );
        // If-Match and If-Unmodified-Since: 412 when they do not hold, If-Match first.
        let failed = Precondition::Failed;
        assert_eq!(
            evaluate(&headers(&[("if-match", "\"abc\"")]), &v, now),
            send
        );
        assert_eq!(
            evaluate(&headers(&[("if-match", "\"x\", \"abc\"")]), &v, now),
            send
        );
        assert_eq!(evaluate(&headers(&[("if-match", "*")]), &v, now), send);
        assert_eq!(
            evaluate(&headers(&[("if-match", "\"x\"")]), &v, now),
            failed
        );
        assert_eq!(
            evaluate(&headers(&[("if-match", "W/\"abc\"")]), &v, now),
            failed
        );
        assert_eq!(
            evaluate(&headers(&[("if-unmodified-since", &date)]), &v, now),
            send
        );
        assert_eq!(
            evaluate(&headers(&[("if-unmodified-since", &earlier)]), &v, now),
            failed
        );
        assert_eq!(
            evaluate(
                &headers(&[("if-match", "\"abc\""), ("if-unmodified-since", &earlier)]),
                &v,
                now
            ),
            send,
            "If-Match wins over If-Unmodified-Since"
        );
    }
}
