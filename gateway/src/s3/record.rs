//! The object's attributes in their three shapes: request headers, index row, attr.json.

use std::collections::BTreeMap;

use artstore_backends::{
    AttrJson, HttpHeaders, MAX_USER_METADATA_BYTES, SCHEMA_VERSION, StorageName,
    format_timestamp_ms, user_metadata_size,
};
use artstore_metadata::ObjectRecord;
use s3s::dto::{Metadata, Timestamp, TimestampFormat};
use s3s::{S3Result, s3_error};

pub(crate) const MAX_KEY_BYTES: usize = 1024;

pub(crate) fn check_key(key: &str) -> S3Result<()> {
    if key.is_empty() {
        return Err(s3_error!(
            InvalidArgument,
            "the object key must not be empty"
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(s3_error!(
            KeyTooLongError,
            "Your key is too long: {} bytes, the limit is 1024",
            key.len()
        ));
    }
    Ok(())
}

/// `x-amz-meta-*` as stored: lower-case names, S3's 2 KB limit.
pub(crate) fn user_metadata(meta: Option<&Metadata>) -> S3Result<BTreeMap<String, String>> {
    let map: BTreeMap<String, String> = meta
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let size = user_metadata_size(&map);
    if size > MAX_USER_METADATA_BYTES {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size: {size} bytes, the limit is 2048"
        ));
    }
    Ok(map)
}

pub(crate) fn to_metadata(map: &BTreeMap<String, String>) -> Option<Metadata> {
    (!map.is_empty()).then(|| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The standard headers kept with an object, by lower-case header name.
#[derive(Default)]
pub(crate) struct StdHeaders<'a> {
    pub cache_control: Option<&'a String>,
    pub content_disposition: Option<&'a String>,
    pub content_encoding: Option<&'a String>,
    pub content_language: Option<&'a String>,
    pub expires: Option<&'a Timestamp>,
}

impl StdHeaders<'_> {
    pub(crate) fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: Option<&String>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v.clone());
            }
        };
        put("cache-control", self.cache_control);
        put("content-disposition", self.content_disposition);
        // aws-chunked is the transfer framing of a signed stream, not a property of the object.
        let encoding = self.content_encoding.map(|e| {
            e.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        put(
            "content-encoding",
            encoding.as_ref().filter(|e| !e.is_empty()),
        );
        put("content-language", self.content_language);
        if let Some(t) = self.expires.and_then(format_http_date) {
            m.insert("expires".into(), t);
        }
        m
    }
}

/// RFC 1123 in GMT, as HTTP date headers carry it.
pub(crate) fn format_http_date(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

pub(crate) fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

pub(crate) fn timestamp(ms: i64) -> Timestamp {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Timestamp::from(t)
}

/// Splits a stored relative path back into its directory and file name.
pub(crate) fn storage_name_of(rec: &ObjectRecord) -> StorageName {
    match rec.storage_path.rsplit_once('/') {
        Some((dir, file)) => StorageName {
            rel_dir: dir.to_owned(),
            file_name: file.to_owned(),
        },
        None => StorageName {
            rel_dir: String::new(),
            file_name: rec.storage_path.clone(),
        },
    }
}

/// The sidecar for an index record. Part sizes are kept only while they fit: an upload of
/// very varied part sizes keeps them in the index alone (a rebuild then loses them).
pub(crate) fn attr_json(rec: &ObjectRecord) -> AttrJson {
    let mut attr = attr_json_full(rec);
    if !attr.part_sizes.is_empty() && attr.to_bytes().is_err() {
        attr.part_sizes.clear();
    }
    attr
}

fn attr_json_full(rec: &ObjectRecord) -> AttrJson {
    let name = storage_name_of(rec);
    let h = &rec.http_headers;
    AttrJson {
        schema_version: SCHEMA_VERSION.to_owned(),
        file_id: rec.file_id.clone(),
        bucket: rec.bucket.clone(),
        key: rec.key.clone(),
        original_filename: rec.key.rsplit('/').next().unwrap_or_default().to_owned(),
        storage_filename: name.file_name,
        storage_path: rec.storage_path.clone(),
        file_size: u64::try_from(rec.size).unwrap_or_default(),
        content_type: rec.content_type.clone(),
        etag: rec.etag.clone(),
        checksum: rec.sha256.clone(),
        created_at: format_timestamp_ms(rec.created_ms),
        updated_at: format_timestamp_ms(rec.updated_ms),
        created_by_id: rec.owner_id.clone(),
        created_by_username: rec.owner_name.clone(),
        description: None,
        version: None,
        http_headers: HttpHeaders {
            content_encoding: h.get("content-encoding").cloned(),
            content_disposition: h.get("content-disposition").cloned(),
            content_language: h.get("content-language").cloned(),
            cache_control: h.get("cache-control").cloned(),
            expires: h.get("expires").cloned(),
        },
        custom_attributes: rec.custom_attributes.clone(),
        tags: rec.tags.clone(),
        checksums: rec.checksums.clone(),
        parts_count: rec.parts_count.and_then(|n| u32::try_from(n).ok()),
        part_sizes: attr_part_sizes(&rec.part_sizes),
        restore: rec
            .restore
            .as_ref()
            .map(|r| crate::restore_worker::restore_attr(r, None)),
    }
}

fn attr_part_sizes(runs: &[artstore_metadata::PartRun]) -> Vec<[u64; 2]> {
    runs.iter()
        .map(|r| {
            [
                u64::try_from(r.size).unwrap_or_default(),
                u64::try_from(r.count).unwrap_or_default(),
            ]
        })
        .collect()
}

/// Fails early, before a byte is stored, if this record's attr.json could not fit:
/// measured with the longest values the computed fields can take.
pub(crate) fn precheck_attr_size(
    rec: &ObjectRecord,
    algorithms: &[artstore_backends::ChecksumAlgorithm],
) -> S3Result<()> {
    let mut probe = rec.clone();
    probe.etag = format!("{}-10000", "0".repeat(32));
    probe.sha256 = "0".repeat(64);
    probe.size = i64::MAX;
    probe.file_id = uuid::Uuid::nil().to_string();
    probe.storage_path = format!("0000/00/00/00/{}", "x".repeat(200));
    // Base64 of the longest digest (SHA-256, 44 characters) with a COMPOSITE value's
    // "-10000" bounds every algorithm's value.
    probe.checksums = algorithms
        .iter()
        .map(|a| (a.name().to_owned(), "A".repeat(50)))
        .collect();
    // Room for the restore record the object may get once archived: the longest one.
    let ms = 1_000_000_000_123;
    let restore = artstore_metadata::RestoreState {
        status: artstore_metadata::RestoreStatus::Completed,
        days: i64::from(crate::restore_worker::MAX_RESTORE_DAYS),
        requested_ms: ms,
        requested_by: "x".repeat(64),
        completed_ms: Some(ms),
        expires_ms: Some(ms),
    };
    let mut attr = attr_json(&probe);
    attr.restore = Some(crate::restore_worker::restore_attr(
        &restore,
        Some("x".repeat(crate::restore_worker::MAX_ERROR_CHARS)),
    ));
    attr.to_bytes().map(|_| ()).map_err(super::errors::backend)
}

pub(crate) fn content_type_or_default(ct: Option<&String>) -> String {
    ct.filter(|c| !c.is_empty())
        .cloned()
        .unwrap_or_else(|| "binary/octet-stream".to_owned())
}
