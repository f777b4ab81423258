//! Buckets as storage elements: create, list, head, delete, location, and bucket-level stubs.

use artstore_metadata::{MetaError, Mode, NewElement};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::object::owner_full_control;
use super::record::timestamp;
use super::{Gateway, errors, identity, owner};
use crate::policy::Action;

fn element_json(name: &str, mode: Mode, created_by: &str) -> Vec<u8> {
    let doc = serde_json::json!({
        "name": name,
        "mode": mode.as_str(),
        "description": null,
        "created": super::record::timestamp(artstore_metadata::now_ms()).to_string_rfc3339(),
        "created_by": created_by,
        "last_mode_change": null,
    });
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
}

trait Rfc3339 {
    fn to_string_rfc3339(&self) -> String;
}

impl Rfc3339 for Timestamp {
    fn to_string_rfc3339(&self) -> String {
        let mut buf = Vec::new();
        let _ = self.format(TimestampFormat::DateTime, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// Largest page of ListBuckets (AWS's limit on `max-buckets`).
const MAX_BUCKETS: i32 = 10_000;

pub(crate) async fn list_buckets(
    gw: &Gateway,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let principal = gw.principal(&req).await?;
    let i = &req.input;
    let max = match i.max_buckets {
        None => MAX_BUCKETS,
        Some(n) if (1..=MAX_BUCKETS).contains(&n) => n,
        Some(n) => {
            return Err(s3_error!(
                InvalidArgument,
                "max-buckets must be between 1 and 10000, not {n}"
            ));
        }
    };
    let prefix = i.prefix.clone().unwrap_or_default();
    // The token is the last name of the previous page: names are unique and sorted.
    let after = i.continuation_token.clone().unwrap_or_default();
    let mut all = gw.store.list_elements().await.map_err(errors::meta)?;
    // Byte order, whatever the database's collation: the token compares by bytes.
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let mut visible = all.into_iter().filter(|e| {
        e.name.starts_with(&prefix)
            && e.name.as_str() > after.as_str()
            && principal.can_see(&e.name)
    });
    let page: Vec<_> = visible
        .by_ref()
        .take(usize::try_from(max).unwrap_or(usize::MAX))
        .collect();
    let next = visible.next().and(page.last().map(|e| e.name.clone()));
    let buckets = page
        .into_iter()
        .map(|e| Bucket {
            name: Some(e.name),
            creation_date: Some(timestamp(e.created_ms)),
            bucket_region: Some(gw.region.clone()),
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(owner(&principal.identity)),
        prefix: i.prefix.clone(),
        continuation_token: next,
    }))
}

pub(crate) async fn create_bucket(
    gw: &Gateway,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let principal = gw.principal(&req).await?;
    crate::policy::may_create_bucket(&principal)?;
    let who = principal.identity;
    let bucket = &req.input.bucket;
    if let Some(loc) = req
        .input
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
        && !loc.as_str().is_empty()
        && loc.as_str() != gw.region
    {
        return Err(s3_error!(
            InvalidLocationConstraint,
            "this endpoint serves region '{}', not '{}'",
            gw.region,
            loc.as_str()
        ));
    }
    // Directory buckets and Local Zones: nothing ArtStore has.
    if let Some(c) = &req.input.create_bucket_configuration
        && (c.bucket.is_some() || c.location.is_some())
    {
        return Err(s3_error!(
            NotImplemented,
            "CreateBucket: CreateBucketConfiguration Bucket/Location (directory buckets) is not implemented"
        ));
    }
    if let Some(acl) = &req.input.acl
        && acl.as_str() != "private"
    {
        return Err(s3_error!(
            AccessControlListNotSupported,
            "The bucket does not allow ACLs: canned ACL '{}' cannot be applied",
            acl.as_str()
        ));
    }
    let location = Some(format!("/{bucket}"));
    // Re-creating a bucket that exists answers 200, as AWS does in us-east-1.
    if gw
        .store
        .get_element(bucket)
        .await
        .map_err(errors::meta)?
        .is_some()
    {
        return Ok(S3Response::new(CreateBucketOutput { location }));
    }
    let stored = gw
        .backends
        .prepare(bucket, &gw.backends.default_config())
        .map_err(errors::backend)?;
    gw.backends
        .create(
            bucket,
            &stored,
            &element_json(bucket, Mode::Edit, &who.name),
        )
        .await
        .map_err(errors::backend)?;
    let res = gw
        .store
        .create_element(&NewElement {
            name: bucket.clone(),
            mode: Mode::Edit,
            backend: stored,
            capacity_bytes: None,
            description: None,
            created_by: who.name.clone(),
        })
        .await;
    match res {
        Ok(_) | Err(MetaError::AlreadyExists(_)) => {}
        Err(e) => return Err(errors::meta(e)),
    }
    Ok(S3Response::new(CreateBucketOutput { location }))
}

pub(crate) async fn head_bucket(
    gw: &Gateway,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    gw.access(&req, &req.input.bucket)
        .await?
        .check_bucket(Action::ListBucket)?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(gw.region.clone()),
        ..Default::default()
    }))
}

pub(crate) async fn delete_bucket(
    gw: &Gateway,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let bucket = &req.input.bucket;
    let access = gw.access(&req, bucket).await?;
    access.check_bucket(Action::DeleteBucket)?;
    match gw.store.delete_element(bucket).await {
        Ok(()) => {}
        Err(MetaError::NotEmpty(_)) => {
            return Err(s3_error!(
                BucketNotEmpty,
                "The bucket you tried to delete is not empty"
            ));
        }
        Err(MetaError::NotFound(_)) => {
            return Err(s3_error!(
                NoSuchBucket,
                "The specified bucket does not exist"
            ));
        }
        Err(e) => return Err(errors::meta(e)),
    }
    if let Err(e) = gw.backends.remove(bucket, &access.element.backend).await {
        tracing::warn!(bucket = %bucket, error = %e, "bucket removed from the index but its storage remains");
    }
    let mut resp = S3Response::new(DeleteBucketOutput {});
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn get_bucket_location(
    gw: &Gateway,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    gw.access(&req, &req.input.bucket)
        .await?
        .check_bucket(Action::GetBucketLocation)?;
    // us-east-1 is reported as an empty constraint, as AWS does.
    let location_constraint =
        (gw.region != "us-east-1").then(|| BucketLocationConstraint::from(gw.region.clone()));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint,
    }))
}

pub(crate) async fn get_bucket_versioning(
    gw: &Gateway,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    gw.access(&req, &req.input.bucket)
        .await?
        .check_bucket(Action::GetBucketVersioning)?;
    Ok(S3Response::new(GetBucketVersioningOutput::default()))
}

pub(crate) async fn get_bucket_acl(
    gw: &Gateway,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let who = identity(&req)?;
    gw.access(&req, &req.input.bucket)
        .await?
        .check_bucket(Action::GetBucketAcl)?;
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(owner_full_control(&who)),
        owner: Some(owner(&who)),
    }))
}

pub(crate) async fn get_bucket_cors(
    gw: &Gateway,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    gw.access(&req, &req.input.bucket)
        .await?
        .check_bucket(Action::GetBucketCors)?;
    Err(s3_error!(
        NoSuchCORSConfiguration,
        "The CORS configuration does not exist"
    ))
}
