//! Per-account request limits (`rate_limit` requests per minute), in process: a token bucket per
//! key that holds up to one minute's allowance and refills continuously.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets idle this long are forgotten (they would be full again anyway).
const IDLE: Duration = Duration::from_secs(120);

#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one request from `key`'s allowance of `per_minute`; `Err(seconds)` to wait when
    /// none is left.
    pub fn check(&self, key: &str, per_minute: i64) -> Result<(), u64> {
        if per_minute <= 0 {
            return Ok(());
        }
        let cap = per_minute as f64;
        let per_sec = cap / 60.0;
        let now = Instant::now();
        let Ok(mut map) = self.buckets.lock() else {
            return Ok(());
        };
        if map.len() > 10_000 {
            map.retain(|_, (_, at)| now.duration_since(*at) < IDLE);
        }
        let (tokens, at) = map.entry(key.to_owned()).or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_sec).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_allowance_then_refuses() {
        let l = RateLimiter::new();
        for _ in 0..3 {
            assert!(l.check("a", 3).is_ok());
        }
        let wait = l.check("a", 3).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(l.check("b", 3).is_ok(), "keys are independent");
        assert!(l.check("c", 0).is_ok(), "0 = unlimited");
    }
}
