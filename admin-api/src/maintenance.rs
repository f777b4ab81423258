//! Keeping the index a faithful cache of the sidecars: start-up recovery, `index rebuild`
//! and `index verify` (DESIGN.md §3, invariants 3–5).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use artstore_backends::attr::RestoreAttr;
use artstore_backends::legacy_tree::is_legacy_temp;
use artstore_backends::{AttrJson, Backend, BackendConfig, BackendError, Backends, KeyTemplate};
use artstore_metadata::{
    ElementDoc, ListEntry, ListQuery, MetaError, Mode, NewElement, ObjectRecord, RestoreState,
    Store, import_key_template, imported_backend,
};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::progress::WorkProgress;

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error(transparent)]
    Index(#[from] MetaError),
    #[error(transparent)]
    Storage(#[from] BackendError),
}

/// What a reconciliation of the index with the disk did.
#[derive(Debug, Default, Serialize)]
pub struct ReconcileReport {
    pub elements_created: u64,
    /// Elements whose `element.json` is missing or unreadable, restored in mode `ro` (never
    /// looser) because they hold objects.
    pub elements_restricted: Vec<String>,
    /// Element directories without a usable `element.json` and without objects: not indexed.
    pub elements_skipped: Vec<String>,
    /// Set when the index holds no control data (accounts, grants, keys, audit events): those
    /// live only in the index and a rebuild cannot bring them back.
    pub control_data_missing: Option<String>,
    pub sidecars_seen: u64,
    /// Objects whose sidecar had no index row, or a newer one than the row: completed
    /// writes whose index commit was lost.
    pub objects_indexed: u64,
    pub objects_unchanged: u64,
    /// Index rows rewritten because they differed from their sidecar.
    pub rows_repaired: u64,
    /// Files of objects that a newer indexed version replaced.
    pub superseded_removed: u64,
    /// Deletes committed in the index whose files a crash left on disk, finished now.
    pub deletes_finished: u64,
    pub uploads_removed: u64,
    /// Index rows whose data file and sidecar were both gone: a delete whose commit was lost
    /// (power loss) after its files were removed. Dropped, as the sidecars say.
    pub lost_rows_dropped: u64,
    /// Data files without sidecar or row: writes that crashed between placing the data and
    /// placing its sidecar, so before their commit. Removed.
    pub unfinished_removed: u64,
    /// Multipart uploads whose recorded parts were gone from disk: a Complete or Abort whose
    /// commit was lost after the parts were removed. Forgotten.
    pub lost_uploads_dropped: u64,
    /// A rebuild while the server serves: sidecars of writes that began after it started, or
    /// that do not match their row yet, left to the writes still committing them.
    #[serde(skip_serializing_if = "is_zero")]
    pub left_to_writers: u64,
    /// Sidecars that cannot be indexed (unreadable, or data missing or of the wrong size).
    pub broken: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ReconcileReport {
    /// What an operator must hear about: elements restored more restrictively or skipped,
    /// and control data that sidecars cannot bring back.
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.elements_restricted
            .iter()
            .chain(&self.elements_skipped)
            .chain(&self.control_data_missing)
            .map(String::as_str)
    }
}

/// What `index verify` found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub objects_checked: u64,
    pub bytes_hashed: u64,
    pub missing: Vec<String>,
    pub size_mismatch: Vec<String>,
    pub checksum_mismatch: Vec<String>,
    /// Sidecars (with their data) on disk that the index does not point at, by path.
    pub orphans: Vec<String>,
    /// Data files without a sidecar, by path.
    pub data_without_sidecar: Vec<String>,
    /// Sidecars without a data file that the index does not point at, by path.
    pub sidecar_without_data: Vec<String>,
    /// Temp files left by an interrupted write, by path.
    pub temp_files: Vec<String>,
    /// Files a committed delete or overwrite made obsolete that are still on disk, by path.
    pub obsolete: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.size_mismatch.is_empty()
            && self.checksum_mismatch.is_empty()
            && self.orphans.is_empty()
            && self.data_without_sidecar.is_empty()
            && self.sidecar_without_data.is_empty()
            && self.temp_files.is_empty()
            && self.obsolete.is_empty()
    }
}

/// A file `index verify --repair` moved out of the way.
#[derive(Debug, Serialize)]
pub struct Quarantined {
    pub from: String,
    pub to: String,
    pub why: String,
}

/// What `index verify --repair` did. It removes only what the index proves is garbage (files
/// recorded as obsolete by a committed delete or overwrite, temp files, rows whose data and
/// sidecar are both gone) and moves anything doubtful to the element's quarantine folder.
#[derive(Debug, Default, Serialize)]
pub struct RepairReport {
    /// Files removed, by path.
    pub removed: Vec<String>,
    /// Index rows dropped because the object's data file and sidecar are both gone.
    pub rows_dropped: Vec<String>,
    pub quarantined: Vec<Quarantined>,
    /// Damage left for the operator, with the reason.
    pub left: Vec<String>,
    /// What a verify after the repair finds.
    pub after: VerifyReport,
}

/// Whether a data file is one this implementation began writing at or after `since_ms`: its
/// name ends in `_{file_id}{ext}` with a UUIDv7 file id, whose first 48 bits are the creation
/// time. Files of other writers (the legacy UUIDv4 or short ids of an imported archive) never
/// match, so recovery never removes them.
fn written_since(rel: &str, since_ms: i64) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let Some(id) = name.rsplit('_').next().and_then(|t| t.get(..36)) else {
        return false;
    };
    match uuid::Uuid::parse_str(id) {
        Ok(u) if u.get_version_num() == 7 => u.get_timestamp().is_some_and(|t| {
            let (secs, nanos) = t.to_unix();
            i64::try_from(secs)
                .ok()
                .and_then(|s| s.checked_mul(1000))
                .is_some_and(|ms| ms + i64::from(nanos / 1_000_000) >= since_ms)
        }),
        _ => false,
    }
}

fn is_temp(rel: &str) -> bool {
    rel.rsplit('/').next().unwrap_or(rel).starts_with(".tmp-")
}

fn is_sidecar(rel: &str) -> bool {
    rel.ends_with(SIDECAR_SUFFIX) && !is_temp(rel)
}

const SIDECAR_SUFFIX: &str = ".attr.json";

/// How the files of one element's hour directories relate to its index rows.
#[derive(Default)]
struct DiskScan {
    /// Sidecars with a data file the index does not point at.
    orphans: Vec<String>,
    data_without_sidecar: Vec<String>,
    sidecar_without_data: Vec<String>,
    temp_files: Vec<String>,
}

fn ms(text: &str) -> i64 {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or_default())
        .unwrap_or_default()
}

/// The index row an attr.json describes.
pub fn record_from_attr(bucket: &str, data_rel: &str, a: &AttrJson) -> ObjectRecord {
    let h = &a.http_headers;
    let mut headers = BTreeMap::new();
    for (k, v) in [
        ("content-encoding", &h.content_encoding),
        ("content-disposition", &h.content_disposition),
        ("content-language", &h.content_language),
        ("cache-control", &h.cache_control),
        ("expires", &h.expires),
    ] {
        if let Some(v) = v {
            headers.insert(k.to_owned(), v.clone());
        }
    }
    ObjectRecord {
        bucket: bucket.to_owned(),
        key: a.key.clone(),
        file_id: a.file_id.clone(),
        storage_path: data_rel.to_owned(),
        size: i64::try_from(a.file_size).unwrap_or(i64::MAX),
        etag: a.etag.clone(),
        sha256: a.checksum.clone(),
        content_type: a.content_type.clone(),
        http_headers: headers,
        checksums: a.checksums.clone(),
        custom_attributes: a.custom_attributes.clone(),
        tags: a.tags.clone(),
        owner_id: a.created_by_id.clone(),
        owner_name: a.created_by_username.clone(),
        parts_count: a.parts_count.map(i64::from),
        part_sizes: a
            .part_sizes
            .iter()
            .map(|[size, count]| artstore_metadata::PartRun {
                size: i64::try_from(*size).unwrap_or(i64::MAX),
                count: i64::try_from(*count).unwrap_or(i64::MAX),
            })
            .collect(),
        created_ms: ms(&a.created_at),
        updated_ms: ms(&a.updated_at),
        restore: a.restore.as_ref().and_then(restore_from_attr),
    }
}

/// The index's view of a sidecar's `restore` record; one with an unknown status is left out
/// (the object then reads as never restored) rather than failing the whole rebuild.
pub fn restore_from_attr(r: &RestoreAttr) -> Option<RestoreState> {
    let opt_ms = |t: &Option<String>| t.as_deref().map(ms);
    Some(RestoreState {
        status: r.status.parse().ok()?,
        days: i64::from(r.days),
        requested_ms: ms(&r.requested_at),
        requested_by: r.requested_by.clone(),
        completed_ms: opt_ms(&r.completed_at),
        expires_ms: opt_ms(&r.expires_at),
    })
}

/// What a rebuild says when the control data is gone with the index.
pub const CONTROL_DATA_MISSING: &str = "the index holds no service accounts besides the initial admin: accounts, grants, signing keys, audit events and settings live only in the index and cannot be rebuilt from sidecars; restore them from a backup with `artstore restore --from FILE` (backups are taken with `artstore backup --out FILE`, see README \"Backup and restore\")";

mod in_flight;

/// How old a file must be before `verify` beside a running server counts it as damage rather
/// than a write in flight (temp files of a slow upload keep a fresh modification time).
pub const IN_FLIGHT_GRACE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

pub struct Maintenance {
    store: Store,
    backends: Backends,
    /// Where the work reports how far it got (nobody watches unless told).
    progress: Arc<WorkProgress>,
    /// Only this element, when set.
    only: Option<String>,
    /// Set (to when it started, ms) for a rebuild while the server serves (an admin job).
    serving_since: Option<i64>,
    /// Set when servers may be writing: `verify` then leaves out what writes in flight explain.
    in_flight_grace: Option<std::time::Duration>,
    /// Only elements on this machine's disks (start-up recovery of one node).
    local_only: bool,
}

impl Maintenance {
    pub fn new(store: Store, backends: Backends) -> Self {
        Maintenance {
            store,
            backends,
            progress: Arc::default(),
            only: None,
            serving_since: None,
            in_flight_grace: None,
            local_only: false,
        }
    }

    /// Leaves elements on remote services alone: one node's start-up must neither wait for
    /// them nor take another node's write in flight there for a crash's leftovers (`index
    /// verify` and `rebuild` cover them).
    pub fn local_only(mut self) -> Self {
        self.local_only = true;
        self
    }

    /// For a `verify` while servers write to the same data: findings that writes in flight
    /// explain, or files younger than `grace`, are not reported.
    pub fn beside_writers(mut self, grace: std::time::Duration) -> Self {
        self.in_flight_grace = Some(grace);
        self
    }

    /// Reports progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<WorkProgress>) -> Self {
        self.progress = progress;
        self
    }

    /// Works on `element` alone.
    pub fn only_element(mut self, element: Option<String>) -> Self {
        self.only = element;
        self
    }

    /// A rebuild beside live writes (started at `started_ms`): it leaves the sidecars of
    /// writes begun since then, removes no file but those the index records as obsolete, and
    /// leaves multipart uploads alone, since any of those may belong to a write in flight.
    pub fn while_serving(mut self, started_ms: i64) -> Self {
        self.serving_since = Some(started_ms);
        self
    }

    /// The element's backend; an element the index does not know is the local directory of
    /// that name (a rebuild restores it from there).
    async fn el(&self, bucket: &str) -> Result<Arc<dyn Backend>, MaintenanceError> {
        crate::element_backend::of(&self.store, &self.backends, bucket).await
    }

    /// Every element whose storage recovery and rebuild walk: the local directories present
    /// (a local element whose directory is missing is unmounted, not empty) and the indexed
    /// elements stored elsewhere.
    pub async fn element_names(&self) -> Result<Vec<String>, MaintenanceError> {
        let mut names = self.backends.local_element_names().await?;
        for e in self.store.list_elements().await? {
            let local = BackendConfig::stored_kind(&e.backend).is_none_or(|k| k == "local");
            if !local && self.local_only {
                names.retain(|n| n != &e.name);
            } else if !local && !names.contains(&e.name) {
                names.push(e.name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn in_scope(&self, bucket: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == bucket)
    }

    /// Brings the index in line with the sidecars written at or after `since` (all of them
    /// when `None`). Run with no server writing: a write in flight would look like lost work.
    pub async fn reconcile(
        &self,
        since: Option<OffsetDateTime>,
    ) -> Result<ReconcileReport, MaintenanceError> {
        let mut report = ReconcileReport::default();
        self.progress.phase("rebuilding", None, None);
        // First, so a deleted object's sidecar is never mistaken for a lost write.
        let names = self.element_names().await?;
        for (bucket, path) in self.store.pending_deletes().await? {
            if !self.in_scope(&bucket) || (self.local_only && !names.contains(&bucket)) {
                continue;
            }
            self.el(&bucket).await?.delete(&path).await?;
            self.store.forget_pending_delete(&bucket, &path).await?;
            report.deletes_finished += 1;
        }
        for bucket in self.element_names().await? {
            if !self.in_scope(&bucket) {
                continue;
            }
            self.progress.element(&bucket);
            if !self.ensure_element(&bucket, &mut report).await? {
                continue;
            }
            let element = self.store.get_element(&bucket).await?;
            // Only `edit` ever lets a key be overwritten (and no element becomes `edit`).
            let overwrites = element.as_ref().is_none_or(|e| e.mode == Mode::Edit);
            // An imported element's legacy sidecars get their keys as the import gave them.
            let template = element
                .as_ref()
                .and_then(|e| import_key_template(&e.backend))
                .and_then(|t| KeyTemplate::parse(&t).ok());
            let dirs = self.el(&bucket).await?.hour_dirs(since).await?;
            let files = self.el(&bucket).await?.files_in(&dirs).await?;
            // Root sidecars (an imported flat layout) are read by full scans only.
            let root = match since {
                None => self.el(&bucket).await?.root_sidecars().await?,
                Some(_) => Vec::new(),
            };
            let sidecars: Vec<&String> = files
                .iter()
                .filter(|r| is_sidecar(r))
                .chain(&root)
                .collect();
            self.progress.add_items_total(sidecars.len() as u64);
            for rel in sidecars {
                report.sidecars_seen += 1;
                self.reconcile_sidecar(&bucket, rel, overwrites, template.as_ref(), &mut report)
                    .await?;
                self.progress.advance(1, 0);
            }
            if self.serving_since.is_some() {
                continue;
            }
            // After a crash: rows whose files are gone, and files of commits that never happened.
            if let Some(since) = since {
                let since_ms =
                    i64::try_from(since.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
                let present: HashSet<&str> = files.iter().map(String::as_str).collect();
                for dir in &dirs {
                    self.check_dir(&bucket, dir, &present, since_ms, &mut report)
                        .await?;
                }
            }
            let upload_dirs = self.el(&bucket).await?.upload_ids().await?;
            for upload_id in &upload_dirs {
                if self.store.get_upload(upload_id).await?.is_none() {
                    self.el(&bucket).await?.remove_upload(upload_id).await?;
                    report.uploads_removed += 1;
                }
            }
            self.drop_lost_uploads(&bucket, &upload_dirs, &mut report)
                .await?;
        }
        if report.elements_created > 0 && self.store.count_non_system_accounts().await? == 0 {
            report.control_data_missing = Some(CONTROL_DATA_MISSING.to_owned());
        }
        Ok(report)
    }

    /// Recreates a missing element row from the element's `element.json`, with its creation
    /// time and mode history. Returns whether the element is indexed (its objects can be).
    async fn ensure_element(
        &self,
        bucket: &str,
        report: &mut ReconcileReport,
    ) -> Result<bool, MaintenanceError> {
        if self.store.get_element(bucket).await?.is_some() {
            return Ok(true);
        }
        let doc = match self.el(bucket).await?.read_element_json().await {
            Ok(Some(bytes)) => ElementDoc::parse(bucket, &bytes)
                .map_err(|e| format!("element.json is unreadable ({e})")),
            Ok(None) => Err("element.json is missing".to_owned()),
            Err(e) => Err(format!("element.json cannot be read ({e})")),
        };
        // An element on its own root path is a symlink to it: the link is the truth.
        let path = self.backends.local_config_on_disk(bucket).path;
        let backend = artstore_metadata::local_backend(path.as_deref());
        let (new, created_ms, history, tags, lifecycle) = match doc {
            Ok(doc) => (
                NewElement {
                    backend: match (&path, import_key_template(&doc.backend.to_string())) {
                        (Some(p), Some(t)) => imported_backend(p, &t),
                        _ => backend,
                    },
                    name: bucket.to_owned(),
                    mode: doc.mode,
                    capacity_bytes: doc.capacity_bytes,
                    description: doc.description,
                    created_by: doc.created_by.unwrap_or_else(|| "recovery".into()),
                },
                doc.created_ms,
                doc.history,
                doc.tags,
                doc.lifecycle,
            ),
            Err(why) => {
                if self.el(bucket).await?.sidecars(None).await?.is_empty() {
                    report.elements_skipped.push(format!(
                        "{bucket}: {why} and the element holds no objects; not indexed (create it again to use it)"
                    ));
                    return Ok(false);
                }
                // Its real mode is unknown: never looser than ro, whatever it was.
                report.elements_restricted.push(format!(
                    "{bucket}: {why}; restored in mode ro (change it with `artstore element mode` if it was rw)"
                ));
                let new = NewElement {
                    name: bucket.to_owned(),
                    mode: Mode::Ro,
                    backend,
                    capacity_bytes: None,
                    description: None,
                    created_by: "recovery".into(),
                };
                (new, None, Vec::new(), BTreeMap::new(), None)
            }
        };
        match self.store.restore_element(&new, created_ms, &history).await {
            Ok(_) => report.elements_created += 1,
            Err(MetaError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if !tags.is_empty() {
            self.store.set_bucket_tags(bucket, &tags).await?;
        }
        if let Some(lifecycle) = &lifecycle {
            self.store
                .set_bucket_lifecycle(bucket, Some(lifecycle))
                .await?;
        }
        Ok(true)
    }

    /// Forgets uploads whose recorded parts are gone from disk: a part is recorded only after
    /// its file is in place, and the files go only after a Complete or Abort committed, so
    /// this is such a commit lost to a power cut (or an index restored from an older backup).
    async fn drop_lost_uploads(
        &self,
        bucket: &str,
        upload_dirs: &[String],
        report: &mut ReconcileReport,
    ) -> Result<(), MaintenanceError> {
        let on_disk: HashSet<&str> = upload_dirs.iter().map(String::as_str).collect();
        let (mut key, mut id) = (String::new(), String::new());
        loop {
            let page = self.store.list_uploads(bucket, "", &key, &id, 1000).await?;
            for u in &page {
                if !on_disk.contains(u.upload_id.as_str())
                    && !self.store.list_parts(&u.upload_id, 0, 1).await?.is_empty()
                    && self.store.delete_upload(&u.upload_id).await?
                {
                    report.lost_uploads_dropped += 1;
                }
            }
            match page.last() {
                Some(last) if page.len() == 1000 => {
                    key.clone_from(&last.key);
                    id.clone_from(&last.upload_id);
                }
                _ => return Ok(()),
            }
        }
    }

    /// In one hour directory: drops the rows whose data file and sidecar are both gone, and
    /// removes data files this implementation began writing since `since_ms` that have
    /// neither a sidecar nor a row. The sidecar is in place before the index commit, so such a
    /// file is a write that crashed before its commit and was never acknowledged.
    async fn check_dir(
        &self,
        bucket: &str,
        dir: &str,
        present: &HashSet<&str>,
        since_ms: i64,
        report: &mut ReconcileReport,
    ) -> Result<(), MaintenanceError> {
        let rows = self.store.objects_in_dir(bucket, dir).await?;
        for o in &rows {
            if self.files_gone(o).await?
                && self
                    .store
                    .drop_lost_object(bucket, &o.key, &o.file_id)
                    .await?
            {
                report.lost_rows_dropped += 1;
            }
        }
        let indexed: HashSet<&str> = rows.iter().map(|o| o.storage_path.as_str()).collect();
        let prefix = format!("{dir}/");
        for rel in present.iter().filter(|r| r.starts_with(&prefix)) {
            if is_temp(rel) || rel.ends_with(SIDECAR_SUFFIX) || indexed.contains(rel) {
                continue;
            }
            if !present.contains(format!("{rel}{SIDECAR_SUFFIX}").as_str())
                && written_since(rel, since_ms)
            {
                self.el(bucket).await?.delete(rel).await?;
                report.unfinished_removed += 1;
            }
        }
        Ok(())
    }

    /// Whether both files of an indexed object are gone, while its element is in place (an
    /// unmounted element is not a deleted one).
    async fn files_gone(&self, o: &ObjectRecord) -> Result<bool, MaintenanceError> {
        let attr = format!("{}{SIDECAR_SUFFIX}", o.storage_path);
        Ok(self
            .el(&o.bucket)
            .await?
            .read_element_json()
            .await?
            .is_some()
            && self
                .el(&o.bucket)
                .await?
                .data_len(&o.storage_path)
                .await?
                .is_none()
            && self.el(&o.bucket).await?.data_len(&attr).await?.is_none())
    }

    /// Removes replaced files and then their record as obsolete.
    async fn remove_obsolete(&self, bucket: &str, path: &str) -> Result<(), MaintenanceError> {
        self.el(bucket).await?.delete(path).await?;
        self.store.forget_pending_delete(bucket, path).await?;
        Ok(())
    }

    async fn reconcile_sidecar(
        &self,
        bucket: &str,
        rel: &str,
        overwrites: bool,
        template: Option<&KeyTemplate>,
        report: &mut ReconcileReport,
    ) -> Result<(), MaintenanceError> {
        let read = match template {
            Some(t) => self
                .el(bucket)
                .await?
                .read_adopted(rel, bucket, t)
                .await
                .map(|a| (a.attr, a.legacy)),
            None => self
                .el(bucket)
                .await?
                .read_attr(rel)
                .await
                .map(|a| (a, false)),
        };
        let (attr, legacy) = match read {
            Ok(a) => a,
            Err(e @ (BackendError::InvalidAttr(_) | BackendError::NotFound(_))) => {
                report.broken.push(format!("{bucket}/{rel}: {e}"));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let data_rel = rel.trim_end_matches(".attr.json");
        if self
            .serving_since
            .is_some_and(|since| written_since(data_rel, since))
        {
            // Its write's own commit indexes it (or removes it).
            report.left_to_writers += 1;
            return Ok(());
        }
        let len = self.el(bucket).await?.data_len(data_rel).await?;
        if len != Some(attr.file_size) {
            report.broken.push(format!(
                "{bucket}/{data_rel}: data is {len:?} bytes, sidecar says {}",
                attr.file_size
            ));
            return Ok(());
        }
        let rec = record_from_attr(bucket, data_rel, &attr);
        match self.store.get_object(bucket, &rec.key).await? {
            None => {
                self.store.put_object(&rec).await?;
                report.objects_indexed += 1;
            }
            // A legacy document is never replaced nor removed: the first to claim a key
            // keeps it, as `element import` decided.
            Some(cur) if legacy && cur.storage_path != rec.storage_path => {
                report.broken.push(format!(
                    "{bucket}/{data_rel}: its key {:?} is held by {}",
                    rec.key, cur.storage_path
                ));
            }
            Some(cur) if cur.file_id == rec.file_id => {
                if cur == rec {
                    report.objects_unchanged += 1;
                } else if self.serving_since.is_some() {
                    self.repair_row_locked(bucket, rel, template, &cur, report)
                        .await?;
                } else {
                    self.store.put_object(&rec).await?;
                    report.rows_repaired += 1;
                }
            }
            // File ids are UUIDv7: later writes sort later. Where overwrites are forbidden, a
            // second file for an indexed key is a write the commit refused, never a lost one.
            // Beside live writes, a newer or refused version may still be committing.
            Some(_) if self.serving_since.is_some() => report.left_to_writers += 1,
            Some(cur) if overwrites && rec.file_id > cur.file_id => {
                if let Some(old) = self.store.put_object(&rec).await? {
                    self.remove_obsolete(bucket, &old.storage_path).await?;
                    report.superseded_removed += 1;
                }
                report.objects_indexed += 1;
            }
            Some(_) => {
                self.el(bucket).await?.delete(data_rel).await?;
                report.superseded_removed += 1;
            }
        }
        Ok(())
    }

    /// Beside live writes: rewrites a row from its sidecar read again under the key's lock,
    /// which tag and metadata updates hold while they rewrite the sidecar and the row, so the
    /// row never goes back to a sidecar an update has just replaced.
    async fn repair_row_locked(
        &self,
        bucket: &str,
        rel: &str,
        template: Option<&KeyTemplate>,
        cur: &ObjectRecord,
        report: &mut ReconcileReport,
    ) -> Result<(), MaintenanceError> {
        let data_rel = rel.trim_end_matches(".attr.json");
        let backend = self.el(bucket).await?;
        let backend = &backend;
        let res = self
            .store
            .update_object_with(
                bucket,
                &cur.key,
                |view| view.current.cloned().ok_or(None),
                |now| async move {
                    let attr = match template {
                        Some(t) => backend.read_adopted(rel, bucket, t).await.map(|a| a.attr),
                        None => backend.read_attr(rel).await,
                    };
                    match attr {
                        Ok(a) if a.file_id == now.file_id => {
                            Ok(record_from_attr(bucket, data_rel, &a))
                        }
                        Ok(_) => Err(None),
                        Err(e) => Err(Some(MaintenanceError::from(e))),
                    }
                },
            )
            .await;
        match res {
            Ok(rec) if rec == *cur => report.objects_unchanged += 1,
            Ok(_) => report.rows_repaired += 1,
            // The row or the sidecar moved on meanwhile: a write did it.
            Err(artstore_metadata::Checked::Refused(None))
            | Err(artstore_metadata::Checked::Index(MetaError::NotFound(_))) => {
                report.left_to_writers += 1
            }
            Err(artstore_metadata::Checked::Refused(Some(e))) => return Err(e),
            Err(artstore_metadata::Checked::Index(e)) => return Err(e.into()),
        }
        Ok(())
    }

    /// Re-hashes every indexed object and looks for sidecars the index does not know.
    pub async fn verify(&self) -> Result<VerifyReport, MaintenanceError> {
        let mut report = VerifyReport::default();
        let elements: Vec<_> = self
            .store
            .list_elements()
            .await?
            .into_iter()
            .filter(|e| self.in_scope(&e.name))
            .collect();
        let count = |f: fn(&artstore_metadata::Element) -> i64| {
            elements
                .iter()
                .map(|e| u64::try_from(f(e)).unwrap_or(0))
                .sum::<u64>()
        };
        self.progress.phase(
            "verifying",
            Some(count(|e| e.object_count)),
            Some(count(|e| e.used_bytes)),
        );
        for element in elements {
            let bucket = element.name.clone();
            self.progress.element(&bucket);
            let mut indexed = HashSet::new();
            let mut after = None;
            loop {
                let page = self
                    .store
                    .list_objects(
                        &bucket,
                        &ListQuery {
                            after: after.clone(),
                            max_keys: 1000,
                            ..Default::default()
                        },
                    )
                    .await?;
                for entry in &page.entries {
                    if let ListEntry::Object(o) = entry {
                        indexed.insert(o.storage_path.clone());
                        self.verify_object(o, &mut report).await?;
                    }
                }
                if !page.truncated {
                    break;
                }
                after = page.last_position().map(str::to_owned);
            }
            let imported = import_key_template(&element.backend).is_some();
            let scan = self.scan_disk(&bucket, &indexed, imported).await?;
            let named = |v: Vec<String>| v.into_iter().map(|r| format!("{bucket}/{r}"));
            report.orphans.extend(named(scan.orphans));
            report
                .data_without_sidecar
                .extend(named(scan.data_without_sidecar));
            report
                .sidecar_without_data
                .extend(named(scan.sidecar_without_data));
            report.temp_files.extend(named(scan.temp_files));
        }
        for (bucket, path) in self.store.pending_deletes().await? {
            if !self.in_scope(&bucket) {
                continue;
            }
            let attr = format!("{path}{SIDECAR_SUFFIX}");
            if self.el(&bucket).await?.data_len(&path).await?.is_some()
                || self.el(&bucket).await?.data_len(&attr).await?.is_some()
            {
                report.obsolete.push(format!("{bucket}/{path}"));
            }
        }
        if let Some(grace) = self.in_flight_grace {
            self.drop_in_flight(&mut report, grace).await?;
        }
        Ok(report)
    }

    /// Sorts the files of the element's hour directories against the indexed data paths.
    async fn scan_disk(
        &self,
        bucket: &str,
        indexed: &HashSet<String>,
        imported: bool,
    ) -> Result<DiskScan, MaintenanceError> {
        let dirs = self.el(bucket).await?.hour_dirs(None).await?;
        let files = self.el(bucket).await?.files_in(&dirs).await?;
        let present: HashSet<&str> = files.iter().map(String::as_str).collect();
        let mut scan = DiskScan::default();
        for rel in &files {
            if imported && is_legacy_temp(rel.rsplit('/').next().unwrap_or(rel)) {
                // Left by an earlier implementation's interrupted write in an imported archive;
                // the import reported it and it is not ours to judge or remove.
                continue;
            }
            if is_temp(rel) {
                scan.temp_files.push(rel.clone());
            } else if let Some(data_rel) = rel.strip_suffix(SIDECAR_SUFFIX) {
                if indexed.contains(data_rel) {
                    continue;
                }
                if present.contains(data_rel) {
                    scan.orphans.push(data_rel.to_owned());
                } else {
                    scan.sidecar_without_data.push(rel.clone());
                }
            } else if !present.contains(format!("{rel}{SIDECAR_SUFFIX}").as_str()) {
                scan.data_without_sidecar.push(rel.clone());
            }
        }
        // Sidecars in the root (an imported flat layout); other root files are not documents.
        for rel in self.el(bucket).await?.root_sidecars().await? {
            let Some(data_rel) = rel.strip_suffix(SIDECAR_SUFFIX) else {
                continue;
            };
            if indexed.contains(data_rel) {
                continue;
            }
            if self.el(bucket).await?.data_len(data_rel).await?.is_some() {
                scan.orphans.push(data_rel.to_owned());
            } else {
                scan.sidecar_without_data.push(rel.clone());
            }
        }
        Ok(scan)
    }

    /// `index verify --repair` (run with the server stopped): removes what the index proves
    /// is garbage, quarantines what it cannot prove, and leaves bit rot and unindexed
    /// documents to the operator. Never deletes a document it cannot prove obsolete.
    pub async fn repair(&self, label: &str) -> Result<RepairReport, MaintenanceError> {
        let mut out = RepairReport::default();
        for (bucket, path) in self.store.pending_deletes().await? {
            let attr = format!("{path}{SIDECAR_SUFFIX}");
            for rel in [&attr, &path] {
                if self.el(&bucket).await?.data_len(rel).await?.is_some() {
                    out.removed.push(format!("{bucket}/{rel}"));
                }
            }
            self.remove_obsolete(&bucket, &path).await?;
        }
        let found = self.verify().await?;
        for name in &found.missing {
            let Some((bucket, key)) = name.split_once('/') else {
                continue;
            };
            match self.store.get_object(bucket, key).await? {
                Some(o) if self.files_gone(&o).await? => {
                    if self
                        .store
                        .drop_lost_object(bucket, key, &o.file_id)
                        .await?
                    {
                        out.rows_dropped.push(name.clone());
                    }
                }
                _ => out.left.push(format!(
                    "{name}: the data file is missing but its sidecar is not; restore the file from a backup"
                )),
            }
        }
        for name in &found.temp_files {
            if let Some((bucket, rel)) = name.split_once('/') {
                self.el(bucket).await?.delete(rel).await?;
                out.removed.push(name.clone());
            }
        }
        for (names, why) in [
            (&found.data_without_sidecar, "data file without a sidecar"),
            (&found.sidecar_without_data, "sidecar without a data file"),
        ] {
            for name in names {
                if let Some((bucket, rel)) = name.split_once('/') {
                    self.quarantine(bucket, rel, label, why, &mut out).await?;
                }
            }
        }
        for name in &found.orphans {
            let Some((bucket, data_rel)) = name.split_once('/') else {
                continue;
            };
            let attr_rel = format!("{data_rel}{SIDECAR_SUFFIX}");
            let attr = match self.el(bucket).await?.read_attr(&attr_rel).await {
                Ok(a) => Some(a),
                Err(BackendError::InvalidAttr(_)) => None,
                Err(e) => return Err(e.into()),
            };
            let current = match &attr {
                Some(a) => self.store.get_object(bucket, &a.key).await?,
                None => None,
            };
            match (attr, current) {
                (Some(_), None) => out.left.push(format!(
                    "{name}: a document the index does not know; run `artstore index rebuild` to index it"
                )),
                (Some(a), Some(cur)) => {
                    let why = format!(
                        "another version of key {:?} is indexed ({})",
                        a.key, cur.storage_path
                    );
                    self.quarantine(bucket, &attr_rel, label, &why, &mut out)
                        .await?;
                    self.quarantine(bucket, data_rel, label, &why, &mut out)
                        .await?;
                }
                (None, _) => {
                    let why = "unreadable sidecar";
                    self.quarantine(bucket, &attr_rel, label, why, &mut out)
                        .await?;
                    self.quarantine(bucket, data_rel, label, why, &mut out)
                        .await?;
                }
            }
        }
        for name in found.size_mismatch.iter().chain(&found.checksum_mismatch) {
            out.left.push(format!(
                "{name}: the data differs from its recorded size or checksum; restore it from a backup (never rewritten here)"
            ));
        }
        out.after = self.verify().await?;
        Ok(out)
    }

    async fn quarantine(
        &self,
        bucket: &str,
        rel: &str,
        label: &str,
        why: &str,
        out: &mut RepairReport,
    ) -> Result<(), MaintenanceError> {
        let to = self.el(bucket).await?.quarantine(rel, label).await?;
        out.quarantined.push(Quarantined {
            from: format!("{bucket}/{rel}"),
            to: format!("{bucket}/{to}"),
            why: why.to_owned(),
        });
        Ok(())
    }

    async fn verify_object(
        &self,
        o: &ObjectRecord,
        report: &mut VerifyReport,
    ) -> Result<(), MaintenanceError> {
        report.objects_checked += 1;
        self.progress.advance(1, 0);
        let name = format!("{}/{}", o.bucket, o.key);
        match self.el(&o.bucket).await?.data_len(&o.storage_path).await? {
            None => report.missing.push(name),
            Some(len) if i64::try_from(len).ok() != Some(o.size) => report.size_mismatch.push(name),
            Some(len) => {
                let p = self.progress.clone();
                match self
                    .el(&o.bucket)
                    .await?
                    .hash_file(&o.storage_path, Box::new(move |n| p.advance(0, n)))
                    .await
                {
                    Ok(d) => {
                        report.bytes_hashed += len;
                        if d.sha256_hex() != o.sha256 {
                            report.checksum_mismatch.push(name);
                        }
                    }
                    // Gone since its size was read: damage, or a delete beside a live server.
                    Err(BackendError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                        report.missing.push(name)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}
