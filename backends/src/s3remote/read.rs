//! Reading from the remote: ranged GETs streamed chunk by chunk, sidecars, sizes, ages,
//! re-reads for the scrub and hashing reads for verify.

use std::io;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::S3Remote;
use super::hashing::hash_stream;
use super::keys::ATTR_SUFFIX;
use crate::attr::AttrJson;
use crate::digest::Digests;
use crate::error::BackendError;
use crate::range::ObjectStream;
use crate::reread::MIN_REREAD_CHUNK;
use crate::staging::blocking;

/// Chunks read ahead of the consumer of a download.
const READ_AHEAD_CHUNKS: usize = 8;

/// What HeadObject tells.
pub(crate) struct Head {
    pub len: u64,
    pub modified: Option<SystemTime>,
}

impl S3Remote {
    /// Streams `[start, start + len)` of an object's data. A missing object is `NotFound`; a
    /// range past its end is an `UnexpectedEof` I/O error.
    pub async fn open_range(
        &self,
        rel_path: &str,
        start: u64,
        len: u64,
    ) -> Result<ObjectStream, BackendError> {
        self.get_range(&self.key(rel_path)?, start, len, None).await
    }

    /// As `open_range`, for an object whose data must be `size` bytes: any other size is
    /// `SizeMismatch`, never served.
    pub async fn open_object_range(
        &self,
        rel_path: &str,
        size: u64,
        start: u64,
        len: u64,
    ) -> Result<ObjectStream, BackendError> {
        self.get_range(&self.key(rel_path)?, start, len, Some(size))
            .await
    }

    /// A ranged GET of a full key; the remote's `Content-Range` tells the object's size.
    pub(crate) async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
        whole: Option<u64>,
    ) -> Result<ObjectStream, BackendError> {
        let mismatch = |actual: u64| BackendError::SizeMismatch {
            path: key.to_owned(),
            expected: whole.unwrap_or(actual),
            actual,
        };
        let beyond = |size: u64| {
            BackendError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{key}: range {start}+{len} is beyond the object size {size}"),
            ))
        };
        let end = start.checked_add(len).ok_or_else(|| beyond(u64::MAX))?;
        if len == 0 {
            // No ranged GET can ask for nothing: the size alone decides.
            let size = self.head_key(key).await?.len;
            if whole.is_some_and(|w| w != size) {
                return Err(mismatch(size));
            }
            if end > size {
                return Err(beyond(size));
            }
            return Ok(Box::pin(futures::stream::empty()));
        }
        let sent = self
            .client
            .get_object()
            .bucket(&self.target.bucket)
            .key(key)
            .range(format!("bytes={start}-{}", end - 1))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::code(s))
                    == Some("InvalidRange") =>
            {
                let size = self.head_key(key).await?.len;
                if whole.is_some_and(|w| w != size) {
                    return Err(mismatch(size));
                }
                return Err(beyond(size));
            }
            Err(e) => return Err(self.target.error(&format!("GetObject {key}"), e)),
        };
        let size = out
            .content_range()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| {
                self.target.remote(format!(
                    "GetObject {key}: no usable Content-Range in the answer"
                ))
            })?;
        if whole.is_some_and(|w| w != size) {
            return Err(mismatch(size));
        }
        if end > size {
            return Err(beyond(size));
        }
        Ok(self.pump(key.to_owned(), out.body, len))
    }

    /// Moves a response body into a bounded channel from a task of its own: the stream handed
    /// out is `Sync`, a stalled remote fails after `read_timeout`, and a body shorter or longer
    /// than `len` is an error, never silently served.
    fn pump(&self, key: String, mut body: ByteStream, len: u64) -> ObjectStream {
        let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(READ_AHEAD_CHUNKS);
        let idle = self.read_timeout;
        let target = self.target.clone();
        tokio::spawn(async move {
            let mut left = len;
            loop {
                let item = match tokio::time::timeout(idle, body.next()).await {
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "{}/{}/{key}: no data for {idle:?}",
                            target.endpoint, target.bucket
                        ),
                    )),
                    Ok(None) if left == 0 => return,
                    Ok(None) => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{key}: the remote ended the body {left} bytes early"),
                    )),
                    Ok(Some(Err(e))) => Err(io::Error::other(format!(
                        "{}/{}/{key}: {e}",
                        target.endpoint, target.bucket
                    ))),
                    Ok(Some(Ok(chunk))) if chunk.len() as u64 > left => Err(io::Error::other(
                        format!("{key}: the remote sent more than the {len} bytes asked"),
                    )),
                    Ok(Some(Ok(chunk))) => {
                        left -= chunk.len() as u64;
                        Ok(chunk)
                    }
                };
                let failed = item.is_err();
                // The reader went away: stop downloading.
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }

    /// Reads and parses a sidecar (v1 is migrated in memory).
    pub async fn read_attr(&self, attr_rel_path: &str) -> Result<AttrJson, BackendError> {
        AttrJson::parse(&self.get_small(attr_rel_path).await?)
    }

    /// Removes sidecar and data (sidecar first: a crash in between leaves an orphan data
    /// object, never a sidecar without data). Missing ones are not an error.
    pub async fn delete(&self, rel_path: &str) -> Result<(), BackendError> {
        let data = self.key(rel_path)?;
        let attr = format!("{data}{ATTR_SUFFIX}");
        self.delete_key(&attr).await?;
        self.delete_key(&data).await
    }

    pub(crate) async fn delete_key(&self, key: &str) -> Result<(), BackendError> {
        super::cleanup::delete_key(&self.client, &self.target, key).await
    }

    pub(crate) async fn head_key(&self, key: &str) -> Result<Head, BackendError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.target.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.target.error(&format!("HeadObject {key}"), e))?;
        Ok(Head {
            len: out.content_length().unwrap_or_default().max(0) as u64,
            modified: out
                .last_modified()
                .and_then(|t| SystemTime::try_from(*t).ok()),
        })
    }

    async fn head_opt(&self, rel_path: &str) -> Result<Option<Head>, BackendError> {
        match self.head_key(&self.key(rel_path)?).await {
            Ok(h) => Ok(Some(h)),
            Err(BackendError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Size of a data object, `None` if it does not exist.
    pub async fn data_len(&self, rel_path: &str) -> Result<Option<u64>, BackendError> {
        Ok(self.head_opt(rel_path).await?.map(|h| h.len))
    }

    /// How long ago an object was last written, `None` if it does not exist.
    pub async fn file_age(&self, rel_path: &str) -> Result<Option<Duration>, BackendError> {
        Ok(self.head_opt(rel_path).await?.map(|h| {
            h.modified
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default()
        }))
    }

    /// Re-reads an object and hashes it (MD5 and SHA-256), for bit-rot checks.
    pub async fn hash_file(&self, rel_path: &str) -> Result<Digests, BackendError> {
        self.hash_file_with(rel_path, |_| {}).await
    }

    /// As `hash_file`, telling `progress` each chunk's length as it arrives.
    pub async fn hash_file_with(
        &self,
        rel_path: &str,
        progress: impl Fn(u64) + Send + 'static,
    ) -> Result<Digests, BackendError> {
        let key = self.key(rel_path)?;
        let len = self.head_key(&key).await?.len;
        let body = self.get_range(&key, 0, len, Some(len)).await?;
        hash_stream(body, progress).await
    }

    /// Opens an object for a paced re-read (the scrub); a missing object is `NotFound`.
    pub async fn reread(&self, rel_path: &str) -> Result<RemoteReread, BackendError> {
        let key = self.key(rel_path)?;
        let len = self.head_key(&key).await?.len;
        Ok(RemoteReread {
            remote: self.clone(),
            key,
            len,
            read: 0,
            hasher: Some(Sha256::new()),
        })
    }
}

/// An object being re-read from its start, one ranged GET per chunk so that the pauses the
/// caller makes between chunks hold no connection open.
pub struct RemoteReread {
    remote: S3Remote,
    key: String,
    len: u64,
    read: u64,
    /// `None` only after a failed chunk.
    hasher: Option<Sha256>,
}

impl RemoteReread {
    /// The object's size when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the object was empty when it was opened.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads and hashes up to `max` (at least [`MIN_REREAD_CHUNK`]) more bytes; 0 at the end.
    pub async fn next_chunk(&mut self, max: usize) -> Result<usize, BackendError> {
        let Some(mut hasher) = self.hasher.take() else {
            return Err(BackendError::Io(io::Error::other(format!(
                "{}: an earlier read failed",
                self.key
            ))));
        };
        let n = (self.len - self.read).min(max.max(MIN_REREAD_CHUNK) as u64);
        if n == 0 {
            self.hasher = Some(hasher);
            return Ok(0);
        }
        let mut body = self
            .remote
            .get_range(&self.key, self.read, n, Some(self.len))
            .await?;
        let mut chunks = Vec::new();
        while let Some(c) = futures::StreamExt::next(&mut body).await {
            chunks.push(c?);
        }
        let hasher = blocking(move || {
            for c in &chunks {
                hasher.update(c);
            }
            Ok(hasher)
        })
        .await?;
        self.hasher = Some(hasher);
        self.read += n;
        Ok(n as usize)
    }

    /// Bytes read so far and the SHA-256 (hex) of them.
    pub fn finish(self) -> (u64, String) {
        let hash = self
            .hasher
            .map(|h| hex::encode(h.finalize()))
            .unwrap_or_default();
        (self.read, hash)
    }
}
