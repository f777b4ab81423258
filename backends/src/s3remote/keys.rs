//! Object keys of an element under its prefix: the same relative names as on disk.

use crate::error::BackendError;
use crate::fsutil::invalid_input;
use crate::naming::sanitize;

pub(crate) const ELEMENT_JSON: &str = "element.json";
pub(crate) const ATTR_SUFFIX: &str = ".attr.json";
pub(crate) const MULTIPART_DIR: &str = ".multipart";
pub(crate) const QUARANTINE_DIR: &str = ".quarantine";
/// Parts being uploaded, before `commit_part` gives them their number.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// A `/`-separated relative name made only of plain segments, so that tampered index rows or
/// sidecars cannot name a key outside the element's prefix.
pub(crate) fn is_plain_rel(rel: &str) -> bool {
    !rel.is_empty()
        && rel
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\\'))
}

pub(crate) fn check_rel(rel: &str) -> Result<(), BackendError> {
    if is_plain_rel(rel) {
        Ok(())
    } else {
        Err(invalid_input(format!("unsafe relative path {rel:?}")))
    }
}

/// `.multipart/<upload id>`, the id sanitised so it stays one segment.
pub(crate) fn upload_rel_dir(upload_id: &str) -> String {
    let mut id = sanitize(upload_id);
    if id.is_empty() || id.starts_with('.') {
        id.insert(0, '_');
    }
    format!("{MULTIPART_DIR}/{id}")
}

/// The relative key of a committed part.
pub fn part_rel_key(upload_id: &str, part_number: u32) -> String {
    format!("{}/{part_number}", upload_rel_dir(upload_id))
}

/// `CopySource` of a key: `bucket/key`, the key percent-encoded except for `/`.
pub(crate) fn copy_source(bucket: &str, key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!(
        "{bucket}/{}",
        percent_encoding::utf8_percent_encode(key, KEEP)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_only() {
        assert!(is_plain_rel("2026/11/22/05/a_b.txt"));
        assert!(is_plain_rel(".multipart/u/3"));
        for bad in ["", "/a", "a//b", "a/../b", "./a", "a/", "a\\b"] {
            assert!(!is_plain_rel(bad), "{bad:?}");
        }
        assert_eq!(part_rel_key("../x", 2), ".multipart/_x/2");
        assert_eq!(
            copy_source("b", "p/2026/a b+c.txt"),
            "b/p/2026/a%20b%2Bc.txt"
        );
    }
}
