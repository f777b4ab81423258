//! Storage names: where an object's data file lives inside its element root.
//!
//! The S3 key never becomes a path: only its last segment contributes a sanitised stem and
//! extension, and the file name always carries a UUID, so no key can escape the element root
//! or collide with another object.

use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

/// Upper bound of a data file name in bytes (the sidecar adds `.attr.json`, still < 255).
pub const MAX_FILE_NAME_BYTES: usize = 200;
/// Longest extension (in chars, dot included) kept as an extension.
const MAX_EXT_CHARS: usize = 16;
/// Owners are capped so that the stem always keeps some room within `MAX_FILE_NAME_BYTES`.
const MAX_OWNER_BYTES: usize = 64;

/// Replaces `<>:"/\|?*`, control characters and `..` with `_`, then collapses runs of `_`.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let replaced = if c == '.' && chars.peek() == Some(&'.') {
            chars.next();
            '_'
        } else if matches!(c, '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*')
            || c.is_control()
        {
            '_'
        } else {
            c
        };
        if replaced == '_' && out.ends_with('_') {
            continue;
        }
        out.push(replaced);
    }
    out
}

/// Location of an object's data file relative to its element root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageName {
    /// `YYYY/MM/DD/HH` (UTC hour of creation).
    pub rel_dir: String,
    /// `{stem}_{owner}_{YYYYMMDDTHHMMSS}_{file_id}{ext}`.
    pub file_name: String,
}

impl StorageName {
    /// `rel_dir/file_name`, always with `/` separators.
    pub fn rel_path(&self) -> String {
        format!("{}/{}", self.rel_dir, self.file_name)
    }

    /// Path of the attr.json sidecar: `rel_path.attr.json`.
    pub fn attr_rel_path(&self) -> String {
        format!("{}.attr.json", self.rel_path())
    }
}

/// Computes the storage name of a new object.
pub fn storage_name(
    key: &str,
    owner: &str,
    file_id: &Uuid,
    created: OffsetDateTime,
) -> StorageName {
    let t = created.to_offset(UtcOffset::UTC);
    let rel_dir = format!(
        "{:04}/{:02}/{:02}/{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour()
    );
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );

    // Sanitising first means a `..` can never produce an extension.
    let segment = sanitize(key.rsplit('/').next().unwrap_or(key));
    let (stem, ext) = split_extension(&segment);
    // A leading dot would make a hidden file, or worse one named like our `.tmp-` temp files
    // that crash recovery deletes.
    let mut stem = stem.to_owned();
    if let Some(rest) = stem.strip_prefix('.') {
        stem = sanitize(&format!("_{rest}"));
    }
    let mut owner = sanitize(owner);
    truncate_bytes(&mut owner, MAX_OWNER_BYTES);
    if owner.is_empty() {
        owner = "anonymous".to_owned();
    }

    let suffix = format!("_{owner}_{stamp}_{file_id}{ext}");
    truncate_bytes(&mut stem, MAX_FILE_NAME_BYTES.saturating_sub(suffix.len()));
    if stem.is_empty() {
        stem = "file".to_owned();
    }
    StorageName {
        rel_dir,
        file_name: format!("{stem}{suffix}"),
    }
}

/// Splits a file name into (stem, ext); ext keeps its dot.
fn split_extension(segment: &str) -> (&str, &str) {
    match segment.rfind('.') {
        Some(i)
            if i > 0 && i + 1 < segment.len() && segment[i..].chars().count() <= MAX_EXT_CHARS =>
        {
            (&segment[..i], &segment[i..])
        }
        _ => (segment, ""),
    }
}

/// Truncates to at most `max` bytes on a char boundary.
fn truncate_bytes(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const ID: &str = "0190f5a8-7b2c-7d3e-8f4a-0123456789ab";

    fn id() -> Uuid {
        Uuid::parse_str(ID).unwrap()
    }

    fn name(key: &str, owner: &str) -> StorageName {
        storage_name(key, owner, &id(), datetime!(2026-11-22 05:06:07 UTC))
    }

    #[test]
    fn sanitize_rules() {
        assert_eq!(sanitize("a<b>c:d\"e/f\\g|h?i*j"), "a_b_c_d_e_f_g_h_i_j");
        assert_eq!(sanitize("a\u{0}b\tc\nd\u{7f}e"), "a_b_c_d_e");
        assert_eq!(sanitize("../../etc/passwd"), "_etc_passwd");
        assert_eq!(sanitize("a..b"), "a_b");
        assert_eq!(sanitize("a...b"), "a_.b");
        assert_eq!(sanitize("a___b__"), "a_b_");
        assert_eq!(sanitize("a._.b"), "a._.b");
        assert_eq!(sanitize("ünïcode 文件.txt"), "ünïcode 文件.txt");
        assert_eq!(sanitize(""), "");
        assert_eq!(sanitize("///"), "_");
    }

    #[test]
    fn layout_and_paths() {
        let n = name("docs/2026/report.final.pdf", "billing-svc");
        assert_eq!(n.rel_dir, "2026/11/22/05");
        assert_eq!(
            n.file_name,
            format!("report.final_billing-svc_20261122T050607_{ID}.pdf")
        );
        assert_eq!(n.rel_path(), format!("2026/11/22/05/{}", n.file_name));
        assert_eq!(n.attr_rel_path(), format!("{}.attr.json", n.rel_path()));
    }

    #[test]
    fn utc_conversion() {
        let n = storage_name("a.txt", "o", &id(), datetime!(2026-01-01 01:30:00 +03:00));
        assert_eq!(n.rel_dir, "2025/12/31/22");
        assert!(n.file_name.contains("_20251231T223000_"));
    }

    #[test]
    fn key_never_becomes_a_path() {
        let n = name("../../etc/passwd", "o");
        assert_eq!(n.file_name, format!("passwd_o_20261122T050607_{ID}"));
        let n = name("..", "o");
        assert!(n.file_name.starts_with("__o_") || n.file_name.starts_with("_o_"));
        assert!(!n.file_name.contains('/'));
        let n = name("a\\..\\b:c", "o");
        assert_eq!(n.file_name, format!("a_b_c_o_20261122T050607_{ID}"));
    }

    #[test]
    fn empty_stem_and_owner() {
        assert_eq!(
            name("dir/", "").file_name,
            format!("file_anonymous_20261122T050607_{ID}")
        );
        assert_eq!(
            name("", "??").file_name,
            format!("file___20261122T050607_{ID}")
        );
    }

    #[test]
    fn extension_rules() {
        // Dot-files have no extension, and never start with a dot on disk.
        let n = name(".tmp-123", "o");
        assert_eq!(n.file_name, format!("_tmp-123_o_20261122T050607_{ID}"));
        let n = name(".bashrc", "o");
        assert!(n.file_name.starts_with("_bashrc_o_"));
        // Trailing dot: no extension.
        assert_eq!(
            name("a.", "o").file_name,
            format!("a._o_20261122T050607_{ID}")
        );
        // Extension of 16 chars (dot included) is kept, 17 is not.
        let ext16 = format!(".{}", "x".repeat(15));
        assert!(name(&format!("a{ext16}"), "o").file_name.ends_with(&ext16));
        let ext17 = format!(".{}", "x".repeat(16));
        let n = name(&format!("a{ext17}"), "o");
        assert!(n.file_name.starts_with(&format!("a{ext17}_o_")));
        assert!(n.file_name.ends_with(ID));
        // Extension is sanitised.
        assert!(name("a.t?t", "o").file_name.ends_with(".t_t"));
    }

    #[test]
    fn length_limit() {
        let n = name(&format!("{}.txt", "é".repeat(300)), "owner");
        assert!(n.file_name.len() <= MAX_FILE_NAME_BYTES);
        assert!(
            n.file_name
                .ends_with(&format!("_owner_20261122T050607_{ID}.txt"))
        );
        assert!(n.file_name.starts_with("éé"));

        let n = name("short.txt", &"o".repeat(500));
        assert!(n.file_name.len() <= MAX_FILE_NAME_BYTES);
        assert!(n.file_name.starts_with("short_"));
    }
}
