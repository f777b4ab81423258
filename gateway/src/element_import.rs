//! `artstore element import`: adopts a storage-element directory of an earlier ArtStore in
//! place. Nothing in it is moved or rewritten; only `element.json` is added. Each document is
//! indexed whole (row and search rows in one transaction) or not at all, and every one that
//! is not is reported by file name with the reason.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use artstore_admin::maintenance::record_from_attr;
use artstore_admin::progress::WorkProgress;
use artstore_backends::legacy::{DEFAULT_KEY_TEMPLATE, adopt};
use artstore_backends::legacy_tree::sha256_at;
use artstore_backends::{AdoptError, AttrJson, Backends, KeyTemplate, LegacyTree};
use artstore_metadata::{Element, Mode, NewElement, Store, import_key_template, imported_backend};
use serde::Serialize;

/// What `element import` was asked to do.
#[derive(Debug, Clone)]
pub struct ImportArgs {
    pub path: PathBuf,
    pub name: String,
    pub mode: Option<Mode>,
    pub dry_run: bool,
    pub key_template: Option<String>,
    pub verify_checksums: bool,
    /// JSON report only, no progress bar (the CLI's `--json`).
    pub json: bool,
}

/// A file left out, and why.
#[derive(Debug, Serialize)]
pub struct Skipped {
    pub file: String,
    pub reason: String,
}

/// A document taken into the index (or that would be, on a dry run).
#[derive(Debug, Serialize)]
pub struct Imported {
    pub key: String,
    pub file: String,
    pub size: u64,
}

/// The report printed at the end.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub element: String,
    pub path: String,
    pub mode: String,
    pub key_template: String,
    pub dry_run: bool,
    pub element_created: bool,
    pub checksums_verified: bool,
    pub sidecars_seen: u64,
    /// On a dry run: what would be imported.
    pub imported: Vec<Imported>,
    /// Documents an earlier run imported (same key, file id and file).
    pub already_imported: u64,
    /// Documents and files not imported, by file name.
    pub skipped: Vec<Skipped>,
    /// Files that are not documents (temp files of interrupted writes, placeholders, links).
    pub ignored: Vec<Skipped>,
    pub bytes_imported: u64,
    pub bytes_hashed: u64,
}

/// A document that passed every check so far.
struct Candidate {
    sidecar: String,
    data_rel: String,
    attr: AttrJson,
}

fn skip(out: &mut Vec<Skipped>, file: &str, reason: impl Into<String>) {
    out.push(Skipped {
        file: file.to_owned(),
        reason: reason.into(),
    });
}

/// Checks every sidecar and data file without reading data: which documents can become
/// objects, and why the others cannot. Of two documents claiming one key or one file id, the
/// first in path order wins, as it does in recovery and `index rebuild`.
fn plan(
    tree: &LegacyTree,
    bucket: &str,
    template: &KeyTemplate,
    report: &mut ImportReport,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut keys: HashMap<String, String> = HashMap::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut covered: HashSet<&str> = HashSet::new();
    for rel in &tree.misplaced {
        let data_rel = rel.trim_end_matches(".attr.json");
        covered.insert(data_rel);
        skip(
            &mut report.skipped,
            rel,
            "a sidecar outside the layouts ArtStore reads (the element root or YYYY/MM/DD/HH/)",
        );
    }
    for sc in &tree.sidecars {
        report.sidecars_seen += 1;
        let data_rel = sc.rel.trim_end_matches(".attr.json");
        covered.insert(data_rel);
        let adopted = match &sc.bytes {
            None => Err(AdoptError::Oversized(sc.len)),
            Some(bytes) => adopt(bytes, &sc.rel, bucket, template),
        };
        let attr = match adopted {
            Ok(a) => a.attr,
            Err(e) => {
                skip(&mut report.skipped, &sc.rel, e.to_string());
                continue;
            }
        };
        match tree.files.get(data_rel) {
            None => {
                skip(
                    &mut report.skipped,
                    &sc.rel,
                    format!("its data file {data_rel} is missing"),
                );
                continue;
            }
            Some(&len) if len != attr.file_size => {
                skip(
                    &mut report.skipped,
                    &sc.rel,
                    format!(
                        "its data file is {len} bytes, the attr.json says {}",
                        attr.file_size
                    ),
                );
                continue;
            }
            Some(_) => {}
        }
        if let Some(first) = ids.get(&attr.file_id) {
            skip(
                &mut report.skipped,
                &sc.rel,
                format!("a duplicate: {first} has the same file_id {}", attr.file_id),
            );
            continue;
        }
        if let Some(first) = keys.get(&attr.key) {
            skip(
                &mut report.skipped,
                &sc.rel,
                format!(
                    "its key {:?} is also the key of {first}, which is imported instead (choose another --key-template)",
                    attr.key
                ),
            );
            continue;
        }
        ids.insert(attr.file_id.clone(), sc.rel.clone());
        keys.insert(attr.key.clone(), sc.rel.clone());
        out.push(Candidate {
            sidecar: sc.rel.clone(),
            data_rel: data_rel.to_owned(),
            attr,
        });
    }
    for rel in tree.files.keys() {
        if !covered.contains(rel.as_str()) {
            skip(
                &mut report.skipped,
                rel,
                format!("a data file without a sidecar ({rel}.attr.json)"),
            );
        }
    }
    for (file, why) in &tree.ignored {
        skip(&mut report.ignored, file, why.clone());
    }
    out
}

/// Re-hashes every candidate's data; a mismatch or an unreadable file leaves it out.
async fn verify(
    dir: &Path,
    candidates: Vec<Candidate>,
    progress: &Arc<WorkProgress>,
    report: &mut ImportReport,
) -> Vec<Candidate> {
    let total: u64 = candidates.iter().map(|c| c.attr.file_size).sum();
    progress.phase("verifying", Some(candidates.len() as u64), Some(total));
    let mut out = Vec::with_capacity(candidates.len());
    for c in candidates {
        let p = progress.clone();
        match sha256_at(dir, &c.data_rel, move |n| p.advance(0, n)).await {
            Ok(sum) if sum == c.attr.checksum => {
                report.bytes_hashed += c.attr.file_size;
                out.push(c);
            }
            Ok(sum) => {
                report.bytes_hashed += c.attr.file_size;
                skip(
                    &mut report.skipped,
                    &c.sidecar,
                    format!(
                        "the SHA-256 of its data file is {sum}, the attr.json says {}",
                        c.attr.checksum
                    ),
                );
            }
            Err(e) => skip(
                &mut report.skipped,
                &c.sidecar,
                format!("its data file cannot be read: {e}"),
            ),
        }
        progress.advance(1, 0);
    }
    out
}

/// The element to import into: an earlier import of the same directory, or none yet.
fn existing(el: &Element, backends: &Backends, args: &ImportArgs) -> anyhow::Result<String> {
    let template = import_key_template(&el.backend).with_context(|| {
        format!(
            "storage element '{}' already exists and was not imported",
            el.name
        )
    })?;
    let path = backends.local_config_on_disk(&el.name).path;
    anyhow::ensure!(
        path.as_deref() == Some(args.path.as_path()),
        "storage element '{}' was imported from {}, not {}",
        el.name,
        path.map(|p| p.display().to_string()).unwrap_or_default(),
        args.path.display()
    );
    if let Some(t) = &args.key_template {
        anyhow::ensure!(
            *t == template,
            "storage element '{}' was imported with --key-template {template:?}; its keys cannot change",
            el.name
        );
    }
    if let Some(m) = args.mode {
        anyhow::ensure!(
            m == el.mode,
            "storage element '{}' is in mode {}; change it with `artstore element mode`",
            el.name,
            el.mode
        );
    }
    Ok(template)
}

/// Documents indexed per transaction: one commit (and its fsync) per document would bound an
/// import at the disk's commit rate.
const BATCH: usize = 500;

/// Why a document was not written when its row was to be committed.
enum Refused {
    Already,
    Taken(String),
}

/// Imports, counting into `progress` (scanning, verifying, indexing).
pub async fn run(
    args: ImportArgs,
    store: &Store,
    backends: &Backends,
    progress: &Arc<WorkProgress>,
) -> anyhow::Result<ImportReport> {
    anyhow::ensure!(
        args.path.is_absolute(),
        "--path must be an absolute directory"
    );
    let path = PathBuf::from(args.path.to_string_lossy().trim_end_matches('/'));
    let args = ImportArgs { path, ..args };
    artstore_admin::elements::check_name(&args.name).map_err(|e| anyhow::anyhow!(e.message))?;
    let current = store.get_element(&args.name).await?;
    let template_text = match &current {
        Some(el) => existing(el, backends, &args)?,
        None => args
            .key_template
            .clone()
            .unwrap_or_else(|| DEFAULT_KEY_TEMPLATE.to_owned()),
    };
    let template = KeyTemplate::parse(&template_text).map_err(anyhow::Error::msg)?;
    // What recovery assumes when it does not know an element's mode: never looser than ro.
    let mode = current
        .as_ref()
        .map(|e| e.mode)
        .or(args.mode)
        .unwrap_or(Mode::Ro);
    let mut report = ImportReport {
        element: args.name.clone(),
        path: args.path.display().to_string(),
        mode: mode.to_string(),
        key_template: template_text.clone(),
        dry_run: args.dry_run,
        checksums_verified: args.verify_checksums,
        ..Default::default()
    };

    progress.element(&args.name);
    progress.phase("scanning", None, None);
    let tree = LegacyTree::scan(&args.path)
        .await
        .with_context(|| format!("cannot read {}", args.path.display()))?;
    if current.is_none() {
        anyhow::ensure!(
            !tree.has_element_json,
            "{} holds an element.json: it is already an element of this ArtStore (recover it with `artstore index rebuild`)",
            args.path.display()
        );
    }
    let mut candidates = plan(&tree, &args.name, &template, &mut report);
    if args.verify_checksums {
        candidates = verify(&args.path, candidates, progress, &mut report).await;
    }
    if args.dry_run {
        report.imported = candidates
            .iter()
            .map(|c| Imported {
                key: c.attr.key.clone(),
                file: c.data_rel.clone(),
                size: c.attr.file_size,
            })
            .collect();
        report.bytes_imported = report.imported.iter().map(|i| i.size).sum();
        return Ok(report);
    }
    if current.is_none() {
        if candidates.is_empty() {
            // An element holding nothing would only add a file to the directory.
            return Ok(report);
        }
        create(store, backends, &args, mode, &template_text).await?;
        report.element_created = true;
    }
    progress.phase("indexing", Some(candidates.len() as u64), None);
    for batch in candidates.chunks(BATCH) {
        let recs: Vec<_> = batch
            .iter()
            .map(|c| record_from_attr(&args.name, &c.data_rel, &c.attr))
            .collect();
        let outcome = store
            .put_objects_if(&recs, |rec, current| match current {
                None => Ok(()),
                Some(cur) if cur.file_id == rec.file_id && cur.storage_path == rec.storage_path => {
                    Err(Refused::Already)
                }
                Some(cur) => Err(Refused::Taken(cur.storage_path.clone())),
            })
            .await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "indexing the batch from {} failed; {} documents were imported before it (run the import again to go on)",
                    batch[0].sidecar,
                    report.imported.len()
                )));
            }
        };
        for ((c, rec), res) in batch.iter().zip(&recs).zip(outcome) {
            match res {
                Ok(()) => {
                    report.bytes_imported += c.attr.file_size;
                    report.imported.push(Imported {
                        key: rec.key.clone(),
                        file: c.data_rel.clone(),
                        size: c.attr.file_size,
                    });
                }
                Err(Refused::Already) => report.already_imported += 1,
                Err(Refused::Taken(by)) => skip(
                    &mut report.skipped,
                    &c.sidecar,
                    format!("its key {:?} is already held by {by}", rec.key),
                ),
            }
            progress.advance(1, 0);
        }
    }
    audit(store, &report).await;
    Ok(report)
}

/// The element row, then its link and `element.json`; the row is taken back if the
/// directory cannot be adopted.
async fn create(
    store: &Store,
    backends: &Backends,
    args: &ImportArgs,
    mode: Mode,
    template: &str,
) -> anyhow::Result<()> {
    let el = store
        .create_element(&NewElement {
            name: args.name.clone(),
            mode,
            backend: imported_backend(&args.path, template),
            capacity_bytes: None,
            description: Some(format!("imported from {}", args.path.display())),
            created_by: "import".into(),
        })
        .await?;
    if let Err(e) = backends
        .adopt_local(&args.name, &args.path, &el.element_json(&[]))
        .await
    {
        store.delete_element(&args.name).await?;
        backends.unadopt_local(&args.name).await.ok();
        return Err(anyhow::Error::new(e).context("cannot adopt the directory"));
    }
    Ok(())
}

async fn audit(store: &Store, report: &ImportReport) {
    let ev = artstore_metadata::AuditEvent {
        actor_name: Some("cli".into()),
        action: "element.import".into(),
        target: Some(report.element.clone()),
        outcome: "success".into(),
        source: Some("cli".into()),
        detail: Some(format!(
            "from {}: {} imported, {} already imported, {} skipped",
            report.path,
            report.imported.len(),
            report.already_imported,
            report.skipped.len()
        )),
        ..Default::default()
    };
    if let Err(e) = store.record_audit(&ev).await {
        tracing::warn!(error = %e, "the audit event was not written");
    }
}

/// A few lines for a person at a terminal.
pub fn summary(r: &ImportReport) -> String {
    let verb = if r.dry_run {
        "would import"
    } else {
        "imported"
    };
    let mut out = format!(
        "{}: {verb} {} documents ({} bytes) from {} into '{}' (mode {}), {} already imported, {} skipped, {} ignored\n",
        if r.dry_run { "dry run" } else { "import" },
        r.imported.len(),
        r.bytes_imported,
        r.path,
        r.element,
        r.mode,
        r.already_imported,
        r.skipped.len(),
        r.ignored.len()
    );
    for s in &r.skipped {
        out.push_str(&format!("  skipped {}: {}\n", s.file, s.reason));
    }
    out
}
