//! Multipart uploads: state in the index (any node can take any part), parts as files of
//! the element, one streaming pass to assemble on completion.

use std::collections::HashMap;

use artstore_admin::element_backend::LookupError;
use artstore_backends::ChecksumAlgorithm as Alg;
use artstore_backends::{PartSlice, Staged, body_stream};
use artstore_metadata::{Identity, MetaError, Part, PartRun, Upload};
use md5::{Digest as _, Md5};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::checksum::{Declared, checksum_type_of, fill_checksums};
use super::conditional;
use super::copy::copy_source;
use super::multipart_checksum::{
    check_part_checksum, checksum_choice, object_checksum, upload_algorithm,
};
use super::object::{check_acl, empty_body};
use super::record::{StdHeaders, check_key, content_type_or_default, timestamp, user_metadata};
use super::unsized_body::declared_length;
use super::write::{Finish, NewObject};
use super::{Access, Gateway, errors, identity, owner, tagging};
use crate::policy::Action;

const MIN_PART_SIZE: i64 = 5 * 1024 * 1024;
const MAX_PARTS: i32 = 10_000;

fn no_such_upload() -> s3s::S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

/// The upload, which must belong to this bucket and key (the caller's `access` to the bucket
/// is established first, which also proves the bucket exists).
async fn upload(gw: &Gateway, bucket: &str, key: &str, upload_id: &str) -> S3Result<Upload> {
    match gw.store.get_upload(upload_id).await.map_err(errors::meta)? {
        Some(u) if u.bucket == bucket && u.key == key => Ok(u),
        _ => Err(no_such_upload()),
    }
}

fn part_number(n: i32) -> S3Result<u32> {
    if (1..=MAX_PARTS).contains(&n) {
        Ok(n.unsigned_abs())
    } else {
        Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        ))
    }
}

pub(crate) async fn create(
    gw: &Gateway,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let who = identity(&req)?;
    let i = &req.input;
    check_key(&i.key)?;
    check_acl(i.acl.as_ref().map(|a| a.as_str()))?;
    let access = gw.access(&req, &i.bucket).await?;
    check_put(gw, &access, &i.bucket, &i.key).await?;
    let (algorithm, checksum_type) =
        checksum_choice(i.checksum_algorithm.as_ref(), i.checksum_type.as_ref())?;
    let u = Upload {
        upload_id: uuid::Uuid::now_v7().simple().to_string(),
        bucket: i.bucket.clone(),
        key: i.key.clone(),
        owner_id: who.account_id.clone(),
        owner_name: who.name.clone(),
        content_type: content_type_or_default(i.content_type.as_ref()),
        http_headers: StdHeaders {
            cache_control: i.cache_control.as_ref(),
            content_disposition: i.content_disposition.as_ref(),
            content_encoding: i.content_encoding.as_ref(),
            content_language: i.content_language.as_ref(),
            expires: i.expires.as_ref(),
        }
        .to_map(),
        custom_attributes: user_metadata(i.metadata.as_ref())?,
        checksum_algorithm: algorithm.map(|a| a.name().to_ascii_uppercase()),
        tags: tagging::from_header(i.tagging.as_ref())?,
        created_ms: artstore_metadata::now_ms(),
        checksum_type: checksum_type.map(str::to_owned),
    };
    // Refuse now, not after gigabytes of parts, if the final attr.json cannot fit.
    gw.prepare(
        NewObject {
            bucket: u.bucket.clone(),
            key: u.key.clone(),
            content_type: u.content_type.clone(),
            http_headers: u.http_headers.clone(),
            custom_attributes: u.custom_attributes.clone(),
            tags: u.tags.clone(),
        },
        &who,
        &algorithm.into_iter().collect::<Vec<_>>(),
        gw.backend(&access.element)?,
    )?;
    gw.store.create_upload(&u).await.map_err(errors::meta)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(u.bucket),
        key: Some(u.key),
        upload_id: Some(u.upload_id),
        checksum_algorithm: u.checksum_algorithm.map(ChecksumAlgorithm::from),
        checksum_type: u.checksum_type.map(ChecksumType::from),
        ..Default::default()
    }))
}

pub(crate) async fn upload_part(
    gw: &Gateway,
    mut req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let access = gw.access(&req, &req.input.bucket).await?;
    let declared_length = declared_length(&req, req.input.content_length);
    let i = &mut req.input;
    let n = part_number(i.part_number)?;
    let u = upload(gw, &i.bucket, &i.key, &i.upload_id).await?;
    check_put(gw, &access, &i.bucket, &i.key).await?;
    // A part that alone cannot fit is refused before its bytes are read.
    access.check_quota(declared_length).await?;
    let mut declared = Declared::from_headers(&req.headers)?;
    if let Some(alg) = upload_algorithm(&u) {
        if let Some(other) = declared.sent().find(|a| *a != alg) {
            return Err(s3_error!(
                InvalidRequest,
                "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                alg.name(),
                other.name()
            ));
        }
        // Kept with the part even when the client sent none, so Complete can combine them.
        declared.compute(alg);
    }
    let body = i.body.take().unwrap_or_else(empty_body);
    let staged = match gw
        .backend(&access.element)?
        .stage_part(&u.upload_id, n, body_stream(body), &declared.algorithms)
        .await
    {
        Ok(s) => s,
        Err(e) => return Err(ended_or(gw, &u, errors::backend(e)).await),
    };
    let trailers = req.trailing_headers.as_ref().and_then(|t| t.take());
    let checksums = declared.verify(&staged.digests, trailers)?;
    let part = Part {
        upload_id: u.upload_id.clone(),
        part_number: i64::from(n),
        size: i64::try_from(staged.digests.size).unwrap_or(i64::MAX),
        etag: staged.digests.md5_hex(),
        checksums,
        created_ms: artstore_metadata::now_ms(),
    };
    record_part(gw, &u, n, staged, &part).await?;
    let mut out = UploadPartOutput {
        e_tag: Some(ETag::Strong(part.etag.clone())),
        ..Default::default()
    };
    fill_checksums!(out, &part.checksums);
    Ok(S3Response::new(out))
}

/// Puts a staged part in place and records it. A part racing the end of its upload (Abort,
/// expiry, Complete) loses when the upload row is gone at its commit: its file goes too, and
/// the answer is NoSuchUpload.
async fn record_part(
    gw: &Gateway,
    u: &Upload,
    n: u32,
    staged: Staged,
    part: &Part,
) -> S3Result<()> {
    let backend = gw.backend_named(&u.bucket).await?;
    if let Err(e) = backend.commit_part(staged, &u.upload_id, n).await {
        return Err(ended_or(gw, u, errors::backend(e)).await);
    }
    match gw.store.put_part(part).await {
        Ok(()) => Ok(()),
        Err(MetaError::NotFound(_)) => Err(ended_or(gw, u, no_such_upload()).await),
        Err(e) => Err(errors::meta(e)),
    }
}

/// `err`, unless the upload ended while the request ran: then NoSuchUpload, and the part
/// files it may have put back into the removed upload directory go.
async fn ended_or(gw: &Gateway, u: &Upload, err: s3s::S3Error) -> s3s::S3Error {
    match gw.store.get_upload(&u.upload_id).await {
        Ok(None) => {
            let removed = match gw.backend_named(&u.bucket).await {
                Ok(b) => b
                    .remove_upload(&u.upload_id)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = removed {
                tracing::warn!(upload_id = %u.upload_id, error = %e, "cannot remove an ended upload's parts");
            }
            no_such_upload()
        }
        _ => err,
    }
}

/// Ends an upload as AbortMultipartUpload does: the index rows go first, in one transaction
/// that decides (only if the upload still exists and, with `begun_before`, began before that
/// time), then the part files. False when the upload was already gone or is younger.
pub(crate) async fn discard(
    store: &artstore_metadata::Store,
    backends: &artstore_backends::Backends,
    bucket: &str,
    upload_id: &str,
    begun_before: Option<i64>,
) -> S3Result<bool> {
    if !store
        .delete_upload_if(upload_id, begun_before)
        .await
        .map_err(errors::meta)?
    {
        return Ok(false);
    }
    // The index decided: the upload is over, whatever its files do now. A part written at
    // this moment (refused, its row gone) can make the removal fail; what is left is garbage
    // that the refused part removes, or `index rebuild` does.
    let removed =
        match artstore_admin::element_backend::of::<LookupError>(store, backends, bucket).await {
            Ok(b) => b.remove_upload(upload_id).await.map_err(LookupError::from),
            Err(e) => Err(e),
        };
    if let Err(e) = removed {
        tracing::warn!(%bucket, %upload_id, error = %e, "upload ended; its part files stay for now");
    }
    Ok(true)
}

/// Every step towards a new object asks the evaluator as a PutObject on the key as it is now:
/// an upload begun before a switch to `ro` (or onto a key that appeared, in `rw`) fails.
async fn check_put(gw: &Gateway, access: &Access, bucket: &str, key: &str) -> S3Result<()> {
    let current = gw
        .store
        .get_object(bucket, key)
        .await
        .map_err(errors::meta)?;
    access.check_key(Action::PutObject, key, current.as_ref())
}

/// `bytes=a-b` of an object of `size` bytes, as x-amz-copy-source-range requires it.
fn copy_range(range: Option<&String>, size: u64) -> S3Result<(u64, u64)> {
    let Some(r) = range else { return Ok((0, size)) };
    let bad = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        )
    };
    let (a, b) = r
        .strip_prefix("bytes=")
        .and_then(|s| s.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if first > last {
        return Err(bad());
    }
    if last >= size {
        return Err(s3_error!(
            InvalidRange,
            "The requested range is not satisfiable: the source object has {size} bytes"
        ));
    }
    Ok((first, last - first + 1))
}

pub(crate) async fn upload_part_copy(
    gw: &Gateway,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let i = &req.input;
    let access = gw.access(&req, &i.bucket).await?;
    let n = part_number(i.part_number)?;
    let u = upload(gw, &i.bucket, &i.key, &i.upload_id).await?;
    check_put(gw, &access, &i.bucket, &i.key).await?;
    let src = copy_source(
        gw,
        &access,
        &i.copy_source,
        conditional::Conditions {
            if_match: i.copy_source_if_match.as_ref(),
            if_none_match: i.copy_source_if_none_match.as_ref(),
            if_modified_since: i.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
        },
    )
    .await?;
    let (start, len) = copy_range(
        i.copy_source_range.as_ref(),
        u64::try_from(src.size).unwrap_or_default(),
    )?;
    access.check_quota(i64::try_from(len).ok()).await?;
    let body = gw
        .backend_named(&src.bucket)
        .await?
        .open_range(&src.storage_path, start, len)
        .await
        .map_err(errors::backend)?;
    let algorithms: Vec<Alg> = upload_algorithm(&u).into_iter().collect();
    let staged = match gw
        .backend(&access.element)?
        .stage_part(&u.upload_id, n, body_stream(body), &algorithms)
        .await
    {
        Ok(s) => s,
        Err(e) => return Err(ended_or(gw, &u, errors::backend(e)).await),
    };
    let now = artstore_metadata::now_ms();
    let part = Part {
        upload_id: u.upload_id.clone(),
        part_number: i64::from(n),
        size: i64::try_from(staged.digests.size).unwrap_or(i64::MAX),
        etag: staged.digests.md5_hex(),
        checksums: staged.digests.checksums_by_name(),
        created_ms: now,
    };
    record_part(gw, &u, n, staged, &part).await?;
    let mut result = CopyPartResult {
        e_tag: Some(ETag::Strong(part.etag.clone())),
        last_modified: Some(timestamp(now)),
        ..Default::default()
    };
    fill_checksums!(result, &part.checksums);
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(result),
        ..Default::default()
    }))
}

pub(crate) async fn complete(
    gw: &Gateway,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let i = &req.input;
    let access = gw.access(&req, &i.bucket).await?;
    let u = match gw
        .store
        .get_upload(&i.upload_id)
        .await
        .map_err(errors::meta)?
    {
        Some(u) if u.bucket == i.bucket && u.key == i.key => u,
        Some(_) => return Err(no_such_upload()),
        None => return completed_before(gw, &access, i).await,
    };
    match assemble_and_commit(gw, &access, i, u).await {
        Ok(out) => Ok(out),
        Err(e) => {
            // A concurrent Complete of the same upload won (it removed the parts, and its
            // object fails this one's checks): answer as it did.
            if gw
                .store
                .completed_upload(&i.upload_id)
                .await
                .map_err(errors::meta)?
                .is_some()
            {
                return completed_before(gw, &access, i).await;
            }
            // Aborted or expired meanwhile: its parts may have gone mid-assembly.
            if gw
                .store
                .get_upload(&i.upload_id)
                .await
                .map_err(errors::meta)?
                .is_none()
            {
                return Err(no_such_upload());
            }
            Err(e)
        }
    }
}

async fn assemble_and_commit(
    gw: &Gateway,
    access: &Access,
    i: &CompleteMultipartUploadInput,
    u: Upload,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let requested = i
        .multipart_upload
        .as_ref()
        .and_then(|m| m.parts.as_ref())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema: at least one part is required"
            )
        })?;
    let stored: HashMap<i64, Part> = gw
        .store
        .list_parts(&u.upload_id, 0, i64::from(MAX_PARTS) + 1)
        .await
        .map_err(errors::meta)?
        .into_iter()
        .map(|p| (p.part_number, p))
        .collect();
    let mut chosen = Vec::with_capacity(requested.len());
    let mut previous = 0;
    for p in requested {
        let n = p.part_number.unwrap_or(0);
        if n <= previous {
            return Err(s3_error!(
                InvalidPartOrder,
                "The list of parts was not in ascending order. Parts must be ordered by part number."
            ));
        }
        previous = n;
        let invalid = || {
            s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
            )
        };
        let part = stored.get(&i64::from(n)).ok_or_else(invalid)?;
        let given = p.e_tag.as_ref().map(|e| e.value().trim_matches('"'));
        if given != Some(part.etag.as_str()) {
            return Err(invalid());
        }
        check_part_checksum(&u, p, part)?;
        chosen.push(part);
    }
    if let Some((_, all_but_last)) = chosen.split_last()
        && let Some(small) = all_but_last.iter().find(|p| p.size < MIN_PART_SIZE)
    {
        return Err(s3_error!(
            EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed object size: part {} has {} bytes; each part but the last must be at least 5 MiB",
            small.part_number,
            small.size
        ));
    }
    let current = gw
        .store
        .get_object(&u.bucket, &u.key)
        .await
        .map_err(errors::meta)?;
    // The element's mode as of now, not as of CreateMultipartUpload.
    access.check_key(Action::PutObject, &u.key, current.as_ref())?;
    conditional::check_write(
        i.if_match.as_ref(),
        i.if_none_match.as_ref(),
        current.as_ref().map(|c| c.etag.as_str()),
    )?;

    let mut md5s = Md5::new();
    for p in &chosen {
        let raw = hex::decode(&p.etag).map_err(|_| s3_error!(InternalError, "corrupt part"))?;
        md5s.update(&raw);
    }
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
    let who = Identity {
        account_id: u.owner_id.clone(),
        name: u.owner_name.clone(),
        role: None,
    };
    let total: i64 = chosen.iter().map(|p| p.size).sum();
    if let Some(expected) = i.mpu_object_size
        && expected != total
    {
        return Err(s3_error!(
            InvalidRequest,
            "The provided MpuObjectSize {expected} does not match the size of the parts, {total} bytes."
        ));
    }
    if let Some(t) = &i.checksum_type
        && Some(t.as_str()) != u.checksum_type.as_deref()
    {
        return Err(s3_error!(
            InvalidRequest,
            "The upload was created with checksum type {}, not {}.",
            u.checksum_type.as_deref().unwrap_or("none"),
            t.as_str()
        ));
    }
    let checksums = object_checksum(&u, i, &chosen)?;
    let mut prepared = gw.prepare(
        NewObject {
            bucket: u.bucket.clone(),
            key: u.key.clone(),
            content_type: u.content_type.clone(),
            http_headers: u.http_headers.clone(),
            custom_attributes: u.custom_attributes.clone(),
            tags: u.tags.clone(),
        },
        &who,
        &upload_algorithm(&u).into_iter().collect::<Vec<_>>(),
        gw.backend(&access.element)?,
    )?;
    prepared.rec.part_sizes = PartRun::encode(chosen.iter().map(|p| p.size));
    let slices: Vec<_> = chosen
        .iter()
        .map(|p| PartSlice {
            part_number: u32::try_from(p.part_number).unwrap_or_default(),
            start: 0,
            len: u64::try_from(p.size).unwrap_or_default(),
        })
        .collect();
    let (backend, name) = Gateway::target(&prepared);
    let backend = backend.clone();
    let staged = backend
        .assemble(name, &u.upload_id, &slices)
        .await
        .map_err(errors::backend)?;
    let (if_match, if_none_match) = (i.if_match.clone(), i.if_none_match.clone());
    let parts_count = i64::try_from(chosen.len()).unwrap_or_default();
    let rec = gw
        .commit(
            prepared,
            staged,
            Finish {
                etag,
                checksums,
                parts_count: Some(parts_count),
                completes_upload: Some(&u.upload_id),
            },
            |view| {
                access.check_committed(Action::PutObject, &u.key, view)?;
                conditional::check_write(
                    if_match.as_ref(),
                    if_none_match.as_ref(),
                    view.current.map(|c| c.etag.as_str()),
                )
            },
        )
        .await?;
    if let Err(e) = backend.remove_upload(&u.upload_id).await {
        tracing::warn!(upload_id = %u.upload_id, error = %e, "cannot remove completed upload's parts");
    }
    Ok(S3Response::new(completed_output(&rec)))
}

fn completed_output(rec: &artstore_metadata::ObjectRecord) -> CompleteMultipartUploadOutput {
    let mut out = CompleteMultipartUploadOutput {
        bucket: Some(rec.bucket.clone()),
        key: Some(rec.key.clone()),
        e_tag: Some(ETag::Strong(rec.etag.clone())),
        location: Some(format!("/{}/{}", rec.bucket, rec.key)),
        checksum_type: checksum_type_of(&rec.checksums),
        ..Default::default()
    };
    fill_checksums!(out, &rec.checksums);
    out
}

/// A Complete for an upload that is gone: a retry of a Complete that succeeded answers as
/// that one did, while the object it made is still the one at the key (AWS and Ceph do the
/// same; SDKs retry on time-outs). Anything else is NoSuchUpload.
async fn completed_before(
    gw: &Gateway,
    access: &Access,
    i: &CompleteMultipartUploadInput,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    // Only a caller who may write this key learns what became of the upload.
    access.check_key(Action::PutObject, &i.key, None)?;
    let Some(done) = gw
        .store
        .completed_upload(&i.upload_id)
        .await
        .map_err(errors::meta)?
        .filter(|c| c.bucket == i.bucket && c.key == i.key)
    else {
        return Err(no_such_upload());
    };
    match gw
        .store
        .get_object(&i.bucket, &i.key)
        .await
        .map_err(errors::meta)?
    {
        Some(rec) if rec.file_id == done.file_id => Ok(S3Response::new(completed_output(&rec))),
        _ => Err(no_such_upload()),
    }
}

pub(crate) async fn abort(
    gw: &Gateway,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let i = &req.input;
    gw.access(&req, &i.bucket)
        .await?
        .check_existing(Action::AbortMultipartUpload, &i.key)?;
    let u = upload(gw, &i.bucket, &i.key, &i.upload_id).await?;
    if !discard(&gw.store, &gw.backends, &u.bucket, &u.upload_id, None).await? {
        return Err(no_such_upload());
    }
    let mut resp = S3Response::new(AbortMultipartUploadOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn list_parts(
    gw: &Gateway,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let who = identity(&req)?;
    let i = &req.input;
    gw.access(&req, &i.bucket)
        .await?
        .check_existing(Action::ListMultipartUploadParts, &i.key)?;
    let u = upload(gw, &i.bucket, &i.key, &i.upload_id).await?;
    let max = i.max_parts.unwrap_or(1000).clamp(0, 1000);
    let marker = i.part_number_marker.unwrap_or(0);
    let mut parts = gw
        .store
        .list_parts(&u.upload_id, i64::from(marker), i64::from(max) + 1)
        .await
        .map_err(errors::meta)?;
    let truncated = parts.len() > usize::try_from(max).unwrap_or_default();
    parts.truncate(usize::try_from(max).unwrap_or_default());
    let next = parts
        .last()
        .and_then(|p| i32::try_from(p.part_number).ok())
        .filter(|_| truncated);
    let parts = parts
        .into_iter()
        .map(|p| {
            let mut out = s3s::dto::Part {
                e_tag: Some(ETag::Strong(p.etag.clone())),
                last_modified: Some(timestamp(p.created_ms)),
                part_number: i32::try_from(p.part_number).ok(),
                size: Some(p.size),
                ..Default::default()
            };
            fill_checksums!(out, &p.checksums);
            out
        })
        .collect();
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(u.bucket.clone()),
        key: Some(u.key.clone()),
        upload_id: Some(u.upload_id.clone()),
        max_parts: Some(max),
        part_number_marker: i.part_number_marker,
        next_part_number_marker: next,
        is_truncated: Some(truncated),
        parts: Some(parts),
        owner: Some(owner(&who)),
        initiator: Some(Initiator {
            display_name: Some(u.owner_name.clone()),
            id: Some(u.owner_id.clone()),
        }),
        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
        checksum_algorithm: u.checksum_algorithm.clone().map(ChecksumAlgorithm::from),
        checksum_type: u.checksum_type.clone().map(ChecksumType::from),
        ..Default::default()
    }))
}

pub(crate) async fn list_uploads(
    gw: &Gateway,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let i = &req.input;
    gw.access(&req, &i.bucket)
        .await?
        .check_bucket(Action::ListBucketMultipartUploads)?;
    let max = usize::try_from(i.max_uploads.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
    let prefix = i.prefix.clone().unwrap_or_default();
    let delimiter = i.delimiter.as_deref().filter(|d| !d.is_empty());
    let mut key_marker = i.key_marker.clone().unwrap_or_default();
    let mut id_marker = i.upload_id_marker.clone().unwrap_or_default();
    let mut uploads = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut truncated = false;
    const BATCH: i64 = 1000;
    'pages: loop {
        let batch = gw
            .store
            .list_uploads(&i.bucket, &prefix, &key_marker, &id_marker, BATCH)
            .await
            .map_err(errors::meta)?;
        let full = i64::try_from(batch.len()).unwrap_or(BATCH) == BATCH;
        for u in batch {
            let folded = delimiter.and_then(|d| {
                u.key[prefix.len()..]
                    .find(d)
                    .map(|at| u.key[..prefix.len() + at + d.len()].to_owned())
            });
            if let Some(cp) = &folded
                && prefixes.last() == Some(cp)
            {
                key_marker.clone_from(&u.key);
                id_marker.clone_from(&u.upload_id);
                continue;
            }
            if uploads.len() + prefixes.len() == max {
                truncated = true;
                break 'pages;
            }
            key_marker.clone_from(&u.key);
            id_marker.clone_from(&u.upload_id);
            match folded {
                Some(cp) => prefixes.push(cp),
                None => uploads.push(u),
            }
        }
        if !full {
            break;
        }
    }
    let (next_key, next_id) = if truncated {
        (Some(key_marker), Some(id_marker))
    } else {
        (None, None)
    };
    let list = uploads
        .into_iter()
        .map(|u| MultipartUpload {
            key: Some(u.key),
            upload_id: Some(u.upload_id),
            initiated: Some(timestamp(u.created_ms)),
            initiator: Some(Initiator {
                display_name: Some(u.owner_name.clone()),
                id: Some(u.owner_id.clone()),
            }),
            owner: Some(Owner {
                display_name: Some(u.owner_name),
                id: Some(u.owner_id),
            }),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            checksum_algorithm: u.checksum_algorithm.map(ChecksumAlgorithm::from),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(i.bucket.clone()),
        prefix: i.prefix.clone(),
        delimiter: delimiter.map(str::to_owned),
        key_marker: i.key_marker.clone(),
        upload_id_marker: i.upload_id_marker.clone(),
        max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(truncated),
        next_key_marker: next_key,
        next_upload_id_marker: next_id,
        uploads: Some(list),
        common_prefixes: Some(
            prefixes
                .into_iter()
                .map(|p| CommonPrefix { prefix: Some(p) })
                .collect(),
        ),
        encoding_type: i.encoding_type.clone(),
        ..Default::default()
    }))
}
