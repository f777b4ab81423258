//! Hashing bodies in order on blocking threads (MD5 on one, SHA-256 and the extras on
//! another), while the async task moves bytes to and from the remote.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::task::JoinHandle;

use crate::digest::{ChecksumAlgorithm, Digests, Hasher, Md5Part, RestPart};
use crate::error::BackendError;
use crate::staging::join_error;

/// Chunks smaller than this are gathered before a hashing job is started for them.
const HASH_BATCH: usize = 1 << 20;

enum Slot<T> {
    Ready(T),
    Running(JoinHandle<T>),
}

impl<T> Slot<T> {
    async fn wait(self) -> Result<T, BackendError> {
        match self {
            Slot::Ready(t) => Ok(t),
            Slot::Running(h) => h.await.map_err(join_error),
        }
    }
}

/// An ordered hashing pipeline: each pushed batch is hashed after the ones before it, at
/// most one batch per half in flight.
pub(crate) struct HashPipe {
    /// `None` only after a hashing job failed.
    md5: Option<Slot<Md5Part>>,
    rest: Option<Slot<RestPart>>,
}

impl HashPipe {
    pub(crate) fn new(extra: &[ChecksumAlgorithm]) -> Self {
        let (md5, rest) = Hasher::new(extra).split();
        HashPipe {
            md5: Some(Slot::Ready(md5)),
            rest: Some(Slot::Ready(rest)),
        }
    }

    /// Waits for the previous batch, then starts hashing `data`.
    pub(crate) async fn push(&mut self, data: Bytes) -> Result<(), BackendError> {
        if data.is_empty() {
            return Ok(());
        }
        let (mut md5, mut rest) = self.take().await?;
        let for_md5 = data.clone();
        self.md5 = Some(Slot::Running(tokio::task::spawn_blocking(move || {
            md5.update(&for_md5);
            md5
        })));
        self.rest = Some(Slot::Running(tokio::task::spawn_blocking(move || {
            rest.update(&data);
            rest
        })));
        Ok(())
    }

    async fn take(&mut self) -> Result<(Md5Part, RestPart), BackendError> {
        match (self.md5.take(), self.rest.take()) {
            (Some(m), Some(r)) => Ok((m.wait().await?, r.wait().await?)),
            _ => Err(BackendError::Io(std::io::Error::other(
                "an earlier hashing job failed",
            ))),
        }
    }

    pub(crate) async fn finish(mut self) -> Result<Digests, BackendError> {
        let (md5, rest) = self.take().await?;
        Ok(rest.finalize(md5.finalize()))
    }
}

/// Hashes a whole stream (MD5, SHA-256), telling `progress` each chunk's length.
pub(crate) async fn hash_stream<S>(
    mut body: S,
    progress: impl Fn(u64),
) -> Result<Digests, BackendError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    let mut pipe = HashPipe::new(&[]);
    let mut batch = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        progress(chunk.len() as u64);
        batch.extend_from_slice(&chunk);
        if batch.len() >= HASH_BATCH {
            pipe.push(batch.split().freeze()).await?;
        }
    }
    pipe.push(batch.freeze()).await?;
    pipe.finish().await
}
