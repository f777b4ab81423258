//! Undoing remote writes that were given up: an object deleted, a remote multipart upload
//! aborted, at once on error paths or from a spawned task when a value is dropped.

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use tokio::runtime::Handle;

use super::S3Remote;
use super::remote_error::Target;
use crate::error::BackendError;

/// What must go if an upload is given up.
pub(crate) enum Undo {
    Delete { key: String },
    Abort { key: String, upload_id: String },
}

/// Runs its undo on drop unless disarmed (the object became part of the element).
pub(crate) struct Cleanup {
    client: aws_sdk_s3::Client,
    target: Target,
    runtime: Handle,
    undo: Option<Undo>,
}

impl Cleanup {
    pub(crate) fn new(remote: &S3Remote, undo: Undo) -> Self {
        Cleanup {
            client: remote.client.clone(),
            target: remote.target.clone(),
            runtime: Handle::current(),
            undo: Some(undo),
        }
    }

    pub(crate) fn disarm(mut self) {
        self.undo = None;
    }

    /// Runs the undo now (an error path that can wait for it).
    pub(crate) async fn run(&mut self) -> Result<(), BackendError> {
        match self.undo.take() {
            Some(undo) => undo_now(self.client.clone(), self.target.clone(), undo).await,
            None => Ok(()),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(undo) = self.undo.take() {
            let (client, target) = (self.client.clone(), self.target.clone());
            self.runtime.spawn(async move {
                if let Err(e) = undo_now(client, target, undo).await {
                    tracing::warn!(error = %e, "could not remove an abandoned remote upload");
                }
            });
        }
    }
}

async fn undo_now(
    client: aws_sdk_s3::Client,
    target: Target,
    undo: Undo,
) -> Result<(), BackendError> {
    match undo {
        Undo::Delete { key } => delete_key(&client, &target, &key).await,
        Undo::Abort { key, upload_id } => abort_upload(&client, &target, &key, &upload_id).await,
    }
}

/// DeleteObject; a missing key is fine.
pub(crate) async fn delete_key(
    client: &aws_sdk_s3::Client,
    target: &Target,
    key: &str,
) -> Result<(), BackendError> {
    match client
        .delete_object()
        .bucket(&target.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => match target.error(&format!("DeleteObject {key}"), e) {
            BackendError::NotFound(_) => Ok(()),
            e => Err(e),
        },
    }
}

/// AbortMultipartUpload; an upload already gone (`NoSuchUpload`) is fine.
pub(crate) async fn abort_upload(
    client: &aws_sdk_s3::Client,
    target: &Target,
    key: &str,
    upload_id: &str,
) -> Result<(), BackendError> {
    match client
        .abort_multipart_upload()
        .bucket(&target.bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchUpload") => Ok(()),
        Err(e) => match target.error(&format!("AbortMultipartUpload {key}"), e) {
            BackendError::NotFound(_) => Ok(()),
            e => Err(e),
        },
    }
}

impl Cleanup {
    /// A guard for an object the caller wrote under `key` outside `upload` (assembly, copy).
    pub(crate) fn delete_on_drop(remote: &S3Remote, key: &str) -> Self {
        Cleanup::new(
            remote,
            Undo::Delete {
                key: key.to_owned(),
            },
        )
    }

    /// A guard aborting a remote multipart upload on drop.
    pub(crate) fn abort_on_drop(remote: &S3Remote, key: &str, upload_id: &str) -> Self {
        Cleanup::new(
            remote,
            Undo::Abort {
                key: key.to_owned(),
                upload_id: upload_id.to_owned(),
            },
        )
    }

    /// Runs the undo now, logging a failure (error paths).
    pub(crate) async fn undo(mut self) {
        if let Err(e) = self.run().await {
            tracing::warn!(error = %e, "could not undo a failed remote write");
        }
    }
}
