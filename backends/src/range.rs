//! Reading a byte range of a file as a stream of 1 MiB chunks.
//!
//! Each chunk is one blocking job reading straight into a fresh buffer (no intermediate copy),
//! and the next chunk is read ahead while the current one is being sent. No blocking thread is
//! held while a slow client drains the stream.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::error::BackendError;
use crate::fsutil::IoContext;
use crate::staging::{IO_CHUNK, blocking};

/// Object data as a stream of chunks.
pub type ObjectStream =
    Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send + Sync + 'static>>;

/// Opens `path` and reads its first chunk; fails if the file is missing or shorter than
/// `start + len`, or (`SizeMismatch`) when its size is not `whole`, if given.
pub(crate) async fn open_file_range(
    path: PathBuf,
    start: u64,
    len: u64,
    whole: Option<u64>,
) -> Result<ObjectStream, BackendError> {
    let (file, first) = blocking(move || {
        let mut file = File::open(&path).at(&path)?;
        let size = file.metadata().at(&path)?.len();
        if let Some(expected) = whole.filter(|w| *w != size) {
            return Err(BackendError::SizeMismatch {
                path: path.display().to_string(),
                expected,
                actual: size,
            });
        }
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(BackendError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: range {start}+{len} is beyond the file size {size}",
                    path.display()
                ),
            )));
        }
        file.seek(SeekFrom::Start(start)).at(&path)?;
        let first = read_chunk(&mut file, len.min(IO_CHUNK as u64) as usize).at(&path)?;
        Ok((file, first))
    })
    .await?;
    let remaining = len - first.len() as u64;
    let mut stream = RangeStream {
        runtime: Handle::current(),
        ready: (!first.is_empty()).then_some(first),
        file: Some(file),
        inflight: None,
        remaining,
        failed: false,
    };
    stream.read_ahead();
    Ok(Box::pin(stream))
}

/// Reads exactly `n` bytes from the current position.
fn read_chunk(file: &mut File, n: usize) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(n);
    // `File` reads into the spare capacity directly: no zero-filling.
    file.by_ref().take(n as u64).read_to_end(&mut buf)?;
    if buf.len() < n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "file was truncated while being read",
        ));
    }
    Ok(Bytes::from(buf))
}

struct RangeStream {
    /// Spawns the reads; captured so polling works from any context.
    runtime: Handle,
    /// A chunk read but not yet returned.
    ready: Option<Bytes>,
    /// The file, when no read is in flight.
    file: Option<File>,
    inflight: Option<JoinHandle<(File, io::Result<Bytes>)>>,
    /// Bytes not yet handed to a read.
    remaining: u64,
    failed: bool,
}

impl RangeStream {
    fn read_ahead(&mut self) {
        if self.remaining == 0 || self.inflight.is_some() {
            return;
        }
        let Some(mut file) = self.file.take() else {
            return;
        };
        let n = self.remaining.min(IO_CHUNK as u64) as usize;
        self.remaining -= n as u64;
        self.inflight = Some(self.runtime.spawn_blocking(move || {
            let chunk = read_chunk(&mut file, n);
            (file, chunk)
        }));
    }
}

impl Stream for RangeStream {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        if let Some(chunk) = this.ready.take() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        let Some(handle) = this.inflight.as_mut() else {
            return Poll::Ready(None);
        };
        let result = match Pin::new(handle).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r,
        };
        this.inflight = None;
        match result {
            Ok((file, Ok(chunk))) => {
                this.file = Some(file);
                this.read_ahead();
                Poll::Ready(Some(Ok(chunk)))
            }
            Ok((_, Err(e))) => {
                this.failed = true;
                Poll::Ready(Some(Err(e)))
            }
            Err(e) => {
                this.failed = true;
                Poll::Ready(Some(Err(io::Error::other(format!(
                    "read task failed: {e}"
                )))))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pending = usize::from(self.ready.is_some()) + usize::from(self.inflight.is_some());
        let more = self.remaining.div_ceil(IO_CHUNK as u64) as usize;
        (pending + more, Some(pending + more))
    }
}
