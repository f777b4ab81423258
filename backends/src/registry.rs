//! `Backends`: every storage element's [`Backend`] by element name. Elements created or
//! removed through this node are learnt at once; any other (made by another node or the CLI)
//! is opened from the stored configuration the caller passes, read from the index.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use crate::backend::Backend;
use crate::config::{BackendConfig, LocalConfig, SecretSealer};
use crate::error::BackendError;
use crate::local::LocalFs;
use crate::local_element::LocalElement;
use crate::s3remote::{S3Remote, S3RemoteConfig};

/// Element name -> (stored configuration it was opened from, backend).
type OpenBackends = HashMap<String, (String, Arc<dyn Backend>)>;

/// The registry; cheap to clone (shared state).
#[derive(Clone)]
pub struct Backends {
    inner: Arc<Inner>,
}

struct Inner {
    /// `<data-dir>/elements`: where local elements are (or link to).
    local: LocalFs,
    secrets: Arc<dyn SecretSealer>,
    open: RwLock<OpenBackends>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("local_root", &self.inner.local.root())
            .finish_non_exhaustive()
    }
}

impl Backends {
    /// `local_root` is `<data-dir>/elements`; `secrets` seals and opens remote credentials.
    pub fn new(local_root: impl Into<PathBuf>, secrets: Arc<dyn SecretSealer>) -> Self {
        Backends {
            inner: Arc::new(Inner {
                local: LocalFs::new(local_root),
                secrets,
                open: RwLock::default(),
            }),
        }
    }

    /// The one place a configuration becomes a backend: each kind of backend is added here.
    fn instantiate(
        &self,
        name: &str,
        config: &BackendConfig,
    ) -> Result<Arc<dyn Backend>, BackendError> {
        match config {
            BackendConfig::Local(l) => Ok(Arc::new(LocalElement::new(
                self.inner.local.clone(),
                name,
                l.path.clone(),
            ))),
            BackendConfig::S3(c) => Ok(Arc::new(S3Remote::new(S3RemoteConfig {
                endpoint: c.endpoint.clone(),
                region: c.region.clone(),
                bucket: c.bucket.clone(),
                prefix: c.prefix.clone(),
                path_style: c.path_style,
                access_key_id: c.access_key_id.clone(),
                secret_access_key: c
                    .secret_access_key
                    .as_ref()
                    .map(|s| s.expose().to_owned())
                    .ok_or_else(|| {
                        BackendError::Config("backend.secret_access_key is missing".to_owned())
                    })?,
                ..S3RemoteConfig::default()
            })?)),
        }
    }

    /// The backend of elements created without one (`CreateBucket`): a directory under the
    /// data dir.
    pub fn default_config(&self) -> BackendConfig {
        BackendConfig::Local(LocalConfig::default())
    }

    /// The backend of element `name` whose stored configuration is `stored` (the element's
    /// `backend` column): the one already open when it was opened from the same text.
    pub fn open(&self, name: &str, stored: &str) -> Result<Arc<dyn Backend>, BackendError> {
        if let Some((text, b)) = self.read().get(name)
            && text == stored
        {
            return Ok(b.clone());
        }
        let config = BackendConfig::from_stored(stored, self.inner.secrets.as_ref())?;
        let backend = self.instantiate(name, &config)?;
        self.write()
            .insert(name.to_owned(), (stored.to_owned(), backend.clone()));
        Ok(backend)
    }

    /// The backend of `name` if this node has it open (no index read needed).
    pub fn cached(&self, name: &str) -> Option<Arc<dyn Backend>> {
        self.read().get(name).map(|(_, b)| b.clone())
    }

    /// The backend of `name` from its stored configuration, or (`None`: the index does not
    /// know the element) the local directory of that name, where `index rebuild` finds
    /// elements to restore.
    pub fn open_or_local(
        &self,
        name: &str,
        stored: Option<&str>,
    ) -> Result<Arc<dyn Backend>, BackendError> {
        match stored {
            Some(s) => self.open(name, s),
            None => Ok(Arc::new(LocalElement::new(
                self.inner.local.clone(),
                name,
                None,
            ))),
        }
    }

    /// Checks that `config` can be opened and returns it in its stored form (secrets
    /// sealed), before anything is created.
    pub fn prepare(&self, name: &str, config: &BackendConfig) -> Result<String, BackendError> {
        self.instantiate(name, config)?;
        config.to_stored(self.inner.secrets.as_ref())
    }

    /// Creates the element's storage with its first `element.json` and remembers the backend.
    pub async fn create(
        &self,
        name: &str,
        stored: &str,
        element_json: &[u8],
    ) -> Result<Arc<dyn Backend>, BackendError> {
        self.forget(name);
        let backend = self.open(name, stored)?;
        if let Err(e) = backend.create(element_json).await {
            self.forget(name);
            return Err(e);
        }
        Ok(backend)
    }

    /// Removes the element's storage (after the index let the element go) and forgets it.
    pub async fn remove(&self, name: &str, stored: &str) -> Result<(), BackendError> {
        let backend = self.open(name, stored);
        self.forget(name);
        backend?.remove().await
    }

    /// Forgets an element's backend (removed, or its configuration is no longer current).
    pub fn forget(&self, name: &str) {
        self.write().remove(name);
    }

    /// Names of the local element directories under the data dir.
    pub async fn local_element_names(&self) -> Result<Vec<String>, BackendError> {
        self.inner.local.element_names().await
    }

    /// The configuration a local element found on disk has: its own root path when the
    /// element directory is a link to one.
    pub fn local_config_on_disk(&self, name: &str) -> LocalConfig {
        LocalConfig {
            path: self.inner.local.element_path(name),
            import: None,
        }
    }

    /// Makes the existing directory `path` of an earlier implementation the root of local
    /// element `name` (only `element.json` is added); see `LocalFs::adopt_element_at`.
    pub async fn adopt_local(
        &self,
        name: &str,
        path: &Path,
        element_json: &[u8],
    ) -> Result<(), BackendError> {
        self.forget(name);
        self.inner
            .local
            .adopt_element_at(name, path, element_json)
            .await
    }

    /// Takes back `adopt_local` when the index refused the element.
    pub async fn unadopt_local(&self, name: &str) -> Result<(), BackendError> {
        self.forget(name);
        self.inner.local.unadopt_element(name).await
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, OpenBackends> {
        self.inner
            .open
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, OpenBackends> {
        self.inner
            .open
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::AttrJson;
    use crate::backend::{PartSlice, body_stream};
    use crate::naming::storage_name;
    use bytes::Bytes;
    use futures::StreamExt;

    struct Plain;
    impl SecretSealer for Plain {
        fn seal(&self, plain: &str) -> Result<String, String> {
            Ok(format!("sealed:{plain}"))
        }
        fn open(&self, sealed: &str) -> Result<String, String> {
            sealed
                .strip_prefix("sealed:")
                .map(str::to_owned)
                .ok_or_else(|| "not sealed here".to_owned())
        }
    }

    fn registry(root: &Path) -> Backends {
        Backends::new(root.join("elements"), Arc::new(Plain))
    }

    fn chunks(parts: &[&'static [u8]]) -> crate::backend::BodyStream {
        let items: Vec<Result<Bytes, std::convert::Infallible>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        body_stream(futures::stream::iter(items))
    }

    fn attr(name: &crate::StorageName, key: &str, size: u64) -> AttrJson {
        let v = serde_json::json!({
            "schema_version": "2.0", "file_id": "f", "bucket": "docs", "key": key,
            "original_filename": key, "storage_filename": name.file_name,
            "storage_path": name.rel_path(), "file_size": size,
            "content_type": "text/plain", "etag": "e", "checksum": "c",
            "created_at": "2026-12-01T20:00:00Z", "updated_at": "2026-12-01T20:00:00Z",
            "created_by_id": "1", "created_by_username": "svc"
        });
        AttrJson::parse(v.to_string().as_bytes()).expect("attr")
    }

    async fn read_all(b: &Arc<dyn Backend>, rel: &str, start: u64, len: u64) -> Vec<u8> {
        let mut s = b.open_range(rel, start, len).await.expect("open");
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.expect("chunk"));
        }
        out
    }

    #[tokio::test]
    async fn opens_by_stored_configuration() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = registry(tmp.path());
        let a = reg.open("docs", r#"{"kind":"local"}"#).unwrap();
        let again = reg.open("docs", r#"{"kind":"local"}"#).unwrap();
        assert!(Arc::ptr_eq(&a, &again), "the open backend is reused");
        assert!(Arc::ptr_eq(&reg.cached("docs").unwrap(), &a));
        // Another configuration under the same name (recreated elsewhere): opened afresh.
        let other = reg
            .open("docs", r#"{"kind":"local","path":"/srv/x"}"#)
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(other.describe(), "local /srv/x");
        let s3 = r#"{"kind":"s3","endpoint":"http://127.0.0.1:9","region":"us-east-1","bucket":"b","prefix":"","path_style":true,"access_key_id":"AK","secret_access_key_sealed":"sealed:SK"}"#;
        // Opened without a request (the request path opens elements): an s3 backend.
        let remote = reg.open("remote", s3).unwrap();
        assert_eq!(remote.describe(), "s3 http://127.0.0.1:9/b/");
        assert!(Arc::ptr_eq(&reg.cached("remote").unwrap(), &remote));
        let config = BackendConfig::from_request(serde_json::json!({
            "kind": "s3", "endpoint": "http://h:9", "bucket": "bbb",
            "access_key_id": "AK", "secret_access_key": "SK"}))
        .unwrap();
        let stored = reg.prepare("remote", &config).unwrap();
        assert!(stored.contains("secret_access_key_sealed") && !stored.contains("\"SK\""));
        reg.forget("docs");
        assert!(reg.cached("docs").is_none());
    }

    #[tokio::test]
    async fn a_local_element_through_the_trait() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = registry(tmp.path());
        let stored = reg.prepare("docs", &reg.default_config()).unwrap();
        let b = reg.create("docs", &stored, b"{}").await.unwrap();
        assert_eq!(
            b.read_element_json().await.unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        assert_eq!(reg.local_element_names().await.unwrap(), ["docs"]);

        // A whole object: staged under its final name, visible once committed.
        let t = time::macros::datetime!(2026-12-01 20:15 UTC);
        let name = storage_name("a/one.txt", "svc", &uuid::Uuid::now_v7(), t);
        let staged = b
            .stage(&name, chunks(&[b"hello ", b"world"]), &[])
            .await
            .unwrap();
        assert_eq!(staged.digests.size, 11);
        assert!(
            b.sidecars(None).await.unwrap().is_empty(),
            "nothing visible yet"
        );
        b.commit(staged, &name, &attr(&name, "a/one.txt", 11))
            .await
            .unwrap();
        assert_eq!(b.sidecars(None).await.unwrap(), [name.attr_rel_path()]);
        assert_eq!(
            b.read_attr(&name.attr_rel_path()).await.unwrap().key,
            "a/one.txt"
        );
        assert_eq!(read_all(&b, &name.rel_path(), 6, 5).await, b"world");
        assert_eq!(b.data_len(&name.rel_path()).await.unwrap(), Some(11));
        let d = b
            .hash_file(&name.rel_path(), Box::new(|_| {}))
            .await
            .unwrap();
        let mut r = b.reread(&name.rel_path()).await.unwrap();
        while r.next_chunk(1 << 20).await.unwrap() > 0 {}
        assert_eq!(r.finish(), (11, d.sha256_hex()));

        // A dropped Staged leaves nothing behind.
        let dropped = b.stage(&name, chunks(&[b"x"]), &[]).await.unwrap();
        drop(dropped);
        assert_eq!(b.remove_temp_files().await.unwrap(), 0);

        // Multipart: parts by upload id and number, assembled under the final name.
        let up = "upload1";
        let bodies: [(u32, &'static [u8]); 2] = [(1, b"first-"), (2, b"second")];
        for (n, body) in bodies {
            let s = b.stage_part(up, n, chunks(&[body]), &[]).await.unwrap();
            b.commit_part(s, up, n).await.unwrap();
        }
        assert_eq!(b.upload_ids().await.unwrap(), [up]);
        let whole = storage_name("a/two.txt", "svc", &uuid::Uuid::now_v7(), t);
        let parts = [
            PartSlice {
                part_number: 1,
                start: 0,
                len: 6,
            },
            PartSlice {
                part_number: 2,
                start: 0,
                len: 6,
            },
        ];
        let staged = b.assemble(&whole, up, &parts).await.unwrap();
        assert_eq!(staged.digests.size, 12);
        b.commit(staged, &whole, &attr(&whole, "a/two.txt", 12))
            .await
            .unwrap();
        b.remove_upload(up).await.unwrap();
        assert!(b.upload_ids().await.unwrap().is_empty());
        assert_eq!(
            read_all(&b, &whole.rel_path(), 0, 12).await,
            b"first-second"
        );

        b.delete(&name.rel_path()).await.unwrap();
        assert_eq!(b.data_len(&name.rel_path()).await.unwrap(), None);
        reg.remove("docs", &stored).await.unwrap();
        assert!(reg.local_element_names().await.unwrap().is_empty());
        assert!(reg.cached("docs").is_none());
    }
}
