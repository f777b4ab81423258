//! S3 tagging: object tags (`x-amz-tagging` on writes, Put/Get/DeleteObjectTagging) kept in
//! attr.json and the index, and bucket tags kept with the element (index and element.json).

use std::collections::BTreeMap;

use artstore_backends::ChecksumAlgorithm;
use artstore_metadata::ObjectRecord;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::object::lookup;
use super::record::precheck_attr_size;
use super::{Access, Gateway};
use crate::policy::Action;

pub(crate) type Tags = BTreeMap<String, String>;

/// AWS's limits: 10 tags per object, 50 per bucket; keys 1–128 and values 0–256 characters.
pub(crate) const MAX_OBJECT_TAGS: usize = 10;
const MAX_BUCKET_TAGS: usize = 50;
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;

fn invalid_tag(msg: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidTag, msg)
}

/// A tag set checked against AWS's rules; any violation is `InvalidTag`.
fn checked(pairs: impl IntoIterator<Item = (String, String)>, max: usize) -> S3Result<Tags> {
    let mut tags = Tags::new();
    for (k, v) in pairs {
        let n = k.chars().count();
        if n == 0 || n > MAX_KEY_CHARS {
            return Err(invalid_tag(format!(
                "The TagKey you have provided is invalid: keys have 1 to {MAX_KEY_CHARS} characters, '{k}' has {n}"
            )));
        }
        if k.starts_with("aws:") {
            return Err(invalid_tag(format!(
                "Your TagKey cannot be prefixed with aws: ('{k}')"
            )));
        }
        let n = v.chars().count();
        if n > MAX_VALUE_CHARS {
            return Err(invalid_tag(format!(
                "The TagValue you have provided is invalid: the value of '{k}' has {n} characters, the limit is {MAX_VALUE_CHARS}"
            )));
        }
        if tags.insert(k.clone(), v).is_some() {
            return Err(invalid_tag(format!(
                "Cannot provide multiple Tags with the same key ('{k}')"
            )));
        }
    }
    if tags.len() > max {
        return Err(invalid_tag(format!(
            "Tag sets are limited to {max} tags; {} were given",
            tags.len()
        )));
    }
    Ok(tags)
}

/// The `x-amz-tagging` header of PutObject, CreateMultipartUpload and CopyObject: a URL
/// query string (`k1=v1&k2=v2`).
pub(crate) fn from_header(header: Option<&TaggingHeader>) -> S3Result<Tags> {
    let Some(h) = header else {
        return Ok(Tags::new());
    };
    checked(
        form_urlencoded::parse(h.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
        MAX_OBJECT_TAGS,
    )
}

fn from_tag_set(set: &[Tag], max: usize) -> S3Result<Tags> {
    checked(
        set.iter().map(|t| {
            (
                t.key.clone().unwrap_or_default(),
                t.value.clone().unwrap_or_default(),
            )
        }),
        max,
    )
}

fn to_tag_set(tags: &Tags) -> TagSet {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// `x-amz-tagging-count`, sent on GET and HEAD of an object that has tags.
pub(crate) fn count_header(rec: &ObjectRecord, headers: &mut http::HeaderMap) {
    if !rec.tags.is_empty() {
        headers.insert(
            "x-amz-tagging-count",
            http::HeaderValue::from(rec.tags.len()),
        );
    }
}

pub(crate) async fn get_object_tagging(
    gw: &Gateway,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let i = &req.input;
    let access = gw.access(&req, &i.bucket).await?;
    let rec = lookup(gw, &i.bucket, &i.key).await;
    access.check_key(Action::GetObjectTagging, &i.key, rec.as_ref().ok())?;
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: to_tag_set(&rec?.tags),
        version_id: None,
    }))
}

pub(crate) async fn put_object_tagging(
    gw: &Gateway,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let i = &req.input;
    let tags = from_tag_set(&i.tagging.tag_set, MAX_OBJECT_TAGS)?;
    let access = gw.access(&req, &i.bucket).await?;
    access.check_existing(Action::PutObjectTagging, &i.key)?;
    set_object_tags(gw, &access, Action::PutObjectTagging, &i.key, tags).await?;
    Ok(S3Response::new(PutObjectTaggingOutput::default()))
}

pub(crate) async fn delete_object_tagging(
    gw: &Gateway,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let i = &req.input;
    let access = gw.access(&req, &i.bucket).await?;
    access.check_existing(Action::DeleteObjectTagging, &i.key)?;
    set_object_tags(
        gw,
        &access,
        Action::DeleteObjectTagging,
        &i.key,
        Tags::new(),
    )
    .await?;
    let mut resp = S3Response::new(DeleteObjectTaggingOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

/// A metadata update: a new sidecar for the same data file, then the index row, under the
/// key's lock, applied to the object the key holds at that moment.
async fn set_object_tags(
    gw: &Gateway,
    access: &Access,
    action: Action,
    key: &str,
    tags: Tags,
) -> S3Result<()> {
    gw.update_in_place(&access.element.name, key, |view| {
        access.check_committed(action, key, view)?;
        let Some(cur) = view.current else {
            return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
        };
        let rec = ObjectRecord {
            tags,
            ..cur.clone()
        };
        // The sidecar must keep room for a later restore record, as at creation.
        let algorithms: Vec<_> = rec
            .checksums
            .keys()
            .filter_map(|n| ChecksumAlgorithm::parse(n))
            .collect();
        precheck_attr_size(&rec, &algorithms)?;
        Ok(rec)
    })
    .await?;
    Ok(())
}

pub(crate) async fn get_bucket_tagging(
    gw: &Gateway,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let access = gw.access(&req, &req.input.bucket).await?;
    access.check_bucket(Action::GetBucketTagging)?;
    if access.element.tags.is_empty() {
        return Err(s3_error!(
            NoSuchTagSet,
            "There is no tag set associated with the bucket."
        ));
    }
    Ok(S3Response::new(GetBucketTaggingOutput {
        tag_set: to_tag_set(&access.element.tags),
    }))
}

pub(crate) async fn put_bucket_tagging(
    gw: &Gateway,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let i = &req.input;
    let tags = from_tag_set(&i.tagging.tag_set, MAX_BUCKET_TAGS)?;
    gw.access(&req, &i.bucket)
        .await?
        .check_bucket(Action::PutBucketTagging)?;
    set_bucket_tags(gw, &i.bucket, &tags).await?;
    let mut resp = S3Response::new(PutBucketTaggingOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn delete_bucket_tagging(
    gw: &Gateway,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    let bucket = &req.input.bucket;
    gw.access(&req, bucket)
        .await?
        .check_bucket(Action::PutBucketTagging)?;
    set_bucket_tags(gw, bucket, &Tags::new()).await?;
    let mut resp = S3Response::new(DeleteBucketTaggingOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

async fn set_bucket_tags(gw: &Gateway, bucket: &str, tags: &Tags) -> S3Result<()> {
    let changed = gw.store.set_bucket_tags(bucket, tags).await;
    super::element_settings::persist(gw, bucket, changed).await
}
