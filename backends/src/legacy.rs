//! Sidecars written by the earlier ArtStore implementations (attr.json v1 of the Python and Go
//! storage elements, the Python "Template Schema v2.0") read as objects of an imported element.
//! One mapping, used by `element import` and by `index rebuild` of an imported element, so
//! both give every document the same key and attributes. The files are never rewritten here:
//! a document's sidecar becomes schema 2.0 only when the document is next changed.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::attr::{AttrJson, MAX_ATTR_BYTES, MAX_USER_METADATA_BYTES, SCHEMA_VERSION};
use crate::attr::{migrate_datetime, user_metadata_size};

/// Default key of an imported document: its directory in the element plus its original name.
pub const DEFAULT_KEY_TEMPLATE: &str = "{dir}{original_filename}";
/// The placeholders a key template may use.
pub const PLACEHOLDERS: [&str; 7] = [
    "dir",
    "original_filename",
    "stem",
    "ext",
    "storage_filename",
    "file_id",
    "owner",
];
/// S3's limit on key length.
const MAX_KEY_BYTES: usize = 1024;

/// Why a sidecar cannot become an object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdoptError {
    #[error("attr.json is {0} bytes, more than the 4096 allowed")]
    Oversized(u64),
    #[error("corrupt attr.json: {0}")]
    Corrupt(String),
    #[error("the document has status '{0}', not active")]
    NotActive(String),
    #[error("{0}")]
    Key(String),
    #[error("its attributes are {0} bytes as S3 user metadata, more than the 2048 allowed")]
    MetadataTooLarge(usize),
    #[error("it would not fit a schema 2.0 attr.json (4096 bytes) when next changed")]
    TooLargeForV2,
}

/// A key template: literal text and `{placeholder}`s (see `PLACEHOLDERS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    text: String,
}

impl KeyTemplate {
    /// Checks that every `{…}` names a known placeholder and braces are balanced.
    pub fn parse(text: &str) -> Result<KeyTemplate, String> {
        let mut rest = text;
        let mut any = false;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("key template {text:?}: unmatched '}}'"));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("key template {text:?}: unmatched '{{'"));
            };
            let name = &rest[open + 1..open + close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "key template {text:?}: unknown placeholder {{{name}}} (known: {})",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ));
            }
            any = true;
            rest = &rest[open + close + 1..];
        }
        if !any {
            return Err(format!(
                "key template {text:?} has no placeholder: every document would get the same key"
            ));
        }
        Ok(KeyTemplate {
            text: text.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn render(&self, values: &[(&str, &str)]) -> String {
        let mut out = String::with_capacity(self.text.len() + 64);
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
            let name = &rest[open + 1..close];
            if let Some((_, v)) = values.iter().find(|(n, _)| *n == name) {
                out.push_str(v);
            }
            rest = rest.get(close + 1..).unwrap_or("");
        }
        out.push_str(rest);
        out
    }
}

impl Default for KeyTemplate {
    fn default() -> Self {
        KeyTemplate {
            text: DEFAULT_KEY_TEMPLATE.to_owned(),
        }
    }
}

/// A sidecar read as an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Adopted {
    /// The object's attributes as a schema 2.0 sidecar would hold them.
    pub attr: AttrJson,
    /// Written by an earlier implementation (not by this one): never removed or replaced by
    /// recovery, whatever its file id.
    pub legacy: bool,
}

/// Reads the sidecar at `sidecar_rel` (relative to the element root, ending in `.attr.json`)
/// as an object of `bucket`. A sidecar this implementation wrote is taken as it is; a legacy
/// one is mapped: key from `template`, ETag = its SHA-256 (legacy writers kept no MD5; the Go
/// implementation served the same), `metadata`/`custom_attributes` and the legacy fields
/// without a place of their own as attributes (names by `attribute_name`).
pub fn adopt(
    bytes: &[u8],
    sidecar_rel: &str,
    bucket: &str,
    template: &KeyTemplate,
) -> Result<Adopted, AdoptError> {
    if bytes.len() > MAX_ATTR_BYTES {
        return Err(AdoptError::Oversized(bytes.len() as u64));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| AdoptError::Corrupt(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(AdoptError::Corrupt("not a JSON object".to_owned()));
    };
    if is_native(&map) {
        let attr = AttrJson::parse(bytes).map_err(|e| AdoptError::Corrupt(e.to_string()))?;
        return Ok(Adopted {
            attr,
            legacy: false,
        });
    }
    let data_rel = sidecar_rel
        .strip_suffix(".attr.json")
        .unwrap_or(sidecar_rel);
    let attr = map_legacy(map, data_rel, bucket, template)?;
    if user_metadata_size(&attr.custom_attributes) > MAX_USER_METADATA_BYTES {
        return Err(AdoptError::MetadataTooLarge(user_metadata_size(
            &attr.custom_attributes,
        )));
    }
    if attr.to_bytes().is_err() {
        return Err(AdoptError::TooLargeForV2);
    }
    Ok(Adopted { attr, legacy: true })
}

/// Schema 2.x as this implementation writes it: it names its bucket, key and ETag. The Python
/// "Template Schema v2.0" also says `2.0`, but has none of those.
fn is_native(map: &Map<String, Value>) -> bool {
    let v2 = matches!(map.get("schema_version"), Some(Value::String(v)) if v == "2" || v.starts_with("2."));
    v2 && ["bucket", "key", "etag"]
        .iter()
        .all(|k| map.get(*k).is_some_and(Value::is_string))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The first of `keys` present with a non-null value, as text.
fn field(map: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| map.get(*k).and_then(text))
}

fn required(map: &Map<String, Value>, keys: &[&str]) -> Result<String, AdoptError> {
    field(map, keys)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| AdoptError::Corrupt(format!("no {}", keys[0])))
}

fn datetime(map: &Map<String, Value>, keys: &[&str]) -> Result<Option<String>, AdoptError> {
    let Some(raw) = field(map, keys) else {
        return Ok(None);
    };
    let t = migrate_datetime(&raw);
    if time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).is_err() {
        return Err(AdoptError::Corrupt(format!(
            "{} {raw:?} is not a date and time",
            keys[0]
        )));
    }
    Ok(Some(t))
}

/// Legacy fields kept as attributes under their own names (they have no place in schema 2.0).
const KEPT_FIELDS: [&str; 10] = [
    "description",
    "version",
    "created_by_fullname",
    "uploader_full_name",
    "retention_policy",
    "retention_days",
    "retention_expires_at",
    "ttl_days",
    "expires_at",
    "tags",
];

fn map_legacy(
    map: Map<String, Value>,
    data_rel: &str,
    bucket: &str,
    template: &KeyTemplate,
) -> Result<AttrJson, AdoptError> {
    match map.get("schema_version") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) if v == "1.0" || v == "2.0" => {}
        Some(v) => {
            return Err(AdoptError::Corrupt(format!(
                "unsupported schema_version {v}"
            )));
        }
    }
    if let Some(status) = field(&map, &["status"])
        && status != "active"
    {
        return Err(AdoptError::NotActive(status));
    }
    let file_id = required(&map, &["file_id"])?;
    let original_filename = required(&map, &["original_filename", "filename"])?;
    let file_size = match map
        .get("file_size")
        .or_else(|| map.get("size_bytes"))
        .or_else(|| map.get("size"))
    {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| AdoptError::Corrupt(format!("file size {n} is not a size")))?,
        Some(other) => {
            return Err(AdoptError::Corrupt(format!(
                "file size {other} is not a number"
            )));
        }
        None => return Err(AdoptError::Corrupt("no file_size".to_owned())),
    };
    let checksum = required(&map, &["checksum", "sha256", "sha256_hash"])?;
    let checksum = checksum
        .strip_prefix("sha256:")
        .unwrap_or(&checksum)
        .to_ascii_lowercase();
    if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AdoptError::Corrupt(format!(
            "checksum {checksum:?} is not a SHA-256 in hex"
        )));
    }
    let created_at = datetime(&map, &["created_at", "uploaded_at"])?
        .ok_or_else(|| AdoptError::Corrupt("no created_at".to_owned()))?;
    let updated_at = datetime(&map, &["updated_at"])?.unwrap_or_else(|| created_at.clone());
    let owner_id = field(&map, &["created_by_id", "uploaded_by"]).unwrap_or_default();
    let owner_name = field(&map, &["created_by_username", "uploaded_by"]).unwrap_or_default();

    let (dir, storage_filename) = match data_rel.rsplit_once('/') {
        Some((d, f)) => (format!("{d}/"), f.to_owned()),
        None => (String::new(), data_rel.to_owned()),
    };
    let (stem, ext) = match original_filename.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (original_filename.clone(), String::new()),
    };
    let key = template.render(&[
        ("dir", &dir),
        ("original_filename", &original_filename),
        ("stem", &stem),
        ("ext", &ext),
        ("storage_filename", &storage_filename),
        ("file_id", &file_id),
        ("owner", &owner_name),
    ]);
    if key.is_empty() {
        return Err(AdoptError::Key("its key would be empty".to_owned()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(AdoptError::Key(format!(
            "its key would be {} bytes, more than S3's 1024",
            key.len()
        )));
    }

    let mut sources: Vec<(String, String)> = Vec::new();
    for name in ["custom_attributes", "metadata"] {
        if let Some(Value::Object(m)) = map.get(name) {
            let mut entries: Vec<_> = m.iter().filter_map(|(k, v)| Some((k, text(v)?))).collect();
            entries.sort();
            sources.extend(entries.into_iter().map(|(k, v)| (k.clone(), v)));
        }
    }
    for name in KEPT_FIELDS {
        let value = match map.get(name) {
            // The Go writer keeps tags as a list of words.
            Some(Value::Array(items)) => {
                let words: Vec<String> = items.iter().filter_map(text).collect();
                (!words.is_empty()).then(|| words.join(","))
            }
            Some(v) => text(v),
            None => None,
        };
        if let Some(v) = value {
            sources.push((name.to_owned(), v));
        }
    }
    let custom_attributes = merge_attributes(sources);

    Ok(AttrJson {
        schema_version: SCHEMA_VERSION.to_owned(),
        file_id,
        bucket: bucket.to_owned(),
        original_filename: key.rsplit('/').next().unwrap_or_default().to_owned(),
        key,
        storage_filename,
        storage_path: data_rel.to_owned(),
        file_size,
        content_type: field(&map, &["content_type", "mime_type"])
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
        etag: checksum.clone(),
        checksum,
        created_at,
        updated_at,
        created_by_id: owner_id,
        created_by_username: owner_name,
        description: None,
        version: None,
        http_headers: Default::default(),
        custom_attributes,
        tags: BTreeMap::new(),
        checksums: BTreeMap::new(),
        parts_count: None,
        part_sizes: Vec::new(),
        restore: None,
    })
}

/// Attribute names as S3 user metadata allows them (HTTP header tokens, lower case) and the
/// search API finds them: letters lower-cased, Cyrillic transliterated (`Отдел` → `otdel`),
/// space → `-`, `a-z 0-9 - _ .` kept, any other character as `_` plus its UTF-8 bytes in hex.
pub fn attribute_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for ch in name.trim().to_lowercase().chars() {
        match ch {
            'a'..='z' | '0'..='9' | '-' | '_' | '.' => out.push(ch),
            ' ' => out.push('-'),
            other => match translit(other) {
                Some(latin) => out.push_str(latin),
                None => {
                    let mut buf = [0u8; 4];
                    out.push('_');
                    for b in other.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("{b:02x}"));
                    }
                }
            },
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// Russian and Ukrainian letters in Latin (after GOST 7.79 B, simplified; hard and soft signs
/// dropped).
fn translit(ch: char) -> Option<&'static str> {
    Some(match ch {
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' => "g",
        'ґ' => "g",
        'д' => "d",
        'е' => "e",
        'є' => "ye",
        'ё' => "yo",
        'ж' => "zh",
        'з' => "z",
        'и' => "i",
        'і' => "i",
        'ї' => "yi",
        'й' => "j",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' => "n",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' => "u",
        'ф' => "f",
        'х' => "kh",
        'ц' => "c",
        'ч' => "ch",
        'ш' => "sh",
        'щ' => "shh",
        'ъ' | 'ь' => "",
        'ы' => "y",
        'э' => "e",
        'ю' => "yu",
        'я' => "ya",
        _ => return None,
    })
}

/// Names normalised in order (custom_attributes, then metadata, then kept legacy fields): a
/// name already taken with the same value is merged; with another value it gets `-2`, `-3`…
fn merge_attributes(sources: Vec<(String, String)>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in sources {
        let base = attribute_name(&name);
        let mut candidate = base.clone();
        let mut n = 1;
        loop {
            match out.get(&candidate) {
                None => {
                    out.insert(candidate, value);
                    break;
                }
                Some(v) if *v == value => break,
                Some(_) => {
                    n += 1;
                    candidate = format!("{base}-{n}");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn py_v1() -> String {
        format!(
            r#"{{
  "file_id": "5b0e3c1e-8a34-4f5e-9d0c-0e6c5d7b9a11",
  "original_filename": "Отчёт за 2024.pdf",
  "storage_filename": "Отчёт_за_2024_ivanov_20250110T153045_5b0e3c1e-8a34-4f5e-9d0c-0e6c5d7b9a11.pdf",
  "file_size": 5,
  "content_type": "application/pdf",
  "created_at": "2025-01-10 15:30:45.123456+00:00",
  "updated_at": "2025-01-10T15:31:00Z",
  "created_by_id": "42",
  "created_by_username": "ivanov",
  "created_by_fullname": null,
  "description": "годовой",
  "version": null,
  "storage_path": "2025/01/10/15/",
  "checksum": "{SHA}",
  "metadata": {{"Отдел": "бухгалтерия", "Project": "apollo", "n": 3}}
}}"#
        )
    }

    const REL: &str = "2025/01/10/15/Отчёт_за_2024_ivanov_20250110T153045_5b0e3c1e-8a34-4f5e-9d0c-0e6c5d7b9a11.pdf.attr.json";

    #[test]
    fn python_v1_is_mapped() {
        let a = adopt(py_v1().as_bytes(), REL, "docs", &KeyTemplate::default()).unwrap();
        assert!(a.legacy);
        let a = a.attr;
        assert_eq!(a.key, "2025/01/10/15/Отчёт за 2024.pdf");
        assert_eq!(a.bucket, "docs");
        assert_eq!(a.original_filename, "Отчёт за 2024.pdf");
        assert_eq!(a.storage_path, REL.trim_end_matches(".attr.json"));
        assert_eq!(a.etag, SHA);
        assert_eq!(a.created_at, "2025-01-10T15:30:45.123Z");
        assert_eq!(a.updated_at, "2025-01-10T15:31:00Z");
        assert_eq!(a.created_by_id, "42");
        assert_eq!(a.created_by_username, "ivanov");
        assert_eq!(
            a.custom_attributes,
            BTreeMap::from([
                ("description".to_owned(), "годовой".to_owned()),
                ("n".to_owned(), "3".to_owned()),
                ("otdel".to_owned(), "бухгалтерия".to_owned()),
                ("project".to_owned(), "apollo".to_owned()),
            ])
        );
    }

    #[test]
    fn go_format_is_mapped() {
        let go = format!(
            r#"{{"file_id":"7d9f","original_filename":"scan.tiff","storage_path":"scan_petrov_20240301120000_1a2b3c4d.tiff",
            "content_type":"image/tiff","size":5,"checksum":"{SHA}","uploaded_by":"sa-7",
            "uploaded_at":"2024-03-01T12:00:00Z","status":"active","retention_policy":"temporary",
            "ttl_days":30,"tags":["scan","2024"]}}"#
        );
        let t = KeyTemplate::parse("go/{stem}-{file_id}{ext}").unwrap();
        let a = adopt(
            go.as_bytes(),
            "scan_petrov_20240301120000_1a2b3c4d.tiff.attr.json",
            "b",
            &t,
        )
        .unwrap()
        .attr;
        assert_eq!(a.key, "go/scan-7d9f.tiff");
        assert_eq!(a.file_size, 5);
        assert_eq!(a.created_by_id, "sa-7");
        assert_eq!(a.custom_attributes["tags"], "scan,2024");
        assert_eq!(a.custom_attributes["ttl_days"], "30");
        let gone = go.replace("\"active\"", "\"deleted\"");
        assert_eq!(
            adopt(gone.as_bytes(), "x.attr.json", "b", &t),
            Err(AdoptError::NotActive("deleted".to_owned()))
        );
    }

    #[test]
    fn bad_sidecars_are_refused() {
        let t = KeyTemplate::default();
        assert!(matches!(
            adopt(b"{not json", "a.attr.json", "b", &t),
            Err(AdoptError::Corrupt(_))
        ));
        let big = vec![b' '; 5000];
        assert_eq!(
            adopt(&big, "a.attr.json", "b", &t),
            Err(AdoptError::Oversized(5000))
        );
        let no_sum = py_v1().replace(SHA, "abc");
        assert!(matches!(
            adopt(no_sum.as_bytes(), REL, "b", &t),
            Err(AdoptError::Corrupt(m)) if m.contains("SHA-256")
        ));
        let bad_date = py_v1().replace("2025-01-10 15:30:45.123456+00:00", "yesterday");
        assert!(matches!(
            adopt(bad_date.as_bytes(), REL, "b", &t),
            Err(AdoptError::Corrupt(m)) if m.contains("yesterday")
        ));
    }

    #[test]
    fn templates_are_checked() {
        assert!(KeyTemplate::parse("{dir}{nope}").is_err());
        assert!(KeyTemplate::parse("{dir").is_err());
        assert!(KeyTemplate::parse("dir}").is_err());
        assert!(KeyTemplate::parse("fixed").is_err());
        assert_eq!(
            KeyTemplate::parse("a/{file_id}/b")
                .unwrap()
                .render(&[("file_id", "X")]),
            "a/X/b"
        );
    }

    #[test]
    fn attribute_collisions_get_numbered() {
        let m = merge_attributes(vec![
            ("Project".into(), "a".into()),
            ("project".into(), "a".into()),
            ("PROJECT".into(), "b".into()),
            ("my key".into(), "c".into()),
            ("Дата приёма".into(), "d".into()),
            ("a:b".into(), "e".into()),
        ]);
        assert_eq!(
            m,
            BTreeMap::from([
                ("a_3ab".to_owned(), "e".to_owned()),
                ("data-priyoma".to_owned(), "d".to_owned()),
                ("my-key".to_owned(), "c".to_owned()),
                ("project".to_owned(), "a".to_owned()),
                ("project-2".to_owned(), "b".to_owned()),
            ])
        );
    }
}
