//! `S3Remote` as the [`Backend`] of one storage element.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{RemoteReread, RemoteStaged, S3Remote};
use crate::attr::AttrJson;
use crate::backend::{Backend, BodyStream, PartSlice, Progress, Reread};
use crate::digest::{ChecksumAlgorithm, Digests};
use crate::error::BackendError;
use crate::naming::StorageName;
use crate::range::ObjectStream;
use crate::staging::Staged;

/// Temp objects younger than this may be another node's upload in flight: start-up leaves
/// them (as `index verify` leaves writes in flight alone).
const TEMP_GRACE: Duration = Duration::from_secs(15 * 60);

fn staged(r: RemoteStaged) -> Staged {
    Staged::new(r.digests.clone(), r)
}

#[async_trait]
impl Backend for S3Remote {
    fn describe(&self) -> String {
        format!("s3 {}/{}/{}", self.endpoint(), self.bucket(), self.prefix())
    }

    async fn check(&self) -> Result<(), BackendError> {
        S3Remote::check(self).await
    }

    async fn create(&self, element_json: &[u8]) -> Result<(), BackendError> {
        self.create_element(element_json).await
    }

    async fn remove(&self) -> Result<(), BackendError> {
        self.remove_element().await
    }

    async fn read_element_json(&self) -> Result<Option<Vec<u8>>, BackendError> {
        S3Remote::read_element_json(self).await
    }

    async fn write_element_json(&self, element_json: &[u8]) -> Result<(), BackendError> {
        S3Remote::write_element_json(self, element_json).await
    }

    async fn stage(
        &self,
        name: &StorageName,
        body: BodyStream,
        extra: &[ChecksumAlgorithm],
    ) -> Result<Staged, BackendError> {
        S3Remote::stage(self, name, body, extra).await.map(staged)
    }

    async fn commit(
        &self,
        staged: Staged,
        name: &StorageName,
        attr: &AttrJson,
    ) -> Result<(), BackendError> {
        S3Remote::commit(self, staged.into_handle()?, name, attr).await
    }

    async fn write_attr(&self, attr_rel: &str, attr: &AttrJson) -> Result<(), BackendError> {
        S3Remote::write_attr(self, attr_rel, attr).await
    }

    async fn read_attr_bytes(&self, attr_rel: &str) -> Result<Vec<u8>, BackendError> {
        self.get_small(attr_rel).await
    }

    async fn open_range(
        &self,
        rel: &str,
        start: u64,
        len: u64,
    ) -> Result<ObjectStream, BackendError> {
        S3Remote::open_range(self, rel, start, len).await
    }

    async fn open_object_range(
        &self,
        rel: &str,
        size: u64,
        start: u64,
        len: u64,
    ) -> Result<ObjectStream, BackendError> {
        S3Remote::open_object_range(self, rel, size, start, len).await
    }

    async fn delete(&self, rel: &str) -> Result<(), BackendError> {
        S3Remote::delete(self, rel).await
    }

    async fn stage_part(
        &self,
        upload_id: &str,
        part_number: u32,
        body: BodyStream,
        extra: &[ChecksumAlgorithm],
    ) -> Result<Staged, BackendError> {
        S3Remote::stage_part(self, upload_id, part_number, body, extra)
            .await
            .map(staged)
    }

    async fn commit_part(
        &self,
        staged: Staged,
        upload_id: &str,
        part_number: u32,
    ) -> Result<(), BackendError> {
        S3Remote::commit_part(self, staged.into_handle()?, upload_id, part_number).await
    }

    /// Server-side (UploadPartCopy) when every slice but the last is big enough for a remote
    /// part; otherwise the slices are streamed through once into a new upload.
    async fn assemble(
        &self,
        name: &StorageName,
        upload_id: &str,
        parts: &[PartSlice],
    ) -> Result<Staged, BackendError> {
        let slices: Vec<(String, u64, u64)> = parts
            .iter()
            .map(|p| {
                (
                    super::part_rel_key(upload_id, p.part_number),
                    p.start,
                    p.len,
                )
            })
            .collect();
        let server_side = slices.len() > 1
            && slices[..slices.len() - 1]
                .iter()
                .all(|(_, _, len)| *len >= super::MIN_PART_SIZE as u64);
        if server_side {
            return S3Remote::assemble(self, name, &slices).await.map(staged);
        }
        let remote = self.clone();
        let body = crate::concat::concat(
            slices,
            Box::new(move |(rel, start, len)| {
                let remote = remote.clone();
                Box::pin(async move { remote.open_range(&rel, start, len).await })
            }),
        );
        S3Remote::stage(self, name, Box::pin(body), &[])
            .await
            .map(staged)
    }

    async fn remove_upload(&self, upload_id: &str) -> Result<(), BackendError> {
        S3Remote::remove_upload(self, upload_id).await
    }

    async fn upload_ids(&self) -> Result<Vec<String>, BackendError> {
        self.upload_dirs().await
    }

    async fn hour_dirs(&self, since: Option<OffsetDateTime>) -> Result<Vec<String>, BackendError> {
        S3Remote::hour_dirs(self, since).await
    }

    async fn files_in(&self, dirs: &[String]) -> Result<Vec<String>, BackendError> {
        S3Remote::files_in(self, dirs).await
    }

    async fn root_sidecars(&self) -> Result<Vec<String>, BackendError> {
        S3Remote::root_sidecars(self).await
    }

    async fn quarantine(&self, rel: &str, label: &str) -> Result<String, BackendError> {
        S3Remote::quarantine(self, rel, label).await
    }

    async fn data_len(&self, rel: &str) -> Result<Option<u64>, BackendError> {
        S3Remote::data_len(self, rel).await
    }

    async fn file_age(&self, rel: &str) -> Result<Option<Duration>, BackendError> {
        S3Remote::file_age(self, rel).await
    }

    async fn hash_file(&self, rel: &str, progress: Progress) -> Result<Digests, BackendError> {
        self.hash_file_with(rel, progress).await
    }

    async fn reread(&self, rel: &str) -> Result<Box<dyn Reread>, BackendError> {
        Ok(Box::new(S3Remote::reread(self, rel).await?))
    }

    async fn remove_temp_files(&self) -> Result<u64, BackendError> {
        self.remove_temp_objects(TEMP_GRACE).await
    }
}

#[async_trait]
impl Reread for RemoteReread {
    fn len(&self) -> u64 {
        RemoteReread::len(self)
    }

    async fn next_chunk(&mut self, max: usize) -> Result<usize, BackendError> {
        RemoteReread::next_chunk(self, max).await
    }

    fn finish(self: Box<Self>) -> (u64, String) {
        RemoteReread::finish(*self)
    }
}
