//! Bucket policies: GetBucketPolicy (the document as stored), PutBucketPolicy (validated by
//! the policy engine first), DeleteBucketPolicy. The effective policy, with the mode's Deny
//! statements, is served by the admin API.

use artstore_policy::Policy;
use s3s::dto::*;
use s3s::{S3Error, S3Request, S3Response, S3Result, s3_error};

use super::{Gateway, errors};
use crate::policy::Action;

pub(crate) async fn get_bucket_policy(
    gw: &Gateway,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let bucket = &req.input.bucket;
    let access = gw.access(&req, bucket).await?;
    access.check_bucket(Action::GetBucketPolicy)?;
    let Some(doc) = access.stored else {
        return Err(s3_error!(
            NoSuchBucketPolicy,
            "The bucket policy does not exist"
        ));
    };
    Ok(S3Response::new(GetBucketPolicyOutput { policy: Some(doc) }))
}

pub(crate) async fn put_bucket_policy(
    gw: &Gateway,
    req: S3Request<PutBucketPolicyInput>,
) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let i = &req.input;
    let access = gw.access(&req, &i.bucket).await?;
    access.check_bucket(Action::PutBucketPolicy)?;
    Policy::parse(&i.bucket, &i.policy)
        .map_err(|e| S3Error::with_message(s3s::S3ErrorCode::MalformedPolicy, e.to_string()))?;
    gw.store
        .put_bucket_policy(&i.bucket, &i.policy, &access.principal.identity.name)
        .await
        .map_err(errors::meta)?;
    let mut resp = S3Response::new(PutBucketPolicyOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn delete_bucket_policy(
    gw: &Gateway,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    let bucket = &req.input.bucket;
    let access = gw.access(&req, bucket).await?;
    access.check_bucket(Action::DeleteBucketPolicy)?;
    gw.store
        .delete_bucket_policy(bucket)
        .await
        .map_err(errors::meta)?;
    let mut resp = S3Response::new(DeleteBucketPolicyOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}
