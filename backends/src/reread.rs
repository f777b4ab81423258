//! Re-reading a stored data file chunk by chunk, each chunk read and hashed (SHA-256) on a
//! blocking thread, so that the caller can pace the reads (the background scrub).

use std::fs::File;
use std::io::Read as _;
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use crate::backend::Reread;
use crate::error::BackendError;
use crate::fsutil::{IoContext, rel_join};
use crate::local::LocalFs;
use crate::staging::blocking;

/// The smallest chunk a re-read asks for: smaller reads are slow on this disk (DESIGN §9).
pub const MIN_REREAD_CHUNK: usize = 256 * 1024;

/// An open data file being re-read from its start.
pub struct FileReread {
    path: PathBuf,
    /// `None` only while a chunk is being read on the blocking pool.
    state: Option<(File, Sha256)>,
    len: u64,
    read: u64,
}

impl LocalFs {
    /// Opens an object's data file for a paced re-read; a missing file is `NotFound`.
    pub async fn reread(&self, bucket: &str, rel_path: &str) -> Result<FileReread, BackendError> {
        let path = rel_join(&self.element_root(bucket), rel_path)?;
        blocking(move || {
            let file = File::open(&path).at(&path)?;
            let len = file.metadata().at(&path)?.len();
            Ok(FileReread {
                path,
                state: Some((file, Sha256::new())),
                len,
                read: 0,
            })
        })
        .await
    }
}

#[async_trait::async_trait]
impl Reread for FileReread {
    fn len(&self) -> u64 {
        self.len
    }

    async fn next_chunk(&mut self, max: usize) -> Result<usize, BackendError> {
        let Some((mut file, mut hasher)) = self.state.take() else {
            return Err(BackendError::Io(std::io::Error::other(format!(
                "{}: an earlier read failed",
                self.path.display()
            ))));
        };
        let path = self.path.clone();
        let max = max.max(MIN_REREAD_CHUNK);
        let (file, hasher, n) = blocking(move || {
            let mut buf = Vec::with_capacity(max);
            file.by_ref()
                .take(max as u64)
                .read_to_end(&mut buf)
                .at(&path)?;
            hasher.update(&buf);
            Ok((file, hasher, buf.len()))
        })
        .await?;
        self.state = Some((file, hasher));
        self.read += n as u64;
        Ok(n)
    }

    fn finish(self: Box<Self>) -> (u64, String) {
        let hash = self
            .state
            .map(|(_, h)| hex::encode(h.finalize()))
            .unwrap_or_default();
        (self.read, hash)
    }
}
