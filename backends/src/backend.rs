//! The one storage abstraction: every byte and sidecar of a storage element goes through a
//! [`Backend`], one instance per element, every name relative to the element root
//! (`YYYY/MM/DD/HH/<file>`, `<file>.attr.json`, `element.json`); multipart parts are named by
//! upload id and part number, never by path. Methods map onto plain object-store calls
//! (PUT, ranged GET, HEAD, DELETE, LIST by prefix), so a remote S3 service can implement them.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use time::OffsetDateTime;

use crate::attr::AttrJson;
use crate::digest::{ChecksumAlgorithm, Digests};
use crate::error::BackendError;
use crate::legacy::{Adopted, KeyTemplate};
use crate::naming::StorageName;
use crate::range::ObjectStream;
use crate::staging::Staged;

/// A body to store, as the trait takes it (boxed, so the trait stays object safe).
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BackendError>> + Send>>;

/// Told the length of each chunk a long read has hashed (progress bars of verify).
pub type Progress = Box<dyn Fn(u64) + Send + Sync>;

/// Boxes any body stream for the trait; its errors become `BackendError::Body`.
pub fn body_stream<S, E>(body: S) -> BodyStream
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: fmt::Display,
{
    Box::pin(body.map(|r| r.map_err(|e| BackendError::Body(e.to_string()))))
}

/// A byte range of one uploaded part, in the order `assemble` concatenates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSlice {
    pub part_number: u32,
    pub start: u64,
    pub len: u64,
}

/// A stored data file being re-read at the caller's pace (the background scrub), hashing
/// (SHA-256) what it reads.
#[async_trait]
pub trait Reread: Send {
    /// The file's size when it was opened.
    fn len(&self) -> u64;

    /// Whether the file was empty when it was opened.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads and hashes up to `max` (at least [`crate::MIN_REREAD_CHUNK`]) more bytes; 0 at
    /// the end.
    async fn next_chunk(&mut self, max: usize) -> Result<usize, BackendError>;

    /// Bytes read so far and the SHA-256 (hex) of them.
    fn finish(self: Box<Self>) -> (u64, String);
}

/// Where one storage element's objects, sidecars, multipart parts and `element.json` live.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// What holds the element's bytes, for messages (`local`, `s3 http://host/bucket/prefix/`).
    fn describe(&self) -> String;

    /// One cheap request that fails when the storage cannot be used (readiness); storage on
    /// this machine has nothing to check.
    async fn check(&self) -> Result<(), BackendError> {
        Ok(())
    }

    // --- the element itself ---

    /// Makes the element's (empty) storage and writes its first `element.json`; storage
    /// that already holds files is refused.
    async fn create(&self, element_json: &[u8]) -> Result<(), BackendError>;

    /// Removes everything the element stored; nothing stored is fine.
    async fn remove(&self) -> Result<(), BackendError>;

    /// The element's `element.json`, if it has one.
    async fn read_element_json(&self) -> Result<Option<Vec<u8>>, BackendError>;

    /// Atomically (re)writes `element.json`.
    async fn write_element_json(&self, element_json: &[u8]) -> Result<(), BackendError>;

    // --- objects ---

    /// Streams `body` towards the object's final place `name`, computing MD5, SHA-256 and
    /// `extra` in one pass; nothing is visible until `commit`. A body error gives
    /// `BackendError::Body` and leaves nothing behind.
    async fn stage(
        &self,
        name: &StorageName,
        body: BodyStream,
        extra: &[ChecksumAlgorithm],
    ) -> Result<Staged, BackendError>;

    /// Makes staged data visible as `name` with its sidecar: durable when this returns (data
    /// first, sidecar after, so a crash between leaves data without sidecar, which recovery
    /// removes).
    async fn commit(
        &self,
        staged: Staged,
        name: &StorageName,
        attr: &AttrJson,
    ) -> Result<(), BackendError>;

    /// Atomically rewrites a sidecar (metadata-only updates).
    async fn write_attr(&self, attr_rel: &str, attr: &AttrJson) -> Result<(), BackendError>;

    /// A sidecar's bytes exactly as stored.
    async fn read_attr_bytes(&self, attr_rel: &str) -> Result<Vec<u8>, BackendError>;

    /// Reads and parses a sidecar (v1 is migrated in memory).
    async fn read_attr(&self, attr_rel: &str) -> Result<AttrJson, BackendError> {
        AttrJson::parse(&self.read_attr_bytes(attr_rel).await?)
    }

    /// Streams `[start, start + len)` of a data file. Missing: `NotFound`; a range past the
    /// end: an `UnexpectedEof` I/O error.
    async fn open_range(
        &self,
        rel: &str,
        start: u64,
        len: u64,
    ) -> Result<ObjectStream, BackendError>;

    /// As `open_range`, for an object whose data must be `size` bytes: any other size is
    /// `SizeMismatch`, never served.
    async fn open_object_range(
        &self,
        rel: &str,
        size: u64,
        start: u64,
        len: u64,
    ) -> Result<ObjectStream, BackendError>;

    /// Removes data and sidecar (sidecar first); missing ones are not an error.
    async fn delete(&self, rel: &str) -> Result<(), BackendError>;

    // --- multipart uploads ---

    /// Stages one part of an upload (see `stage`).
    async fn stage_part(
        &self,
        upload_id: &str,
        part_number: u32,
        body: BodyStream,
        extra: &[ChecksumAlgorithm],
    ) -> Result<Staged, BackendError>;

    /// Puts a staged part in place, replacing an earlier upload of the same part.
    async fn commit_part(
        &self,
        staged: Staged,
        upload_id: &str,
        part_number: u32,
    ) -> Result<(), BackendError>;

    /// Concatenates slices of the upload's parts towards the object's final place `name`,
    /// in one pass computing MD5 and SHA-256 of the whole; committed like `stage`'s result.
    async fn assemble(
        &self,
        name: &StorageName,
        upload_id: &str,
        parts: &[PartSlice],
    ) -> Result<Staged, BackendError>;

    /// Removes an upload's parts; none is fine.
    async fn remove_upload(&self, upload_id: &str) -> Result<(), BackendError>;

    /// Upload ids that have parts stored.
    async fn upload_ids(&self) -> Result<Vec<String>, BackendError>;

    // --- scanning: recovery, rebuild, verify, scrub, restore ---

    /// The hour directories (`YYYY/MM/DD/HH`) that may hold changes made at or after `since`:
    /// those named for a later hour and those whose entries changed since (all when `None`).
    async fn hour_dirs(&self, since: Option<OffsetDateTime>) -> Result<Vec<String>, BackendError>;

    /// Relative names of every file (data, sidecars, temp files) in the given hour dirs.
    async fn files_in(&self, dirs: &[String]) -> Result<Vec<String>, BackendError>;

    /// Sidecars directly in the element root (an imported flat layout).
    async fn root_sidecars(&self) -> Result<Vec<String>, BackendError>;

    /// Sidecars of the element, only in hour directories at or after `since` when given.
    async fn sidecars(&self, since: Option<OffsetDateTime>) -> Result<Vec<String>, BackendError> {
        let dirs = self.hour_dirs(since).await?;
        let mut out = self.files_in(&dirs).await?;
        out.retain(|r| crate::scan::is_sidecar(r));
        if since.is_none() {
            out.extend(self.root_sidecars().await?);
        }
        Ok(out)
    }

    /// Moves a file out of the layout into `.quarantine/<label>/<rel>` and returns its new
    /// relative name; nothing is deleted, nothing existing replaced.
    async fn quarantine(&self, rel: &str, label: &str) -> Result<String, BackendError>;

    /// Reads a sidecar as an object of `bucket`: ours as it is, a legacy one mapped by
    /// `template`.
    async fn read_adopted(
        &self,
        rel: &str,
        bucket: &str,
        template: &KeyTemplate,
    ) -> Result<Adopted, BackendError> {
        let bytes = self.read_attr_bytes(rel).await?;
        crate::legacy::adopt(&bytes, rel, bucket, template)
            .map_err(|e| BackendError::InvalidAttr(e.to_string()))
    }

    /// Size of a file, `None` if it does not exist.
    async fn data_len(&self, rel: &str) -> Result<Option<u64>, BackendError>;

    /// How long ago a file was last changed, `None` if it does not exist.
    async fn file_age(&self, rel: &str) -> Result<Option<Duration>, BackendError>;

    /// Re-reads a data file and hashes it (MD5 and SHA-256), telling `progress` each chunk.
    async fn hash_file(&self, rel: &str, progress: Progress) -> Result<Digests, BackendError>;

    /// Opens a data file for a paced re-read; missing is `NotFound`.
    async fn reread(&self, rel: &str) -> Result<Box<dyn Reread>, BackendError>;

    /// Removes what interrupted writes left (temp files, abandoned staging); returns how
    /// many. Run at start-up, before serving requests.
    async fn remove_temp_files(&self) -> Result<u64, BackendError>;
}
