//! `artstore element create|list|show|update|mode|delete`: storage elements on the same database and data
//! dir as `serve`. Output is JSON on stdout; refusals fail with the reason.

use anyhow::Context as _;
use artstore_admin::elements::{check_deletable, element_view, not_empty_message};
use artstore_backends::{BackendConfig, Backends};
use artstore_metadata::{Element, ElementUpdateError, MetaError, Mode, NewElement, Store};
use serde_json::json;

use crate::bootstrap;
use crate::config::{ServeArgs, Settings};

#[derive(clap::Subcommand, Debug)]
pub enum ElementAction {
    /// Create a storage element (a bucket) with an explicit mode and quota.
    Create {
        name: String,
        /// edit, rw, ro or ar.
        #[arg(long, default_value = "edit")]
        mode: String,
        /// Quota in bytes.
        #[arg(long)]
        capacity: Option<i64>,
        #[arg(long)]
        description: Option<String>,
        /// Absolute directory for the element's files (default: under the data dir); short
        /// for `--backend-json '{"kind":"local","path":DIR}'`.
        #[arg(long, conflicts_with = "backend_json")]
        path: Option<String>,
        /// The element's backend configuration, as the admin API's `backend` field, e.g.
        /// `{"kind":"s3","endpoint":"http://host:9000","bucket":"b","prefix":"p/",...}`.
        #[arg(long, value_name = "JSON")]
        backend_json: Option<String>,
        #[command(flatten)]
        common: ServeArgs,
    },
    /// List the storage elements.
    List {
        #[command(flatten)]
        common: ServeArgs,
    },
    /// Show one element with its usage and mode history.
    Show {
        name: String,
        #[command(flatten)]
        common: ServeArgs,
    },
    /// Change an element's description and/or quota.
    Update {
        name: String,
        #[arg(long, conflicts_with = "clear_description")]
        description: Option<String>,
        #[arg(long)]
        clear_description: bool,
        /// Quota in bytes; refused below what the element already holds.
        #[arg(long, conflicts_with = "no_capacity")]
        capacity: Option<i64>,
        /// Remove the quota.
        #[arg(long)]
        no_capacity: bool,
        #[command(flatten)]
        common: ServeArgs,
    },
    /// Delete an empty element; one in a mode other than edit needs --confirm.
    Delete {
        name: String,
        #[arg(long)]
        confirm: bool,
        #[command(flatten)]
        common: ServeArgs,
    },
    /// Adopt a storage-element directory of an earlier ArtStore in place (nothing in it is
    /// moved or rewritten): every document with a readable attr.json becomes an object.
    /// Running it again imports only what is new.
    Import {
        /// The directory (absolute), left where it is.
        #[arg(long)]
        path: std::path::PathBuf,
        /// Name of the new element (the bucket).
        #[arg(long)]
        name: String,
        /// edit, rw, ro or ar (default ro: an archive's mode is not known).
        #[arg(long)]
        mode: Option<String>,
        /// Report what would be imported; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Key of each document; placeholders {dir} {original_filename} {stem} {ext}
        /// {storage_filename} {file_id} {owner}. Default: {dir}{original_filename}.
        #[arg(long)]
        key_template: Option<String>,
        /// Do not re-hash the data files (sizes are still checked).
        #[arg(long)]
        no_verify_checksums: bool,
        /// JSON report only, no progress bar, even on a terminal.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: ServeArgs,
    },
    /// Change an element's mode: rw→ro, ro→ar, ro→rw (with --confirm).
    Mode {
        name: String,
        /// The target mode.
        mode: String,
        #[arg(long)]
        reason: Option<String>,
        /// Required for ro→rw.
        #[arg(long)]
        confirm: bool,
        /// Recorded as who made the change.
        #[arg(long, default_value = "cli")]
        by: String,
        #[command(flatten)]
        common: ServeArgs,
    },
}

impl ElementAction {
    pub fn common(&self) -> &ServeArgs {
        match self {
            ElementAction::Create { common, .. }
            | ElementAction::List { common }
            | ElementAction::Show { common, .. }
            | ElementAction::Update { common, .. }
            | ElementAction::Delete { common, .. }
            | ElementAction::Mode { common, .. }
            | ElementAction::Import { common, .. } => common,
        }
    }
}

fn parse_mode(s: &str) -> anyhow::Result<Mode> {
    s.parse::<Mode>().map_err(anyhow::Error::msg)
}

async fn open(settings: &Settings) -> anyhow::Result<(Store, Backends)> {
    let store = bootstrap::open_store(settings).await?;
    let backends = bootstrap::backends(settings, &store);
    Ok((store, backends))
}

async fn find(store: &Store, name: &str) -> anyhow::Result<Element> {
    store
        .get_element(name)
        .await?
        .with_context(|| format!("storage element '{name}' not found"))
}

/// Mirrors the element and its mode history into `element.json`.
async fn rewrite_element_json(
    store: &Store,
    backends: &Backends,
    el: &Element,
) -> anyhow::Result<()> {
    let history = store.mode_history(&el.name).await?;
    backends
        .open(&el.name, &el.backend)?
        .write_element_json(&el.element_json(&history))
        .await?;
    Ok(())
}

async fn audit(store: &Store, action: &str, target: &str, detail: Option<String>) {
    let ev = artstore_metadata::AuditEvent {
        actor_name: Some("cli".into()),
        action: action.into(),
        target: Some(target.into()),
        outcome: "success".into(),
        source: Some("cli".into()),
        detail,
        ..Default::default()
    };
    if let Err(e) = store.record_audit(&ev).await {
        tracing::warn!(error = %e, "the audit event was not written");
    }
}

/// `element import`: the report on stdout (JSON, or a summary under a progress bar on a
/// terminal); fails when any document was left out.
async fn import(
    args: crate::element_import::ImportArgs,
    store: &Store,
    backends: &Backends,
) -> anyhow::Result<()> {
    let human = crate::progress::interactive(args.json);
    let work = std::sync::Arc::new(artstore_admin::progress::WorkProgress::new());
    let bar = crate::progress::watch(human, work.clone());
    let report = crate::element_import::run(args, store, backends, &work).await;
    bar.finish().await;
    let report = report?;
    if human {
        print!("{}", crate::element_import::summary(&report));
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    anyhow::ensure!(
        report.skipped.is_empty(),
        "{} files were not imported (see \"skipped\")",
        report.skipped.len()
    );
    Ok(())
}

pub async fn run(action: ElementAction, settings: &Settings) -> anyhow::Result<()> {
    let (store, backends) = open(settings).await?;
    let out = match action {
        ElementAction::Import {
            path,
            name,
            mode,
            dry_run,
            key_template,
            no_verify_checksums,
            json,
            ..
        } => {
            let args = crate::element_import::ImportArgs {
                path,
                name,
                mode: mode.as_deref().map(parse_mode).transpose()?,
                dry_run,
                key_template,
                verify_checksums: !no_verify_checksums,
                json,
            };
            return import(args, &store, &backends).await;
        }
        ElementAction::Create {
            name,
            mode,
            capacity,
            description,
            path,
            backend_json,
            ..
        } => {
            let mode = parse_mode(&mode)?;
            artstore_admin::elements::check_name(&name).map_err(|e| anyhow::anyhow!(e.message))?;
            anyhow::ensure!(
                capacity.is_none_or(|c| c >= 0),
                "--capacity must be a number of bytes >= 0"
            );
            let config = match (backend_json, path) {
                (Some(text), _) => {
                    let v: serde_json::Value =
                        serde_json::from_str(&text).context("--backend-json is not JSON")?;
                    BackendConfig::from_request(v)?
                }
                (None, Some(p)) => {
                    BackendConfig::from_request(json!({"kind": "local", "path": p}))?
                }
                (None, None) => backends.default_config(),
            };
            // Refused before the index row exists: a bad or unavailable backend creates nothing.
            let stored = backends.prepare(&name, &config)?;
            let el = store
                .create_element(&NewElement {
                    name: name.clone(),
                    mode,
                    backend: stored,
                    capacity_bytes: capacity,
                    description,
                    created_by: "cli".into(),
                })
                .await?;
            let made = backends
                .create(&name, &el.backend, &el.element_json(&[]))
                .await;
            if let Err(e) = made {
                // Without its storage the element is unusable: take the row back.
                store.delete_element(&name).await?;
                return Err(anyhow::Error::new(e).context("cannot create the element's storage"));
            }
            element_view(&el)
        }
        ElementAction::List { .. } => {
            let all = store.list_elements().await?;
            json!(all.iter().map(element_view).collect::<Vec<_>>())
        }
        ElementAction::Show { name, .. } => {
            let el = find(&store, &name).await?;
            let history = store.mode_history(&name).await?;
            let stored = store.bucket_policy(&name).await?;
            let mut v = element_view(&el);
            v["mode_history"] = json!(history);
            v["policy"] = artstore_admin::elements::effective_policy_of(&el, stored.as_deref());
            v
        }
        ElementAction::Mode {
            name,
            mode,
            reason,
            confirm,
            by,
            ..
        } => {
            let to = parse_mode(&mode)?;
            let (el, change) = store
                .change_mode(&name, to, &by, reason.as_deref(), confirm)
                .await?;
            let ev = artstore_metadata::AuditEvent {
                actor_name: Some(by.clone()),
                action: "element.mode".into(),
                target: Some(name.clone()),
                outcome: "success".into(),
                source: Some("cli".into()),
                detail: Some(format!("{} -> {} (cli)", change.from, change.to)),
                ..Default::default()
            };
            if let Err(e) = store.record_audit(&ev).await {
                tracing::warn!(error = %e, "mode changed but the audit event was not written");
            }
            rewrite_element_json(&store, &backends, &el)
                .await
                .context("mode changed in the index, but element.json could not be rewritten")?;
            element_view(&el)
        }
        ElementAction::Update {
            name,
            description,
            clear_description,
            capacity,
            no_capacity,
            ..
        } => {
            let description = match (description, clear_description) {
                (Some(d), _) => Some(Some(d)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let capacity = match (capacity, no_capacity) {
                (Some(c), _) => Some(Some(c)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            anyhow::ensure!(
                description.is_some() || capacity.is_some(),
                "nothing to update: give --description, --clear-description, --capacity or --no-capacity"
            );
            anyhow::ensure!(
                capacity.flatten().is_none_or(|c| c >= 0),
                "--capacity must be a number of bytes >= 0"
            );
            let el = store
                .update_element(&name, description, capacity)
                .await
                .map_err(|e| match e {
                    ElementUpdateError::NotFound(w) => anyhow::anyhow!("{w} not found"),
                    e => anyhow::Error::new(e),
                })?;
            audit(&store, "element.update", &name, None).await;
            rewrite_element_json(&store, &backends, &el)
                .await
                .context("updated in the index, but element.json could not be rewritten")?;
            element_view(&el)
        }
        ElementAction::Delete { name, confirm, .. } => {
            let el = find(&store, &name).await?;
            check_deletable(&el, confirm).map_err(anyhow::Error::msg)?;
            match store.delete_element(&name).await {
                Ok(()) => {}
                Err(MetaError::NotEmpty(_)) => anyhow::bail!(not_empty_message(&name)),
                Err(e) => return Err(e.into()),
            }
            audit(
                &store,
                "element.delete",
                &name,
                Some(format!(
                    "mode {}{} (cli)",
                    el.mode,
                    if confirm { ", confirmed" } else { "" }
                )),
            )
            .await;
            backends
                .remove(&name, &el.backend)
                .await
                .context("deleted from the index, but its storage could not be removed")?;
            json!({"deleted": name})
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
