//! Walking an element on disk, for recovery, `index rebuild` and `index verify`: the sidecars
//! are the source of truth the index is rebuilt from.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::digest::{Digests, Hasher};
use crate::error::BackendError;
use crate::fsutil::{ensure_dir, fsync_dir, rel_join};
use crate::local::LocalFs;
use crate::staging::blocking;

const SIDECAR_SUFFIX: &str = ".attr.json";
/// Where `index verify --repair` moves files it cannot prove to be garbage (per element).
pub const QUARANTINE_DIR: &str = ".quarantine";
const READ_CHUNK: usize = 1 << 20;

fn io(path: &Path, e: std::io::Error) -> BackendError {
    BackendError::Io(std::io::Error::new(
        e.kind(),
        format!("{}: {e}", path.display()),
    ))
}

/// Sorted names of the sub-directories of `dir` that match `keep`; a missing dir is empty.
fn subdirs(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<String>, BackendError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(|e| io(dir, e))?;
        // An element on its own root path is a symlink to that directory.
        let is_dir = kind.is_dir() || (kind.is_symlink() && entry.path().is_dir());
        if is_dir && keep(&name) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

fn digits(n: usize) -> impl Fn(&str) -> bool {
    move |s: &str| s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
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

/// Where recovery must look: hour directories named at or after `since` (written since),
/// and older ones whose entries changed since (a delete, an overwrite's removal or a sidecar
/// rewrite of an old object updates its directory's mtime, made durable by the fsync of the
/// directory that follows every such change). `None`: every hour directory.
fn hour_dirs_under(
    root: &Path,
    since: Option<(&str, std::time::SystemTime)>,
) -> Result<Vec<String>, BackendError> {
    let mut out = Vec::new();
    for y in subdirs(root, digits(4))? {
        for m in subdirs(&root.join(&y), digits(2))? {
            for d in subdirs(&root.join(&y).join(&m), digits(2))? {
                for h in subdirs(&root.join(&y).join(&m).join(&d), digits(2))? {
                    let rel_dir = format!("{y}/{m}/{d}/{h}");
                    let keep = match since {
                        None => true,
                        Some((name, _)) if rel_dir.as_str() >= name => true,
                        Some((_, t)) => {
                            let dir = root.join(&rel_dir);
                            let md = std::fs::metadata(&dir).map_err(|e| io(&dir, e))?;
                            md.modified().map_err(|e| io(&dir, e))? >= t
                        }
                    };
                    if keep {
                        out.push(rel_dir);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Sidecars directly in the element root: the flat layout of an imported Go storage element.
/// Never written since import, so only full scans (rebuild, verify) read them.
fn root_sidecars(root: &Path) -> Result<Vec<String>, BackendError> {
    Ok(file_names(root)?
        .into_iter()
        .filter(|name| name.ends_with(SIDECAR_SUFFIX) && !name.starts_with(".tmp"))
        .collect())
}

/// Names of the regular files in one directory; a missing directory is empty.
fn file_names(dir: &Path) -> Result<Vec<String>, BackendError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, e))?;
        if entry.file_type().map_err(|e| io(dir, e))?.is_file() {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Relative paths of every file in the given hour directories.
fn files_in_dirs(root: &Path, dirs: &[String]) -> Result<Vec<String>, BackendError> {
    let mut out = Vec::new();
    for rel_dir in dirs {
        for name in file_names(&root.join(rel_dir))? {
            out.push(format!("{rel_dir}/{name}"));
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn is_sidecar(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.ends_with(SIDECAR_SUFFIX) && !name.starts_with(".tmp-")
}

fn since_key(t: OffsetDateTime) -> (String, std::time::SystemTime) {
    (hour_key(t), std::time::SystemTime::from(t))
}

impl LocalFs {
    /// Names of the element directories present on disk.
    pub async fn element_names(&self) -> Result<Vec<String>, BackendError> {
        let root = self.root().to_path_buf();
        blocking(move || subdirs(&root, |n| !n.starts_with('.'))).await
    }

    /// The element's `element.json`, if it has one.
    pub async fn read_element_json(&self, bucket: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let path = self.element_root(bucket).join("element.json");
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Sidecars in the element root (an imported flat layout); full scans read them.
    pub async fn root_sidecars(&self, bucket: &str) -> Result<Vec<String>, BackendError> {
        let root = self.element_root(bucket);
        blocking(move || root_sidecars(&root)).await
    }

    /// The element's hour directories (`YYYY/MM/DD/HH`) that may hold changes made at or
    /// after `since`: those named for a later hour and those whose entries changed since
    /// (all of them when `None`).
    pub async fn hour_dirs(
        &self,
        bucket: &str,
        since: Option<OffsetDateTime>,
    ) -> Result<Vec<String>, BackendError> {
        let root = self.element_root(bucket);
        blocking(move || {
            let since = since.map(since_key);
            hour_dirs_under(&root, since.as_ref().map(|(n, t)| (n.as_str(), *t)))
        })
        .await
    }

    /// Relative paths of every file (data, sidecars, temp files) in the given hour
    /// directories of the element.
    pub async fn files_in(
        &self,
        bucket: &str,
        dirs: &[String],
    ) -> Result<Vec<String>, BackendError> {
        let root = self.element_root(bucket);
        let dirs = dirs.to_vec();
        blocking(move || files_in_dirs(&root, &dirs)).await
    }

    /// Moves a file out of the element's layout into `<element>/.quarantine/<label>/<rel>`,
    /// where neither listings nor rebuilds look, and returns its new relative path. Nothing
    /// is deleted; an existing file at the destination is never replaced.
    pub async fn quarantine(
        &self,
        bucket: &str,
        rel_path: &str,
        label: &str,
    ) -> Result<String, BackendError> {
        let root = self.element_root(bucket);
        let rel = rel_path.to_owned();
        let dest_rel = format!("{QUARANTINE_DIR}/{label}/{rel_path}");
        let dest_out = dest_rel.clone();
        blocking(move || {
            let from = rel_join(&root, &rel)?;
            let to = rel_join(&root, &dest_rel)?;
            let from_dir = from.parent().unwrap_or(&root).to_path_buf();
            let to_dir = to.parent().unwrap_or(&root).to_path_buf();
            ensure_dir(&to_dir)?;
            if to.exists() {
                return Err(io(
                    &to,
                    std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already quarantined"),
                ));
            }
            std::fs::rename(&from, &to).map_err(|e| io(&from, e))?;
            fsync_dir(&to_dir)?;
            fsync_dir(&from_dir)
        })
        .await?;
        Ok(dest_out)
    }

    /// Size of a data file, `None` if it does not exist.
    pub async fn data_len(
        &self,
        bucket: &str,
        rel_path: &str,
    ) -> Result<Option<u64>, BackendError> {
        let path = self.element_root(bucket).join(rel_path);
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// How long ago a file was last modified, `None` if it does not exist.
    pub async fn file_age(
        &self,
        bucket: &str,
        rel_path: &str,
    ) -> Result<Option<std::time::Duration>, BackendError> {
        let path = self.element_root(bucket).join(rel_path);
        match tokio::fs::symlink_metadata(&path).await {
            Ok(m) => Ok(Some(
                m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .unwrap_or_default(),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Upload ids that have a part directory.
    pub async fn upload_dirs(&self, bucket: &str) -> Result<Vec<String>, BackendError> {
        let dir = self.element_root(bucket).join(".multipart");
        blocking(move || subdirs(&dir, |_| true)).await
    }

    /// As `hash_file`, telling `progress` each chunk's length as it is read (progress bars of
    /// long verifies move within a large file, not only after it).
    pub async fn hash_file_with(
        &self,
        bucket: &str,
        rel_path: &str,
        progress: impl Fn(u64) + Send + 'static,
    ) -> Result<Digests, BackendError> {
        let path: PathBuf = self.element_root(bucket).join(rel_path);
        blocking(move || {
            use std::io::Read as _;
            let mut f = std::fs::File::open(&path).map_err(|e| io(&path, e))?;
            let mut h = Hasher::new(&[]);
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                let n = f.read(&mut buf).map_err(|e| io(&path, e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                progress(n as u64);
            }
            Ok(h.finalize())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecars_under(
        root: &Path,
        since: Option<(&str, std::time::SystemTime)>,
    ) -> Result<Vec<String>, BackendError> {
        let dirs = hour_dirs_under(root, since)?;
        let mut out = files_in_dirs(root, &dirs)?;
        out.retain(|r| is_sidecar(r));
        if since.is_none() {
            out.extend(root_sidecars(root)?);
        }
        Ok(out)
    }

    #[test]
    fn sidecars_are_found_by_hour_and_filtered_by_since() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for (dir, name) in [
            ("2026/11/21/23", "a.txt.attr.json"),
            ("2026/11/22/05", "b.txt.attr.json"),
            ("2026/11/22/05", "b.txt"),
            ("2026/11/22/05", ".tmp-x.attr.json"),
            ("2026/11/22/06", "c.attr.json"),
            ("", "flat.pdf.attr.json"),
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
            std::fs::write(root.join(dir).join(name), b"{}").unwrap();
        }
        std::fs::create_dir_all(root.join(".multipart/u1")).unwrap();
        let all = sidecars_under(root, None).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        assert_eq!(
            all,
            [
                "2026/11/21/23/a.txt.attr.json",
                "2026/11/22/05/b.txt.attr.json",
                "2026/11/22/06/c.attr.json",
                "flat.pdf.attr.json"
            ]
        );
        let since = hour_key(time::macros::datetime!(2026-11-22 05:30 UTC));
        assert_eq!(
            sidecars_under(root, Some((&since, later))).unwrap(),
            ["2026/11/22/05/b.txt.attr.json", "2026/11/22/06/c.attr.json"]
        );
        // An older hour directory whose entries changed since is looked at too.
        let before = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        assert_eq!(
            sidecars_under(root, Some((&since, before))).unwrap(),
            all[..3],
            "every hour directory here was just written (root sidecars: full scans only)"
        );
    }
}
