//! PutObject, GetObject, HeadObject, DeleteObject(s), and the object-level stubs.

use artstore_backends::BackendError;
use artstore_metadata::{DeleteIf, MetaError, ObjectRecord};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::checksum::{Declared, checksum_type_of, fill_checksums};
use super::conditional::{self, Conditions, Outcome};
use super::damage::{Known, corrupted, refuse_damaged, split};
use super::record::{
    StdHeaders, check_key, content_type_or_default, parse_http_date, timestamp, to_metadata,
    user_metadata,
};
use super::restore::{readable_if_restored, restore_header, restore_status_headers};
use super::unsized_body::declared_length;
use super::write::{Finish, NewObject};
use super::{Access, Gateway, errors, identity, owner};
use crate::policy::Action;

/// Fields GetObject and HeadObject share, with the `response-*` overrides of presigned URLs.
macro_rules! fill_common {
    ($out:expr, $rec:expr, $input:expr) => {{
        let rec: &ObjectRecord = $rec;
        let h = &rec.http_headers;
        $out.e_tag = Some(ETag::Strong(rec.etag.clone()));
        $out.last_modified = Some(timestamp(rec.updated_ms));
        $out.content_type = Some(
            $input
                .response_content_type
                .clone()
                .unwrap_or_else(|| rec.content_type.clone()),
        );
        $out.metadata = to_metadata(&rec.custom_attributes);
        $out.cache_control = $input
            .response_cache_control
            .clone()
            .or_else(|| h.get("cache-control").cloned());
        $out.content_disposition = $input
            .response_content_disposition
            .clone()
            .or_else(|| h.get("content-disposition").cloned());
        $out.content_encoding = $input
            .response_content_encoding
            .clone()
            .or_else(|| h.get("content-encoding").cloned());
        $out.content_language = $input
            .response_content_language
            .clone()
            .or_else(|| h.get("content-language").cloned());
        $out.expires = $input
            .response_expires
            .clone()
            .or_else(|| h.get("expires").and_then(|e| parse_http_date(e)));
        $out.parts_count = rec.parts_count.and_then(|n| i32::try_from(n).ok());
        $out.restore = restore_header(rec, artstore_metadata::now_ms());
    }};
}

/// Canned ACLs that mean "owner only", the only kind ArtStore has.
pub(crate) fn check_acl(acl: Option<&str>) -> S3Result<()> {
    match acl {
        None | Some("private" | "bucket-owner-full-control") => Ok(()),
        Some(other) => Err(s3_error!(
            AccessControlListNotSupported,
            "The bucket does not allow ACLs: canned ACL '{other}' cannot be applied"
        )),
    }
}

pub(crate) fn empty_body() -> StreamingBlob {
    StreamingBlob::wrap(futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>())
}

pub(crate) async fn put_object(
    gw: &Gateway,
    mut req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let who = identity(&req)?;
    let access = gw.access(&req, &req.input.bucket).await?;
    let declared_length = declared_length(&req, req.input.content_length);
    let input = &mut req.input;
    check_key(&input.key)?;
    check_acl(input.acl.as_ref().map(|a| a.as_str()))?;
    let declared = Declared::from_headers(&req.headers)?;
    let new = NewObject {
        bucket: input.bucket.clone(),
        key: input.key.clone(),
        content_type: content_type_or_default(input.content_type.as_ref()),
        http_headers: StdHeaders {
            cache_control: input.cache_control.as_ref(),
            content_disposition: input.content_disposition.as_ref(),
            content_encoding: input.content_encoding.as_ref(),
            content_language: input.content_language.as_ref(),
            expires: input.expires.as_ref(),
        }
        .to_map(),
        custom_attributes: user_metadata(input.metadata.as_ref())?,
        tags: super::tagging::from_header(input.tagging.as_ref())?,
    };
    // Fail fast on a failed precondition before reading the body; checked again at commit.
    let current = gw
        .store
        .get_object(&new.bucket, &new.key)
        .await
        .map_err(errors::meta)?;
    access.check_key(Action::PutObject, &new.key, current.as_ref())?;
    // An overwrite frees the old object's bytes in the same commit.
    access
        .check_quota(declared_length.map(|l| l - current.as_ref().map_or(0, |c| c.size)))
        .await?;
    conditional::check_write(
        input.if_match.as_ref(),
        input.if_none_match.as_ref(),
        current.as_ref().map(|c| c.etag.as_str()),
    )?;
    let prepared = gw.prepare(
        new,
        &who,
        &declared.algorithms,
        gw.backend(&access.element)?,
    )?;
    let body = input.body.take().unwrap_or_else(empty_body);
    let staged = gw.stage(&prepared, body, &declared).await?;
    let trailers = req.trailing_headers.as_ref().and_then(|t| t.take());
    let checksums = declared.verify(&staged.digests, trailers)?;
    if let Some(len) = declared_length
        && u64::try_from(len).ok() != Some(staged.digests.size)
    {
        return Err(errors::body("length mismatch"));
    }
    let etag = staged.digests.md5_hex();
    let (if_match, if_none_match) = (input.if_match.clone(), input.if_none_match.clone());
    let key = input.key.clone();
    let rec = gw
        .commit(
            prepared,
            staged,
            Finish {
                etag,
                checksums,
                parts_count: None,
                completes_upload: None,
            },
            |view| {
                // Decided again at commit: the key may have appeared since (rw forbids
                // overwrites), or changed under an If-Match.
                access.check_committed(Action::PutObject, &key, view)?;
                conditional::check_write(
                    if_match.as_ref(),
                    if_none_match.as_ref(),
                    view.current.map(|c| c.etag.as_str()),
                )
            },
        )
        .await?;
    let mut out = PutObjectOutput {
        e_tag: Some(ETag::Strong(rec.etag.clone())),
        size: Some(rec.size),
        ..Default::default()
    };
    fill_checksums!(out, &rec.checksums);
    Ok(S3Response::new(out))
}

/// The object at `bucket/key`, after the evaluator allowed `action` on it (as it is stored:
/// conditions may name its tags).
async fn find<T>(
    gw: &Gateway,
    req: &S3Request<T>,
    action: Action,
    bucket: &str,
    key: &str,
) -> S3Result<(ObjectRecord, Option<Known>)> {
    let access = gw.access(req, bucket).await?;
    let (rec, known) = split(
        gw.store
            .get_object_marked(bucket, key)
            .await
            .map_err(errors::meta)?,
    );
    access.check_key(action, key, rec.as_ref())?;
    Ok((rec.ok_or_else(no_such_key)?, known))
}

fn no_such_key() -> s3s::S3Error {
    s3_error!(NoSuchKey, "The specified key does not exist.")
}

pub(crate) async fn lookup(gw: &Gateway, bucket: &str, key: &str) -> S3Result<ObjectRecord> {
    gw.store
        .get_object(bucket, key)
        .await
        .map_err(errors::meta)?
        .ok_or_else(no_such_key)
}

/// 304 or 412 as the validators demand.
fn preconditions(c: &Conditions<'_>, rec: &ObjectRecord) -> S3Result<()> {
    match conditional::evaluate(c, &rec.etag, rec.updated_ms)? {
        Outcome::Proceed => Ok(()),
        Outcome::NotModified => {
            let mut e = s3s::S3Error::new(s3s::S3ErrorCode::NotModified);
            let mut h = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", rec.etag)) {
                h.insert(http::header::ETAG, v);
            }
            e.set_headers(h);
            Err(e)
        }
    }
}

fn checksum_mode_enabled(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case("ENABLED"))
}

pub(crate) async fn get_object(
    gw: &Gateway,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let input = &req.input;
    let access = gw.access(&req, &input.bucket).await?;
    let (current, known) = split(
        gw.store
            .get_object_marked(&input.bucket, &input.key)
            .await
            .map_err(errors::meta)?,
    );
    let mut rec = match access.check_key(Action::GetObject, &input.key, current.as_ref()) {
        Ok(()) => current.ok_or_else(no_such_key)?,
        // Archived: readable only through a completed restore (and a missing key is NoSuchKey).
        Err(denied) if *denied.code() == s3s::S3ErrorCode::InvalidObjectState => {
            readable_if_restored(gw, &access, &input.bucket, &input.key, denied).await?
        }
        Err(e) => return Err(e),
    };
    let backend = gw.backend(&access.element)?;
    let (stream, range) = loop {
        refuse_damaged(gw, &rec, known.as_ref()).await?;
        preconditions(
            &Conditions {
                if_match: input.if_match.as_ref(),
                if_none_match: input.if_none_match.as_ref(),
                if_modified_since: input.if_modified_since.as_ref(),
                if_unmodified_since: input.if_unmodified_since.as_ref(),
            },
            &rec,
        )?;
        let range = read_range(input, &rec)?;
        let (start, len) = range
            .as_ref()
            .map_or((0, size_of(&rec)), |r| (r.start, r.end - r.start));
        match backend
            .open_object_range(&rec.storage_path, size_of(&rec), start, len)
            .await
        {
            Ok(s) => break (s, range),
            // An overwrite or delete committed between the index read and the open: the
            // row has moved on, so read it again. Once open, the file stays readable.
            Err(BackendError::NotFound(_)) => {
                let now = lookup(gw, &input.bucket, &input.key).await?;
                if now.file_id == rec.file_id {
                    tracing::error!(bucket = %rec.bucket, key = %rec.key, file_id = %rec.file_id, path = %rec.storage_path, "indexed object's data file is missing");
                    return Err(corrupted(&rec, "the data file is missing"));
                }
                rec = now;
            }
            // Data files are never rewritten in place: another size is damage, not a race.
            Err(BackendError::SizeMismatch {
                path,
                expected,
                actual,
            }) => {
                tracing::error!(bucket = %rec.bucket, key = %rec.key, file_id = %rec.file_id, %path, expected, actual, "indexed object's data file has the wrong size");
                let what = format!("the data file is {actual} bytes, the object has {expected}");
                return Err(corrupted(&rec, &what));
            }
            Err(e) => return Err(errors::backend(e)),
        }
    };
    let size = size_of(&rec);
    let len = range.as_ref().map_or(size, |r| r.end - r.start);
    let mut out = GetObjectOutput {
        body: Some(StreamingBlob::wrap(stream)),
        content_length: Some(i64::try_from(len).unwrap_or_default()),
        accept_ranges: Some("bytes".into()),
        ..Default::default()
    };
    if let Some(r) = &range {
        out.content_range = Some(format!("bytes {}-{}/{}", r.start, r.end - 1, size));
    }
    fill_common!(out, &rec, input);
    if range.is_none() && checksum_mode_enabled(input.checksum_mode.as_ref()) {
        fill_checksums!(out, &rec.checksums);
        out.checksum_type = checksum_type_of(&rec.checksums);
    }
    let mut headers = restore_status_headers(&rec, artstore_metadata::now_ms());
    super::tagging::count_header(&rec, &mut headers);
    Ok(S3Response::with_headers(out, headers))
}

fn size_of(rec: &ObjectRecord) -> u64 {
    u64::try_from(rec.size).unwrap_or_default()
}

/// The byte range a GET asks for (`Range` or `partNumber`), `None` for the whole object.
fn read_range(
    input: &GetObjectInput,
    rec: &ObjectRecord,
) -> S3Result<Option<std::ops::Range<u64>>> {
    let size = size_of(rec);
    Ok(match (&input.range, input.part_number) {
        (Some(_), Some(_)) => {
            return Err(s3_error!(
                InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter"
            ));
        }
        (Some(r), None) => Some(
            r.check(size)
                .map_err(|_| s3_error!(InvalidRange, "The requested range is not satisfiable"))?,
        ),
        (None, None) => None,
        // An empty object's part 1 is the whole (empty) object, not a range.
        (None, Some(n)) => Some(part_range(rec, n)?).filter(|r| !r.is_empty()),
    })
}

/// The bytes of part `n`: a single-part object is its own part 1.
fn part_range(rec: &ObjectRecord, n: i32) -> S3Result<std::ops::Range<u64>> {
    let size = size_of(rec);
    if n < 1 {
        return Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        ));
    }
    let located = match rec.parts_count {
        None => (n == 1).then_some((0, size)),
        Some(_) if rec.part_sizes.is_empty() => {
            // A multipart object indexed before part sizes were kept.
            return Err(s3_error!(
                NotImplemented,
                "the part sizes of this object are not recorded; read it by byte range"
            ));
        }
        Some(_) => {
            artstore_metadata::PartRun::locate(&rec.part_sizes, i64::from(n)).map(|(start, len)| {
                (
                    u64::try_from(start).unwrap_or_default(),
                    u64::try_from(len).unwrap_or_default(),
                )
            })
        }
    };
    match located {
        Some((start, len)) => Ok(start..start + len),
        None => {
            let mut e = s3s::S3Error::with_message(
                s3s::S3ErrorCode::Custom("InvalidPartNumber".into()),
                format!("The requested partnumber is not satisfiable: the object has no part {n}"),
            );
            e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
            Err(e)
        }
    }
}

pub(crate) async fn head_object(
    gw: &Gateway,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = &req.input;
    let (rec, known) = find(gw, &req, Action::HeadObject, &input.bucket, &input.key).await?;
    refuse_damaged(gw, &rec, known.as_ref()).await?;
    preconditions(
        &Conditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        },
        &rec,
    )?;
    let part = input
        .part_number
        .map(|n| part_range(&rec, n))
        .transpose()?
        .filter(|r| !r.is_empty());
    let mut out = HeadObjectOutput {
        content_length: Some(rec.size),
        accept_ranges: Some("bytes".into()),
        ..Default::default()
    };
    fill_common!(out, &rec, input);
    if let Some(r) = &part {
        out.content_length = i64::try_from(r.end - r.start).ok();
        out.content_range = Some(format!(
            "bytes {}-{}/{}",
            r.start,
            r.end.saturating_sub(1),
            rec.size
        ));
    } else if checksum_mode_enabled(input.checksum_mode.as_ref()) {
        fill_checksums!(out, &rec.checksums);
        out.checksum_type = checksum_type_of(&rec.checksums);
    }
    let mut headers = restore_status_headers(&rec, artstore_metadata::now_ms());
    super::tagging::count_header(&rec, &mut headers);
    let mut resp = S3Response::with_headers(out, headers);
    if part.is_some() {
        resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
    }
    Ok(resp)
}

/// Deletes one key; absent keys are not an error (S3 semantics) unless `cond` asks for an
/// object. `cond` is decided in the index transaction that deletes. Returns whether it existed.
pub(crate) async fn delete_one(
    gw: &Gateway,
    access: &Access,
    bucket: &str,
    key: &str,
    cond: &DeleteIf,
) -> S3Result<bool> {
    access.check_existing(Action::DeleteObject, key)?;
    let old = match gw.store.delete_object_if(bucket, key, cond).await {
        Ok(old) => old,
        Err(MetaError::NotFound(_)) => {
            return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
        }
        Err(MetaError::PreconditionFailed(_)) => {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
        Err(e) => return Err(errors::meta(e)),
    };
    match old {
        Some(old) => {
            crate::failpoint::crash_point(crate::failpoint::DELETE_COMMITTED);
            gw.remove_obsolete(&old).await;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// A delete's conditions: `If-Match`, `x-amz-if-match-last-modified-time`, `x-amz-if-match-size`
/// (or the `ETag`, `LastModifiedTime`, `Size` of a DeleteObjects entry).
fn delete_if(
    etag: Option<&ETagCondition>,
    modified: Option<&Timestamp>,
    size: Option<i64>,
) -> DeleteIf {
    DeleteIf {
        etag: etag.map(|c| match c {
            ETagCondition::Any => "*".to_owned(),
            ETagCondition::ETag(t) => t.value().trim_matches('"').to_owned(),
        }),
        modified_secs: modified.map(|t| time::OffsetDateTime::from(t.clone()).unix_timestamp()),
        size,
    }
}

pub(crate) async fn delete_object(
    gw: &Gateway,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let input = &req.input;
    let access = gw.access(&req, &input.bucket).await?;
    let cond = delete_if(
        input.if_match.as_ref(),
        input.if_match_last_modified_time.as_ref(),
        input.if_match_size,
    );
    delete_one(gw, &access, &input.bucket, &input.key, &cond).await?;
    let mut resp = S3Response::new(DeleteObjectOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn delete_objects(
    gw: &Gateway,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let input = &req.input;
    // Denials are per key, in the result (S3 semantics), so no up-front check here.
    let access = gw.access(&req, &input.bucket).await?;
    let objects = &input.delete.objects;
    if objects.len() > 1000 {
        return Err(s3_error!(
            MalformedXML,
            "DeleteObjects accepts at most 1000 keys"
        ));
    }
    let quiet = input.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for o in objects {
        let etag = o.e_tag.clone().map(ETagCondition::ETag);
        let cond = delete_if(etag.as_ref(), o.last_modified_time.as_ref(), o.size);
        let result = match o.version_id.as_deref() {
            // Unversioned: no other version exists, and the current one was not named.
            Some(v) if v != "null" => Err(super::unhonoured::no_such_version()),
            _ => delete_one(gw, &access, &input.bucket, &o.key, &cond).await,
        };
        match result {
            Ok(_) => {
                if !quiet {
                    deleted.push(DeletedObject {
                        key: Some(o.key.clone()),
                        ..Default::default()
                    });
                }
            }
            Err(e) => failed.push(Error {
                code: Some(e.code().as_str().to_owned()),
                key: Some(o.key.clone()),
                message: e.message().map(str::to_owned),
                version_id: None,
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!failed.is_empty()).then_some(failed),
        ..Default::default()
    }))
}

pub(crate) fn owner_full_control(who: &artstore_metadata::Identity) -> Vec<Grant> {
    vec![Grant {
        grantee: Some(Grantee {
            display_name: Some(who.name.clone()),
            email_address: None,
            id: Some(who.account_id.clone()),
            type_: Type::from_static(Type::CANONICAL_USER),
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    }]
}

pub(crate) async fn get_object_acl(
    gw: &Gateway,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let who = identity(&req)?;
    find(
        gw,
        &req,
        Action::GetObjectAcl,
        &req.input.bucket,
        &req.input.key,
    )
    .await?;
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(owner_full_control(&who)),
        owner: Some(owner(&who)),
        ..Default::default()
    }))
}
