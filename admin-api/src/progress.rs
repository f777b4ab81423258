//! How far long maintenance work has got. The work only bumps counters; whoever watches (a
//! terminal bar in the CLI, a job's row in the index) reads a snapshot at its own pace, so
//! the work never waits for either and the reports stay what they were.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// Counters of one piece of work, shared between the worker and its watchers.
#[derive(Debug, Default)]
pub struct WorkProgress {
    items_done: AtomicU64,
    items_total: AtomicU64,
    items_known: AtomicBool,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
    bytes_known: AtomicBool,
    labels: Mutex<Labels>,
}

#[derive(Debug, Default, Clone)]
struct Labels {
    phase: String,
    element: Option<String>,
}

/// What a watcher sees.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// What the work is doing now, e.g. `verifying`, `rebuilding`, `indexing`.
    pub phase: String,
    /// The element being worked on.
    pub element: Option<String>,
    pub items_done: u64,
    /// `None` while not known (a rebuild learns it element by element).
    pub items_total: Option<u64>,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
}

impl WorkProgress {
    pub fn new() -> WorkProgress {
        WorkProgress::default()
    }

    fn labels(&self) -> std::sync::MutexGuard<'_, Labels> {
        // Only strings are kept under the lock: a panic elsewhere cannot leave them torn.
        self.labels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a phase: the counts start again from zero with the totals given (or unknown).
    pub fn phase(&self, name: &str, items_total: Option<u64>, bytes_total: Option<u64>) {
        self.labels().phase = name.to_owned();
        self.items_done.store(0, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
        self.items_total
            .store(items_total.unwrap_or(0), Ordering::Relaxed);
        self.items_known
            .store(items_total.is_some(), Ordering::Relaxed);
        self.bytes_total
            .store(bytes_total.unwrap_or(0), Ordering::Relaxed);
        self.bytes_known
            .store(bytes_total.is_some(), Ordering::Relaxed);
    }

    /// More work found (a rebuild counts each element's sidecars as it reaches it); the item
    /// total becomes known.
    pub fn add_items_total(&self, n: u64) {
        self.items_total.fetch_add(n, Ordering::Relaxed);
        self.items_known.store(true, Ordering::Relaxed);
    }

    pub fn element(&self, name: &str) {
        self.labels().element = Some(name.to_owned());
    }

    /// `items` more things done, `bytes` more bytes read.
    pub fn advance(&self, items: u64, bytes: u64) {
        self.items_done.fetch_add(items, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let labels = self.labels().clone();
        let known = |flag: &AtomicBool, v: &AtomicU64| {
            flag.load(Ordering::Relaxed)
                .then(|| v.load(Ordering::Relaxed))
        };
        Snapshot {
            phase: labels.phase,
            element: labels.element,
            items_done: self.items_done.load(Ordering::Relaxed),
            items_total: known(&self.items_known, &self.items_total),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: known(&self.bytes_known, &self.bytes_total),
        }
    }
}

impl Snapshot {
    /// The fraction done, by bytes where their total is known, else by items.
    pub fn fraction(&self) -> Option<f64> {
        let of = |done: u64, total: u64| {
            (total > 0).then(|| (done as f64 / total as f64).clamp(0.0, 1.0))
        };
        match (self.bytes_total, self.items_total) {
            (Some(b), _) if b > 0 => of(self.bytes_done, b),
            (_, Some(i)) => of(self.items_done, i),
            _ => None,
        }
    }

    /// Seconds left at the rate so far, after `elapsed_ms` of work.
    pub fn eta_seconds(&self, elapsed_ms: i64) -> Option<u64> {
        let f = self.fraction()?;
        if f <= 0.0 || elapsed_ms <= 0 {
            return None;
        }
        let left = elapsed_ms as f64 / 1000.0 * (1.0 - f) / f;
        Some(left.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_totals_and_eta() {
        let p = WorkProgress::new();
        p.phase("verifying", Some(4), Some(1000));
        p.element("docs");
        p.advance(1, 250);
        let s = p.snapshot();
        assert_eq!(
            s,
            Snapshot {
                phase: "verifying".into(),
                element: Some("docs".into()),
                items_done: 1,
                items_total: Some(4),
                bytes_done: 250,
                bytes_total: Some(1000),
            }
        );
        // A quarter in 10 s: 30 s left.
        assert_eq!(s.eta_seconds(10_000), Some(30));

        p.phase("rebuilding", None, None);
        assert_eq!(p.snapshot().items_total, None);
        assert_eq!(p.snapshot().eta_seconds(1000), None);
        p.add_items_total(2);
        p.advance(1, 0);
        assert_eq!(p.snapshot().items_total, Some(2));
        assert_eq!(p.snapshot().eta_seconds(1000), Some(1));
    }
}
