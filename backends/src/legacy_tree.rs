//! Reading a storage-element directory of an earlier implementation before it is adopted:
//! every file in it, classified, and nothing written. Hashing its data files for the import.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::attr::MAX_ATTR_BYTES;
use crate::error::BackendError;
use crate::fsutil::IoContext;
use crate::staging::blocking;

const SIDECAR_SUFFIX: &str = ".attr.json";
const READ_CHUNK: usize = 1 << 20;

/// A sidecar found in the tree.
#[derive(Debug, Clone)]
pub struct SidecarFile {
    /// Relative to the directory, `/`-separated.
    pub rel: String,
    pub len: u64,
    /// The content; `None` when it is larger than an attr.json may be (it is not read).
    pub bytes: Option<Vec<u8>>,
}

/// Everything in a directory to be adopted, sorted by relative path.
#[derive(Debug, Default)]
pub struct LegacyTree {
    /// Sidecars where ArtStore looks for them: the root (the flat Go layout) or
    /// `YYYY/MM/DD/HH/` (the Python layout and this implementation's).
    pub sidecars: Vec<SidecarFile>,
    /// Sidecars elsewhere: recovery and `index rebuild` would never find them.
    pub misplaced: Vec<String>,
    /// Every other regular file (candidate data files) and its size.
    pub files: BTreeMap<String, u64>,
    /// Entries that are neither, and why they are left alone.
    pub ignored: Vec<(String, String)>,
    /// The directory already holds an `element.json` (an element of this implementation).
    pub has_element_json: bool,
}

/// Whether `rel_dir` (no trailing `/`) is a place the sidecar scans of recovery and
/// `index rebuild` read: the root or an hour directory.
pub fn readable_dir(rel_dir: &str) -> bool {
    if rel_dir.is_empty() {
        return true;
    }
    let parts: Vec<&str> = rel_dir.split('/').collect();
    parts.len() == 4
        && parts
            .iter()
            .zip([4, 2, 2, 2])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_temp(name: &str) -> bool {
    // Temp files of the Python (`.tmp_…`), Go (`….tmp`) and this implementation (`.tmp-…`).
    name.starts_with(".tmp") || is_legacy_temp(name)
}

/// A temp file name of the earlier implementations (`.tmp_…` in Python, `….tmp` in Go). Only
/// meaningful in an imported element: this implementation's data files may end in `.tmp`.
pub fn is_legacy_temp(name: &str) -> bool {
    name.starts_with(".tmp_") || name.ends_with(".tmp")
}

fn walk(root: &Path, rel_dir: &str, tree: &mut LegacyTree) -> Result<(), BackendError> {
    let dir = if rel_dir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel_dir)
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(&dir).at(&dir)? {
        let entry = entry.at(&dir)?;
        entries.push(entry);
    }
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if rel_dir.is_empty() {
            name.clone()
        } else {
            format!("{rel_dir}/{name}")
        };
        let kind = entry.file_type().at(&path)?;
        if kind.is_symlink() {
            tree.ignored
                .push((rel, "a symbolic link (not followed)".to_owned()));
        } else if kind.is_dir() {
            walk(root, &rel, tree)?;
        } else if !kind.is_file() {
            tree.ignored.push((rel, "not a regular file".to_owned()));
        } else if rel_dir.is_empty() && name == "element.json" {
            tree.has_element_json = true;
        } else if is_temp(&name) {
            tree.ignored
                .push((rel, "a temporary file of an interrupted write".to_owned()));
        } else if name == ".keep" {
            tree.ignored.push((rel, "a placeholder".to_owned()));
        } else if name.ends_with(SIDECAR_SUFFIX) && name.len() > SIDECAR_SUFFIX.len() {
            let len = entry.metadata().at(&path)?.len();
            if !readable_dir(rel_dir) {
                tree.misplaced.push(rel);
                continue;
            }
            let bytes = if len > MAX_ATTR_BYTES as u64 {
                None
            } else {
                Some(std::fs::read(&path).at(&path)?)
            };
            tree.sidecars.push(SidecarFile { rel, len, bytes });
        } else {
            let len = entry.metadata().at(&path)?.len();
            tree.files.insert(rel, len);
        }
    }
    Ok(())
}

impl LegacyTree {
    /// Walks `dir` (symlinks are not followed); reads only the sidecars.
    pub async fn scan(dir: &Path) -> Result<LegacyTree, BackendError> {
        let dir = dir.to_path_buf();
        blocking(move || {
            let mut tree = LegacyTree::default();
            walk(&dir, "", &mut tree)?;
            // The order recovery and `index rebuild` read sidecars in: the first of two
            // documents claiming one key wins in both.
            tree.sidecars.sort_by(|a, b| a.rel.cmp(&b.rel));
            Ok(tree)
        })
        .await
    }
}

/// SHA-256 (hex) of `dir/rel`, reporting bytes read to `progress` as it goes.
pub async fn sha256_at(
    dir: &Path,
    rel: &str,
    progress: impl Fn(u64) + Send + 'static,
) -> Result<String, BackendError> {
    let path: PathBuf = dir.join(rel);
    blocking(move || {
        let mut f = std::fs::File::open(&path).at(&path)?;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = f.read(&mut buf).at(&path)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            progress(n as u64);
        }
        Ok(hex::encode(h.finalize()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_dirs() {
        assert!(readable_dir(""));
        assert!(readable_dir("2025/01/10/15"));
        assert!(!readable_dir("2025/01/10"));
        assert!(!readable_dir("docs"));
        assert!(!readable_dir("2025/1/10/15"));
    }

    #[tokio::test]
    async fn tree_is_classified() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for (rel, body) in [
            ("a.pdf", "x"),
            ("a.pdf.attr.json", "{}"),
            ("2025/01/10/15/b.txt", "y"),
            ("2025/01/10/15/b.txt.attr.json", "{}"),
            ("2025/01/10/15/.tmp_attr_1.json", ""),
            ("misc/c.txt.attr.json", "{}"),
            ("big.attr.json", &"z".repeat(5000)),
        ] {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        let t = LegacyTree::scan(root).await.unwrap();
        let rels: Vec<_> = t.sidecars.iter().map(|s| s.rel.as_str()).collect();
        assert_eq!(
            rels,
            [
                "2025/01/10/15/b.txt.attr.json",
                "a.pdf.attr.json",
                "big.attr.json"
            ]
        );
        assert!(t.sidecars[2].bytes.is_none());
        assert_eq!(t.files.len(), 2);
        assert_eq!(t.ignored.len(), 1, "{:?}", t.ignored);
        assert_eq!(t.misplaced, ["misc/c.txt.attr.json"]);
        assert!(!t.has_element_json);
    }
}
