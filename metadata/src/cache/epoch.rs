//! The change counter: a `settings` row every change moves on after it commits, read by a node
//! whose invalidations may be missing (no Redis, or Redis down) when a request starts. A change
//! made by another process on the same index (the CLI beside a running server) so holds for the
//! next request, not only after the TTL.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::{MetaError, Store};

/// Not read yet: the first read always counts as a change (nothing is cached before it anyway).
const UNKNOWN: i64 = i64::MIN;

pub(crate) struct Epoch {
    seen: AtomicI64,
}

impl Epoch {
    pub(crate) fn new() -> Epoch {
        Epoch {
            seen: AtomicI64::new(UNKNOWN),
        }
    }
}

impl Store {
    /// Moves the counter on (its own short transaction, after the change's has committed).
    pub(crate) async fn bump_epoch(&self) -> Result<(), MetaError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ('cache_epoch', '1') ON CONFLICT (name) \
             DO UPDATE SET value = CAST(CAST(settings.value AS BIGINT) + 1 AS TEXT)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Drops everything cached when the counter moved since this node last looked.
    pub(crate) async fn check_epoch(&self) -> Result<(), MetaError> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = 'cache_epoch'")
                .fetch_optional(&self.pool)
                .await?;
        let now = value.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let before = self.cache.epoch.seen.swap(now, Ordering::AcqRel);
        if before != now {
            self.cache.clear_all();
        }
        Ok(())
    }
}
