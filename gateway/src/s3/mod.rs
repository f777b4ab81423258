//! The S3 protocol over ArtStore's index and backends, one file per S3 area.

mod attributes;
mod body;
mod bucket;
mod checksum;
mod conditional;
mod context;
mod copy;
pub(crate) mod damage;
mod element_settings;
pub(crate) mod errors;
mod lifecycle;
mod list;
mod multipart;
mod multipart_checksum;
mod object;
mod policy;
pub(crate) mod record;
mod restore;
mod tagging;
mod unhonoured;
mod unsized_body;
mod write;

pub use body::{BodyCheck, CheckedBody};
pub use context::ClientIp;
pub(crate) use multipart::discard as discard_upload;
pub use restore::{StatusOverride, apply_status};
pub use unhonoured::check_honoured;
pub use unsized_body::allow_unsized_body;

use artstore_admin::element_backend::LookupError;
use artstore_backends::{Backend, Backends};
use std::sync::Arc;

use artstore_metadata::{Element, Identity, ObjectRecord, Store};

use crate::policy::{Action, Context, Facts, Policy, PolicyCache, Principal};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

/// The S3 service: cheap to share, all state is in the index and on the backend.
pub struct Gateway {
    pub(crate) store: Store,
    pub(crate) backends: Backends,
    pub(crate) region: String,
    pub(crate) restorer: crate::restore_worker::Restorer,
    pub(crate) policies: PolicyCache,
}

impl Gateway {
    /// `restore_rate`: bytes per second a restore's verification may read (`None`/0: unlimited).
    pub fn new(
        store: Store,
        backends: Backends,
        region: String,
        restore_rate: Option<u64>,
    ) -> Self {
        let restorer = crate::restore_worker::Restorer::with_rate(
            store.clone(),
            backends.clone(),
            restore_rate,
        );
        Gateway {
            store,
            backends,
            region,
            restorer,
            policies: PolicyCache::default(),
        }
    }

    /// The caller, its grants, the element, its bucket policy and the request's condition
    /// keys: everything the policy evaluator needs for requests on `bucket`. Read through the
    /// node's cache, which every change invalidates (on every node within 1 s).
    pub(crate) async fn access<T>(&self, req: &S3Request<T>, bucket: &str) -> S3Result<Access> {
        let principal = self.principal(req).await?;
        self.access_as(principal, context::of(req), bucket).await
    }

    /// As `access`, for a caller and request already known (the source bucket of a copy).
    pub(crate) async fn access_as(
        &self,
        principal: Principal,
        context: Context,
        bucket: &str,
    ) -> S3Result<Access> {
        let (element, stored) = self
            .store
            .cached()
            .element_with_policy(bucket)
            .await
            .map_err(errors::meta)?
            .ok_or_else(|| s3_error!(NoSuchBucket, "The specified bucket does not exist"))?;
        let policy = self.policies.get(bucket, stored.as_deref());
        Ok(Access {
            element,
            principal,
            policy,
            stored,
            context,
            store: self.store.clone(),
        })
    }

    /// The backend holding the element's objects.
    pub(crate) fn backend(&self, el: &Element) -> S3Result<Arc<dyn Backend>> {
        self.backends
            .open(&el.name, &el.backend)
            .map_err(|e| match e {
                e @ (artstore_backends::BackendError::Unavailable(_)
                | artstore_backends::BackendError::Config(_)) => {
                    errors::backend_unavailable(&format!("storage element '{}'", el.name), &e)
                }
                e => errors::backend(e),
            })
    }

    /// The backend of an element known only by name (the one open, else from the index).
    pub(crate) async fn backend_named(&self, bucket: &str) -> S3Result<Arc<dyn Backend>> {
        artstore_admin::element_backend::of(&self.store, &self.backends, bucket)
            .await
            .map_err(|e| match e {
                LookupError::Index(m) => errors::meta(m),
                LookupError::Backend(b) => errors::backend(b),
            })
    }

    pub(crate) async fn principal<T>(&self, req: &S3Request<T>) -> S3Result<Principal> {
        let who = identity(req)?;
        let grants = self
            .store
            .cached()
            .grants_for(&who.account_id)
            .await
            .map_err(errors::meta)?;
        Ok(Principal::new(who, grants))
    }
}

/// One request's view for the policy evaluator; `check` may be asked again with fresh facts.
pub(crate) struct Access {
    pub element: Element,
    pub principal: Principal,
    pub policy: Arc<Policy>,
    /// The bucket policy document as stored.
    pub stored: Option<String>,
    pub context: Context,
    store: Store,
}

impl Access {
    pub(crate) fn check(&self, action: Action, facts: Facts<'_>) -> S3Result<()> {
        artstore_policy::evaluate(
            &self.principal,
            &self.element,
            &self.policy,
            &self.context,
            action,
            facts,
        )
        .map_err(crate::policy::to_s3)
    }

    /// Checks a bucket action (resource `arn:aws:s3:::bucket`).
    pub(crate) fn check_bucket(&self, action: Action) -> S3Result<()> {
        self.check(action, Facts::default())
    }

    /// Checks `action` on `key`, the facts "the key exists" and its tags taken from `current`.
    pub(crate) fn check_key(
        &self,
        action: Action,
        key: &str,
        current: Option<&ObjectRecord>,
    ) -> S3Result<()> {
        self.check(
            action,
            Facts {
                key: Some(key),
                key_exists: current.is_some(),
                existing_tags: current.and_then(context::existing_tags),
            },
        )
    }

    /// Checks `action` on `key` as an existing object whose record is not at hand.
    pub(crate) fn check_existing(&self, action: Action, key: &str) -> S3Result<()> {
        self.check(
            action,
            Facts {
                key: Some(key),
                key_exists: true,
                existing_tags: None,
            },
        )
    }

    /// Refuses up front a write of `extra` bytes that cannot fit the element's quota (the
    /// index enforces it exactly at commit; this only spares uploading a body in vain).
    pub(crate) async fn check_quota(&self, extra: Option<i64>) -> S3Result<()> {
        let el = &self.element;
        let (Some(_), Some(extra)) = (el.capacity_bytes, extra) else {
            return Ok(());
        };
        // The cached usage is as old as the entry (objects written or deleted since): an
        // element with a quota is asked for its current figures (one read, quota'd elements only).
        let Some(now) = self
            .store
            .get_element(&el.name)
            .await
            .map_err(errors::meta)?
        else {
            return Ok(());
        };
        if let Some(cap) = now.capacity_bytes
            && now.used_bytes.saturating_add(extra) > cap
        {
            return Err(errors::quota(&format!(
                "storage element '{}' is full: {} of {} bytes used, {} more needed",
                el.name, now.used_bytes, cap, extra
            )));
        }
        Ok(())
    }

    /// Checks `action` on `key` as the committing transaction sees it: a mode changed since
    /// the request began counts, and so does a key written meanwhile.
    pub(crate) fn check_committed(
        &self,
        action: Action,
        key: &str,
        view: artstore_metadata::WriteView<'_>,
    ) -> S3Result<()> {
        let facts = Facts {
            key: Some(key),
            key_exists: view.current.is_some(),
            existing_tags: view.current.and_then(context::existing_tags),
        };
        if view.mode == self.element.mode {
            return self.check(action, facts);
        }
        let element = Element {
            mode: view.mode,
            ..self.element.clone()
        };
        artstore_policy::evaluate(
            &self.principal,
            &element,
            &self.policy,
            &self.context,
            action,
            facts,
        )
        .map_err(crate::policy::to_s3)
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
        policy::get_bucket_policy(self, req).await
    }
    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> R<PutBucketPolicyOutput> {
        policy::put_bucket_policy(self, req).await
    }
    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> R<DeleteBucketPolicyOutput> {
        policy::delete_bucket_policy(self, req).await
    }
    async fn get_bucket_cors(&self, req: S3Request<GetBucketCorsInput>) -> R<GetBucketCorsOutput> {
        bucket::get_bucket_cors(self, req).await
    }
    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> R<GetBucketLifecycleConfigurationOutput> {
        lifecycle::get(self, req).await
    }
    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> R<PutBucketLifecycleConfigurationOutput> {
        lifecycle::put(self, req).await
    }
    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> R<DeleteBucketLifecycleOutput> {
        lifecycle::delete(self, req).await
    }
    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> R<GetBucketTaggingOutput> {
        tagging::get_bucket_tagging(self, req).await
    }
    async fn put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> R<PutBucketTaggingOutput> {
        tagging::put_bucket_tagging(self, req).await
    }
    async fn delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> R<DeleteBucketTaggingOutput> {
        tagging::delete_bucket_tagging(self, req).await
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
        tagging::get_object_tagging(self, req).await
    }
    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> R<PutObjectTaggingOutput> {
        tagging::put_object_tagging(self, req).await
    }
    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> R<DeleteObjectTaggingOutput> {
        tagging::delete_object_tagging(self, req).await
    }
    async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> R<GetObjectAttributesOutput> {
        attributes::get_object_attributes(self, req).await
    }
    async fn get_object_acl(&self, req: S3Request<GetObjectAclInput>) -> R<GetObjectAclOutput> {
        object::get_object_acl(self, req).await
    }
    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> R<CopyObjectOutput> {
        copy::copy_object(self, req).await
    }
    async fn restore_object(&self, req: S3Request<RestoreObjectInput>) -> R<RestoreObjectOutput> {
        restore::restore_object(self, req).await
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
