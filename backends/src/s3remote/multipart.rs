//! ArtStore multipart uploads on the remote: each part is an object
//! `.multipart/<upload id>/<part number>`; completion is a remote multipart upload whose
//! parts the remote copies server-side from those objects (UploadPartCopy), while one
//! streaming read of the parts computes the whole-object MD5 and SHA-256 the sidecar carries.

use std::fmt;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

use super::S3Remote;
use super::cleanup::Cleanup;
use super::config::{MAX_SINGLE_OBJECT, MIN_PART_SIZE};
use super::hashing::HashPipe;
use super::keys::{TMP_PREFIX, part_rel_key, upload_rel_dir};
use super::upload::RemoteStaged;
use crate::digest::ChecksumAlgorithm;
use crate::error::BackendError;
use crate::fsutil::invalid_input;
use crate::naming::StorageName;

impl S3Remote {
    /// Streams one part to a temp object of its upload (see `stage`); it replaces an earlier
    /// upload of the same part only in `commit_part`, so a failed retry loses nothing.
    pub async fn stage_part<S, E>(
        &self,
        upload_id: &str,
        _part_number: u32,
        body: S,
        extra: &[ChecksumAlgorithm],
    ) -> Result<RemoteStaged, BackendError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: fmt::Display,
    {
        let rel = format!(
            "{}/{TMP_PREFIX}{}",
            upload_rel_dir(upload_id),
            uuid::Uuid::new_v4()
        );
        self.upload(&rel, body, extra).await
    }

    /// Gives a staged part its number (server-side copy), replacing an earlier upload of it.
    pub async fn commit_part(
        &self,
        staged: RemoteStaged,
        upload_id: &str,
        part_number: u32,
    ) -> Result<(), BackendError> {
        let to = self.key(&part_rel_key(upload_id, part_number))?;
        self.server_copy(&staged.key, &to, staged.digests.size)
            .await?;
        // The temp object goes now; a failure here leaves it to `remove_temp_objects`.
        let RemoteStaged { key, guard, .. } = staged;
        guard.disarm();
        self.delete_key(&key).await
    }

    /// The object `name` made of part ranges `(rel key, start, len)` in order: a remote
    /// multipart upload of server-side copies, completed after a streaming read of the same
    /// ranges has hashed the whole object. Every range but the last must be at least 5 MiB
    /// (S3's minimum part size). Nothing is part of the element until `commit`.
    pub async fn assemble(
        &self,
        name: &StorageName,
        parts: &[(String, u64, u64)],
    ) -> Result<RemoteStaged, BackendError> {
        let key = self.key(&name.rel_path())?;
        let mut sources = Vec::with_capacity(parts.len());
        for (i, (rel, start, len)) in parts.iter().enumerate() {
            if i + 1 < parts.len() && *len < MIN_PART_SIZE as u64 {
                return Err(invalid_input(format!(
                    "part {} of {key} is {len} bytes, less than 5 MiB",
                    i + 1
                )));
            }
            sources.push((self.key(rel)?, *start, *len));
        }
        let total: u64 = sources.iter().map(|s| s.2).sum();
        if total == 0 {
            return self
                .upload(
                    &name.rel_path(),
                    futures::stream::empty::<Result<Bytes, BackendError>>(),
                    &[],
                )
                .await;
        }
        let upload_id = self.create_remote_upload(&key).await?;
        let cleanup = Cleanup::abort_on_drop(self, &key, &upload_id);
        let copies = self.copy_ranges(&key, &upload_id, &sources);
        let hashing = async {
            let mut pipe = HashPipe::new(&[]);
            for (from, start, len) in &sources {
                let mut body = self.get_range(from, *start, *len, None).await?;
                while let Some(chunk) = body.next().await {
                    pipe.push(chunk?).await?;
                }
            }
            pipe.finish().await
        };
        let (completed, digests) = match tokio::try_join!(copies, hashing) {
            Ok(r) => r,
            Err(e) => {
                cleanup.undo().await;
                return Err(e);
            }
        };
        if let Err(e) = self
            .complete_remote_upload(&key, &upload_id, completed, total)
            .await
        {
            cleanup.undo().await;
            return Err(e);
        }
        cleanup.disarm();
        Ok(RemoteStaged {
            digests,
            guard: Cleanup::delete_on_drop(self, &key),
            key,
        })
    }

    /// UploadPartCopy of every range (ranges over 5 GiB in several pieces), a few at a time.
    async fn copy_ranges(
        &self,
        key: &str,
        upload_id: &str,
        sources: &[(String, u64, u64)],
    ) -> Result<Vec<aws_sdk_s3::types::CompletedPart>, BackendError> {
        let mut pieces = Vec::new();
        for (from, start, len) in sources.iter().filter(|s| s.2 > 0) {
            let mut off = 0;
            while off < *len {
                let n = MAX_SINGLE_OBJECT.min(len - off);
                pieces.push((from.as_str(), start + off, n));
                off += n;
            }
        }
        // Futures made in a loop, not by a closure: a closure returning futures that borrow
        // its arguments keeps callers' futures from being `Send` (the Backend trait needs it).
        let mut copies = Vec::with_capacity(pieces.len());
        for (i, (from, start, len)) in pieces.iter().enumerate() {
            copies.push(self.copy_range_part(key, upload_id, i as i32 + 1, from, *start, *len));
        }
        futures::stream::iter(copies)
            .buffered(self.upload_concurrency)
            .try_collect()
            .await
    }

    /// Removes an upload's part objects; a missing upload is fine.
    pub async fn remove_upload(&self, upload_id: &str) -> Result<(), BackendError> {
        let keys = self
            .all_keys(&format!("{}/", upload_rel_dir(upload_id)))
            .await?;
        self.delete_keys(keys).await
    }
}
