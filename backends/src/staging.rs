//! Streaming a body into a temp file while hashing it.
//!
//! Small bodies (they end within the first 1 MiB batch) are written and hashed in a single
//! blocking call. Larger ones are cut into ~1 MiB batches; for each batch MD5 runs as one
//! blocking job and SHA-256 + extras + the file write as another, in parallel, while the async
//! task pulls the next batch from the body. At most two batches are in memory, and no blocking
//! thread is held while waiting on a slow client.

use std::any::Any;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::task::JoinHandle;

use crate::digest::{ChecksumAlgorithm, Digests, Hasher};
use crate::error::BackendError;
use crate::fsutil::{IoContext, ensure_dir, remove_if_exists, temp_path};

/// Size of write batches (and of read chunks, see `range`).
pub(crate) const IO_CHUNK: usize = 1 << 20;
/// Incoming chunks at least this large are written as they are, without coalescing.
const DIRECT_CHUNK: usize = 256 << 10;

/// Data stored by `stage`, `stage_part` or `assemble` of some backend, not yet visible under
/// its final name. What it holds beside the digests is the backend's own (a local temp file,
/// a remote upload in progress); dropping it uncommitted discards that.
pub struct Staged {
    pub digests: Digests,
    handle: Box<dyn Any + Send>,
}

impl Staged {
    /// Wraps what a backend needs to commit (or, when dropped, discard) the staged data.
    pub(crate) fn new(digests: Digests, handle: impl Any + Send) -> Self {
        Staged {
            digests,
            handle: Box::new(handle),
        }
    }

    /// The backend's handle back; a `Staged` of another backend is refused, never committed.
    pub(crate) fn into_handle<T: Any>(self) -> Result<T, BackendError> {
        self.handle.downcast::<T>().map(|b| *b).map_err(|_| {
            BackendError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "staged data belongs to another backend",
            ))
        })
    }
}

impl fmt::Debug for Staged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Staged")
            .field("digests", &self.digests)
            .finish_non_exhaustive()
    }
}

/// A temp file shared by the staging task and its blocking jobs.
pub(crate) struct TempFile {
    path: PathBuf,
    /// Set once the staging was given up; a job must not create the file after that,
    /// or it would be left behind when the future is dropped mid-upload.
    abandoned: Mutex<bool>,
}

impl TempFile {
    fn new(dir: &Path) -> Arc<Self> {
        Arc::new(TempFile {
            path: temp_path(dir),
            abandoned: Mutex::new(false),
        })
    }

    fn create(&self) -> Result<File, BackendError> {
        let abandoned = self
            .abandoned
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *abandoned {
            return Err(BackendError::Body("upload abandoned".to_owned()));
        }
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
            .at(&self.path)
    }

    fn discard(&self) {
        let mut abandoned = self
            .abandoned
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *abandoned = true;
        remove_if_exists(&self.path);
    }
}

/// Removes the temp file on drop unless disarmed (after it was renamed into place).
pub(crate) struct TempGuard {
    file: Arc<TempFile>,
    armed: bool,
}

impl TempGuard {
    pub(crate) fn path(&self) -> &Path {
        &self.file.path
    }

    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            self.file.discard();
        }
    }
}

/// Writes the temp file on a blocking thread; creates the directory and file lazily.
struct Writer {
    temp: Arc<TempFile>,
    dir: PathBuf,
    file: Option<File>,
}

impl Writer {
    fn file(&mut self) -> Result<&mut File, BackendError> {
        let file = match self.file.take() {
            Some(f) => f,
            None => {
                ensure_dir(&self.dir)?;
                self.temp.create()?
            }
        };
        Ok(self.file.insert(file))
    }

    fn write(&mut self, data: &[u8]) -> Result<(), BackendError> {
        let path = self.temp.path.clone();
        self.file()?.write_all(data).at(&path)
    }

    fn finish(mut self) -> Result<(), BackendError> {
        let path = self.temp.path.clone();
        self.file()?.sync_all().at(&path)
    }
}

/// Coalesces body chunks into batches of about `IO_CHUNK` bytes.
struct Batcher<S> {
    body: S,
    buf: BytesMut,
    pending: Option<Bytes>,
    done: bool,
}

impl<S> Batcher<S>
where
    S: Stream<Item = Result<Bytes, BackendError>> + Unpin,
{
    fn new(body: S) -> Self {
        Batcher {
            body,
            buf: BytesMut::new(),
            pending: None,
            done: false,
        }
    }

    fn take_buf(&mut self) -> Bytes {
        self.buf.split().freeze()
    }

    async fn next(&mut self) -> Result<Option<Bytes>, BackendError> {
        loop {
            if let Some(chunk) = self.pending.take() {
                if self.buf.is_empty() && chunk.len() >= DIRECT_CHUNK {
                    return Ok(Some(chunk));
                }
                if !self.buf.is_empty() && self.buf.len() + chunk.len() > IO_CHUNK {
                    self.pending = Some(chunk);
                    return Ok(Some(self.take_buf()));
                }
                if self.buf.is_empty() {
                    // Reuses the old allocation once the previous batch is dropped.
                    self.buf.reserve(IO_CHUNK);
                }
                self.buf.extend_from_slice(&chunk);
                if self.buf.len() >= IO_CHUNK {
                    return Ok(Some(self.take_buf()));
                }
                continue;
            }
            if self.done {
                return Ok((!self.buf.is_empty()).then(|| self.take_buf()));
            }
            match self.body.next().await {
                None => self.done = true,
                Some(Err(e)) => return Err(e),
                Some(Ok(chunk)) if chunk.is_empty() => {}
                Some(Ok(chunk)) => self.pending = Some(chunk),
            }
        }
    }

    /// The body has ended and everything was handed out.
    fn is_finished(&self) -> bool {
        self.done && self.pending.is_none() && self.buf.is_empty()
    }
}

/// State moved into a blocking job and back.
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

pub(crate) fn join_error(e: tokio::task::JoinError) -> BackendError {
    BackendError::Io(std::io::Error::other(format!("blocking task failed: {e}")))
}

/// Runs blocking filesystem work off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, BackendError>
where
    F: FnOnce() -> Result<T, BackendError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(join_error)?
}

/// Streams `body` into a new fsynced temp file in `dir`, hashing it on the way.
pub(crate) async fn stage_in<S>(
    dir: PathBuf,
    body: S,
    extra: &[ChecksumAlgorithm],
) -> Result<Staged, BackendError>
where
    S: Stream<Item = Result<Bytes, BackendError>> + Unpin,
{
    let temp = TempFile::new(&dir);
    let guard = TempGuard {
        file: temp.clone(),
        armed: true,
    };
    let mut batches = Batcher::new(body);
    let hasher = Hasher::new(extra);
    let writer = Writer {
        temp,
        dir,
        file: None,
    };

    let first = batches.next().await?;
    if batches.is_finished() {
        // Small body: one hop to a blocking thread for everything.
        let digests = blocking(move || {
            let (mut hasher, mut writer) = (hasher, writer);
            if let Some(data) = &first {
                hasher.update(data);
                writer.write(data)?;
            }
            writer.finish()?;
            Ok(hasher.finalize())
        })
        .await?;
        return Ok(Staged::new(digests, guard));
    }

    let (md5, rest) = hasher.split();
    let mut md5_slot = Slot::Ready(md5);
    let mut rest_slot = Slot::Ready(Ok::<_, BackendError>((rest, writer)));
    let mut next = first;
    while let Some(batch) = next {
        let mut md5 = md5_slot.wait().await?;
        let (mut rest, mut writer) = rest_slot.wait().await??;
        let for_md5 = batch.clone();
        md5_slot = Slot::Running(tokio::task::spawn_blocking(move || {
            md5.update(&for_md5);
            md5
        }));
        rest_slot = Slot::Running(tokio::task::spawn_blocking(move || {
            rest.update(&batch);
            writer.write(&batch)?;
            Ok((rest, writer))
        }));
        next = batches.next().await?;
    }
    let md5 = md5_slot.wait().await?;
    let (rest, writer) = rest_slot.wait().await??;
    let digests = blocking(move || {
        writer.finish()?;
        Ok(rest.finalize(md5.finalize()))
    })
    .await?;
    Ok(Staged::new(digests, guard))
}
