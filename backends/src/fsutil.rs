//! Blocking filesystem helpers for durable writes (ext4 without a journal: a new file or
//! rename is durable only after fsyncing the file *and* its directory).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::BackendError;

/// Prefix of every temp file we create; crash recovery removes such files.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// Adds the path to I/O errors.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T, BackendError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, BackendError> {
        self.map_err(|e| BackendError::io(path, e))
    }
}

pub(crate) fn invalid_input(msg: String) -> BackendError {
    BackendError::Io(io::Error::new(io::ErrorKind::InvalidInput, msg))
}

/// Joins a `/`-separated relative path that must stay below `base`: only normal components,
/// so tampered index rows or sidecars cannot point outside the element root.
pub(crate) fn rel_join(base: &Path, rel: &str) -> Result<PathBuf, BackendError> {
    let p = Path::new(rel);
    if p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(invalid_input(format!("unsafe relative path {rel:?}")));
    }
    Ok(base.join(p))
}

/// A fresh temp file name in `dir`.
pub(crate) fn temp_path(dir: &Path) -> PathBuf {
    dir.join(format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4()))
}

/// Makes a directory's entries (new files, renames, removals) durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), BackendError> {
    #[cfg(unix)]
    {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        File::open(dir).and_then(|d| d.sync_all()).at(dir)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// `mkdir -p` that also fsyncs the parent of every directory it creates.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), BackendError> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new(""));
    ensure_dir(parent)?;
    match fs::create_dir(dir) {
        Ok(()) => {}
        // A concurrent writer created it; it may not have fsynced the parent yet, we do.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(BackendError::io(dir, e)),
    }
    fsync_dir(parent)
}

/// Writes `bytes` to a new fsynced temp file in `dir` and returns its path.
pub(crate) fn write_synced_temp(dir: &Path, bytes: &[u8]) -> Result<PathBuf, BackendError> {
    let tmp = temp_path(dir);
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            remove_if_exists(&tmp);
            Err(BackendError::io(&tmp, e))
        }
    }
}

/// Atomically replaces `dir/name` with `bytes`: temp, fsync, rename, fsync dir.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), BackendError> {
    let tmp = write_synced_temp(dir, bytes)?;
    let dst = dir.join(name);
    if let Err(e) = fs::rename(&tmp, &dst) {
        remove_if_exists(&tmp);
        return Err(BackendError::io(&dst, e));
    }
    fsync_dir(dir)
}

/// Best-effort removal of a temp file we own; a missing file is fine.
pub(crate) fn remove_if_exists(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove temp file");
    }
}

/// Removes a file; `Ok(false)` if it did not exist.
pub(crate) fn remove_file(path: &Path) -> Result<bool, BackendError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(BackendError::io(path, e)),
    }
}

/// Removes a directory tree; `Ok(false)` if it did not exist.
pub(crate) fn remove_tree(path: &Path) -> Result<bool, BackendError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(BackendError::io(path, e)),
    }
}

/// Removes every `.tmp-*` file below `dir` (symlinks are not followed); returns the count.
pub(crate) fn remove_temp_files_under(dir: &Path) -> Result<u64, BackendError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(BackendError::io(dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.at(dir)?;
        let path = entry.path();
        let kind = entry.file_type().at(&path)?;
        if kind.is_dir() {
            removed += remove_temp_files_under(&path)?;
        } else if kind.is_file()
            && entry.file_name().to_string_lossy().starts_with(TMP_PREFIX)
            && remove_file(&path)?
        {
            tracing::info!(path = %path.display(), "removed leftover temp file");
            removed += 1;
        }
    }
    Ok(removed)
}
