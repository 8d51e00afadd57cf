//! Slows password guessing: a small token bucket per video and client address. Only wrong
//! passwords take from it, so a person who mistypes once is never held up.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong guesses allowed in a burst, then one more per `REFILL`.
const BURST: f64 = 5.0;
const REFILL: Duration = Duration::from_secs(12);
/// Beyond this many tracked pairs, full buckets are forgotten.
const MAX_TRACKED: usize = 10_000;

#[derive(Default)]
pub struct Throttle {
    buckets: Mutex<HashMap<(String, IpAddr), (f64, Instant)>>,
}

impl Throttle {
    /// `Err(seconds to wait)` when this client has no guesses left for this video.
    pub fn check(&self, video_id: &str, client: IpAddr, now: Instant) -> Result<(), u64> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match buckets.get(&(video_id.to_string(), client)) {
            Some(&(tokens, at)) => {
                let tokens = refill(tokens, at, now);
                if tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(((1.0 - tokens) * REFILL.as_secs_f64()).ceil() as u64)
                }
            }
            None => Ok(()),
        }
    }

    /// Records a wrong guess.
    pub fn failed(&self, video_id: &str, client: IpAddr, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED {
            buckets.retain(|_, &mut (tokens, at)| refill(tokens, at, now) < BURST);
        }
        let entry = buckets
            .entry((video_id.to_string(), client))
            .or_insert((BURST, now));
        entry.0 = (refill(entry.0, entry.1, now) - 1.0).max(0.0);
        entry.1 = now;
    }
}

fn refill(tokens: f64, at: Instant, now: Instant) -> f64 {
    (tokens + now.saturating_duration_since(at).as_secs_f64() / REFILL.as_secs_f64()).min(BURST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_wrong_guesses_then_a_wait_per_video_and_client() {
        let t = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let now = Instant::now();
        for _ in 0..5 {
            assert_eq!(t.check("v", a, now), Ok(()));
            t.failed("v", a, now);
        }
        assert_eq!(t.check("v", a, now), Err(12));
        assert_eq!(
            t.check("v", b, now),
            Ok(()),
            "another client is not held up"
        );
        assert_eq!(t.check("w", a, now), Ok(()), "another video is not held up");
        assert_eq!(t.check("v", a, now + Duration::from_secs(6)), Err(6));
        assert_eq!(t.check("v", a, now + REFILL), Ok(()));
    }
}
