//! Abandoned multipart uploads expire: a background sweep of `artstore serve` aborts every
//! incomplete upload older than its bucket's lifecycle rule for its key (or, without one, the
//! default age), exactly as AbortMultipartUpload does. Whether an upload goes is decided in
//! the deleting transaction, so several nodes may sweep one index, and a Complete or a part
//! racing the sweep either wins entirely or gets NoSuchUpload.

use std::collections::HashMap;
use std::time::Duration;

use artstore_admin::metrics::Counter;
use artstore_backends::Backends;
use artstore_metadata::{Lifecycle, MetaError, Store, now_ms};

/// Uploads read from the index at a time.
const PAGE: i64 = 500;

pub struct UploadExpiry {
    store: Store,
    backends: Backends,
    /// Age at which uploads no rule covers expire; `None` = never.
    default_age: Option<Duration>,
    expired: Counter,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl UploadExpiry {
    pub fn new(
        store: Store,
        backends: Backends,
        default_age: Option<Duration>,
        expired: Counter,
    ) -> Self {
        UploadExpiry {
            store,
            backends,
            default_age,
            expired,
        }
    }

    /// Sweeps every `interval`, for as long as the server runs.
    pub async fn run(self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(uploads = n, "expired incomplete multipart uploads"),
                Err(e) => tracing::warn!(error = %e, "upload expiry sweep stopped early"),
            }
        }
    }

    /// One pass over the uploads old enough for the shortest age in force; returns how many
    /// this node aborted.
    pub async fn sweep(&self) -> Result<u64, MetaError> {
        let now = now_ms();
        let rules: HashMap<String, Lifecycle> = self
            .store
            .list_elements()
            .await?
            .into_iter()
            .filter_map(|e| Some((e.name, e.lifecycle?)))
            .collect();
        let default_ms = self.default_age.map(ms);
        let Some(shortest) = rules
            .values()
            .filter_map(Lifecycle::shortest_ms)
            .chain(default_ms)
            .min()
        else {
            return Ok(0);
        };
        let mut expired = 0;
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = self
                .store
                .uploads_begun_before(
                    now.saturating_sub(shortest),
                    after.as_ref().map(|(t, id)| (*t, id.as_str())),
                    PAGE,
                )
                .await?;
            for u in &page {
                // A rule for the key overrides the default age, longer or shorter.
                let Some(age) = rules
                    .get(&u.bucket)
                    .and_then(|l| l.abort_after_ms(&u.key))
                    .or(default_ms)
                else {
                    continue;
                };
                let cutoff = now.saturating_sub(age);
                if u.created_ms >= cutoff {
                    continue;
                }
                let aborted = crate::s3::discard_upload(
                    &self.store,
                    &self.backends,
                    &u.bucket,
                    &u.upload_id,
                    Some(cutoff),
                )
                .await;
                match aborted {
                    Ok(true) => {
                        expired += 1;
                        self.expired.inc();
                        tracing::info!(
                            bucket = %u.bucket,
                            key = %u.key,
                            upload_id = %u.upload_id,
                            age_s = (now - u.created_ms) / 1000,
                            "incomplete multipart upload expired"
                        );
                    }
                    // Completed, aborted or expired by another node meanwhile.
                    Ok(false) => {}
                    // Its index rows may be gone already: `index rebuild` removes such parts.
                    Err(e) => tracing::warn!(
                        bucket = %u.bucket,
                        upload_id = %u.upload_id,
                        error = e.message().unwrap_or("unknown error"),
                        "cannot expire multipart upload"
                    ),
                }
            }
            match page.last() {
                Some(last) if i64::try_from(page.len()).unwrap_or(PAGE) == PAGE => {
                    after = Some((last.created_ms, last.upload_id.clone()));
                }
                _ => return Ok(expired),
            }
        }
    }
}
