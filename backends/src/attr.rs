//! The attr.json sidecar: schema 2.0 writer, 2.x reader and legacy v1 migrator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::error::BackendError;

/// Schema written by this version.
pub const SCHEMA_VERSION: &str = "2.0";
/// Largest serialised attr.json accepted.
pub const MAX_ATTR_BYTES: usize = 4096;
/// S3's limit on user metadata (sum of names and values).
pub const MAX_USER_METADATA_BYTES: usize = 2048;

/// Attributes of one object, the source of truth the index is rebuilt from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrJson {
    pub schema_version: String,
    pub file_id: String,
    pub bucket: String,
    pub key: String,
    /// Last segment of the key.
    pub original_filename: String,
    /// File name of the data file.
    pub storage_filename: String,
    /// Path of the data file relative to the element root.
    pub storage_path: String,
    pub file_size: u64,
    pub content_type: String,
    /// Bare hex MD5, or `hex-N` for multipart uploads; no quotes.
    pub etag: String,
    /// SHA-256 hex of the whole data.
    pub checksum: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub updated_at: String,
    pub created_by_id: String,
    pub created_by_username: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "HttpHeaders::is_empty", default)]
    pub http_headers: HttpHeaders,
    /// Every `x-amz-meta-<name>` header, name lower-cased.
    #[serde(default)]
    pub custom_attributes: BTreeMap<String, String>,
    /// S3 object tags (x-amz-tagging, PutObjectTagging).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub tags: BTreeMap<String, String>,
    /// Checksums the client declared (e.g. `crc32` → base64), returned again on GET.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub checksums: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parts_count: Option<u32>,
    /// Part sizes of a multipart object as runs `[size, count]`, in part order.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub part_sizes: Vec<[u64; 2]>,
    /// The last RestoreObject of the object while its element is archived (`ar`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub restore: Option<RestoreAttr>,
}

/// The `restore` record: what was asked, by whom, and how the verification ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreAttr {
    /// `ongoing`, `completed` or `failed`.
    pub status: String,
    pub days: u32,
    /// RFC 3339 UTC.
    pub requested_at: String,
    /// Service account name.
    pub requested_by: String,
    /// When the verification ended, successfully or not.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub completed_at: Option<String>,
    /// End of the readable period of a completed restore.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expires_at: Option<String>,
    /// Why a failed restore failed (e.g. the SHA-256 mismatch found).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Standard HTTP headers stored with an object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpHeaders {
    #[serde(
        rename = "content-encoding",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub content_encoding: Option<String>,
    #[serde(
        rename = "content-disposition",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub content_disposition: Option<String>,
    #[serde(
        rename = "content-language",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub content_language: Option<String>,
    #[serde(
        rename = "cache-control",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub cache_control: Option<String>,
    #[serde(rename = "expires", skip_serializing_if = "Option::is_none", default)]
    pub expires: Option<String>,
}

impl HttpHeaders {
    pub fn is_empty(&self) -> bool {
        self.content_encoding.is_none()
            && self.content_disposition.is_none()
            && self.content_language.is_none()
            && self.cache_control.is_none()
            && self.expires.is_none()
    }
}

impl AttrJson {
    /// Pretty JSON, refused when over `MAX_ATTR_BYTES`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BackendError> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| BackendError::InvalidAttr(e.to_string()))?;
        if bytes.len() > MAX_ATTR_BYTES {
            return Err(BackendError::AttrTooLarge { size: bytes.len() });
        }
        Ok(bytes)
    }

    /// Parses schema 2.x, or legacy v1 (no `schema_version`) migrated in memory to 2.0.
    pub fn parse(bytes: &[u8]) -> Result<AttrJson, BackendError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| BackendError::InvalidAttr(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(BackendError::InvalidAttr("not a JSON object".to_owned()));
        };
        match map.get("schema_version") {
            None | Some(Value::Null) => Ok(migrate_v1(map)),
            Some(Value::String(v)) if v == "2" || v.starts_with("2.") => {
                serde_json::from_value(Value::Object(map))
                    .map_err(|e| BackendError::InvalidAttr(e.to_string()))
            }
            Some(v) => Err(BackendError::InvalidAttr(format!(
                "unsupported schema_version {v}"
            ))),
        }
    }
}

/// Sum of name and value bytes, the quantity S3 limits to 2 KB.
pub fn user_metadata_size(meta: &BTreeMap<String, String>) -> usize {
    meta.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// `format_timestamp` of milliseconds since the epoch (the index's unit).
pub fn format_timestamp_ms(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format_timestamp(t)
}

/// RFC 3339 UTC with second precision, or millisecond precision when there is a fraction.
pub fn format_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    match t.millisecond() {
        0 => format!("{base}Z"),
        ms => format!("{base}.{ms:03}Z"),
    }
}

/// Normalises a legacy datetime (`2024-01-02 03:04:05[.ffffff][+00:00]`, naive = UTC) to
/// RFC 3339 UTC. Unparseable values are kept as they are rather than lost.
pub(crate) fn migrate_datetime(s: &str) -> String {
    let s = s.trim();
    let with_t = match s.find(' ') {
        Some(10) => format!("{}T{}", &s[..10], &s[11..]),
        _ => s.to_owned(),
    };
    if let Ok(t) = OffsetDateTime::parse(&with_t, &Rfc3339) {
        return format_timestamp(t);
    }
    let naive = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    match PrimitiveDateTime::parse(&with_t, naive) {
        Ok(t) => format_timestamp(t.assume_utc()),
        Err(_) => s.to_owned(),
    }
}

fn take_string(map: &mut Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match map.remove(*k) {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    })
}

fn take_u64(map: &mut Map<String, Value>, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| match map.remove(*k) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn take_string_map(map: &mut Map<String, Value>, keys: &[&str]) -> BTreeMap<String, String> {
    keys.iter()
        .find_map(|k| match map.remove(*k) {
            Some(Value::Object(m)) => Some(
                m.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| match v {
                        Value::String(s) => (k, s),
                        other => (k, other.to_string()),
                    })
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

fn migrate_v1(mut m: Map<String, Value>) -> AttrJson {
    let storage_path = take_string(&mut m, &["storage_path"]).unwrap_or_default();
    let storage_filename = take_string(&mut m, &["storage_filename"])
        .unwrap_or_else(|| last_segment(&storage_path).to_owned());
    let original = take_string(&mut m, &["original_filename", "filename"]);
    let key = take_string(&mut m, &["key", "object_key"])
        .or_else(|| original.clone())
        .unwrap_or_default();
    let original_filename = original.unwrap_or_else(|| last_segment(&key).to_owned());
    let created_at = take_string(&mut m, &["created_at", "uploaded_at"])
        .map(|s| migrate_datetime(&s))
        .unwrap_or_default();
    let updated_at = take_string(&mut m, &["updated_at", "modified_at"])
        .map(|s| migrate_datetime(&s))
        .unwrap_or_else(|| created_at.clone());
    let http_headers = m
        .remove("http_headers")
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    AttrJson {
        schema_version: SCHEMA_VERSION.to_owned(),
        file_id: take_string(&mut m, &["file_id", "id"]).unwrap_or_default(),
        bucket: take_string(&mut m, &["bucket", "storage_element"]).unwrap_or_default(),
        key,
        original_filename,
        storage_filename,
        storage_path,
        file_size: take_u64(&mut m, &["file_size", "size_bytes", "size"]).unwrap_or(0),
        content_type: take_string(&mut m, &["content_type", "mime_type"])
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
        etag: take_string(&mut m, &["etag", "md5"])
            .map(|e| e.trim_matches('"').to_owned())
            .unwrap_or_default(),
        checksum: take_string(&mut m, &["checksum", "sha256"]).unwrap_or_default(),
        created_at,
        updated_at,
        created_by_id: take_string(&mut m, &["created_by_id", "uploaded_by_id"])
            .unwrap_or_default(),
        created_by_username: take_string(&mut m, &["created_by_username", "uploaded_by"])
            .unwrap_or_default(),
        description: take_string(&mut m, &["description"]),
        version: take_string(&mut m, &["version"]),
        http_headers,
        custom_attributes: take_string_map(&mut m, &["metadata", "custom_attributes"]),
        tags: take_string_map(&mut m, &["tags"]),
        checksums: BTreeMap::new(),
        parts_count: None,
        part_sizes: Vec::new(),
        restore: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sample() -> AttrJson {
        AttrJson {
            schema_version: SCHEMA_VERSION.to_owned(),
            file_id: "0190f5a8-7b2c-7d3e-8f4a-0123456789ab".to_owned(),
            bucket: "invoices".to_owned(),
            key: "2026/inv-1.pdf".to_owned(),
            original_filename: "inv-1.pdf".to_owned(),
            storage_filename: "inv-1_svc_20261122T050000_0190f5a8-7b2c-7d3e-8f4a-0123456789ab.pdf"
                .to_owned(),
            storage_path:
                "2026/11/22/05/inv-1_svc_20261122T050000_0190f5a8-7b2c-7d3e-8f4a-0123456789ab.pdf"
                    .to_owned(),
            file_size: 12345,
            content_type: "application/pdf".to_owned(),
            etag: "5d41402abc4b2a76b9719d911017c592".to_owned(),
            checksum: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".to_owned(),
            created_at: "2026-11-22T05:00:00Z".to_owned(),
            updated_at: "2026-11-22T05:00:00.123Z".to_owned(),
            created_by_id: "42".to_owned(),
            created_by_username: "svc".to_owned(),
            description: None,
            version: None,
            http_headers: HttpHeaders::default(),
            custom_attributes: BTreeMap::from([("project".to_owned(), "x".to_owned())]),
            tags: BTreeMap::new(),
            checksums: BTreeMap::new(),
            parts_count: None,
            part_sizes: Vec::new(),
            restore: None,
        }
    }

    #[test]
    fn v2_round_trip_minimal() {
        let a = sample();
        let bytes = a.to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        // Optional fields are left out, custom_attributes always present.
        assert!(!text.contains("http_headers"));
        assert!(!text.contains("description"));
        assert!(!text.contains("checksums"));
        assert!(!text.contains("parts_count"));
        assert!(!text.contains("tags"));
        assert!(text.contains("\"custom_attributes\""));
        assert!(text.contains("\"schema_version\": \"2.0\""));
        assert_eq!(AttrJson::parse(&bytes).unwrap(), a);
    }

    #[test]
    fn v2_round_trip_full() {
        let mut a = sample();
        a.description = Some("d".to_owned());
        a.version = Some("3".to_owned());
        a.http_headers.content_disposition = Some("attachment".to_owned());
        a.http_headers.expires = Some("Thu, 01 Dec 1994 16:00:00 GMT".to_owned());
        a.checksums
            .insert("crc32".to_owned(), "NhCmhg==".to_owned());
        a.parts_count = Some(3);
        a.etag = "abc-3".to_owned();
        a.tags.insert("project".to_owned(), "Apollo 11".to_owned());
        let bytes = a.to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"content-disposition\": \"attachment\""));
        assert!(text.contains("\"tags\": {"), "{text}");
        assert!(!text.contains("content-encoding"));
        assert_eq!(AttrJson::parse(&bytes).unwrap(), a);
    }

    #[test]
    fn restore_round_trip() {
        let mut a = sample();
        assert!(
            !String::from_utf8(a.to_bytes().unwrap())
                .unwrap()
                .contains("restore")
        );
        a.restore = Some(RestoreAttr {
            status: "completed".to_owned(),
            days: 3,
            requested_at: "2026-11-22T05:00:00Z".to_owned(),
            requested_by: "svc".to_owned(),
            completed_at: Some("2026-11-22T05:01:00Z".to_owned()),
            expires_at: Some("2026-11-26T00:00:00Z".to_owned()),
            error: None,
        });
        let bytes = a.to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"expires_at\": \"2026-11-26T00:00:00Z\""));
        assert!(!text.contains("\"error\""));
        assert_eq!(AttrJson::parse(&bytes).unwrap(), a);
    }

    #[test]
    fn v2_missing_custom_attributes_defaults() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v.as_object_mut().unwrap().remove("custom_attributes");
        let a = AttrJson::parse(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(a.custom_attributes.is_empty());
    }

    #[test]
    fn rejects_garbage_and_unknown_schema() {
        assert!(matches!(
            AttrJson::parse(b"{nope"),
            Err(BackendError::InvalidAttr(_))
        ));
        assert!(matches!(
            AttrJson::parse(b"[1]"),
            Err(BackendError::InvalidAttr(_))
        ));
        assert!(matches!(
            AttrJson::parse(br#"{"schema_version":"3.0"}"#),
            Err(BackendError::InvalidAttr(_))
        ));
        // 2.0 with required fields missing.
        assert!(matches!(
            AttrJson::parse(br#"{"schema_version":"2.0","key":"a"}"#),
            Err(BackendError::InvalidAttr(_))
        ));
    }

    #[test]
    fn size_limit() {
        let mut a = sample();
        a.description = Some("x".repeat(5000));
        match a.to_bytes() {
            Err(BackendError::AttrTooLarge { size }) => assert!(size > MAX_ATTR_BYTES),
            other => panic!("expected AttrTooLarge, got {other:?}"),
        }
        // Just under the limit is fine.
        let mut a = sample();
        let base = a.to_bytes().unwrap().len();
        a.description = Some("x".repeat(MAX_ATTR_BYTES - base - 24));
        assert!(a.to_bytes().unwrap().len() <= MAX_ATTR_BYTES);
    }

    #[test]
    fn user_metadata_rule() {
        let m = BTreeMap::from([
            ("ab".to_owned(), "cde".to_owned()),
            ("é".to_owned(), "".to_owned()),
        ]);
        assert_eq!(user_metadata_size(&m), 7);
        assert_eq!(user_metadata_size(&BTreeMap::new()), 0);
    }

    #[test]
    fn v1_migration() {
        let v1 = br#"{
            "file_id": "abc",
            "original_filename": "report.pdf",
            "storage_filename": "report_bob_20240102T030405_abc.pdf",
            "storage_path": "2024/01/02/03/report_bob_20240102T030405_abc.pdf",
            "size_bytes": 1024,
            "mime_type": "application/pdf",
            "sha256": "deadbeef",
            "uploaded_by": "bob",
            "created_at": "2024-01-02 03:04:05",
            "updated_at": "2024-01-02 03:04:05.250000+00:00",
            "description": "quarterly",
            "metadata": {"project": "apollo", "n": 3, "gone": null}
        }"#;
        let a = AttrJson::parse(v1).unwrap();
        assert_eq!(a.schema_version, "2.0");
        assert_eq!(a.file_id, "abc");
        assert_eq!(a.key, "report.pdf");
        assert_eq!(a.original_filename, "report.pdf");
        assert_eq!(a.file_size, 1024);
        assert_eq!(a.content_type, "application/pdf");
        assert_eq!(a.checksum, "deadbeef");
        assert_eq!(a.created_by_username, "bob");
        assert_eq!(a.created_by_id, "");
        assert_eq!(a.etag, "");
        assert_eq!(a.created_at, "2024-01-02T03:04:05Z");
        assert_eq!(a.updated_at, "2024-01-02T03:04:05.250Z");
        assert_eq!(a.description.as_deref(), Some("quarterly"));
        assert_eq!(
            a.custom_attributes,
            BTreeMap::from([
                ("n".to_owned(), "3".to_owned()),
                ("project".to_owned(), "apollo".to_owned())
            ])
        );
        // Re-serialised as v2 and stable from then on.
        let again = AttrJson::parse(&a.to_bytes().unwrap()).unwrap();
        assert_eq!(again, a);
    }

    #[test]
    fn v1_minimal_defaults() {
        let a =
            AttrJson::parse(br#"{"key": "a/b/c.txt", "created_at": "2024-01-02 03:04:05+02:00"}"#)
                .unwrap();
        assert_eq!(a.key, "a/b/c.txt");
        assert_eq!(a.original_filename, "c.txt");
        assert_eq!(a.created_at, "2024-01-02T01:04:05Z");
        assert_eq!(a.updated_at, a.created_at);
        assert_eq!(a.file_size, 0);
        assert!(a.custom_attributes.is_empty());
        assert!(a.http_headers.is_empty());
    }

    #[test]
    fn datetimes() {
        assert_eq!(
            migrate_datetime("2024-01-02T03:04:05Z"),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            migrate_datetime("2024-01-02 03:04:05.5"),
            "2024-01-02T03:04:05.500Z"
        );
        assert_eq!(migrate_datetime("not a date"), "not a date");
        assert_eq!(
            format_timestamp(datetime!(2026-11-22 05:00:00 UTC)),
            "2026-11-22T05:00:00Z"
        );
        assert_eq!(
            format_timestamp(datetime!(2026-11-22 07:00:00.0421 +02:00)),
            "2026-11-22T05:00:00.042Z"
        );
    }
}
