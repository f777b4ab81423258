//! `artstore backup` and `artstore restore`: a consistent copy of the SQLite index taken while
//! the server runs, and putting one back while no server runs. The control data (accounts,
//! grants, signing keys, audit events, settings) lives only in the index; this is how it
//! survives the loss of the index file. PostgreSQL is backed up with its own tools (README).

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use artstore_metadata::{SecretBox, Store};
use serde_json::json;

use crate::bootstrap;
use crate::config::Settings;

const LOCK_FILE: &str = "artstore.lock";

const PG_HINT: &str =
    "back up and restore PostgreSQL with pg_dump / pg_restore (README, \"Backup and restore\")";

/// Takes a shared lock on `<data-dir>/artstore.lock` for as long as the returned file lives
/// (any number of servers may share a data dir; `restore` needs it to itself). Creates the
/// data dir, as `serve` does anyway.
pub fn hold_in_use(data_dir: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let path = data_dir.join(LOCK_FILE);
    let f = lock_file(&path)?;
    match f.try_lock_shared() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "{} is locked by `artstore restore`: wait for it to finish",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Takes `<data-dir>/artstore.lock` exclusively for as long as the returned file lives, or
/// fails naming the lock when a server (or another such command) runs on the data dir.
pub fn hold_alone(data_dir: &Path) -> anyhow::Result<File> {
    let lock_path = data_dir.join(LOCK_FILE);
    let lock = lock_file(&lock_path)?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "a server is running on {} (it holds {}): stop every server on this data dir first",
            data_dir.display(),
            lock_path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
        }
    }
}

/// Whether a server (or a command holding the data dir alone) holds `<data-dir>/artstore.lock`
/// now. Without a lock file no server ever ran here; none is created (read-only callers).
pub fn server_running(data_dir: &Path) -> anyhow::Result<bool> {
    let path = data_dir.join(LOCK_FILE);
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    match f.try_lock() {
        Ok(()) => Ok(false),
        Err(std::fs::TryLockError::WouldBlock) => Ok(true),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

fn lock_file(path: &Path) -> anyhow::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// `artstore backup --out FILE`.
pub async fn backup(settings: &Settings, out: &Path) -> anyhow::Result<()> {
    if bootstrap::sqlite_file(&settings.database_url).is_none() {
        anyhow::bail!("artstore backup copies the SQLite index; {PG_HINT}");
    }
    anyhow::ensure!(
        !out.exists(),
        "{} exists: a backup never overwrites a file, choose a new name",
        out.display()
    );
    let store = bootstrap::open_store(settings).await?;
    let res = store.backup_sqlite(out).await;
    store.close().await;
    res.with_context(|| format!("cannot write the backup {}", out.display()))?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or_default();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "backup": out,
            "bytes": bytes,
            "note": "the stored secrets are encrypted with the master key: keep master.key (or ARTSTORE_MASTER_KEY) with the backup",
        }))?
    );
    Ok(())
}

/// `artstore restore --from FILE [--force]`.
pub async fn restore(settings: &Settings, from: &Path, force: bool) -> anyhow::Result<()> {
    let Some(target) = bootstrap::sqlite_file(&settings.database_url) else {
        anyhow::bail!("artstore restore puts back a SQLite index; {PG_HINT}");
    };
    bootstrap::require_data_dir(settings)?;
    anyhow::ensure!(
        from.is_file(),
        "the backup {} does not exist",
        from.display()
    );
    let lock = hold_alone(&settings.data_dir)?;
    anyhow::ensure!(
        force || !target.exists(),
        "the index {} exists: restoring replaces it; add --force to do so (it is kept as {})",
        target.display(),
        aside(&target, "<time>").display()
    );
    let key = bootstrap::existing_master_key(settings)?;
    let tmp = with_suffix(&target, ".restore-tmp");
    copy_synced(from, &tmp).await?;
    let checked = check_backup(&tmp, &key).await;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(&tmp, suffix));
    }
    if let Err(e) = checked {
        remove_sqlite_files(&tmp);
        return Err(e.context(format!("{} is not a usable ArtStore index", from.display())));
    }
    let kept = {
        let target = target.clone();
        tokio::task::spawn_blocking(move || put_in_place(&tmp, &target)).await??
    };
    drop(lock);
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "restored": target,
            "from": from,
            "previous_index": kept,
        }))?
    );
    Ok(())
}

/// Opens the copy like a server would: it must hold the schema, and the secrets must open
/// with this data dir's master key.
async fn check_backup(path: &Path, key: &artstore_metadata::MasterKey) -> anyhow::Result<()> {
    let url = format!("sqlite://{}?mode=rw", path.display());
    let store = Store::connect(&url, SecretBox::new(key)).await?;
    let res = async {
        anyhow::ensure!(store.has_schema().await?, "it holds no ArtStore schema");
        store.system_account().await.context(
            "its secrets do not open with this data dir's master key; copy the master.key of the store the backup came from",
        )?;
        Ok(())
    }
    .await;
    store.close().await;
    res
}

/// Moves an existing index (with its WAL files) aside and renames the checked copy into its
/// place; returns where the old one went.
fn put_in_place(tmp: &Path, target: &Path) -> anyhow::Result<Option<PathBuf>> {
    // A WAL left without its database would be replayed into the restored one: move it too.
    let present = ["", "-wal", "-shm"]
        .iter()
        .any(|suffix| with_suffix(target, suffix).exists());
    let kept = if present {
        let kept = aside(target, &artstore_metadata::now_ms().to_string());
        for suffix in ["", "-wal", "-shm"] {
            let (a, b) = (with_suffix(target, suffix), with_suffix(&kept, suffix));
            if a.exists() {
                std::fs::rename(&a, &b)
                    .with_context(|| format!("cannot move {} aside", a.display()))?;
            }
        }
        Some(kept)
    } else {
        None
    };
    std::fs::rename(tmp, target)
        .with_context(|| format!("cannot put the backup in place as {}", target.display()))?;
    if let Some(dir) = target.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", dir.display()))?;
    }
    Ok(kept)
}

async fn copy_synced(from: &Path, to: &Path) -> anyhow::Result<()> {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        remove_sqlite_files(&to);
        std::fs::copy(&from, &to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        File::open(&to)?.sync_all()?;
        Ok(())
    })
    .await?
}

fn remove_sqlite_files(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(db, suffix));
    }
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Where a replaced index is kept.
fn aside(target: &Path, stamp: &str) -> PathBuf {
    with_suffix(target, &format!(".before-restore-{stamp}"))
}
