//! Per-account request limits (`rate_limit` requests per minute).
//!
//! With Redis configured, every node counts in the same sliding window (two one-minute counters,
//! the previous one weighted by how much of it still overlaps the last 60 s), so a limit holds for
//! the whole cluster. Without Redis, or while Redis does not answer, each node keeps a token bucket
//! per key in process: a limit degrades to per-node, it never stops requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

/// Buckets idle this long are forgotten (they would be full again anyway).
const IDLE: Duration = Duration::from_secs(120);
/// A request never waits longer than this for Redis; it falls back to the local count instead.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failed connection attempt, the next one waits this long (requests meanwhile count locally).
const RECONNECT_AFTER: Duration = Duration::from_secs(2);

/// Sliding-window check in one round trip. Redis' own clock, so nodes need not agree on time.
/// Returns 0 when the request is admitted, otherwise the seconds to wait.
const SLIDING_WINDOW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local win = 60
local w = math.floor(now / win)
local elapsed = now - w * win
local cur_key = KEYS[1] .. ':' .. w
local cur = tonumber(redis.call('GET', cur_key) or '0')
local prev = tonumber(redis.call('GET', KEYS[1] .. ':' .. (w - 1)) or '0')
if prev * (win - elapsed) / win + cur + 1 <= limit then
  redis.call('INCR', cur_key)
  redis.call('EXPIRE', cur_key, 2 * win)
  return 0
end
local wait
if cur + 1 > limit then
  wait = (win - elapsed) + win * (1 - (limit - 1) / cur)
else
  wait = win * (1 - (limit - 1 - cur) / prev) - elapsed
end
return math.max(1, math.ceil(wait))
"#;

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),
}

pub struct RateLimiter {
    local: Mutex<HashMap<String, (f64, Instant)>>,
    redis: Option<Shared>,
}

/// The cluster-wide counter: a lazily (re)connected Redis connection.
struct Shared {
    client: redis::Client,
    prefix: String,
    script: redis::Script,
    conn: tokio::sync::Mutex<Conn>,
}

enum Conn {
    Up(ConnectionManager),
    Down { since: Instant },
    Never,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimiter {
    /// In-process limits only.
    pub fn new() -> Self {
        RateLimiter {
            local: Mutex::new(HashMap::new()),
            redis: None,
        }
    }

    /// Cluster-wide limits in Redis at `url`, under keys named for `deployment` (the nodes of one
    /// deployment share it; others sharing the Redis do not). Connects on first use, so a server
    /// starts (degraded) while Redis is down.
    pub fn with_redis(url: &str, deployment: &str) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url).map_err(RateLimitError::InvalidUrl)?;
        Ok(RateLimiter {
            local: Mutex::new(HashMap::new()),
            redis: Some(Shared {
                client,
                prefix: format!("artstore:{deployment}:rl:"),
                script: redis::Script::new(SLIDING_WINDOW),
                conn: tokio::sync::Mutex::new(Conn::Never),
            }),
        })
    }

    /// Whether a Redis is configured.
    pub fn uses_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// Takes one request from `key`'s allowance of `per_minute`; `Err(seconds)` to wait when
    /// none is left. `per_minute <= 0` means unlimited.
    pub async fn check(&self, key: &str, per_minute: i64) -> Result<(), u64> {
        if per_minute <= 0 {
            return Ok(());
        }
        if let Some(shared) = &self.redis
            && let Some(verdict) = shared.check(key, per_minute).await
        {
            return verdict;
        }
        self.check_local(key, per_minute)
    }

    /// `None` without Redis; otherwise whether Redis answers a PING now.
    pub async fn redis_ok(&self) -> Option<bool> {
        let shared = self.redis.as_ref()?;
        let Some(mut conn) = shared.connection().await else {
            return Some(false);
        };
        let ping = tokio::time::timeout(
            REDIS_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        Some(matches!(ping, Ok(Ok(_))))
    }

    fn check_local(&self, key: &str, per_minute: i64) -> Result<(), u64> {
        let cap = per_minute as f64;
        let per_sec = cap / 60.0;
        let now = Instant::now();
        let Ok(mut map) = self.local.lock() else {
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

impl Shared {
    /// The shared verdict, or `None` when Redis cannot give one in time.
    async fn check(&self, key: &str, per_minute: i64) -> Option<Result<(), u64>> {
        let mut conn = self.connection().await?;
        let mut call = self.script.key(format!("{}{key}", self.prefix));
        call.arg(per_minute);
        match tokio::time::timeout(REDIS_TIMEOUT, call.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(0)) => Some(Ok(())),
            Ok(Ok(wait)) => Some(Err(wait.max(1) as u64)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Redis rate limit check failed; counting in process");
                None
            }
            Err(_) => {
                tracing::warn!("Redis rate limit check timed out; counting in process");
                None
            }
        }
    }

    /// A connection, connecting when there is none and the last failure is old enough.
    async fn connection(&self) -> Option<ConnectionManager> {
        let mut slot = self.conn.lock().await;
        match &*slot {
            Conn::Up(c) => return Some(c.clone()),
            Conn::Down { since } if since.elapsed() < RECONNECT_AFTER => return None,
            _ => {}
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let made = tokio::time::timeout(
            REDIS_TIMEOUT * 4,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await;
        match made {
            Ok(Ok(c)) => {
                tracing::info!("connected to Redis");
                *slot = Conn::Up(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot connect to Redis; rate limits count in process");
                *slot = Conn::Down {
                    since: Instant::now(),
                };
                None
            }
            Err(_) => {
                tracing::warn!("connecting to Redis timed out; rate limits count in process");
                *slot = Conn::Down {
                    since: Instant::now(),
                };
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn allows_the_allowance_then_refuses() {
        let l = RateLimiter::new();
        for _ in 0..3 {
            assert!(l.check("a", 3).await.is_ok());
        }
        let wait = l.check("a", 3).await.unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(l.check("b", 3).await.is_ok(), "keys are independent");
        assert!(l.check("c", 0).await.is_ok(), "0 = unlimited");
    }

    #[tokio::test]
    async fn falls_back_to_process_when_redis_is_down() {
        // Port 1 on loopback: connection refused at once.
        let l = RateLimiter::with_redis("redis://127.0.0.1:1/", "t").unwrap();
        assert_eq!(l.redis_ok().await, Some(false));
        for _ in 0..2 {
            assert!(l.check("k", 2).await.is_ok());
        }
        assert!(l.check("k", 2).await.is_err(), "local count still limits");
    }

    #[test]
    fn bad_url_is_an_error() {
        assert!(matches!(
            RateLimiter::with_redis("http://nope", "t"),
            Err(RateLimitError::InvalidUrl(_))
        ));
    }
}
