//! First-start work: the master key, the index, and the initial admin account.

use std::io::Write as _;
use std::path::Path;

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

pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
    let key = master_key(settings)?;
    let store = Store::connect(&settings.database_url, SecretBox::new(&key))
        .await
        .context("cannot connect to the database")?;
    store.migrate().await.context("cannot apply migrations")?;
    Ok(store)
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// Creates the system admin account on an empty index. Its keys come from the settings, or
/// are generated and logged this once.
pub async fn ensure_root_account(store: &Store, settings: &Settings) -> anyhow::Result<()> {
    if let Some(existing) = store.system_account().await? {
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
        return Ok(());
    }
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
    store
        .create_account(&NewAccount {
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
    Ok(())
}
