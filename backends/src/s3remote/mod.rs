//! `S3Remote`: one storage element as objects under a prefix of a bucket on a remote
//! S3-compatible service (Ceph RGW, MinIO, Garage, AWS S3), with the relative names `LocalFs`
//! uses on disk: `element.json`, `YYYY/MM/DD/HH/<file>` and `<file>.attr.json`,
//! `.multipart/<upload id>/<part number>`, `.quarantine/<label>/<rel>`.
//!
//! Writes: `stage` streams the data to its final key (a PutObject replaces nothing: every data
//! name carries a fresh UUID), `commit` then puts the sidecar. Between the two a data object
//! without sidecar is visible; on a cluster it may be another node's write in flight, so
//! recovery must leave such objects alone until they are older than a grace period.
//!
//! Client crate: aws-sdk-s3. It is already built for the gateway's tests (no new compile
//! cost), sends bodies of known length straight from `Bytes` (parts are cut here, so memory
//! stays bounded), exposes every call needed (multipart, UploadPartCopy, ranged GET,
//! ListObjectsV2, ListMultipartUploads) with typed errors carrying the remote's code, and has
//! standard retries with backoff and connect/read timeouts built in. object_store hides
//! multipart behind its own upload abstraction (no UploadPartCopy, no control of part numbers)
//! and opendal adds a large dependency tree of its own for the same S3 calls.

mod cleanup;
mod config;
mod copy;
mod element;
mod hashing;
mod keys;
mod list;
mod multipart;
mod read;
mod remote_error;
mod upload;

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

pub use config::{MIN_PART_SIZE, S3RemoteConfig};
pub use keys::part_rel_key;
pub use list::{RemoteFile, RemoteUpload};
pub use read::RemoteReread;
pub use upload::RemoteStaged;

use crate::error::BackendError;
use crate::fsutil::invalid_input;
use keys::{ELEMENT_JSON, check_rel};
use remote_error::Target;

/// Largest small object (element.json, sidecars) read whole into memory.
const MAX_SMALL_OBJECT: u64 = 1 << 20;

/// The remote S3 backend of one storage element.
#[derive(Debug, Clone)]
pub struct S3Remote {
    client: aws_sdk_s3::Client,
    target: Target,
    prefix: String,
    part_size: usize,
    upload_concurrency: usize,
    read_timeout: Duration,
}

impl S3Remote {
    /// Builds the client and checks endpoint, bucket and credentials with one ListObjectsV2 of
    /// at most one key under the prefix: wrong ones fail with the remote's error.
    pub async fn connect(cfg: S3RemoteConfig) -> Result<S3Remote, BackendError> {
        let remote = S3Remote::new(cfg)?;
        remote.check().await?;
        Ok(remote)
    }

    /// Builds the client without a request (the registry opens elements on the request
    /// path); wrong endpoints, buckets or credentials show at the first request.
    pub fn new(cfg: S3RemoteConfig) -> Result<S3Remote, BackendError> {
        cfg.validate()?;
        Ok(S3Remote {
            client: cfg.client(),
            target: Target {
                endpoint: cfg.endpoint.clone(),
                bucket: cfg.bucket.clone(),
            },
            prefix: cfg.prefix.clone(),
            part_size: cfg.part_size,
            upload_concurrency: cfg.upload_concurrency,
            read_timeout: cfg.read_timeout,
        })
    }

    /// One cheap request (ListObjectsV2 of at most one key) that fails as any request would
    /// when the endpoint, bucket or credentials are wrong or the remote is down: readiness.
    pub async fn check(&self) -> Result<(), BackendError> {
        self.is_empty().await.map(drop)
    }

    /// The endpoint of the remote service.
    pub fn endpoint(&self) -> &str {
        &self.target.endpoint
    }

    /// The remote bucket.
    pub fn bucket(&self) -> &str {
        &self.target.bucket
    }

    /// The prefix all of this element's keys start with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix><rel>`, refusing relative names that are not plain.
    fn key(&self, rel: &str) -> Result<String, BackendError> {
        check_rel(rel)?;
        Ok(format!("{}{rel}", self.prefix))
    }

    /// Whether nothing at all is stored under the prefix.
    pub async fn is_empty(&self) -> Result<bool, BackendError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.target.bucket)
            .set_prefix((!self.prefix.is_empty()).then(|| self.prefix.clone()))
            .max_keys(1)
            .send()
            .await
            .map_err(|e| {
                self.target
                    .error(&format!("ListObjectsV2 {}", self.prefix), e)
            })?;
        Ok(out.contents().is_empty())
    }

    /// Writes the `element.json` of a new element; a prefix that already holds objects (of
    /// another element, or anything else) is refused and left as it is.
    pub async fn create_element(&self, element_json: &[u8]) -> Result<(), BackendError> {
        if !self.is_empty().await? {
            return Err(invalid_input(format!(
                "{}/{}/{} is not empty",
                self.target.endpoint, self.target.bucket, self.prefix
            )));
        }
        self.write_element_json(element_json).await
    }

    /// (Re)writes `element.json`; a PutObject replaces it atomically.
    pub async fn write_element_json(&self, element_json: &[u8]) -> Result<(), BackendError> {
        self.put_small(ELEMENT_JSON, Bytes::copy_from_slice(element_json))
            .await
    }

    /// The element's `element.json`, if it has one.
    pub async fn read_element_json(&self) -> Result<Option<Vec<u8>>, BackendError> {
        match self.get_small(ELEMENT_JSON).await {
            Ok(b) => Ok(Some(b)),
            Err(BackendError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes everything under the prefix: objects, then unfinished remote multipart uploads.
    pub async fn remove_element(&self) -> Result<(), BackendError> {
        let keys = self.all_keys("").await?;
        self.delete_keys(keys).await?;
        for upload in self.incomplete_uploads().await? {
            self.abort_remote_upload(&upload.key, &upload.upload_id)
                .await?;
        }
        Ok(())
    }

    /// PutObject of a small in-memory body with its Content-MD5, so the remote checks it.
    async fn put_small(&self, rel: &str, body: Bytes) -> Result<(), BackendError> {
        let key = self.key(rel)?;
        // At most a few KiB (sidecars, element.json): hashing them here takes microseconds.
        let md5 = {
            use base64::Engine as _;
            use md5::Digest as _;
            base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body))
        };
        self.client
            .put_object()
            .bucket(&self.target.bucket)
            .key(&key)
            .content_md5(md5)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.target.error(&format!("PutObject {key}"), e))?;
        Ok(())
    }

    /// GetObject of a small object (a sidecar, element.json) into memory.
    async fn get_small(&self, rel: &str) -> Result<Vec<u8>, BackendError> {
        let key = self.key(rel)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.target.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| self.target.error(&format!("GetObject {key}"), e))?;
        let len = out.content_length().unwrap_or_default();
        if len < 0 || len as u64 > MAX_SMALL_OBJECT {
            return Err(BackendError::InvalidAttr(format!(
                "{key} is {len} bytes: not a sidecar"
            )));
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| self.target.unreachable(format!("GetObject {key}: {e}")))?;
        Ok(bytes.to_vec())
    }
}
