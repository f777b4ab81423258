//! The backend of an element named by a caller that holds no element record.

use std::sync::Arc;

use artstore_backends::{Backend, BackendError, Backends};
use artstore_metadata::{MetaError, Store};

/// The backend of element `name`: the one this node has open, else opened from the element's
/// stored configuration; an element the index does not know is the local directory of that
/// name (where `index rebuild` finds elements to restore).
pub async fn of<E>(store: &Store, backends: &Backends, name: &str) -> Result<Arc<dyn Backend>, E>
where
    E: From<MetaError> + From<BackendError>,
{
    if let Some(b) = backends.cached(name) {
        return Ok(b);
    }
    let stored = store.get_element(name).await?.map(|e| e.backend);
    Ok(backends.open_or_local(name, stored.as_deref())?)
}

/// Why an element's backend could not be had: the index or the backend failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Index(#[from] MetaError),
    #[error(transparent)]
    Backend(#[from] BackendError),
}
