//! One local storage element as a [`Backend`]: the files of `LocalFs` under
//! `<data-dir>/elements/<name>/` (a link to the element's own `path` when it has one).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::attr::AttrJson;
use crate::backend::{Backend, BodyStream, PartSlice, Progress, Reread};
use crate::digest::{ChecksumAlgorithm, Digests};
use crate::error::BackendError;
use crate::local::LocalFs;
use crate::naming::StorageName;
use crate::range::ObjectStream;
use crate::staging::Staged;

/// A local element: `LocalFs`'s layout for the element `name`.
#[derive(Debug, Clone)]
pub struct LocalElement {
    fs: LocalFs,
    name: String,
    /// Where `create` puts the files when not under the data dir.
    path: Option<PathBuf>,
}

impl LocalElement {
    pub fn new(fs: LocalFs, name: impl Into<String>, path: Option<PathBuf>) -> Self {
        LocalElement {
            fs,
            name: name.into(),
            path,
        }
    }
}

#[async_trait]
impl Backend for LocalElement {
    fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("local {}", p.display()),
            None => "local".to_owned(),
        }
    }

    async fn create(&self, element_json: &[u8]) -> Result<(), BackendError> {
        self.fs
            .create_element_at(&self.name, self.path.as_deref(), element_json)
            .await
    }

    async fn remove(&self) -> Result<(), BackendError> {
        self.fs.remove_element(&self.name).await
    }

    async fn read_element_json(&self) -> Result<Option<Vec<u8>>, BackendError> {
        self.fs.read_element_json(&self.name).await
    }

    async fn write_element_json(&self, element_json: &[u8]) -> Result<(), BackendError> {
        self.fs.write_element_json(&self.name, element_json).await
    }

    async fn stage(
        &self,
        name: &StorageName,
        body: BodyStream,
        extra: &[ChecksumAlgorithm],
    ) -> Result<Staged, BackendError> {
        self.fs
            .stage_stream(&self.name, &name.rel_dir, body, extra)
            .await
    }

    async fn commit(
        &self,
        staged: Staged,
        name: &StorageName,
        attr: &AttrJson,
    ) -> Result<(), BackendError> {
        self.fs.commit(staged, &self.name, name, attr).await
    }

    async fn write_attr(&self, attr_rel: &str, attr: &AttrJson) -> Result<(), BackendError> {
        self.fs.write_attr(&self.name, attr_rel, attr).await
    }

    async fn read_attr_bytes(&self, attr_rel: &str) -> Result<Vec<u8>, BackendError> {
        self.fs.read_attr_bytes(&self.name, attr_rel).await
    }

    async fn open_range(
        &self,
        rel: &str,
        start: u64,
        len: u64,
    ) -> Result<ObjectStream, BackendError> {
        self.fs.open_range(&self.name, rel, start, len).await
    }

    async fn open_object_range(
        &self,
        rel: &str,
        size: u64,
        start: u64,
        len: u64,
    ) -> Result<ObjectStream, BackendError> {
        self.fs
            .open_object_range(&self.name, rel, size, start, len)
            .await
    }

    async fn delete(&self, rel: &str) -> Result<(), BackendError> {
        self.fs.delete(&self.name, rel).await
    }

    async fn stage_part(
        &self,
        upload_id: &str,
        _part_number: u32,
        body: BodyStream,
        extra: &[ChecksumAlgorithm],
    ) -> Result<Staged, BackendError> {
        self.fs
            .stage_part_stream(&self.name, upload_id, body, extra)
            .await
    }

    async fn commit_part(
        &self,
        staged: Staged,
        upload_id: &str,
        part_number: u32,
    ) -> Result<(), BackendError> {
        self.fs
            .commit_part(staged, &self.name, upload_id, part_number)
            .await
    }

    async fn assemble(
        &self,
        name: &StorageName,
        upload_id: &str,
        parts: &[PartSlice],
    ) -> Result<Staged, BackendError> {
        let files: Vec<_> = parts
            .iter()
            .map(|p| {
                (
                    self.fs.part_path(&self.name, upload_id, p.part_number),
                    p.start,
                    p.len,
                )
            })
            .collect();
        self.fs.assemble(&self.name, &name.rel_dir, &files).await
    }

    async fn remove_upload(&self, upload_id: &str) -> Result<(), BackendError> {
        self.fs.remove_upload(&self.name, upload_id).await
    }

    async fn upload_ids(&self) -> Result<Vec<String>, BackendError> {
        self.fs.upload_dirs(&self.name).await
    }

    async fn hour_dirs(&self, since: Option<OffsetDateTime>) -> Result<Vec<String>, BackendError> {
        self.fs.hour_dirs(&self.name, since).await
    }

    async fn files_in(&self, dirs: &[String]) -> Result<Vec<String>, BackendError> {
        self.fs.files_in(&self.name, dirs).await
    }

    async fn root_sidecars(&self) -> Result<Vec<String>, BackendError> {
        self.fs.root_sidecars(&self.name).await
    }

    async fn quarantine(&self, rel: &str, label: &str) -> Result<String, BackendError> {
        self.fs.quarantine(&self.name, rel, label).await
    }

    async fn data_len(&self, rel: &str) -> Result<Option<u64>, BackendError> {
        self.fs.data_len(&self.name, rel).await
    }

    async fn file_age(&self, rel: &str) -> Result<Option<Duration>, BackendError> {
        self.fs.file_age(&self.name, rel).await
    }

    async fn hash_file(&self, rel: &str, progress: Progress) -> Result<Digests, BackendError> {
        self.fs.hash_file_with(&self.name, rel, progress).await
    }

    async fn reread(&self, rel: &str) -> Result<Box<dyn Reread>, BackendError> {
        Ok(Box::new(self.fs.reread(&self.name, rel).await?))
    }

    async fn remove_temp_files(&self) -> Result<u64, BackendError> {
        self.fs.remove_element_temp_files(&self.name).await
    }
}
