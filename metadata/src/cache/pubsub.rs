//! Invalidations between the nodes of a deployment: every change is published on one Redis
//! channel after its transaction commits, and every serving node subscribes and drops what it
//! names. While the subscription is not known to be alive, entries expire after
//! `FALLBACK_TTL`; on every (re)subscription everything is dropped, since changes may have
//! been missed in between.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;

use super::{Caches, Change};

/// Connecting (and subscribing) gives up after this long; the next try follows the backoff.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// A publish waits this long at most: the change is committed either way.
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(250);
/// The subscription is pinged this often, so a silent connection is found out quickly.
const PING_EVERY: Duration = Duration::from_millis(200);
/// Without a pong or a message for this long the subscription counts as lost.
const LIVENESS: Duration = Duration::from_millis(600);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The Redis side of one node: where invalidations go and whether they are arriving.
pub(crate) struct Redis {
    client: redis::Client,
    channel: String,
    publisher: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    subscribed: AtomicBool,
    base: Instant,
    /// Milliseconds after `base` of the last sign of life of the subscription.
    last_ok_ms: AtomicU64,
}

impl Redis {
    pub(crate) fn new(url: &str, deployment: &str) -> Result<Redis, redis::RedisError> {
        Ok(Redis {
            client: redis::Client::open(url)?,
            channel: format!("artstore:{deployment}:invalidate"),
            publisher: tokio::sync::Mutex::new(None),
            subscribed: AtomicBool::new(false),
            base: Instant::now(),
            last_ok_ms: AtomicU64::new(0),
        })
    }

    /// Whether invalidations are arriving now: subscribed, and heard from recently.
    pub(crate) fn live(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
            && self
                .elapsed_ms()
                .saturating_sub(self.last_ok_ms.load(Ordering::Acquire))
                < LIVENESS.as_millis() as u64
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn heard(&self) {
        self.last_ok_ms.store(self.elapsed_ms(), Ordering::Release);
    }

    /// Tells the other nodes; a failure is logged (they then learn of it by their entries'
    /// safety TTL, or at once if their own subscription is down too).
    pub(crate) async fn publish(&self, change: &Change) {
        if let Err(e) = self.try_publish(&change.encode()).await {
            tracing::warn!(error = %e, change = %change.encode(), "cannot publish a cache invalidation; other nodes see the change when their cached entry expires");
        }
    }

    async fn try_publish(&self, payload: &str) -> Result<(), String> {
        let mut slot = self.publisher.lock().await;
        if slot.is_none() {
            let conn = tokio::time::timeout(
                CONNECT_TIMEOUT,
                self.client.get_multiplexed_async_connection(),
            )
            .await
            .map_err(|_| "connecting to Redis timed out".to_owned())?
            .map_err(|e| e.to_string())?;
            *slot = Some(conn);
        }
        let Some(conn) = slot.as_mut() else {
            return Err("no Redis connection".into());
        };
        let sent = tokio::time::timeout(
            PUBLISH_TIMEOUT,
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(payload)
                .query_async::<i64>(conn),
        )
        .await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                *slot = None;
                Err(e.to_string())
            }
            Err(_) => {
                *slot = None;
                Err("publishing to Redis timed out".into())
            }
        }
    }
}

/// Keeps this node subscribed for as long as the process runs, reconnecting with backoff.
pub(crate) async fn subscribe_forever(caches: Arc<Caches>, redis: Arc<Redis>) {
    let mut backoff = MIN_BACKOFF;
    let mut reported = false;
    loop {
        let made = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut pubsub = redis.client.get_async_pubsub().await?;
            pubsub.subscribe(&redis.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match made {
            Ok(Ok(pubsub)) => {
                // Changes made while unsubscribed were missed: nothing cached before now is
                // trusted beyond the fallback TTL, so it all goes.
                caches.clear_all();
                redis.heard();
                redis.subscribed.store(true, Ordering::Release);
                tracing::info!(channel = %redis.channel, "subscribed to cache invalidations");
                backoff = MIN_BACKOFF;
                reported = false;
                let why = listen(&caches, &redis, pubsub).await;
                redis.subscribed.store(false, Ordering::Release);
                tracing::warn!(reason = %why, "cache invalidations from Redis lost; cached entries expire after {} ms until it answers again", super::FALLBACK_TTL.as_millis());
            }
            outcome => {
                let reason = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                if !reported {
                    tracing::warn!(%reason, "cannot subscribe to cache invalidations in Redis; retrying with backoff");
                    reported = true;
                } else {
                    tracing::debug!(%reason, "still cannot subscribe to cache invalidations");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Applies invalidations until the subscription fails; returns why it ended.
async fn listen(caches: &Caches, redis: &Redis, pubsub: redis::aio::PubSub) -> String {
    let (mut sink, mut stream) = pubsub.split();
    let mut tick = tokio::time::interval(PING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return "connection closed".into();
                };
                redis.heard();
                match msg.get_payload::<String>() {
                    Ok(text) => caches.apply(&Change::decode(&text)),
                    // Unreadable: dropping everything is always safe.
                    Err(_) => caches.clear_all(),
                }
            }
            _ = tick.tick() => {
                match tokio::time::timeout(LIVENESS, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => redis.heard(),
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return "ping timed out".into(),
                }
            }
        }
    }
}
