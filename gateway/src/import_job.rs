//! `POST /api/v1/maintenance/import`: the admin API's import jobs run the CLI's import
//! (`element_import`), which lives here with the binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use artstore_admin::jobs::{ImportRequest, Importer};
use artstore_admin::progress::WorkProgress;
use artstore_backends::Backends;
use artstore_metadata::{Mode, Store};
use serde_json::Value;

use crate::element_import::{self, ImportArgs};

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

pub struct ImportJobs {
    store: Store,
    backends: Backends,
}

impl ImportJobs {
    pub fn new(store: Store, backends: Backends) -> ImportJobs {
        ImportJobs { store, backends }
    }
}

impl Importer for ImportJobs {
    fn check<'a>(&'a self, req: &'a ImportRequest) -> BoxFuture<'a, Result<(), (String, String)>> {
        Box::pin(async move {
            let refuse = |why: String| Err(("path".to_owned(), why));
            let path = Path::new(&req.path);
            if !path.is_absolute() {
                return refuse(format!("'{}' is not an absolute path", req.path));
            }
            match tokio::fs::metadata(path).await {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => refuse(format!("{} is not a directory", req.path)),
                Err(e) => refuse(format!("{} cannot be read: {e}", req.path)),
            }
        })
    }

    fn run(
        &self,
        req: ImportRequest,
        progress: Arc<WorkProgress>,
    ) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            let mode = req
                .mode
                .as_deref()
                .map(str::parse::<Mode>)
                .transpose()
                .map_err(|e| e.to_string())?;
            let args = ImportArgs {
                path: PathBuf::from(req.path),
                name: req.name,
                mode,
                dry_run: req.dry_run,
                key_template: req.key_template,
                verify_checksums: req.verify_checksums,
                json: true,
            };
            let report = element_import::run(args, &self.store, &self.backends, &progress)
                .await
                .map_err(|e| format!("{e:#}"))?;
            serde_json::to_value(&report).map_err(|e| e.to_string())
        })
    }
}
