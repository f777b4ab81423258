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
            BackendConfig::S3(_) => Err(BackendError::Unavailable("s3".to_owned())),
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
