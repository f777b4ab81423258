//! CopyObject: a new object from an existing one's bytes, or (onto itself with REPLACE)
//! a metadata-only update that rewrites the sidecar and the index row, never the data.

use artstore_metadata::ObjectRecord;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::Access;
use super::checksum::Declared;
use super::conditional::{self, Conditions, Outcome};
use super::object::check_acl;
use super::record::{StdHeaders, check_key, content_type_or_default, user_metadata};
use super::write::{Finish, NewObject};
use super::{Gateway, errors, identity, tagging};
use crate::policy::Action;

/// The source object of a copy, after its `x-amz-copy-source-if-*` conditions.
/// The source must be readable by the caller under its own element's mode (not `ar`).
pub(crate) async fn copy_source(
    gw: &Gateway,
    target: &Access,
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
    let access = gw
        .access_as(target.principal.clone(), target.context.clone(), bucket)
        .await?;
    let current = gw
        .store
        .get_object(bucket, key)
        .await
        .map_err(errors::meta)?;
    let rec = match access.check_key(Action::GetObject, key, current.as_ref()) {
        Ok(()) => {
            current.ok_or_else(|| s3_error!(NoSuchKey, "The specified key does not exist."))?
        }
        // An archived source can be copied while a restore has made it readable, as in S3.
        Err(denied) if *denied.code() == s3s::S3ErrorCode::InvalidObjectState => {
            super::restore::readable_if_restored(gw, &access, bucket, key, denied).await?
        }
        Err(e) => return Err(e),
    };
    super::damage::refuse_damaged(gw, &rec, None).await?;
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
        &access,
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
    let tags = match i.tagging_directive.as_ref().map(TaggingDirective::as_str) {
        None | Some("COPY") if i.tagging.is_some() => {
            return Err(s3_error!(
                InvalidArgument,
                "x-amz-tagging is only applied with x-amz-tagging-directive: REPLACE"
            ));
        }
        None | Some("COPY") => src.tags.clone(),
        Some("REPLACE") => tagging::from_header(i.tagging.as_ref())?,
        Some(other) => {
            return Err(s3_error!(
                InvalidArgument,
                "Unknown tagging directive '{other}'"
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

    // Conditional writes on the destination (AWS: If-Match / If-None-Match on CopyObject).
    let (if_match, if_none_match) = conditional::write_conditions(&req.headers)?;
    let same = src.bucket == i.bucket && src.key == i.key;
    let rec = if same {
        if !replace {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        access.check_key(Action::UpdateObjectMetadata, &i.key, Some(&src))?;
        if if_none_match.is_some() {
            // The key exists (it is the source), so "only if absent" cannot hold.
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
        update_metadata(
            gw,
            &access,
            src,
            NewAttributes {
                content_type,
                http_headers,
                custom_attributes,
                tags,
            },
            if_match,
        )
        .await?
    } else {
        let current = gw
            .store
            .get_object(&i.bucket, &i.key)
            .await
            .map_err(errors::meta)?;
        access.check_key(Action::PutObject, &i.key, current.as_ref())?;
        access
            .check_quota(Some(src.size - current.as_ref().map_or(0, |c| c.size)))
            .await?;
        conditional::check_write(
            if_match.as_ref(),
            if_none_match.as_ref(),
            current.as_ref().map(|c| c.etag.as_str()),
        )?;
        let prepared = gw.prepare(
            NewObject {
                bucket: i.bucket.clone(),
                key: i.key.clone(),
                content_type,
                http_headers,
                custom_attributes,
                tags,
            },
            &who,
            &[],
            gw.backend(&access.element)?,
        )?;
        let size = u64::try_from(src.size).unwrap_or_default();
        let body = gw
            .backend_named(&src.bucket)
            .await?
            .open_range(&src.storage_path, 0, size)
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
            |view| {
                access.check_committed(Action::PutObject, &i.key, view)?;
                conditional::check_write(
                    if_match.as_ref(),
                    if_none_match.as_ref(),
                    view.current.map(|c| c.etag.as_str()),
                )
            },
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

/// The attributes a metadata-only update (CopyObject onto itself with `REPLACE`) sets.
struct NewAttributes {
    content_type: String,
    http_headers: std::collections::BTreeMap<String, String>,
    custom_attributes: std::collections::BTreeMap<String, String>,
    tags: std::collections::BTreeMap<String, String>,
}

/// Rewrites the sidecar, then the index row, under the key's lock; the data file is untouched.
/// The rules are decided against the object as it is then, and the version the copy's source
/// conditions were checked against must still be the current one.
async fn update_metadata(
    gw: &Gateway,
    access: &super::Access,
    src: ObjectRecord,
    new: NewAttributes,
    if_match: Option<ETagCondition>,
) -> S3Result<ObjectRecord> {
    gw.update_in_place(&src.bucket, &src.key, |view| {
        access.check_committed(Action::UpdateObjectMetadata, &src.key, view)?;
        let Some(cur) = view.current else {
            return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
        };
        conditional::check_write(if_match.as_ref(), None, Some(cur.etag.as_str()))?;
        if cur.file_id != src.file_id {
            return Err(conflict());
        }
        Ok(ObjectRecord {
            content_type: new.content_type,
            http_headers: new.http_headers,
            custom_attributes: new.custom_attributes,
            tags: new.tags,
            updated_ms: artstore_metadata::now_ms(),
            ..cur.clone()
        })
    })
    .await
}

/// The object was replaced while this request ran; the client should read it again.
fn conflict() -> s3s::S3Error {
    let mut e = s3s::S3Error::with_message(
        s3s::S3ErrorCode::Custom("ConditionalRequestConflict".into()),
        "The object was changed by another request while this one ran; retry",
    );
    e.set_status_code(http::StatusCode::CONFLICT);
    e
}
