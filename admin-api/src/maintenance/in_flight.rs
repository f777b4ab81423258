//! `index verify` while a server writes: for a moment, a write, overwrite or delete in flight
//! looks like damage (a temp file, a data file whose sidecar is not renamed yet, a replaced
//! file not yet removed, a row that moved on while its old file was being hashed). Each
//! finding is looked at again against a fresh view, the row re-read and the files stat'ed,
//! and kept only when it is still damage. Nothing is changed on disk or in the index.

use std::time::Duration;

use artstore_metadata::now_ms;

use super::{Maintenance, MaintenanceError, SIDECAR_SUFFIX, VerifyReport};

/// How often an object whose row keeps changing is checked again before it is left out (it
/// is being rewritten, so its current file is checked by the next verify).
const RECHECKS: usize = 3;

impl Maintenance {
    /// Drops from `report` what writers in flight explain; files younger than `grace` are
    /// taken to be such writes.
    pub(super) async fn drop_in_flight(
        &self,
        report: &mut VerifyReport,
        grace: Duration,
    ) -> Result<(), MaintenanceError> {
        let mut names: Vec<String> = std::mem::take(&mut report.missing);
        names.append(&mut report.size_mismatch);
        names.append(&mut report.checksum_mismatch);
        for name in names {
            if let Some(found) = self.recheck_object(&name).await? {
                report.missing.extend(found.missing);
                report.size_mismatch.extend(found.size_mismatch);
                report.checksum_mismatch.extend(found.checksum_mismatch);
            }
        }
        for name in std::mem::take(&mut report.temp_files) {
            let (bucket, rel) = split(&name);
            if self.older_than(bucket, rel, grace).await? {
                report.temp_files.push(name);
            }
        }
        for name in std::mem::take(&mut report.data_without_sidecar) {
            let (bucket, rel) = split(&name);
            let attr = format!("{rel}{SIDECAR_SUFFIX}");
            if self.el(bucket).await?.file_age(&attr).await?.is_none()
                && self
                    .store
                    .pending_delete_since(bucket, rel)
                    .await?
                    .is_none()
                && self.older_than(bucket, rel, grace).await?
            {
                report.data_without_sidecar.push(name);
            }
        }
        for name in std::mem::take(&mut report.sidecar_without_data) {
            let (bucket, attr) = split(&name);
            let data = attr.strip_suffix(SIDECAR_SUFFIX).unwrap_or(attr);
            if self.el(bucket).await?.file_age(data).await?.is_none()
                && self
                    .store
                    .pending_delete_since(bucket, data)
                    .await?
                    .is_none()
                && self.older_than(bucket, attr, grace).await?
            {
                report.sidecar_without_data.push(name);
            }
        }
        for name in std::mem::take(&mut report.orphans) {
            let (bucket, rel) = split(&name);
            if !self.indexed_now(bucket, rel).await?
                && self
                    .store
                    .pending_delete_since(bucket, rel)
                    .await?
                    .is_none()
                && self
                    .older_than(bucket, &format!("{rel}{SIDECAR_SUFFIX}"), grace)
                    .await?
            {
                report.orphans.push(name);
            }
        }
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        for name in std::mem::take(&mut report.obsolete) {
            let (bucket, rel) = split(&name);
            let attr = format!("{rel}{SIDECAR_SUFFIX}");
            let old = self
                .store
                .pending_delete_since(bucket, rel)
                .await?
                .is_some_and(|ms| now_ms().saturating_sub(ms) >= grace_ms);
            let on_disk = self.el(bucket).await?.file_age(rel).await?.is_some()
                || self.el(bucket).await?.file_age(&attr).await?.is_some();
            if old && on_disk {
                report.obsolete.push(name);
            }
        }
        Ok(())
    }

    /// Checks the object at `bucket/key` again; `None` when it is gone or kept changing. A
    /// finding counts only if the row names the same file before and after the check: data
    /// files are never changed in place and are removed only after the row has moved on.
    async fn recheck_object(&self, name: &str) -> Result<Option<VerifyReport>, MaintenanceError> {
        let (bucket, key) = split(name);
        for _ in 0..RECHECKS {
            let Some(o) = self.store.get_object(bucket, key).await? else {
                return Ok(None);
            };
            let mut found = VerifyReport::default();
            self.verify_object(&o, &mut found).await?;
            let now = self.store.get_object(bucket, key).await?;
            if now.is_some_and(|n| n.file_id == o.file_id) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Whether the file exists and was last changed at least `grace` ago.
    async fn older_than(
        &self,
        bucket: &str,
        rel: &str,
        grace: Duration,
    ) -> Result<bool, MaintenanceError> {
        Ok(self
            .el(bucket)
            .await?
            .file_age(rel)
            .await?
            .is_some_and(|a| a >= grace))
    }

    /// Whether the index points at the data file `rel` now (committed after the listing).
    async fn indexed_now(&self, bucket: &str, rel: &str) -> Result<bool, MaintenanceError> {
        let attr = match self
            .el(bucket)
            .await?
            .read_attr(&format!("{rel}{SIDECAR_SUFFIX}"))
            .await
        {
            Ok(a) => a,
            Err(_) => return Ok(false),
        };
        Ok(self
            .store
            .get_object(bucket, &attr.key)
            .await?
            .is_some_and(|o| o.storage_path == rel))
    }
}

/// `bucket/rest` of a report entry.
fn split(name: &str) -> (&str, &str) {
    name.split_once('/').unwrap_or((name, ""))
}
