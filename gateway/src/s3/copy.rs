//! CopyObject: a new object from an existing one's bytes, or (onto itself with REPLACE)
//! a metadata-only update that rewrites the sidecar and the index row, never the data.

use artstore_metadata::ObjectRecord;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::checksum::Declared;
use super::conditional::{self, Conditions, Outcome};
use super::object::check_acl;
use super::record::{StdHeaders, attr_json, check_key, content_type_or_default, user_metadata};
use super::write::{Finish, NewObject};
use super::{Gateway, errors, identity};
use crate::policy::{Action, Facts, Principal};

/// The source object of a copy, after its `x-amz-copy-source-if-*` conditions.
/// The source must be readable by the caller under its own element's mode (not `ar`).
pub(crate) async fn copy_source(
    gw: &Gateway,
    principal: &Principal,
    src: &CopySource,
    c: Conditions<'_>,
) -> S3Result<ObjectRecord> {
    let CopySource::Bucket {
        bucket,
        key,
        version_id,
    } = src
    else {
        return Err(s3_error!(
            NotImplemented,
            "copy sources other than bucket/key are not supported"
        ));
    };
    if version_id.as_deref().is_some_and(|v| v != "null") {
        return Err(s3_error!(
            NoSuchVersion,
            "The specified version does not exist (buckets are unversioned)"
        ));
    }
    let access = gw.access_as(principal.clone(), bucket).await?;
    let rec = match access.check(Action::GetObject, Facts { key_exists: true }) {
        Ok(()) => gw
            .store
            .get_object(bucket, key)
            .await
            .map_err(errors::meta)?
            .ok_or_else(|| s3_error!(NoSuchKey, "The specified key does not exist."))?,
        // An archived source can be copied while a restore has made it readable, as in S3.
        Err(denied) if *denied.code() == s3s::S3ErrorCode::InvalidObjectState => {
            super::restore::readable_if_restored(gw, &access, bucket, key, denied).await?
        }
        Err(e) => return Err(e),
    };
    // For copy sources every failed condition is 412.
    match conditional::evaluate(&c, &rec.etag, rec.updated_ms)? {
        Outcome::Proceed => Ok(rec),
        Outcome::NotModified => Err(s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        )),
    }
}

pub(crate) async fn copy_object(
    gw: &Gateway,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let who = identity(&req)?;
    let i = &req.input;
    check_key(&i.key)?;
    check_acl(i.acl.as_ref().map(|a| a.as_str()))?;
    let access = gw.access(&req, &i.bucket).await?;
    let src = copy_source(
        gw,
        &access.principal,
        &i.copy_source,
        Conditions {
            if_match: i.copy_source_if_match.as_ref(),
            if_none_match: i.copy_source_if_none_match.as_ref(),
            if_modified_since: i.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
        },
    )
    .await?;
    let replace = match i.metadata_directive.as_ref().map(MetadataDirective::as_str) {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(s3_error!(
                InvalidArgument,
                "Unknown metadata directive '{other}'"
            ));
        }
    };
    let (content_type, http_headers, custom_attributes) = if replace {
        (
            content_type_or_default(i.content_type.as_ref()),
            StdHeaders {
                cache_control: i.cache_control.as_ref(),
                content_disposition: i.content_disposition.as_ref(),
                content_encoding: i.content_encoding.as_ref(),
                content_language: i.content_language.as_ref(),
                expires: i.expires.as_ref(),
            }
            .to_map(),
            user_metadata(i.metadata.as_ref())?,
        )
    } else {
        (
            src.content_type.clone(),
            src.http_headers.clone(),
            src.custom_attributes.clone(),
        )
    };

    let same = src.bucket == i.bucket && src.key == i.key;
    let rec = if same {
        if !replace {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        access.check(Action::UpdateObjectMetadata, Facts { key_exists: true })?;
        update_metadata(gw, src, content_type, http_headers, custom_attributes).await?
    } else {
        let current = gw
            .store
            .get_object(&i.bucket, &i.key)
            .await
            .map_err(errors::meta)?;
        access.check_key(Action::PutObject, current.as_ref())?;
        access.check_quota(Some(src.size - current.as_ref().map_or(0, |c| c.size)))?;
        let prepared = gw.prepare(
            NewObject {
                bucket: i.bucket.clone(),
                key: i.key.clone(),
                content_type,
                http_headers,
                custom_attributes,
            },
            &who,
            &[],
        )?;
        let size = u64::try_from(src.size).unwrap_or_default();
        let body = gw
            .fs
            .open_range(&src.bucket, &src.storage_path, 0, size)
            .await
            .map_err(errors::backend)?;
        let declared = Declared::default();
        let staged = gw.stage(&prepared, body, &declared).await?;
        if staged.digests.sha256_hex() != src.sha256 {
            tracing::error!(bucket = %src.bucket, key = %src.key, "copy source does not match its recorded checksum");
            return Err(s3_error!(
                InternalError,
                "the source object failed its integrity check"
            ));
        }
        let etag = staged.digests.md5_hex();
        gw.commit(
            prepared,
            staged,
            Finish {
                etag,
                // The copy is one part: a multipart COMPOSITE value ("…-N") no longer applies.
                checksums: src
                    .checksums
                    .iter()
                    .filter(|(_, v)| !v.contains('-'))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                parts_count: None,
                completes_upload: None,
            },
            |cur| access.check_key(Action::PutObject, cur),
        )
        .await?
    };
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(ETag::Strong(rec.etag.clone())),
            last_modified: Some(super::record::timestamp(rec.updated_ms)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

/// Rewrites the sidecar atomically, then the index row; the data file is untouched.
async fn update_metadata(
    gw: &Gateway,
    mut rec: ObjectRecord,
    content_type: String,
    http_headers: std::collections::BTreeMap<String, String>,
    custom_attributes: std::collections::BTreeMap<String, String>,
) -> S3Result<ObjectRecord> {
    rec.content_type = content_type;
    rec.http_headers = http_headers;
    rec.custom_attributes = custom_attributes;
    rec.updated_ms = artstore_metadata::now_ms();
    let attr = attr_json(&rec);
    attr.to_bytes().map_err(errors::backend)?;
    gw.fs
        .write_attr(
            &rec.bucket,
            &format!("{}.attr.json", rec.storage_path),
            &attr,
        )
        .await
        .map_err(errors::backend)?;
    gw.store.put_object(&rec).await.map_err(errors::meta)?;
    Ok(rec)
}
