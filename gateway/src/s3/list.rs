//! ListObjects (v1), ListObjectsV2 and ListObjectVersions, all served from the index.

use artstore_metadata::{ListEntry, ListPage, ListQuery, ObjectRecord};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::record::timestamp;
use super::{Gateway, errors};
use crate::policy::Action;

/// `encoding-type=url`: everything but unreserved characters and `/` is escaped; clients
/// decode with unquote_plus, so a literal `+` must become `%2B`.
const KEY_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

struct Encoder(bool);

impl Encoder {
    fn new(t: Option<&EncodingType>) -> S3Result<Self> {
        match t.map(EncodingType::as_str) {
            None => Ok(Encoder(false)),
            Some(s) if s.eq_ignore_ascii_case("url") => Ok(Encoder(true)),
            Some(other) => Err(s3_error!(
                InvalidArgument,
                "Invalid Encoding Method specified in Request: {other}"
            )),
        }
    }
    fn enc(&self, s: &str) -> String {
        if self.0 {
            utf8_percent_encode(s, KEY_ESCAPE).to_string()
        } else {
            s.to_owned()
        }
    }
    fn opt(&self, s: Option<&String>) -> Option<String> {
        s.map(|s| self.enc(s))
    }
}

fn max_keys(m: Option<i32>) -> S3Result<usize> {
    match m {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(
            InvalidArgument,
            "max-keys must be between 0 and 2147483647"
        )),
        Some(n) => Ok(usize::try_from(n).unwrap_or(1000).min(1000)),
    }
}

fn delimiter(d: Option<&String>) -> Option<String> {
    d.filter(|d| !d.is_empty()).cloned()
}

async fn page(
    gw: &Gateway,
    bucket: &str,
    prefix: Option<&String>,
    delim: Option<&String>,
    after: Option<String>,
    max: usize,
) -> S3Result<ListPage> {
    gw.store
        .list_objects(
            bucket,
            &ListQuery {
                prefix: prefix.cloned().unwrap_or_default(),
                delimiter: delimiter(delim),
                after,
                max_keys: max,
            },
        )
        .await
        .map_err(errors::meta)
}

fn object(rec: &ObjectRecord, enc: &Encoder, with_owner: bool) -> Object {
    Object {
        key: Some(enc.enc(&rec.key)),
        e_tag: Some(ETag::Strong(rec.etag.clone())),
        size: Some(rec.size),
        last_modified: Some(timestamp(rec.updated_ms)),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        owner: with_owner.then(|| Owner {
            display_name: Some(rec.owner_name.clone()),
            id: Some(rec.owner_id.clone()),
        }),
        ..Default::default()
    }
}

fn split(page: &ListPage, enc: &Encoder, with_owner: bool) -> (Vec<Object>, Vec<CommonPrefix>) {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    for e in &page.entries {
        match e {
            ListEntry::Object(o) => objects.push(object(o, enc, with_owner)),
            ListEntry::CommonPrefix(p) => prefixes.push(CommonPrefix {
                prefix: Some(enc.enc(p)),
            }),
        }
    }
    (objects, prefixes)
}

pub(crate) async fn list_objects(
    gw: &Gateway,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let i = &req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = max_keys(i.max_keys)?;
    let after = i.marker.clone().filter(|m| !m.is_empty());
    gw.access(&req, &i.bucket)
        .await?
        .check_bucket(Action::ListBucket)?;
    let page = page(
        gw,
        &i.bucket,
        i.prefix.as_ref(),
        i.delimiter.as_ref(),
        after,
        max,
    )
    .await?;
    let (contents, prefixes) = split(&page, &enc, true);
    let next_marker = page
        .truncated
        .then(|| page.last_position().map(|p| enc.enc(p)))
        .flatten();
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(i.bucket.clone()),
        prefix: Some(enc.opt(i.prefix.as_ref()).unwrap_or_default()),
        marker: Some(enc.opt(i.marker.as_ref()).unwrap_or_default()),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(page.truncated),
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        delimiter: enc.opt(delimiter(i.delimiter.as_ref()).as_ref()),
        next_marker,
        encoding_type: i.encoding_type.clone(),
        request_charged: None,
    }))
}

/// Continuation tokens are opaque to clients: the resume position, base64url.
fn decode_token(t: &str) -> S3Result<String> {
    B64.decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The continuation token provided is incorrect"
            )
        })
}

pub(crate) async fn list_objects_v2(
    gw: &Gateway,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let i = &req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = max_keys(i.max_keys)?;
    let after = match (&i.continuation_token, &i.start_after) {
        (Some(t), _) if !t.is_empty() => Some(decode_token(t)?),
        (_, Some(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    gw.access(&req, &i.bucket)
        .await?
        .check_bucket(Action::ListBucket)?;
    let page = page(
        gw,
        &i.bucket,
        i.prefix.as_ref(),
        i.delimiter.as_ref(),
        after,
        max,
    )
    .await?;
    let (contents, prefixes) = split(&page, &enc, i.fetch_owner.unwrap_or(false));
    let next = page
        .truncated
        .then(|| page.last_position().map(|p| B64.encode(p)))
        .flatten();
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(i.bucket.clone()),
        prefix: Some(enc.opt(i.prefix.as_ref()).unwrap_or_default()),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        key_count: Some(i32::try_from(page.entries.len()).unwrap_or(i32::MAX)),
        continuation_token: i.continuation_token.clone(),
        is_truncated: Some(page.truncated),
        next_continuation_token: next,
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        delimiter: enc.opt(delimiter(i.delimiter.as_ref()).as_ref()),
        encoding_type: i.encoding_type.clone(),
        start_after: enc.opt(i.start_after.as_ref()),
        request_charged: None,
    }))
}

/// Buckets are unversioned: every current object is its one version, `null`.
pub(crate) async fn list_object_versions(
    gw: &Gateway,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let i = &req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = max_keys(i.max_keys)?;
    let after = i.key_marker.clone().filter(|m| !m.is_empty());
    gw.access(&req, &i.bucket)
        .await?
        .check_bucket(Action::ListBucketVersions)?;
    let page = page(
        gw,
        &i.bucket,
        i.prefix.as_ref(),
        i.delimiter.as_ref(),
        after,
        max,
    )
    .await?;
    let mut versions = Vec::new();
    let mut prefixes = Vec::new();
    for e in &page.entries {
        match e {
            ListEntry::Object(o) => versions.push(ObjectVersion {
                key: Some(enc.enc(&o.key)),
                e_tag: Some(ETag::Strong(o.etag.clone())),
                size: Some(o.size),
                last_modified: Some(timestamp(o.updated_ms)),
                is_latest: Some(true),
                version_id: Some("null".into()),
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                owner: Some(Owner {
                    display_name: Some(o.owner_name.clone()),
                    id: Some(o.owner_id.clone()),
                }),
                ..Default::default()
            }),
            ListEntry::CommonPrefix(p) => prefixes.push(CommonPrefix {
                prefix: Some(enc.enc(p)),
            }),
        }
    }
    let next_key_marker = page
        .truncated
        .then(|| page.last_position().map(|p| enc.enc(p)))
        .flatten();
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(i.bucket.clone()),
        prefix: Some(enc.opt(i.prefix.as_ref()).unwrap_or_default()),
        key_marker: Some(enc.opt(i.key_marker.as_ref()).unwrap_or_default()),
        version_id_marker: Some(i.version_id_marker.clone().unwrap_or_default()),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(page.truncated),
        next_version_id_marker: next_key_marker.as_ref().map(|_| "null".to_owned()),
        next_key_marker,
        versions: Some(versions),
        common_prefixes: Some(prefixes),
        delimiter: enc.opt(delimiter(i.delimiter.as_ref()).as_ref()),
        encoding_type: i.encoding_type.clone(),
        ..Default::default()
    }))
}
