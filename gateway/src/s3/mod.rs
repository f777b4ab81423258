//! The S3 protocol over ArtStore's index and backends, one file per S3 area.

mod bucket;
mod checksum;
mod conditional;
mod control;
mod copy;
mod errors;
mod list;
mod multipart;
mod object;
mod record;
mod write;

pub use control::verify_control_body;

use artstore_backends::LocalFs;
use artstore_metadata::{Element, Identity, Store};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

/// The S3 service: cheap to share, all state is in the index and on the backend.
pub struct Gateway {
    pub(crate) store: Store,
    pub(crate) fs: LocalFs,
    pub(crate) region: String,
}

impl Gateway {
    pub fn new(store: Store, fs: LocalFs, region: String) -> Self {
        Gateway { store, fs, region }
    }

    pub(crate) async fn element(&self, bucket: &str) -> S3Result<Element> {
        self.store
            .get_element(bucket)
            .await
            .map_err(errors::meta)?
            .ok_or_else(|| s3_error!(NoSuchBucket, "The specified bucket does not exist"))
    }
}

/// The caller, as established by the access check (SigV4 or bearer token).
pub(crate) fn identity<T>(req: &S3Request<T>) -> S3Result<Identity> {
    req.extensions
        .get::<Identity>()
        .cloned()
        .ok_or_else(|| s3_error!(AccessDenied, "anonymous access is not allowed"))
}

pub(crate) fn owner(id: &Identity) -> Owner {
    Owner {
        display_name: Some(id.name.clone()),
        id: Some(id.account_id.clone()),
    }
}

type R<T> = S3Result<S3Response<T>>;

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> R<ListBucketsOutput> {
        bucket::list_buckets(self, req).await
    }
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> R<CreateBucketOutput> {
        bucket::create_bucket(self, req).await
    }
    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> R<HeadBucketOutput> {
        bucket::head_bucket(self, req).await
    }
    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> R<DeleteBucketOutput> {
        bucket::delete_bucket(self, req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> R<GetBucketLocationOutput> {
        bucket::get_bucket_location(self, req).await
    }
    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> R<GetBucketVersioningOutput> {
        bucket::get_bucket_versioning(self, req).await
    }
    async fn get_bucket_acl(&self, req: S3Request<GetBucketAclInput>) -> R<GetBucketAclOutput> {
        bucket::get_bucket_acl(self, req).await
    }
    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> R<GetBucketPolicyOutput> {
        bucket::get_bucket_policy(self, req).await
    }
    async fn get_bucket_cors(&self, req: S3Request<GetBucketCorsInput>) -> R<GetBucketCorsOutput> {
        bucket::get_bucket_cors(self, req).await
    }
    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> R<GetBucketTaggingOutput> {
        bucket::get_bucket_tagging(self, req).await
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> R<PutObjectOutput> {
        object::put_object(self, req).await
    }
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> R<GetObjectOutput> {
        object::get_object(self, req).await
    }
    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> R<HeadObjectOutput> {
        object::head_object(self, req).await
    }
    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> R<DeleteObjectOutput> {
        object::delete_object(self, req).await
    }
    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> R<DeleteObjectsOutput> {
        object::delete_objects(self, req).await
    }
    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> R<GetObjectTaggingOutput> {
        object::get_object_tagging(self, req).await
    }
    async fn get_object_acl(&self, req: S3Request<GetObjectAclInput>) -> R<GetObjectAclOutput> {
        object::get_object_acl(self, req).await
    }
    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> R<CopyObjectOutput> {
        copy::copy_object(self, req).await
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> R<ListObjectsOutput> {
        list::list_objects(self, req).await
    }
    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> R<ListObjectsV2Output> {
        list::list_objects_v2(self, req).await
    }
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> R<ListObjectVersionsOutput> {
        list::list_object_versions(self, req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> R<CreateMultipartUploadOutput> {
        multipart::create(self, req).await
    }
    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> R<UploadPartOutput> {
        multipart::upload_part(self, req).await
    }
    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> R<UploadPartCopyOutput> {
        multipart::upload_part_copy(self, req).await
    }
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> R<CompleteMultipartUploadOutput> {
        multipart::complete(self, req).await
    }
    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> R<AbortMultipartUploadOutput> {
        multipart::abort(self, req).await
    }
    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> R<ListPartsOutput> {
        multipart::list_parts(self, req).await
    }
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> R<ListMultipartUploadsOutput> {
        multipart::list_uploads(self, req).await
    }
}
