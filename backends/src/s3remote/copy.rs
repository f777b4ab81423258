//! Server-side copies: the remote moves the bytes, nothing passes through this process.

use aws_sdk_s3::types::CompletedPart;

use super::S3Remote;
use super::cleanup::Cleanup;
use super::config::MAX_SINGLE_OBJECT;
use super::keys::copy_source;
use crate::error::BackendError;

/// Piece size when an object too large for CopyObject is copied as a multipart upload.
const COPY_PIECE: u64 = 1 << 30;

impl S3Remote {
    /// Copies `from` (of `size` bytes) to `to`, both full keys: CopyObject up to 5 GiB,
    /// UploadPartCopy pieces beyond.
    pub(crate) async fn server_copy(
        &self,
        from: &str,
        to: &str,
        size: u64,
    ) -> Result<(), BackendError> {
        if size <= MAX_SINGLE_OBJECT {
            self.client
                .copy_object()
                .bucket(&self.target.bucket)
                .key(to)
                .copy_source(copy_source(&self.target.bucket, from))
                .send()
                .await
                .map_err(|e| self.target.error(&format!("CopyObject {from} to {to}"), e))?;
            return Ok(());
        }
        let upload_id = self.create_remote_upload(to).await?;
        let cleanup = Cleanup::abort_on_drop(self, to, &upload_id);
        let mut parts = Vec::new();
        let mut start = 0;
        while start < size {
            let len = COPY_PIECE.min(size - start);
            let number = parts.len() as i32 + 1;
            match self
                .copy_range_part(to, &upload_id, number, from, start, len)
                .await
            {
                Ok(p) => parts.push(p),
                Err(e) => {
                    cleanup.undo().await;
                    return Err(e);
                }
            }
            start += len;
        }
        if let Err(e) = self
            .complete_remote_upload(to, &upload_id, parts, size)
            .await
        {
            cleanup.undo().await;
            return Err(e);
        }
        cleanup.disarm();
        Ok(())
    }

    /// UploadPartCopy of `[start, start + len)` of `from` as part `number` of `upload_id`.
    pub(crate) async fn copy_range_part(
        &self,
        to: &str,
        upload_id: &str,
        number: i32,
        from: &str,
        start: u64,
        len: u64,
    ) -> Result<CompletedPart, BackendError> {
        let out = self
            .client
            .upload_part_copy()
            .bucket(&self.target.bucket)
            .key(to)
            .upload_id(upload_id)
            .part_number(number)
            .copy_source(copy_source(&self.target.bucket, from))
            .copy_source_range(format!("bytes={start}-{}", start + len - 1))
            .send()
            .await
            .map_err(|e| {
                self.target
                    .error(&format!("UploadPartCopy {from} to {to} part {number}"), e)
            })?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(
                out.copy_part_result()
                    .and_then(|r| r.e_tag())
                    .map(str::to_owned),
            )
            .build())
    }
}
