//! Audit events the index could not take (down, or full), kept on disk until it can.
//!
//! Events are appended as JSON lines to `<dir>/audit-spool.jsonl` and fsynced before
//! `record_audit` returns. A replay first renames that file to `audit-spool.replaying.jsonl`
//! (new events keep going to a fresh spool file meanwhile), inserts its events, skipping ids the
//! index already holds (a replay interrupted by a crash is simply done again), then removes it.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{AuditEvent, MetaError};

const SPOOL_FILE: &str = "audit-spool.jsonl";
const REPLAYING_FILE: &str = "audit-spool.replaying.jsonl";

/// Counts of spooled audit events since the start, and what still waits for the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    pub spooled: u64,
    pub replayed: u64,
    pub pending: u64,
}

#[derive(Debug)]
pub(crate) struct AuditSpool {
    spool: PathBuf,
    replaying: PathBuf,
    /// Serialises appends with the rename that starts a replay, and replays with each other.
    append: tokio::sync::Mutex<()>,
    replay: tokio::sync::Mutex<()>,
    spooled: AtomicU64,
    replayed: AtomicU64,
    pending: AtomicU64,
}

fn io_err(path: &Path, e: std::io::Error) -> MetaError {
    MetaError::Spool(format!("{}: {e}", path.display()))
}

/// Runs blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MetaError> + Send + 'static,
) -> Result<T, MetaError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| MetaError::Spool(format!("spool task failed: {e}")))?
}

fn count_lines(path: &Path) -> Result<u64, MetaError> {
    match std::fs::File::open(path) {
        Ok(f) => {
            let mut n = 0;
            for line in std::io::BufReader::new(f).lines() {
                if !line.map_err(|e| io_err(path, e))?.trim().is_empty() {
                    n += 1;
                }
            }
            Ok(n)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_err(path, e)),
    }
}

fn fsync_dir(dir: &Path) -> Result<(), MetaError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

impl AuditSpool {
    /// The spool in `dir` (the data dir), counting what an earlier run left in it.
    pub(crate) async fn open(dir: &Path) -> Result<AuditSpool, MetaError> {
        let spool = dir.join(SPOOL_FILE);
        let replaying = dir.join(REPLAYING_FILE);
        let (a, b) = (spool.clone(), replaying.clone());
        let pending = blocking(move || Ok(count_lines(&a)? + count_lines(&b)?)).await?;
        Ok(AuditSpool {
            spool,
            replaying,
            append: tokio::sync::Mutex::new(()),
            replay: tokio::sync::Mutex::new(()),
            spooled: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            pending: AtomicU64::new(pending),
        })
    }

    pub(crate) fn stats(&self) -> SpoolStats {
        SpoolStats {
            spooled: self.spooled.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed) > 0
    }

    /// Appends one event (with its id and time already set) and fsyncs it.
    pub(crate) async fn append(&self, ev: &AuditEvent) -> Result<(), MetaError> {
        let mut line = serde_json::to_vec(ev).map_err(|e| MetaError::Spool(e.to_string()))?;
        line.push(b'\n');
        let path = self.spool.clone();
        let _one = self.append.lock().await;
        blocking(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            f.write_all(&line)
                .and_then(|()| f.sync_data())
                .map_err(|e| io_err(&path, e))
        })
        .await?;
        self.spooled.fetch_add(1, Ordering::Relaxed);
        self.pending.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The events of the file being replayed, after moving the spool there if no replay was
    /// left unfinished. Lines that do not parse (a torn last line after a crash) are logged
    /// and dropped.
    async fn take_batch(&self) -> Result<(u64, Vec<AuditEvent>), MetaError> {
        let (spool, replaying) = (self.spool.clone(), self.replaying.clone());
        let _one = self.append.lock().await;
        blocking(move || {
            if !replaying.exists() && spool.exists() {
                std::fs::rename(&spool, &replaying).map_err(|e| io_err(&spool, e))?;
                if let Some(dir) = replaying.parent() {
                    fsync_dir(dir)?;
                }
            }
            let text = match std::fs::read_to_string(&replaying) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, Vec::new())),
                Err(e) => return Err(io_err(&replaying, e)),
            };
            let mut lines = 0;
            let mut events = Vec::new();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                lines += 1;
                match serde_json::from_str::<AuditEvent>(line) {
                    Ok(ev) => events.push(ev),
                    Err(e) => {
                        tracing::warn!(error = %e, file = %replaying.display(), "dropping an unreadable spooled audit event");
                    }
                }
            }
            Ok((lines, events))
        })
        .await
    }

    async fn finish_batch(&self, lines: u64, written: u64) -> Result<(), MetaError> {
        let replaying = self.replaying.clone();
        blocking(move || match std::fs::remove_file(&replaying) {
            Ok(()) => replaying.parent().map_or(Ok(()), fsync_dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&replaying, e)),
        })
        .await?;
        self.replayed.fetch_add(written, Ordering::Relaxed);
        self.pending.fetch_sub(
            lines.min(self.pending.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        Ok(())
    }
}

impl crate::Store {
    /// Spools audit events in `data_dir` whenever the index cannot take them; call
    /// `replay_audit_spool` now and then to move them into the index.
    pub async fn with_audit_spool(mut self, data_dir: &Path) -> Result<crate::Store, MetaError> {
        self.spool = Some(std::sync::Arc::new(AuditSpool::open(data_dir).await?));
        Ok(self)
    }

    /// Spooled, replayed and pending audit events; `None` without a spool.
    pub fn audit_spool_stats(&self) -> Option<SpoolStats> {
        self.spool.as_ref().map(|s| s.stats())
    }

    /// Writes the spooled audit events into the index; returns how many it wrote. On an
    /// error the rest stays spooled for the next call.
    pub async fn replay_audit_spool(&self) -> Result<u64, MetaError> {
        let Some(spool) = self.spool.clone() else {
            return Ok(0);
        };
        if !spool.has_pending() {
            return Ok(0);
        }
        let _one = spool.replay.lock().await;
        let (lines, events) = spool.take_batch().await?;
        let mut written = 0;
        for ev in &events {
            if self.insert_audit(ev, true).await? {
                written += 1;
            }
        }
        spool.finish_batch(lines, written).await?;
        Ok(written)
    }
}
