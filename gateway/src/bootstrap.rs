//! First-start work: the master key, the index, and the initial admin account; and, for every
//! other subcommand, opening a store that must already exist.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use artstore_metadata::{MasterKey, NewAccount, Role, SecretBox, Store};
use rand::Rng as _;

use crate::config::Settings;

/// The master key from settings, else from `<data-dir>/master.key`, created (0600) on first start.
pub fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(text) = &settings.master_key {
        return MasterKey::parse(text).context("ARTSTORE_MASTER_KEY is not 32 bytes of hex/base64");
    }
    let path = settings.data_dir.join("master.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return MasterKey::parse(&text).with_context(|| format!("{} is corrupt", path.display()));
    }
    let key = MasterKey::generate();
    write_private(&path, key.to_hex().as_bytes())?;
    tracing::info!(path = %path.display(), "generated master key");
    Ok(key)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Opens the index of an existing store, creating nothing: the data dir, the master key and
/// (for SQLite) the index file must exist, and the database must hold ArtStore's schema.
/// Every subcommand but `serve` and `migrate` uses this, so a mistyped `--data-dir` is an error
/// instead of a new empty store.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    require_data_dir(settings)?;
    if let Some(file) = sqlite_file(&settings.database_url) {
        anyhow::ensure!(
            file.is_file(),
            "the index {} does not exist: {WHERE_FROM} (to rebuild a lost index, create an empty one with `artstore migrate` first)",
            file.display()
        );
    }
    let key = existing_master_key(settings)?;
    let store = Store::connect_with(
        &settings.database_url,
        SecretBox::new(&key),
        &settings.database,
    )
    .await
    .context("cannot connect to the database")?;
    if !store.has_schema().await? {
        store.close().await;
        anyhow::bail!(
            "the database {} holds no ArtStore index: {WHERE_FROM} (to rebuild a lost index, create an empty one with `artstore migrate` first)",
            redact(&settings.database_url)
        );
    }
    store.migrate().await.context("cannot apply migrations")?;
    coordinate(store, settings).await
}

const WHERE_FROM: &str = "point --data-dir (ARTSTORE_DATA_DIR) and --database-url (ARTSTORE_DATABASE_URL) at an existing store; only `artstore serve` and `artstore migrate` create one";

/// Fails unless the data dir exists.
pub fn require_data_dir(settings: &Settings) -> anyhow::Result<()> {
    anyhow::ensure!(
        settings.data_dir.is_dir(),
        "the data dir {} does not exist: {WHERE_FROM}",
        settings.data_dir.display()
    );
    Ok(())
}

/// The master key from settings or `<data-dir>/master.key`; never generated here.
pub fn existing_master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    let path = settings.data_dir.join("master.key");
    anyhow::ensure!(
        settings.master_key.is_some() || path.is_file(),
        "the master key {} does not exist and --master-key (ARTSTORE_MASTER_KEY) is not set: the stored secrets cannot be read without the key the store was created with",
        path.display()
    );
    master_key(settings)
}

/// The file a `sqlite:` URL names; `None` for other databases and in-memory SQLite.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(_)) => {
            let (userinfo, host) = rest.rsplit_once('@').unwrap_or(("", rest));
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        _ => url.to_owned(),
    }
}

/// Opens the index for `serve` and `migrate` (waiting for a database that does not answer
/// yet, see `database_startup_wait`), creating the data dir, the master key and the
/// database schema when they are missing.
pub async fn create_store(settings: &Settings) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
    let key = master_key(settings)?;
    // A database that is not up yet (starting beside this node) is waited for.
    let wait = &settings.database.startup_wait;
    let store = Store::connect_waiting(
        &settings.database_url,
        SecretBox::new(&key),
        &settings.database,
    )
    .await
    .with_context(|| {
        format!(
            "cannot connect to the database {} (waited up to {})",
            redact(&settings.database_url),
            humantime::format_duration(*wait)
        )
    })?;
    store.migrate().await.context("cannot apply migrations")?;
    coordinate(store, settings).await
}

/// With Redis configured, the store's changes are published to every node's cache (the CLI's
/// included, so an operator's change holds cluster-wide within a second).
async fn coordinate(store: Store, settings: &Settings) -> anyhow::Result<Store> {
    match &settings.redis_url {
        Some(url) => store.with_redis(url).await.context("ARTSTORE_REDIS_URL"),
        None => Ok(store),
    }
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// Creates the system admin account on an empty index. Its keys come from the settings, or
/// are generated and logged this once. Nodes starting at once on an empty index create one
/// account between them: the others find it and go on as on a later start.
pub async fn ensure_root_account(store: &Store, settings: &Settings) -> anyhow::Result<()> {
    let existing = match store.system_account().await? {
        Some(existing) => existing,
        None => match create_root_account(store, settings).await? {
            None => return Ok(()),
            Some(existing) => existing,
        },
    };
    // Keys given again on later starts must agree with the stored account.
    if let (Some(ak), Some(sk)) = (&settings.root_access_key, &settings.root_secret_key) {
        if *ak == existing.client_id && *sk != existing.client_secret {
            store.update_account_secret(&existing.id, sk).await?;
            tracing::info!(access_key = %ak, "root secret key updated from settings");
        } else if *ak != existing.client_id {
            tracing::warn!(
                configured = %ak,
                existing = %existing.client_id,
                "root access key in settings differs from the existing admin account; keeping the existing one"
            );
        }
    }
    Ok(())
}

/// Creates the initial admin account; `Some(account)` when another node had just created one.
async fn create_root_account(
    store: &Store,
    settings: &Settings,
) -> anyhow::Result<Option<artstore_metadata::Account>> {
    let generated = settings.root_access_key.is_none() || settings.root_secret_key.is_none();
    let access_key = settings.root_access_key.clone().unwrap_or_else(|| {
        format!(
            "AS{}",
            random_string(18, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        )
    });
    let secret_key = settings.root_secret_key.clone().unwrap_or_else(|| {
        random_string(
            40,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        )
    });
    let created = store
        .create_system_account_once(&NewAccount {
            name: "admin".into(),
            description: Some("initial administrator".into()),
            client_id: access_key.clone(),
            client_secret: secret_key.clone(),
            role: Role::Admin,
            rate_limit: None,
            secret_expires_ms: None,
            is_system: true,
        })
        .await?;
    if created.is_none() {
        let existing = store
            .system_account()
            .await?
            .context("the initial admin account another node created is gone")?;
        return Ok(Some(existing));
    }
    if generated {
        // Shown once: the secret is never logged or returned again.
        tracing::warn!(
            access_key = %access_key,
            secret_key = %secret_key,
            "initial admin account created; store these credentials now, they are not shown again"
        );
    } else {
        tracing::info!(access_key = %access_key, "initial admin account created from settings");
    }
    Ok(None)
}

/// Remote backend credentials, sealed under the master key like account secrets.
struct IndexSecrets(SecretBox);

impl artstore_backends::SecretSealer for IndexSecrets {
    fn seal(&self, plain: &str) -> Result<String, String> {
        self.0.seal(plain).map_err(|e| e.to_string())
    }

    fn open(&self, sealed: &str) -> Result<String, String> {
        self.0.open(sealed).map_err(|e| e.to_string())
    }
}

/// The storage elements' backends of this data dir and index.
pub fn backends(settings: &Settings, store: &Store) -> artstore_backends::Backends {
    artstore_backends::Backends::new(
        settings.data_dir.join("elements"),
        std::sync::Arc::new(IndexSecrets(store.secrets().clone())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_credentials_are_stored_sealed_under_the_master_key() {
        let key = MasterKey::generate();
        let sealer = IndexSecrets(SecretBox::new(&key));
        let config = artstore_backends::BackendConfig::from_request(serde_json::json!({
            "kind": "s3", "endpoint": "https://s3.example", "bucket": "archive",
            "access_key_id": "AK", "secret_access_key": "plain-secret"}))
        .expect("valid");
        let stored = config.to_stored(&sealer).expect("stored");
        assert!(!stored.contains("plain-secret"), "{stored}");
        let v: serde_json::Value = serde_json::from_str(&stored).expect("json");
        let sealed = v["secret_access_key_sealed"].as_str().expect("sealed");
        assert_eq!(
            SecretBox::new(&key).open(sealed).expect("opens"),
            "plain-secret"
        );
        let other = IndexSecrets(SecretBox::new(&MasterKey::generate()));
        assert!(artstore_backends::BackendConfig::from_stored(&stored, &other).is_err());
        assert_eq!(
            artstore_backends::BackendConfig::from_stored(&stored, &sealer).expect("opens"),
            config
        );
    }

    #[test]
    fn sqlite_file_of_each_url_form() {
        let f = |u: &str| sqlite_file(u).map(|p| p.display().to_string());
        assert_eq!(
            f("sqlite:///srv/a.db?mode=rwc").as_deref(),
            Some("/srv/a.db")
        );
        assert_eq!(f("sqlite://data/a.db").as_deref(), Some("data/a.db"));
        assert_eq!(f("sqlite:a.db").as_deref(), Some("a.db"));
        assert_eq!(f("sqlite::memory:"), None);
        assert_eq!(f("postgres://u@h/db"), None);
    }

    #[test]
    fn redact_drops_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u@h:5432/db"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
