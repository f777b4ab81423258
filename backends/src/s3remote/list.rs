//! Listing an element with ListObjectsV2 for recovery, `index rebuild` and `index verify`
//! (the sidecars are the source of truth), and quarantine by server-side copy.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use time::OffsetDateTime;

use super::S3Remote;
use super::keys::{ATTR_SUFFIX, MULTIPART_DIR, QUARANTINE_DIR, TMP_PREFIX, check_rel};
use crate::error::BackendError;

/// Keys per DeleteObjects request (the S3 maximum).
const DELETE_BATCH: usize = 1000;

/// A remote multipart upload that was started and neither completed nor aborted.
#[derive(Debug, Clone)]
pub struct RemoteUpload {
    /// The full key it writes.
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<SystemTime>,
}

/// An object found by a listing.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    /// Relative to the element's prefix.
    pub rel: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// What one directory level holds: sub-directory names and files.
struct Level {
    dirs: Vec<String>,
    files: Vec<RemoteFile>,
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY/MM/DD/HH` of an hour directory, comparable as a string.
fn hour_key(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}/{:02}/{:02}/{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour()
    )
}

fn is_sidecar(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.ends_with(ATTR_SUFFIX) && !name.starts_with(TMP_PREFIX)
}

impl S3Remote {
    /// One level below `rel_dir` ("" for the element root): sub-directories (common prefixes)
    /// and files, each sorted.
    async fn level(&self, rel_dir: &str) -> Result<Level, BackendError> {
        if !rel_dir.is_empty() {
            check_rel(rel_dir)?;
        }
        let prefix = if rel_dir.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}{rel_dir}/", self.prefix)
        };
        let mut level = Level {
            dirs: Vec::new(),
            files: Vec::new(),
        };
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.target.bucket)
                .prefix(&prefix)
                .delimiter("/")
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| self.target.error(&format!("ListObjectsV2 {prefix}"), e))?;
            for p in out.common_prefixes() {
                if let Some(name) = p
                    .prefix()
                    .and_then(|p| p.strip_prefix(prefix.as_str()))
                    .and_then(|p| p.strip_suffix('/'))
                {
                    level.dirs.push(name.to_owned());
                }
            }
            for o in out.contents() {
                if let Some(name) = o.key().and_then(|k| k.strip_prefix(prefix.as_str())) {
                    let rel = if rel_dir.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{rel_dir}/{name}")
                    };
                    level.files.push(RemoteFile {
                        rel,
                        size: o.size().unwrap_or_default().max(0) as u64,
                        modified: o
                            .last_modified()
                            .and_then(|t| SystemTime::try_from(*t).ok()),
                    });
                }
            }
            token = out.next_continuation_token().map(str::to_owned);
            if token.is_none() || !out.is_truncated().unwrap_or(false) {
                break;
            }
        }
        level.dirs.sort();
        level.files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(level)
    }

    /// Relative paths of the sidecars, only in hour directories at or after `since` when
    /// given; full scans (`None`) also read sidecars in the element root (an imported flat
    /// layout).
    pub async fn sidecars(
        &self,
        since: Option<OffsetDateTime>,
    ) -> Result<Vec<String>, BackendError> {
        let dirs = self.hour_dirs(since).await?;
        let mut out = self.files_in(&dirs).await?;
        out.retain(|r| is_sidecar(r));
        if since.is_none() {
            out.extend(self.root_sidecars().await?);
        }
        Ok(out)
    }

    /// Sidecars directly under the prefix.
    pub async fn root_sidecars(&self) -> Result<Vec<String>, BackendError> {
        Ok(self
            .level("")
            .await?
            .files
            .into_iter()
            .map(|f| f.rel)
            .filter(|r| is_sidecar(r))
            .collect())
    }

    /// The hour directories (`YYYY/MM/DD/HH`) named for `since`'s hour or later (all when
    /// `None`). Unlike a directory on disk a prefix has no mtime: an older hour whose
    /// objects changed since is found by full scans only.
    pub async fn hour_dirs(
        &self,
        since: Option<OffsetDateTime>,
    ) -> Result<Vec<String>, BackendError> {
        let since = since.map(hour_key);
        // A directory is kept when it is not before the same-length start of `since`.
        let keep = |rel: &str| since.as_deref().is_none_or(|s| rel >= &s[..rel.len()]);
        let mut out = Vec::new();
        for y in self.level("").await?.dirs {
            if !digits(&y, 4) || !keep(&y) {
                continue;
            }
            for m in self.level(&y).await?.dirs {
                let ym = format!("{y}/{m}");
                if !digits(&m, 2) || !keep(&ym) {
                    continue;
                }
                for d in self.level(&ym).await?.dirs {
                    let ymd = format!("{ym}/{d}");
                    if !digits(&d, 2) || !keep(&ymd) {
                        continue;
                    }
                    for h in self.level(&ymd).await?.dirs {
                        let ymdh = format!("{ymd}/{h}");
                        if digits(&h, 2) && keep(&ymdh) {
                            out.push(ymdh);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Relative paths of every object in the given directories.
    pub async fn files_in(&self, dirs: &[String]) -> Result<Vec<String>, BackendError> {
        let mut out = Vec::new();
        for dir in dirs {
            out.extend(self.level(dir).await?.files.into_iter().map(|f| f.rel));
        }
        out.sort();
        Ok(out)
    }

    /// The objects in one directory with their sizes and times.
    pub async fn files_with_sizes(&self, rel_dir: &str) -> Result<Vec<RemoteFile>, BackendError> {
        Ok(self.level(rel_dir).await?.files)
    }

    /// Upload ids that have parts stored.
    pub async fn upload_dirs(&self) -> Result<Vec<String>, BackendError> {
        Ok(self.level(MULTIPART_DIR).await?.dirs)
    }

    /// Temp objects: parts staged under `.multipart/<id>/.tmp-…` and never committed.
    pub async fn temp_objects(&self) -> Result<Vec<RemoteFile>, BackendError> {
        let mut out = Vec::new();
        for id in self.upload_dirs().await? {
            let level = self.level(&format!("{MULTIPART_DIR}/{id}")).await?;
            out.extend(level.files.into_iter().filter(|f| {
                f.rel
                    .rsplit('/')
                    .next()
                    .is_some_and(|n| n.starts_with(TMP_PREFIX))
            }));
        }
        Ok(out)
    }

    /// Remote multipart uploads under the prefix that were neither completed nor aborted.
    pub async fn incomplete_uploads(&self) -> Result<Vec<RemoteUpload>, BackendError> {
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.target.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker)
                .set_upload_id_marker(id_marker)
                .send()
                .await
                .map_err(|e| {
                    self.target
                        .error(&format!("ListMultipartUploads {}", self.prefix), e)
                })?;
            for u in page.uploads() {
                if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                    out.push(RemoteUpload {
                        key: key.to_owned(),
                        upload_id: id.to_owned(),
                        initiated: u.initiated().and_then(|t| SystemTime::try_from(*t).ok()),
                    });
                }
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
            if !page.is_truncated().unwrap_or(false) || key_marker.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Removes what crashed writers left at least `older_than` ago: staged part objects and
    /// remote multipart uploads. Younger ones may belong to another node's upload in flight.
    /// Returns how many were removed.
    pub async fn remove_temp_objects(&self, older_than: Duration) -> Result<u64, BackendError> {
        let stale = |t: Option<SystemTime>| {
            t.and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= older_than)
        };
        let mut removed = 0;
        for f in self.temp_objects().await? {
            if stale(f.modified) {
                self.delete_key(&self.key(&f.rel)?).await?;
                removed += 1;
            }
        }
        for u in self.incomplete_uploads().await? {
            if stale(u.initiated) {
                self.abort_remote_upload(&u.key, &u.upload_id).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub(crate) async fn abort_remote_upload(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<(), BackendError> {
        super::cleanup::abort_upload(&self.client, &self.target, key, upload_id).await
    }

    /// Every full key under `<prefix><rel_prefix>`, without delimiter.
    pub(crate) async fn all_keys(&self, rel_prefix: &str) -> Result<Vec<String>, BackendError> {
        let prefix = format!("{}{rel_prefix}", self.prefix);
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.target.bucket)
                .prefix(&prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| self.target.error(&format!("ListObjectsV2 {prefix}"), e))?;
            out.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() || !page.is_truncated().unwrap_or(false) {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes full keys in batches; missing ones are fine.
    pub(crate) async fn delete_keys(&self, keys: Vec<String>) -> Result<(), BackendError> {
        for batch in keys.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.target.remote(format!("DeleteObjects: {e}")))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| self.target.remote(format!("DeleteObjects: {e}")))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.target.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.target.error("DeleteObjects", e))?;
            if let Some(e) = out.errors().first() {
                return Err(self.target.remote(format!(
                    "DeleteObjects {}: {}: {}",
                    e.key().unwrap_or_default(),
                    e.code().unwrap_or("error"),
                    e.message().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    /// Moves an object out of the element's layout to `.quarantine/<label>/<rel>` (server-side
    /// copy, then delete), where neither listings nor rebuilds look, and returns its new
    /// relative path. An existing object at the destination is never replaced.
    pub async fn quarantine(&self, rel_path: &str, label: &str) -> Result<String, BackendError> {
        let from = self.key(rel_path)?;
        let dest_rel = format!("{QUARANTINE_DIR}/{label}/{rel_path}");
        let to = self.key(&dest_rel)?;
        match self.head_key(&to).await {
            Ok(_) => {
                return Err(BackendError::Io(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{to}: already quarantined"),
                )));
            }
            Err(BackendError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let size = self.head_key(&from).await?.len;
        self.server_copy(&from, &to, size).await?;
        self.delete_key(&from).await?;
        Ok(dest_rel)
    }
}
