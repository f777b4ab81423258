//! The background scrub of `artstore serve` (setting `scrub_rate`, off by default): re-reads
//! every object's data file at a bounded rate, re-hashes it and compares its size and SHA-256
//! with the index, and checks that its sidecar reads. Damage is logged, counted in `/metrics`,
//! audited and marked on the object (`objects.damage`), whose reads then answer
//! `503 ObjectCorrupted`. The scrub only reads: it never rewrites, moves or removes a file.
//!
//! The position is shared through the index (`Store::claim_scrub_batch`): nodes on one index
//! claim disjoint batches in (bucket, key) order, and a restart continues from there.

use std::time::{Duration, Instant};

use artstore_admin::metrics::{Metrics, ScrubCounters};
use std::collections::HashMap;

use artstore_admin::element_backend::LookupError;
use artstore_backends::{BackendError, Backends, KeyTemplate, MIN_REREAD_CHUNK};
use artstore_metadata::{AuditEvent, ScrubItem, Store, import_key_template};

/// Objects claimed per transaction on the shared cursor.
const BATCH: i64 = 64;
/// Largest read; smaller rates read smaller chunks (never below `MIN_REREAD_CHUNK`).
const MAX_CHUNK: usize = 1 << 20;
/// Bytes charged per object on top of its data, so a store of tiny files is not re-read
/// (and its index queried) at an unbounded number of objects per second.
const PER_OBJECT_COST: u64 = 4096;
/// Shortest time between the starts of two passes: a small store is not re-read in a loop.
const PASS_PAUSE: Duration = Duration::from_secs(1);
/// Wait before trying the index again when it does not answer.
const RETRY_PAUSE: Duration = Duration::from_secs(5);

/// A token bucket over bytes: it starts full, refills at `rate` bytes per second up to its
/// capacity, and a take that overdraws it waits until the debt is paid. Reading N bytes
/// therefore takes at least (N - capacity) / rate seconds, whatever the object sizes.
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u64, capacity: u64) -> Self {
        TokenBucket {
            rate: rate.max(1) as f64,
            capacity: capacity as f64,
            tokens: capacity as f64,
            last: Instant::now(),
        }
    }

    /// Takes `n` tokens, waiting as long as the bucket is in debt.
    pub async fn take(&mut self, n: u64) {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.capacity) - n as f64;
        self.last = now;
        if self.tokens < 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(-self.tokens / self.rate)).await;
        }
    }
}

/// What one check of an object found.
enum Finding {
    Sound,
    Damaged(String),
    /// Its element's directory is not there (an unmounted disk is not damage).
    Unavailable,
}

pub struct Scrubber {
    store: Store,
    backends: Backends,
    counters: ScrubCounters,
    rate: u64,
    chunk: usize,
}

impl Scrubber {
    pub fn new(store: Store, backends: Backends, metrics: &Metrics, rate: u64) -> Self {
        let chunk = usize::try_from(rate)
            .unwrap_or(MAX_CHUNK)
            .clamp(MIN_REREAD_CHUNK, MAX_CHUNK);
        Scrubber {
            store,
            backends,
            counters: metrics.scrub().clone(),
            rate,
            chunk,
        }
    }

    /// Scrubs until the task is dropped.
    pub async fn run(self) {
        tracing::info!(rate = self.rate, "background scrub started");
        // One second of reading, and at least one chunk.
        let mut bucket = TokenBucket::new(self.rate, self.rate.max(self.chunk as u64));
        let mut pass_start = Instant::now();
        loop {
            let batch = match self.store.claim_scrub_batch(BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "scrub: cannot read the index; retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            if batch.wrapped {
                tracing::info!(pass = batch.pass, "scrub pass complete");
                if let Some(rest) = PASS_PAUSE.checked_sub(pass_start.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
                pass_start = Instant::now();
                continue;
            }
            // How each element's sidecars are read: imported ones may be legacy formats.
            let mut templates: HashMap<String, Option<KeyTemplate>> = HashMap::new();
            for item in &batch.items {
                if !templates.contains_key(&item.bucket) {
                    let t = self.template(&item.bucket).await;
                    templates.insert(item.bucket.clone(), t);
                }
                let template = templates.get(&item.bucket).and_then(Option::as_ref);
                match self.check(item, template, &mut bucket).await {
                    Finding::Sound => self.sound(item).await,
                    Finding::Damaged(what) => self.damaged(item, &what).await,
                    Finding::Unavailable => {
                        tracing::warn!(bucket = %item.bucket, key = %item.key, "scrub: the storage element's directory is missing; object skipped");
                        continue;
                    }
                }
                self.counters.objects.inc();
            }
        }
    }

    /// The key template of an imported element (its sidecars are read as the import did).
    async fn template(&self, bucket: &str) -> Option<KeyTemplate> {
        match self.store.get_element(bucket).await {
            Ok(Some(e)) => {
                import_key_template(&e.backend).and_then(|t| KeyTemplate::parse(&t).ok())
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, bucket, "scrub: cannot read the storage element");
                None
            }
        }
    }

    async fn check(
        &self,
        item: &ScrubItem,
        template: Option<&KeyTemplate>,
        bucket: &mut TokenBucket,
    ) -> Finding {
        let (b, path) = (&item.bucket, &item.storage_path);
        let backend = match artstore_admin::element_backend::of::<LookupError>(
            &self.store,
            &self.backends,
            b,
        )
        .await
        {
            Ok(backend) => backend,
            Err(e) => {
                tracing::warn!(bucket = %b, error = %e, "scrub: the storage element's backend cannot be opened");
                return Finding::Unavailable;
            }
        };
        let mut file = match backend.reread(path).await {
            Ok(f) => f,
            Err(BackendError::NotFound(_)) => {
                return match backend.read_element_json().await {
                    Ok(Some(_)) => Finding::Damaged("the data file is missing".into()),
                    _ => Finding::Unavailable,
                };
            }
            Err(e) => return Finding::Damaged(format!("the data file cannot be opened: {e}")),
        };
        let expected = u64::try_from(item.size).unwrap_or_default();
        if file.len() != expected {
            return Finding::Damaged(format!(
                "the data file is {} bytes, the object has {expected}",
                file.len()
            ));
        }
        bucket.take(PER_OBJECT_COST).await;
        loop {
            match file.next_chunk(self.chunk).await {
                Ok(0) => break,
                Ok(n) => {
                    self.counters.bytes.inc_by(n as u64);
                    bucket.take(n as u64).await;
                }
                Err(e) => return Finding::Damaged(format!("the data file cannot be read: {e}")),
            }
        }
        let (read, sha256) = file.finish();
        if read != expected {
            return Finding::Damaged(format!(
                "the data file read back {read} bytes, the object has {expected}"
            ));
        }
        // Legacy (v1) sidecars may carry no checksum: only the size can be checked.
        if !item.sha256.is_empty() && !sha256.eq_ignore_ascii_case(&item.sha256) {
            return Finding::Damaged(format!(
                "the data hashes to SHA-256 {sha256}, the object has {}",
                item.sha256
            ));
        }
        let attr = format!("{path}.attr.json");
        let read = match template {
            Some(t) => backend.read_adopted(&attr, b, t).await.map(drop),
            None => backend.read_attr(&attr).await.map(drop),
        };
        match read {
            Ok(()) => Finding::Sound,
            Err(BackendError::NotFound(_)) => Finding::Damaged("the sidecar is missing".into()),
            Err(e) => Finding::Damaged(format!("the sidecar is unreadable: {e}")),
        }
    }

    /// Whether the object is still stored as the claimed file: an overwrite or delete since
    /// the claim explains a missing or changed file, and is not damage.
    async fn still_current(&self, item: &ScrubItem) -> bool {
        match self.store.get_object(&item.bucket, &item.key).await {
            Ok(Some(o)) => o.file_id == item.file_id,
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, bucket = %item.bucket, key = %item.key, "scrub: cannot re-read the object's row");
                false
            }
        }
    }

    async fn damaged(&self, item: &ScrubItem, what: &str) {
        if !self.still_current(item).await {
            return;
        }
        self.counters.corrupt.inc();
        tracing::error!(bucket = %item.bucket, key = %item.key, file_id = %item.file_id, path = %item.storage_path, damage = %what, "scrub: stored object is damaged");
        match self
            .store
            .mark_damaged(&item.bucket, &item.key, &item.file_id, what)
            .await
        {
            Ok(true) => {
                self.audit(item, "scrub.damaged", "failure", what).await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, bucket = %item.bucket, key = %item.key, "scrub: cannot mark the object as damaged");
            }
        }
    }

    async fn sound(&self, item: &ScrubItem) {
        if item.damage.is_none() {
            return;
        }
        match self
            .store
            .clear_damage(&item.bucket, &item.key, &item.file_id)
            .await
        {
            Ok(true) => {
                tracing::info!(bucket = %item.bucket, key = %item.key, file_id = %item.file_id, "scrub: a damaged object reads back sound again; mark removed");
                self.audit(
                    item,
                    "scrub.sound",
                    "success",
                    "the data reads back sound again",
                )
                .await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, bucket = %item.bucket, key = %item.key, "scrub: cannot clear the damage mark");
            }
        }
    }

    async fn audit(&self, item: &ScrubItem, action: &str, outcome: &str, what: &str) {
        let ev = AuditEvent {
            actor_name: Some("scrub".into()),
            action: action.into(),
            target: Some(format!("{}/{}", item.bucket, item.key)),
            outcome: outcome.into(),
            detail: Some(format!(
                "file_id {} ({}): {what}",
                item.file_id, item.storage_path
            )),
            ..Default::default()
        };
        if let Err(e) = self.store.record_audit(&ev).await {
            tracing::warn!(error = %e, action, "scrub: cannot write the audit event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_overdrawn_bucket_waits_for_the_debt() {
        let start = Instant::now();
        let mut b = TokenBucket::new(1_000_000, 250_000);
        for _ in 0..4 {
            b.take(250_000).await;
        }
        // 1 000 000 bytes at 1 MB/s with 250 000 in the bucket: at least 0.75 s.
        assert!(start.elapsed() >= Duration::from_millis(750));
    }
}
