//! Slows password guessing: a small token bucket per video and client address. Every check takes
//! a token *before* the password is hashed and a right password gives it back, so concurrent
//! guesses cannot all slip through while the first ones are still being hashed, and a person who
//! mistypes once is never held up. Hashing itself (600,000 PBKDF2 rounds) runs on at most one
//! thread per core (`Throttle::hashing`), so a crowd of guessers cannot take the whole machine.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong guesses allowed in a burst, then one more per `REFILL`.
const BURST: f64 = 5.0;
const REFILL: Duration = Duration::from_secs(12);
/// Beyond this many tracked pairs, full buckets are forgotten.
const MAX_TRACKED: usize = 10_000;

pub struct Throttle {
    buckets: Mutex<HashMap<(String, IpAddr), (f64, Instant)>>,
    /// One permit per core: password hashes computed at once.
    pub hashing: tokio::sync::Semaphore,
}

impl Default for Throttle {
    fn default() -> Throttle {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Throttle {
            buckets: Mutex::default(),
            hashing: tokio::sync::Semaphore::new(cores),
        }
    }
}

impl Throttle {
    /// Takes one guess from this client's bucket for this video; `Err(seconds to wait)` when
    /// none is left. Called before the password is hashed.
    pub fn take(&self, video_id: &str, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED {
            buckets.retain(|_, &mut (tokens, at)| refill(tokens, at, now) < BURST);
        }
        let entry = buckets
            .entry((video_id.to_string(), client))
            .or_insert((BURST, now));
        let tokens = refill(entry.0, entry.1, now);
        entry.1 = now;
        if tokens >= 1.0 {
            entry.0 = tokens - 1.0;
            Ok(())
        } else {
            entry.0 = tokens;
            Err(((1.0 - tokens) * REFILL.as_secs_f64()).ceil() as u64)
        }
    }

    /// Gives back the guess a right password took.
    pub(crate) fn refund(&self, video_id: &str, client: IpAddr) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = buckets.get_mut(&(video_id.to_string(), client)) {
            entry.0 = (entry.0 + 1.0).min(BURST);
        }
    }
}

fn refill(tokens: f64, at: Instant, now: Instant) -> f64 {
    (tokens + now.saturating_duration_since(at).as_secs_f64() / REFILL.as_secs_f64()).min(BURST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_guesses_then_a_wait_per_video_and_client() {
        let t = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let now = Instant::now();
        for _ in 0..5 {
            assert_eq!(t.take("v", a, now), Ok(()));
        }
        assert_eq!(t.take("v", a, now), Err(12));
        assert_eq!(t.take("v", b, now), Ok(()), "another client is not held up");
        assert_eq!(t.take("w", a, now), Ok(()), "another video is not held up");
        assert_eq!(t.take("v", a, now + Duration::from_secs(6)), Err(6));
        assert_eq!(t.take("v", a, now + REFILL), Ok(()));
    }

    #[test]
    fn a_right_password_gives_its_guess_back() {
        let t = Throttle::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..20 {
            assert_eq!(t.take("v", a, now), Ok(()));
            t.refund("v", a);
        }
    }
}
