//! Archive restores (issue 4, item 6). A RestoreObject on an object of an `ar` element is real
//! work, not a flag: a background task re-reads the data file, throttled to the configured
//! rate, and checks it against the SHA-256 in attr.json before the object becomes readable
//! for the requested days, so an archived document is never handed out bit-rotten.
//!
//! The state is recorded in the object's attr.json (`restore`, written with the sidecar write
//! protocol) and then in its index row; the index update is a compare-and-set on the previous
//! state, so two requests or two nodes cannot both start or finish the same restore. An
//! ongoing restore interrupted by a stop is started again from the beginning at the next start
//! (`resume_all`), from the index rows still marked `ongoing`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use artstore_backends::attr::RestoreAttr;
use artstore_backends::{Backend, BackendError, Backends, format_timestamp_ms};
use artstore_metadata::{Identity, MetaError, ObjectRecord, RestoreState, RestoreStatus, Store};
use futures::StreamExt;
use sha2::{Digest, Sha256};

const DAY_MS: i64 = 86_400_000;
/// Largest `Days` accepted: ten years. AWS documents no maximum; this bounds the arithmetic.
pub const MAX_RESTORE_DAYS: i32 = 3650;
/// Longest failure reason kept in attr.json (the sidecar is limited to 4 KB).
pub const MAX_ERROR_CHARS: usize = 200;
/// How often recording a finished verification is tried before it is left to the next start.
const RECORD_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Index(#[from] MetaError),
    #[error(transparent)]
    Storage(#[from] BackendError),
    /// The object or its restore changed under us (overwritten, or another request won).
    #[error("the object's restore state changed concurrently")]
    Conflict,
}

/// What a RestoreObject request did.
#[derive(Debug)]
pub enum Requested {
    /// A verification started: `202 Accepted`.
    Started,
    /// The object was already restored; its expiry moved: `200 OK`.
    Extended,
    /// A verification is running: `409 RestoreAlreadyInProgress`.
    InProgress,
}

/// End of the readable period: completion time plus `days`, rounded up to the next midnight
/// UTC, as S3 computes it.
pub fn expiry_ms(from_ms: i64, days: i64) -> i64 {
    from_ms
        .saturating_add(days.saturating_mul(DAY_MS))
        .div_euclid(DAY_MS)
        .saturating_add(1)
        .saturating_mul(DAY_MS)
}

/// The attr.json `restore` record of a restore state.
pub fn restore_attr(r: &RestoreState, error: Option<String>) -> RestoreAttr {
    RestoreAttr {
        status: r.status.as_str().to_owned(),
        days: u32::try_from(r.days).unwrap_or_default(),
        requested_at: format_timestamp_ms(r.requested_ms),
        requested_by: r.requested_by.clone(),
        completed_at: r.completed_ms.map(format_timestamp_ms),
        expires_at: r.expires_ms.map(format_timestamp_ms),
        error: error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect()),
    }
}

type KeyId = (String, String);

/// Starts, extends and finishes restores. Cheap to clone.
#[derive(Clone)]
pub struct Restorer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    backends: Backends,
    /// Bytes per second the verification may read; `None` = as fast as the disk goes.
    rate: Option<u64>,
    /// One lock per key while its restore state is read and rewritten.
    locks: Mutex<HashMap<KeyId, Arc<tokio::sync::Mutex<()>>>>,
    /// Keys with a verification task running in this process.
    running: Mutex<HashSet<KeyId>>,
}

/// Removes the key from `running` when the task ends, even by a panic.
struct Running(Arc<Inner>, KeyId);

impl Drop for Running {
    fn drop(&mut self) {
        self.0
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.1);
    }
}

impl Restorer {
    /// A restorer reading at the rate set with `configure`.
    pub fn with_rate(store: Store, backends: Backends, rate: Option<u64>) -> Restorer {
        Restorer {
            inner: Arc::new(Inner {
                store,
                backends,
                rate: rate.filter(|r| *r > 0),
                locks: Mutex::new(HashMap::new()),
                running: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// Starts again every restore the index still marks ongoing (after a stop or crash).
    pub async fn resume_all(&self) -> Result<usize, MetaError> {
        let ongoing = self.inner.store.ongoing_restores().await?;
        let n = ongoing.len();
        for rec in ongoing {
            tracing::info!(bucket = %rec.bucket, key = %rec.key, "resuming an interrupted restore");
            self.spawn(rec);
        }
        Ok(n)
    }

    /// Handles a RestoreObject for `days` on an existing archived object. `None`: no such key.
    pub async fn request(
        &self,
        bucket: &str,
        key: &str,
        days: i64,
        who: &Identity,
    ) -> Result<Option<Requested>, RestoreError> {
        self.locked(bucket, key, self.request_locked(bucket, key, days, who))
            .await
    }

    async fn request_locked(
        &self,
        bucket: &str,
        key: &str,
        days: i64,
        who: &Identity,
    ) -> Result<Option<Requested>, RestoreError> {
        let Some(mut rec) = self.inner.store.get_object(bucket, key).await? else {
            return Ok(None);
        };
        let now = artstore_metadata::now_ms();
        match rec.restore.clone() {
            Some(r) if r.status == RestoreStatus::Ongoing => {
                // Normally a no-op; restarts a verification whose task is gone.
                self.spawn(rec);
                Ok(Some(Requested::InProgress))
            }
            // S3: a new request on a restored copy moves its expiry, counted from now.
            Some(r) if r.is_active(now) => {
                let new = RestoreState {
                    days,
                    expires_ms: Some(expiry_ms(now, days)),
                    ..r.clone()
                };
                self.record(&rec, Some(&r), &new, None).await?;
                Ok(Some(Requested::Extended))
            }
            // Never restored, expired, or failed before (the data may have been repaired).
            previous => {
                let new = RestoreState {
                    status: RestoreStatus::Ongoing,
                    days,
                    requested_ms: now,
                    requested_by: who.name.clone(),
                    completed_ms: None,
                    expires_ms: None,
                };
                self.record(&rec, previous.as_ref(), &new, None).await?;
                rec.restore = Some(new);
                self.spawn(rec);
                Ok(Some(Requested::Started))
            }
        }
    }

    /// Runs `work` holding the key's lock, then forgets the lock once nobody else holds or
    /// waits for it.
    async fn locked<T>(&self, bucket: &str, key: &str, work: impl Future<Output = T>) -> T {
        let id = (bucket.to_owned(), key.to_owned());
        let lock = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.clone())
            .or_default()
            .clone();
        let result = {
            let _held = lock.lock().await;
            work.await
        };
        let mut locks = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        drop(lock);
        if locks.get(&id).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(&id);
        }
        result
    }

    /// The backend of the element holding the object.
    async fn backend(&self, bucket: &str) -> Result<Arc<dyn Backend>, RestoreError> {
        artstore_admin::element_backend::of(&self.inner.store, &self.inner.backends, bucket).await
    }

    /// Writes `new` into the sidecar (temp file, fsync, rename), then into the index row if
    /// its state is still `expected`.
    async fn record(
        &self,
        rec: &ObjectRecord,
        expected: Option<&RestoreState>,
        new: &RestoreState,
        error: Option<String>,
    ) -> Result<(), RestoreError> {
        let attr_rel = format!("{}.attr.json", rec.storage_path);
        let backend = self.backend(&rec.bucket).await?;
        let mut attr = backend.read_attr(&attr_rel).await?;
        if attr.file_id != rec.file_id {
            return Err(RestoreError::Conflict);
        }
        // A legacy sidecar of an imported element does not name its object: it becomes v2,
        // written from the index row (which holds what the import mapped).
        if attr.bucket != rec.bucket || attr.key != rec.key {
            attr = crate::s3::record::attr_json(rec);
        }
        attr.restore = Some(restore_attr(new, error));
        backend.write_attr(&attr_rel, &attr).await?;
        let updated = self
            .inner
            .store
            .set_restore(&rec.bucket, &rec.key, &rec.file_id, expected, new)
            .await?;
        if updated {
            Ok(())
        } else {
            Err(RestoreError::Conflict)
        }
    }

    /// Runs the verification of `rec` (whose restore is ongoing) in the background, unless
    /// this process already does.
    fn spawn(&self, rec: ObjectRecord) {
        let id = (rec.bucket.clone(), rec.key.clone());
        let fresh = self
            .inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone());
        if !fresh {
            return;
        }
        let this = self.clone();
        let guard = Running(self.inner.clone(), id);
        tokio::spawn(async move {
            let _guard = guard;
            this.run(rec).await;
        });
    }

    async fn run(&self, rec: ObjectRecord) {
        let started = Instant::now();
        let outcome = self.verify(&rec).await;
        match &outcome {
            Ok(()) => tracing::info!(
                bucket = %rec.bucket, key = %rec.key, bytes = rec.size,
                seconds = started.elapsed().as_secs_f64(),
                "restore verified the archived object"
            ),
            Err(reason) => tracing::error!(
                bucket = %rec.bucket, key = %rec.key, path = %rec.storage_path, %reason,
                "restore failed: the archived object's data did not verify; it stays unreadable"
            ),
        }
        for attempt in 1..=RECORD_ATTEMPTS {
            match self.finish(&rec, &outcome).await {
                Ok(()) => return,
                Err(RestoreError::Conflict) => {
                    tracing::info!(bucket = %rec.bucket, key = %rec.key, "restore superseded while it ran; result dropped");
                    return;
                }
                Err(e) => {
                    tracing::warn!(bucket = %rec.bucket, key = %rec.key, error = %e, attempt, "cannot record the restore result");
                    tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                }
            }
        }
        tracing::error!(bucket = %rec.bucket, key = %rec.key, "restore result not recorded; the restore runs again at the next start");
    }

    /// Records the verification's result, if the restore it belongs to is still current.
    async fn finish(
        &self,
        rec: &ObjectRecord,
        outcome: &Result<(), String>,
    ) -> Result<(), RestoreError> {
        self.locked(&rec.bucket, &rec.key, self.finish_locked(rec, outcome))
            .await
    }

    async fn finish_locked(
        &self,
        rec: &ObjectRecord,
        outcome: &Result<(), String>,
    ) -> Result<(), RestoreError> {
        let asked = rec.restore.as_ref().map(|r| r.requested_ms);
        let current = self
            .inner
            .store
            .get_object(&rec.bucket, &rec.key)
            .await?
            .filter(|c| c.file_id == rec.file_id);
        let Some((cur, r)) = current.and_then(|c| {
            let r = c
                .restore
                .clone()
                .filter(|r| r.status == RestoreStatus::Ongoing && Some(r.requested_ms) == asked)?;
            Some((c, r))
        }) else {
            return Err(RestoreError::Conflict);
        };
        let now = artstore_metadata::now_ms();
        let (new, error) = match outcome {
            Ok(()) => (
                RestoreState {
                    status: RestoreStatus::Completed,
                    completed_ms: Some(now),
                    expires_ms: Some(expiry_ms(now, r.days)),
                    ..r.clone()
                },
                None,
            ),
            Err(reason) => (
                RestoreState {
                    status: RestoreStatus::Failed,
                    completed_ms: Some(now),
                    expires_ms: None,
                    ..r.clone()
                },
                Some(reason.clone()),
            ),
        };
        self.record(&cur, Some(&r), &new, error).await
    }

    /// Re-reads the whole data file at the configured rate and compares its size and SHA-256
    /// with the attr.json values the index caches. `Err` carries why it does not verify.
    async fn verify(&self, rec: &ObjectRecord) -> Result<(), String> {
        let fs = self
            .backend(&rec.bucket)
            .await
            .map_err(|e| format!("cannot open the element's backend: {e}"))?;
        let size = u64::try_from(rec.size).unwrap_or_default();
        match fs.data_len(&rec.storage_path).await {
            Ok(Some(len)) if len == size => {}
            Ok(Some(len)) => {
                return Err(format!(
                    "the data file is {len} bytes, attr.json says {size}"
                ));
            }
            Ok(None) => return Err("the data file is missing".to_owned()),
            Err(e) => return Err(format!("cannot read the data file: {e}")),
        }
        let mut stream = fs
            .open_range(&rec.storage_path, 0, size)
            .await
            .map_err(|e| format!("cannot open the data file: {e}"))?;
        let mut hasher = Sha256::new();
        let mut done: u64 = 0;
        let start = Instant::now();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("cannot read the data file: {e}"))?;
            hasher.update(&chunk);
            done += chunk.len() as u64;
            if let Some(rate) = self.inner.rate {
                // Sleep until the bytes read so far fit the rate since the start.
                let due = Duration::from_secs_f64(done as f64 / rate as f64);
                let elapsed = start.elapsed();
                if due > elapsed {
                    tokio::time::sleep(due - elapsed).await;
                }
            }
        }
        let actual = hex::encode(hasher.finalize());
        if rec.sha256.is_empty() {
            // Legacy (v1) sidecars may lack a checksum: only the size could be checked.
            tracing::warn!(bucket = %rec.bucket, key = %rec.key, "attr.json has no SHA-256; restore checked the size only");
            return Ok(());
        }
        if !actual.eq_ignore_ascii_case(&rec.sha256) {
            return Err(format!(
                "the data does not match its SHA-256: attr.json has {}, the data hashes to {actual}",
                rec.sha256
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rounds_up_to_the_next_midnight_utc() {
        // 2012-12-12T10:00:00Z + 3 days → 2012-12-16T00:00:00Z (S3's documented example rule).
        let t = 1_355_306_400_000; // 2012-12-12T10:00:00Z
        assert_eq!(format_timestamp_ms(expiry_ms(t, 3)), "2012-12-16T00:00:00Z");
        // Exactly midnight still moves to the next midnight.
        let midnight = 1_355_270_400_000; // 2012-12-12T00:00:00Z
        assert_eq!(
            format_timestamp_ms(expiry_ms(midnight, 1)),
            "2012-12-14T00:00:00Z"
        );
        assert!(expiry_ms(i64::MAX - 5, 3650) > 0);
    }

    #[test]
    fn restore_attr_truncates_long_errors() {
        let r = RestoreState {
            status: RestoreStatus::Failed,
            days: 2,
            requested_ms: 1_355_306_400_000,
            requested_by: "svc".into(),
            completed_ms: Some(1_355_306_400_500),
            expires_ms: None,
        };
        let a = restore_attr(&r, Some("x".repeat(1000)));
        assert_eq!(a.status, "failed");
        assert_eq!(a.requested_at, "2012-12-12T10:00:00Z");
        assert_eq!(a.completed_at.as_deref(), Some("2012-12-12T10:00:00.500Z"));
        assert_eq!(a.expires_at, None);
        assert_eq!(a.error.map(|e| e.len()), Some(MAX_ERROR_CHARS));
    }
}
