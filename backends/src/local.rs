//! `LocalFs`: objects as files under `<root>/<bucket>/`.
//!
//! Layout of an element root: `element.json`, objects at `YYYY/MM/DD/HH/<file>` with their
//! sidecar `<file>.attr.json`, multipart parts at `.multipart/<upload_id>/<part_number>`.
//! Every write goes to a `.tmp-<uuid>` file in the target directory, is fsynced, renamed into
//! place, and the directory is fsynced.

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use futures::Stream;

use crate::attr::AttrJson;
use crate::digest::ChecksumAlgorithm;
use crate::error::BackendError;
use crate::fsutil::{
    IoContext, ensure_dir, fsync_dir, invalid_input, rel_join, remove_file, remove_if_exists,
    remove_temp_files_under, remove_tree, write_atomic, write_synced_temp,
};
use crate::naming::{StorageName, sanitize};
pub use crate::range::ObjectStream;
use crate::range::open_file_range;
pub use crate::staging::Staged;
use crate::staging::{TempGuard, blocking, stage_in};

const ELEMENT_JSON: &str = "element.json";
const MULTIPART_DIR: &str = ".multipart";
const ATTR_SUFFIX: &str = ".attr.json";

/// The local-disk backend.
#[derive(Debug, Clone)]
pub struct LocalFs {
    root: PathBuf,
}

impl LocalFs {
    /// `root` is `<data-dir>/elements`; each bucket is a directory below it.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalFs { root: root.into() }
    }

    /// The directory below which everything is stored.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<bucket>`.
    pub fn element_root(&self, bucket: &str) -> PathBuf {
        self.root.join(bucket)
    }

    /// `element_root`, refusing names that are not a single plain path component.
    fn element(&self, bucket: &str) -> Result<PathBuf, BackendError> {
        let mut components = Path::new(bucket).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(_)), None) if !bucket.starts_with('.') => {
                Ok(self.element_root(bucket))
            }
            _ => Err(invalid_input(format!("invalid bucket name {bucket:?}"))),
        }
    }

    /// Creates the element directory and writes its `element.json`.
    pub async fn create_element(
        &self,
        bucket: &str,
        element_json: &[u8],
    ) -> Result<(), BackendError> {
        self.write_element_json(bucket, element_json).await
    }

    /// Atomically (re)writes `element.json`, creating the element directory if needed.
    pub async fn write_element_json(
        &self,
        bucket: &str,
        element_json: &[u8],
    ) -> Result<(), BackendError> {
        let dir = self.element(bucket)?;
        let bytes = element_json.to_vec();
        blocking(move || {
            ensure_dir(&dir)?;
            write_atomic(&dir, ELEMENT_JSON, &bytes)
        })
        .await
        .map_err(|e| e.in_element(bucket))
    }

    /// Creates an element whose objects live under `path` (an absolute directory outside the data
    /// dir, empty or absent; `None`: the default place) and writes its `element.json` there. `<root>/<bucket>` becomes a
    /// symlink to `path`, so every other operation, recovery and `index rebuild` find the element
    /// where they find all others.
    pub async fn create_element_at(
        &self,
        bucket: &str,
        path: Option<&Path>,
        element_json: &[u8],
    ) -> Result<(), BackendError> {
        let Some(path) = path else {
            return self.create_element(bucket, element_json).await;
        };
        let link = self.element(bucket)?;
        let root = self.root.clone();
        let target = path.to_path_buf();
        let bytes = element_json.to_vec();
        blocking(move || {
            check_element_path(&root, &target)?;
            ensure_dir(&target)?;
            if std::fs::read_dir(&target).at(&target)?.next().is_some() {
                return Err(invalid_input(format!(
                    "backend path {} is not empty",
                    target.display()
                )));
            }
            ensure_dir(&root)?;
            std::os::unix::fs::symlink(&target, &link).at(&link)?;
            fsync_dir(&root)?;
            write_atomic(&target, ELEMENT_JSON, &bytes)
        })
        .await
    }

    /// Makes the existing directory `path` (written by an earlier implementation) the root
    /// of element `bucket`, as `create_element_at` does for an empty one, without touching a
    /// file in it: only `element.json` is added. A directory that already has one is refused.
    pub async fn adopt_element_at(
        &self,
        bucket: &str,
        path: &Path,
        element_json: &[u8],
    ) -> Result<(), BackendError> {
        let link = self.element(bucket)?;
        let root = self.root.clone();
        let target = path.to_path_buf();
        let bytes = element_json.to_vec();
        blocking(move || {
            check_element_path(&root, &target)?;
            if !target.is_dir() {
                return Err(invalid_input(format!(
                    "{} is not a directory",
                    target.display()
                )));
            }
            if target.join(ELEMENT_JSON).exists() {
                return Err(invalid_input(format!(
                    "{} already holds an element.json: it is an element of this ArtStore",
                    target.display()
                )));
            }
            ensure_dir(&root)?;
            std::os::unix::fs::symlink(&target, &link).at(&link)?;
            fsync_dir(&root)?;
            write_atomic(&target, ELEMENT_JSON, &bytes)
        })
        .await
    }

    /// Takes back `adopt_element_at` when the index refused the element: the link and the
    /// `element.json` it wrote go, nothing else.
    pub async fn unadopt_element(&self, bucket: &str) -> Result<(), BackendError> {
        let link = self.element(bucket)?;
        let root = self.root.clone();
        blocking(move || {
            if let Ok(target) = std::fs::read_link(&link) {
                remove_file(&target.join(ELEMENT_JSON))?;
                fsync_dir(&target)?;
                remove_file(&link)?;
                fsync_dir(&root)?;
            }
            Ok(())
        })
        .await
    }

    /// Where the element's files are: its own root path, or `None` for one in the data dir.
    pub fn element_path(&self, bucket: &str) -> Option<PathBuf> {
        std::fs::read_link(self.element_root(bucket)).ok()
    }

    /// Removes the element directory tree; a missing one is fine. For an element on its own root
    /// path, the link goes and so does what the element put there (the directory itself stays
    /// if something else holds it, e.g. a mount point).
    pub async fn remove_element(&self, bucket: &str) -> Result<(), BackendError> {
        let dir = self.element(bucket)?;
        let root = self.root.clone();
        blocking(move || {
            if let Ok(target) = std::fs::read_link(&dir) {
                for entry in std::fs::read_dir(&target).at(&target)? {
                    let entry = entry.at(&target)?;
                    let p = entry.path();
                    if entry.file_type().at(&p)?.is_dir() {
                        remove_tree(&p)?;
                    } else {
                        remove_file(&p)?;
                    }
                }
                fsync_dir(&target)?;
                let _ = std::fs::remove_dir(&target);
                remove_file(&dir)?;
                return fsync_dir(&root);
            }
            if remove_tree(&dir)? {
                fsync_dir(&root)?;
            }
            Ok(())
        })
        .await
    }

    /// Streams `body` into a temp file inside `<element root>/<rel_dir>/` (created if
    /// missing), computing MD5, SHA-256 and `extra` in one pass; the file is fsynced.
    /// A body error gives `BackendError::Body` and leaves no temp file behind.
    #[cfg(test)]
    pub async fn stage<S, E>(
        &self,
        bucket: &str,
        rel_dir: &str,
        body: S,
        extra: &[ChecksumAlgorithm],
    ) -> Result<Staged, BackendError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        self.stage_stream(bucket, rel_dir, body_errors(body), extra)
            .await
    }

    /// `stage` of a body whose errors are already backend errors.
    pub(crate) async fn stage_stream<S>(
        &self,
        bucket: &str,
        rel_dir: &str,
        body: S,
        extra: &[ChecksumAlgorithm],
    ) -> Result<Staged, BackendError>
    where
        S: Stream<Item = Result<Bytes, BackendError>> + Send + Unpin,
    {
        let dir = rel_join(&self.element(bucket)?, rel_dir)?;
        stage_in(dir, body, extra)
            .await
            .map_err(|e| e.in_element(bucket))
    }

    /// Renames the staged data to `name.rel_path()`, writes the sidecar and fsyncs the
    /// directory: the object is durable when this returns. The sidecar is written after the
    /// data, so a crash in between leaves at most a data file without sidecar, which start-up
    /// recovery removes (no commit can have named it: the index commit comes after this).
    pub async fn commit(
        &self,
        staged: Staged,
        bucket: &str,
        name: &StorageName,
        attr: &AttrJson,
    ) -> Result<(), BackendError> {
        let element = self.element(bucket)?;
        let data_path = rel_join(&element, &name.rel_path())?;
        let attr_path = rel_join(&element, &name.attr_rel_path())?;
        let attr_bytes = attr.to_bytes()?;
        let guard = staged.into_handle::<TempGuard>()?;
        blocking(move || {
            let dir = data_path.parent().unwrap_or(&element).to_path_buf();
            let staged_dir = guard.path().parent().map(Path::to_path_buf);
            ensure_dir(&dir)?;
            // Sidecar first to a temp file: a full disk fails here, before anything is visible.
            let attr_tmp = write_synced_temp(&dir, &attr_bytes)?;
            if let Err(e) = std::fs::rename(guard.path(), &data_path) {
                remove_if_exists(&attr_tmp);
                return Err(BackendError::io(&data_path, e));
            }
            guard.disarm();
            if let Err(e) = std::fs::rename(&attr_tmp, &attr_path) {
                remove_if_exists(&attr_tmp);
                remove_if_exists(&data_path);
                return Err(BackendError::io(&attr_path, e));
            }
            fsync_dir(&dir)?;
            if let Some(staged_dir) = staged_dir
                && staged_dir != dir
            {
                fsync_dir(&staged_dir)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| e.in_element(bucket))
    }

    /// Atomically rewrites a sidecar (metadata-only updates).
    pub async fn write_attr(
        &self,
        bucket: &str,
        attr_rel_path: &str,
        attr: &AttrJson,
    ) -> Result<(), BackendError> {
        let path = rel_join(&self.element(bucket)?, attr_rel_path)?;
        let bytes = attr.to_bytes()?;
        blocking(move || {
            let (dir, name) = split_file(&path)?;
            write_atomic(dir, &name, &bytes)
        })
        .await
        .map_err(|e| e.in_element(bucket))
    }

    /// Reads and parses a sidecar (v1 is migrated in memory).
    #[cfg(test)]
    pub async fn read_attr(
        &self,
        bucket: &str,
        attr_rel_path: &str,
    ) -> Result<AttrJson, BackendError> {
        AttrJson::parse(&self.read_attr_bytes(bucket, attr_rel_path).await?)
    }

    /// A sidecar's bytes as stored.
    pub async fn read_attr_bytes(
        &self,
        bucket: &str,
        attr_rel_path: &str,
    ) -> Result<Vec<u8>, BackendError> {
        let path = rel_join(&self.element(bucket)?, attr_rel_path)?;
        blocking(move || std::fs::read(&path).at(&path)).await
    }

    /// Streams `[start, start + len)` of an object's data in 1 MiB chunks. A missing file is
    /// `NotFound`; a range past the end of the file is an `UnexpectedEof` I/O error.
    pub async fn open_range(
        &self,
        bucket: &str,
        rel_path: &str,
        start: u64,
        len: u64,
    ) -> Result<ObjectStream, BackendError> {
        let path = rel_join(&self.element(bucket)?, rel_path)?;
        open_file_range(path, start, len, None).await
    }

    /// As `open_range`, for a read of an object whose data file must be `size` bytes: a file
    /// of any other size is `SizeMismatch`, never served.
    pub async fn open_object_range(
        &self,
        bucket: &str,
        rel_path: &str,
        size: u64,
        start: u64,
        len: u64,
    ) -> Result<ObjectStream, BackendError> {
        let path = rel_join(&self.element(bucket)?, rel_path)?;
        open_file_range(path, start, len, Some(size)).await
    }

    /// Removes data and sidecar (sidecar first: a crash in between leaves an orphan data
    /// file, never a sidecar without data). Missing files are not an error.
    pub async fn delete(&self, bucket: &str, rel_path: &str) -> Result<(), BackendError> {
        let element = self.element(bucket)?;
        let data_path = rel_join(&element, rel_path)?;
        let attr_path = rel_join(&element, &format!("{rel_path}{ATTR_SUFFIX}"))?;
        blocking(move || {
            let removed_attr = remove_file(&attr_path)?;
            let removed_data = remove_file(&data_path)?;
            if removed_attr || removed_data {
                fsync_dir(data_path.parent().unwrap_or(&element))?;
            }
            Ok(())
        })
        .await
    }

    /// `<element root>/.multipart/<upload_id>`; the id is sanitised so it stays one component.
    fn upload_dir(&self, bucket: &str, upload_id: &str) -> PathBuf {
        let mut id = sanitize(upload_id);
        if id.is_empty() || id.starts_with('.') {
            id.insert(0, '_');
        }
        self.element_root(bucket).join(MULTIPART_DIR).join(id)
    }

    /// Where a committed part lives.
    pub fn part_path(&self, bucket: &str, upload_id: &str, part_number: u32) -> PathBuf {
        self.upload_dir(bucket, upload_id)
            .join(part_number.to_string())
    }

    /// Stages one multipart part in its upload directory (see `stage`).
    #[cfg(test)]
    pub async fn stage_part<S, E>(
        &self,
        bucket: &str,
        upload_id: &str,
        _part_number: u32,
        body: S,
        extra: &[ChecksumAlgorithm],
    ) -> Result<Staged, BackendError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        self.stage_part_stream(bucket, upload_id, body_errors(body), extra)
            .await
    }

    /// `stage_part` of a body whose errors are already backend errors.
    pub(crate) async fn stage_part_stream<S>(
        &self,
        bucket: &str,
        upload_id: &str,
        body: S,
        extra: &[ChecksumAlgorithm],
    ) -> Result<Staged, BackendError>
    where
        S: Stream<Item = Result<Bytes, BackendError>> + Send + Unpin,
    {
        // The part gets its final name only in `commit_part`.
        self.element(bucket)?;
        stage_in(self.upload_dir(bucket, upload_id), body, extra)
            .await
            .map_err(|e| e.in_element(bucket))
    }

    /// Renames a staged part into place, replacing an earlier upload of the same part.
    pub async fn commit_part(
        &self,
        staged: Staged,
        bucket: &str,
        upload_id: &str,
        part_number: u32,
    ) -> Result<(), BackendError> {
        self.element(bucket)?;
        let path = self.part_path(bucket, upload_id, part_number);
        let guard = staged.into_handle::<TempGuard>()?;
        blocking(move || {
            let (dir, _) = split_file(&path)?;
            ensure_dir(dir)?;
            std::fs::rename(guard.path(), &path).at(&path)?;
            guard.disarm();
            fsync_dir(dir)
        })
        .await
        .map_err(|e| e.in_element(bucket))
    }

    /// Concatenates part ranges `(path, start, len)` into a staged file in `rel_dir`, in one
    /// streaming pass computing MD5 and SHA-256 of the whole object.
    pub async fn assemble(
        &self,
        bucket: &str,
        rel_dir: &str,
        parts: &[(PathBuf, u64, u64)],
    ) -> Result<Staged, BackendError> {
        let dir = rel_join(&self.element(bucket)?, rel_dir)?;
        let body = crate::concat::concat(
            parts.to_vec(),
            Box::new(|(path, start, len)| Box::pin(open_file_range(path, start, len, None))),
        );
        stage_in(dir, Box::pin(body), &[])
            .await
            .map_err(|e| e.in_element(bucket))
    }

    /// Removes an upload's part directory; a missing one is fine.
    pub async fn remove_upload(&self, bucket: &str, upload_id: &str) -> Result<(), BackendError> {
        self.element(bucket)?;
        let dir = self.upload_dir(bucket, upload_id);
        blocking(move || {
            if remove_tree(&dir)?
                && let Some(parent) = dir.parent()
            {
                fsync_dir(parent)?;
            }
            Ok(())
        })
        .await
    }

    /// Removes the temp files (`.tmp-*`) a crash left in one element; returns how many.
    pub async fn remove_element_temp_files(&self, bucket: &str) -> Result<u64, BackendError> {
        // The element's own root path is reached through its link; links below are not followed.
        let dir = self.element(bucket)?;
        blocking(move || remove_temp_files_under(&dir)).await
    }

    /// Removes temp files (`.tmp-*`) left by a crash anywhere below the root; returns how
    /// many were removed. Run at start-up, before serving requests.
    #[cfg(test)]
    pub async fn remove_temp_files(&self) -> Result<u64, BackendError> {
        let root = self.root.clone();
        let mut removed = blocking(move || remove_temp_files_under(&root)).await?;
        // The walk does not follow symlinks: elements on their own root paths are walked here.
        for bucket in self.element_names().await? {
            if let Some(target) = self.element_path(&bucket) {
                removed += blocking(move || remove_temp_files_under(&target)).await?;
            }
        }
        Ok(removed)
    }
}

/// Body errors become `BackendError::Body`.
#[cfg(test)]
fn body_errors<S, E>(body: S) -> impl Stream<Item = Result<Bytes, BackendError>> + Send + Unpin
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    use futures::StreamExt as _;
    body.map(|r| r.map_err(|e| BackendError::Body(e.to_string())))
}

/// Splits a file path into its directory and file name.
fn split_file(path: &Path) -> Result<(&Path, String), BackendError> {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => Ok((dir, name.to_string_lossy().into_owned())),
        _ => Err(invalid_input(format!(
            "not a file path: {}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests;

/// An element root must be absolute, plain (no `..`), and neither inside the data root nor
/// holding it, so no two elements and no element and the data dir can overlap.
fn check_element_path(root: &Path, target: &Path) -> Result<(), BackendError> {
    if !target.is_absolute()
        || target
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(invalid_input(format!(
            "backend path {} must be an absolute path without '.' or '..'",
            target.display()
        )));
    }
    let canon = |p: &Path| {
        // The deepest existing ancestor, resolved; enough to compare locations.
        let mut probe = p.to_path_buf();
        let mut rest = Vec::new();
        loop {
            if let Ok(c) = probe.canonicalize() {
                return rest.iter().rev().fold(c, |acc: PathBuf, n| acc.join(n));
            }
            match (probe.file_name().map(|n| n.to_os_string()), probe.parent()) {
                (Some(n), Some(parent)) => {
                    rest.push(n);
                    probe = parent.to_path_buf();
                }
                _ => return p.to_path_buf(),
            }
        }
    };
    let (root, target) = (canon(root), canon(target));
    if target.starts_with(&root) || root.starts_with(&target) {
        return Err(invalid_input(format!(
            "backend path {} overlaps the data directory {}",
            target.display(),
            root.display()
        )));
    }
    Ok(())
}
