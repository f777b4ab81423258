//! Streaming bodies to the remote: one PutObject for a body up to one part size, a remote
//! multipart upload with parts sent as they fill otherwise. Memory per upload is bounded by
//! `(upload_concurrency + 1) * part_size`; nothing is ever held whole.

use std::fmt;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::task::JoinSet;

use super::S3Remote;
use super::cleanup::{Cleanup, Undo};
use super::hashing::HashPipe;
use super::remote_error::Target;
use crate::attr::AttrJson;
use crate::digest::{ChecksumAlgorithm, Digests};
use crate::error::BackendError;
use crate::naming::StorageName;

/// Data stored on the remote under its key, not yet part of the element: its sidecar is not
/// written. Dropping it removes the remote data (in a spawned task: drop cannot wait).
pub struct RemoteStaged {
    pub digests: Digests,
    pub(crate) key: String,
    pub(crate) guard: Cleanup,
}

impl fmt::Debug for RemoteStaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteStaged")
            .field("digests", &self.digests)
            .field("key", &self.key)
            .finish()
    }
}

impl RemoteStaged {
    /// Removes the remote data now, waiting for the remote to confirm.
    pub async fn discard(mut self) -> Result<(), BackendError> {
        self.guard.run().await
    }
}

/// Cuts a body into parts of exactly `size` bytes (the last one shorter).
struct PartReader<S> {
    body: S,
    size: usize,
    pending: Option<Bytes>,
    done: bool,
}

impl<S, E> PartReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: fmt::Display,
{
    /// The next part; empty once the body has ended.
    async fn next_part(&mut self) -> Result<Bytes, BackendError> {
        let mut buf = BytesMut::new();
        loop {
            let chunk = match self.pending.take() {
                Some(c) => c,
                None if self.done => break,
                None => match self.body.next().await {
                    None => {
                        self.done = true;
                        break;
                    }
                    Some(Err(e)) => return Err(BackendError::Body(e.to_string())),
                    Some(Ok(c)) => c,
                },
            };
            let room = self.size - buf.len();
            if buf.is_empty() && chunk.len() >= self.size {
                // A large chunk is cut without copying.
                let mut chunk = chunk;
                let rest = chunk.split_off(self.size);
                self.pending = (!rest.is_empty()).then_some(rest);
                return Ok(chunk);
            }
            if buf.is_empty() {
                buf.reserve(self.size.min(chunk.len().max(64 << 10)));
            }
            if chunk.len() >= room {
                let mut chunk = chunk;
                let rest = chunk.split_off(room);
                buf.extend_from_slice(&chunk);
                if !rest.is_empty() {
                    self.pending = Some(rest);
                }
                break;
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// Whether the body has ended and every byte was handed out.
    async fn at_end(&mut self) -> Result<bool, BackendError> {
        if self.pending.is_some() {
            return Ok(false);
        }
        while !self.done {
            match self.body.next().await {
                None => self.done = true,
                Some(Err(e)) => return Err(BackendError::Body(e.to_string())),
                Some(Ok(c)) if c.is_empty() => {}
                Some(Ok(c)) => {
                    self.pending = Some(c);
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

impl S3Remote {
    /// Streams `body` to the object's final data key `<prefix><name.rel_path()>`, computing
    /// MD5, SHA-256 and `extra` in one pass. A body error gives `BackendError::Body` and
    /// leaves nothing on the remote. The object is not part of the element until `commit`.
    pub async fn stage<S, E>(
        &self,
        name: &StorageName,
        body: S,
        extra: &[ChecksumAlgorithm],
    ) -> Result<RemoteStaged, BackendError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: fmt::Display,
    {
        self.upload(&name.rel_path(), body, extra).await
    }

    /// Writes the sidecar of a staged object and returns once the remote has acknowledged
    /// both (the data already was, in `stage`): the object is durable.
    pub async fn commit(
        &self,
        staged: RemoteStaged,
        name: &StorageName,
        attr: &AttrJson,
    ) -> Result<(), BackendError> {
        if staged.key != self.key(&name.rel_path())? {
            return Err(crate::fsutil::invalid_input(format!(
                "{} was staged as {}",
                name.rel_path(),
                staged.key
            )));
        }
        // On failure `staged` is dropped: its data goes, no half object stays.
        self.write_attr(&name.attr_rel_path(), attr).await?;
        staged.guard.disarm();
        Ok(())
    }

    /// (Re)writes a sidecar; a PutObject replaces it atomically.
    pub async fn write_attr(
        &self,
        attr_rel_path: &str,
        attr: &AttrJson,
    ) -> Result<(), BackendError> {
        self.put_small(attr_rel_path, Bytes::from(attr.to_bytes()?))
            .await
    }

    /// Streams `body` to `<prefix><rel>` (see `stage`).
    pub(crate) async fn upload<S, E>(
        &self,
        rel: &str,
        body: S,
        extra: &[ChecksumAlgorithm],
    ) -> Result<RemoteStaged, BackendError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: fmt::Display,
    {
        let key = self.key(rel)?;
        let mut parts = PartReader {
            body,
            size: self.part_size,
            pending: None,
            done: false,
        };
        let first = parts.next_part().await?;
        if parts.at_end().await? {
            return self.put_single(key, first, extra).await;
        }
        let upload_id = self.create_remote_upload(&key).await?;
        let cleanup = Cleanup::new(
            self,
            Undo::Abort {
                key: key.clone(),
                upload_id: upload_id.clone(),
            },
        );
        match self
            .upload_parts(&key, &upload_id, first, &mut parts, extra)
            .await
        {
            Ok(digests) => {
                cleanup.disarm();
                Ok(RemoteStaged {
                    digests,
                    guard: Cleanup::new(self, Undo::Delete { key: key.clone() }),
                    key,
                })
            }
            Err(e) => {
                cleanup.undo().await;
                Err(e)
            }
        }
    }

    /// A body that fits in one part: hashed first, then sent with its Content-MD5 so the
    /// remote checks what it stores.
    async fn put_single(
        &self,
        key: String,
        data: Bytes,
        extra: &[ChecksumAlgorithm],
    ) -> Result<RemoteStaged, BackendError> {
        let mut pipe = HashPipe::new(extra);
        pipe.push(data.clone()).await?;
        let digests = pipe.finish().await?;
        // Armed before the request: a dropped future must not leave the object behind.
        let guard = Cleanup::new(self, Undo::Delete { key: key.clone() });
        self.client
            .put_object()
            .bucket(&self.target.bucket)
            .key(&key)
            .content_md5(digests.md5_base64())
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| self.target.error(&format!("PutObject {key}"), e))?;
        Ok(RemoteStaged {
            digests,
            key,
            guard,
        })
    }

    pub(crate) async fn create_remote_upload(&self, key: &str) -> Result<String, BackendError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.target.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                self.target
                    .error(&format!("CreateMultipartUpload {key}"), e)
            })?;
        out.upload_id().map(str::to_owned).ok_or_else(|| {
            self.target
                .remote(format!("CreateMultipartUpload {key}: no upload id"))
        })
    }

    /// Sends parts as they fill, up to `upload_concurrency` at once, hashing them in order,
    /// then completes the remote upload.
    async fn upload_parts<S, E>(
        &self,
        key: &str,
        upload_id: &str,
        first: Bytes,
        parts: &mut PartReader<S>,
        extra: &[ChecksumAlgorithm],
    ) -> Result<Digests, BackendError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: fmt::Display,
    {
        let mut pipe = HashPipe::new(extra);
        // Dropping the set (a dropped future, an error) aborts the part uploads in flight.
        let mut inflight = JoinSet::new();
        let mut done = Vec::new();
        let mut part = first;
        let mut number = 1i32;
        while !part.is_empty() {
            pipe.push(part.clone()).await?;
            while inflight.len() >= self.upload_concurrency {
                done.push(join_part(inflight.join_next().await)?);
            }
            inflight.spawn(upload_part(
                self.client.clone(),
                self.target.clone(),
                key.to_owned(),
                upload_id.to_owned(),
                number,
                part,
            ));
            part = parts.next_part().await?;
            number += 1;
        }
        while let Some(r) = inflight.join_next().await {
            done.push(join_part(Some(r))?);
        }
        let digests = pipe.finish().await?;
        self.complete_remote_upload(key, upload_id, done, digests.size)
            .await?;
        Ok(digests)
    }

    /// Completes a remote multipart upload of `size` bytes.
    pub(crate) async fn complete_remote_upload(
        &self,
        key: &str,
        upload_id: &str,
        mut parts: Vec<CompletedPart>,
        size: u64,
    ) -> Result<(), BackendError> {
        parts.sort_by_key(|p| p.part_number());
        let count = parts.len();
        let sent = self
            .client
            .complete_multipart_upload()
            .bucket(&self.target.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        // Some services (moto 5.2) answer 200 with a result document under another root name,
        // which the SDK cannot parse. An error document has a code; this has none. The upload
        // counts as completed only if the object is there with its size and part count.
        let unparsed_success = err
            .as_service_error()
            .is_some_and(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e).is_none())
            && err
                .raw_response()
                .is_some_and(|r| r.status().as_u16() == 200);
        let failure = self
            .target
            .error(&format!("CompleteMultipartUpload {key}"), err);
        if unparsed_success && self.is_completed(key, size, count).await {
            return Ok(());
        }
        Err(failure)
    }

    /// Whether `key` is a multipart object of `size` bytes in `parts` parts.
    async fn is_completed(&self, key: &str, size: u64, parts: usize) -> bool {
        let Ok(head) = self
            .client
            .head_object()
            .bucket(&self.target.bucket)
            .key(key)
            .send()
            .await
        else {
            return false;
        };
        let suffix = format!("-{parts}");
        head.content_length() == Some(size as i64)
            && head
                .e_tag()
                .is_some_and(|e| e.trim_matches('"').ends_with(&suffix))
    }
}

fn join_part(
    joined: Option<Result<Result<CompletedPart, BackendError>, tokio::task::JoinError>>,
) -> Result<CompletedPart, BackendError> {
    match joined {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(crate::staging::join_error(e)),
        None => Err(BackendError::Io(std::io::Error::other(
            "no part upload was running",
        ))),
    }
}

async fn upload_part(
    client: aws_sdk_s3::Client,
    target: Target,
    key: String,
    upload_id: String,
    number: i32,
    data: Bytes,
) -> Result<CompletedPart, BackendError> {
    let out = client
        .upload_part()
        .bucket(&target.bucket)
        .key(&key)
        .upload_id(&upload_id)
        .part_number(number)
        .body(ByteStream::from(data))
        .send()
        .await
        .map_err(|e| target.error(&format!("UploadPart {key} part {number}"), e))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(out.e_tag().map(str::to_owned))
        .build())
}
