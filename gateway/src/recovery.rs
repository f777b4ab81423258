//! Start-up recovery (DESIGN.md §3 invariant 3). A state file records when the process began
//! writing and whether it stopped cleanly; after a crash only the hour directories written
//! since then are scanned, because objects are laid out by creation hour.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use artstore_admin::maintenance::Maintenance;
use artstore_backends::Backends;
use artstore_metadata::Store;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Margin for clock adjustments and writes that began just before the recorded time.
const MARGIN: time::Duration = time::Duration::hours(1);

#[derive(Debug, Serialize, Deserialize)]
struct State {
    /// Milliseconds since the epoch when the last process started writing.
    since_ms: i64,
    /// Whether that process stopped cleanly.
    clean: bool,
}

fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("state.json")
}

fn write_state(data_dir: &Path, state: &State) -> anyhow::Result<()> {
    let path = state_path(data_dir);
    let tmp = data_dir.join(".tmp-state.json");
    let bytes = serde_json::to_vec(state)?;
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(())
}

/// Cleans up after an earlier crash and marks the data dir as in use.
pub async fn recover(store: &Store, backends: &Backends, data_dir: &Path) -> anyhow::Result<()> {
    let previous: Option<State> = std::fs::read(state_path(data_dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let removed = remove_temp_files(store, backends)
        .await
        .context("removing temp files failed")?;
    let since = previous.as_ref().map(|s| {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(s.since_ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            - MARGIN
    });
    let report = Maintenance::new(store.clone(), backends.clone())
        .local_only()
        .reconcile(since)
        .await
        .context("start-up recovery failed")?;
    for what in report.warnings() {
        tracing::warn!("{what}");
    }
    let changed = removed
        + report.elements_created
        + report.objects_indexed
        + report.rows_repaired
        + report.superseded_removed
        + report.deletes_finished
        + report.uploads_removed
        + report.lost_rows_dropped
        + report.lost_uploads_dropped
        + report.unfinished_removed;
    if changed > 0 || !report.broken.is_empty() {
        tracing::warn!(
            temp_files_removed = removed,
            report = %serde_json::to_string(&report).unwrap_or_default(),
            clean_shutdown = previous.as_ref().is_some_and(|s| s.clean),
            "recovered from an unclean stop"
        );
    }
    write_state(
        data_dir,
        &State {
            since_ms: artstore_metadata::now_ms(),
            clean: false,
        },
    )
}

/// What interrupted writes left in every element recovery walks.
async fn remove_temp_files(store: &Store, backends: &Backends) -> anyhow::Result<u64> {
    let names = Maintenance::new(store.clone(), backends.clone())
        .local_only()
        .element_names()
        .await?;
    let mut removed = 0;
    for name in names {
        let backend = artstore_admin::element_backend::of::<
            artstore_admin::element_backend::LookupError,
        >(store, backends, &name)
        .await?;
        removed += backend.remove_temp_files().await?;
    }
    Ok(removed)
}

/// Records a clean stop, so the next start scans only what this run could have written.
pub fn mark_clean(data_dir: &Path) {
    let path = state_path(data_dir);
    let state = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<State>(&b).ok());
    if let Some(mut s) = state {
        s.clean = true;
        if let Err(e) = write_state(data_dir, &s) {
            tracing::warn!(error = %e, "cannot record the clean stop");
        }
    }
}
