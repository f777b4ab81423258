//! `artstore account …` and `artstore keys rotate`: service accounts and signing keys on the same
//! database as `serve` (usable while it runs). Output is JSON on stdout; secrets are printed only
//! by `create` and `rotate`, like the admin API.

use anyhow::Context as _;
use artstore_admin::accounts::{
    SECRET_LIFETIME_MS, account_json, check_grants, guard_deleted, guard_system, new_client_id,
    new_secret, parse_role, validate_name,
};
use artstore_admin::keys::KeyRing;
use artstore_metadata::{
    Account, AccountQuery, AccountStatus, AccountUpdate, AuditEvent, NewAccount, Store, now_ms,
};
use serde_json::{Value, json};

use crate::bootstrap;
use crate::config::{ServeArgs, Settings};

#[derive(clap::Subcommand, Debug)]
pub enum AccountAction {
    /// Create a service account; prints its client_id and client_secret (shown once).
    Create {
        name: String,
        /// admin, user, auditor or readonly.
        #[arg(long, default_value = "user")]
        role: String,
        #[arg(long)]
        description: Option<String>,
        /// Requests per minute.
        #[arg(long)]
        rate_limit: Option<i64>,
        #[command(flatten)]
        common: ServeArgs,
    },
    /// List accounts (deleted ones only with --status deleted).
    List {
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        status: Option<String>,
        /// Substring of the name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        common: ServeArgs,
    },
    /// Show one account (by id, name or client id).
    Show {
        account: String,
        #[command(flatten)]
        common: ServeArgs,
    },
    /// Replace the secret; the old one stops working at once. Prints the new secret.
    Rotate {
        account: String,
        #[command(flatten)]
        common: ServeArgs,
    },
    Suspend {
        account: String,
        #[command(flatten)]
        common: ServeArgs,
    },
    Activate {
        account: String,
        #[command(flatten)]
        common: ServeArgs,
    },
    /// Show the account's bucket grants; with --grant or --clear, replace them all first.
    Grants {
        account: String,
        /// BUCKET=read or BUCKET=write; repeat for several buckets. Replaces every grant.
        #[arg(long = "grant", value_name = "BUCKET=ACCESS")]
        grant: Vec<String>,
        /// Remove every grant (the account then reaches every bucket its role allows).
        #[arg(long, conflicts_with = "grant")]
        clear: bool,
        #[command(flatten)]
        common: ServeArgs,
    },
    /// Soft delete.
    Delete {
        account: String,
        #[command(flatten)]
        common: ServeArgs,
    },
}

impl AccountAction {
    pub fn common(&self) -> &ServeArgs {
        match self {
            AccountAction::Create { common, .. }
            | AccountAction::List { common, .. }
            | AccountAction::Show { common, .. }
            | AccountAction::Rotate { common, .. }
            | AccountAction::Suspend { common, .. }
            | AccountAction::Activate { common, .. }
            | AccountAction::Grants { common, .. }
            | AccountAction::Delete { common, .. } => common,
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum KeysAction {
    /// Add a new token signing key; tokens signed by older keys stay valid until they expire.
    Rotate(ServeArgs),
}

impl KeysAction {
    pub fn common(&self) -> &ServeArgs {
        match self {
            KeysAction::Rotate(a) => a,
        }
    }
}

async fn find(store: &Store, key: &str) -> anyhow::Result<Account> {
    if let Some(a) = store.account_by_id(key).await? {
        return Ok(a);
    }
    if let Some(a) = store.account_by_name(key).await? {
        return Ok(a);
    }
    store
        .account_by_client_id(key)
        .await?
        .with_context(|| format!("no service account with id, name or client id '{key}'"))
}

async fn audit(store: &Store, action: &str, target: &str, detail: Option<String>) {
    let ev = AuditEvent {
        actor_name: Some("cli".into()),
        action: action.into(),
        target: Some(target.into()),
        outcome: "success".into(),
        source: Some("cli".into()),
        detail,
        ..AuditEvent::default()
    };
    if let Err(e) = store.record_audit(&ev).await {
        tracing::error!(error = %e, "cannot write audit event");
    }
}

/// The account as `show` prints it: with its grants, never its secret.
async fn with_grants(store: &Store, acc: &Account) -> anyhow::Result<Value> {
    let mut v = account_json(acc);
    v["grants"] = store
        .grants_for(&acc.id)
        .await?
        .into_iter()
        .map(|(bucket, access)| json!({"bucket": bucket, "access": access}))
        .collect();
    Ok(v)
}

fn print(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// API errors as CLI errors (same wording as the admin API).
fn api(e: artstore_admin::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.message)
}

async fn set_status(
    store: &Store,
    key: &str,
    status: AccountStatus,
    action: &str,
) -> anyhow::Result<Value> {
    let acc = find(store, key).await?;
    guard_deleted(&acc).map_err(api)?;
    guard_system(&acc, None, Some(status)).map_err(api)?;
    let acc = store
        .update_account(
            &acc.id,
            &AccountUpdate {
                status: Some(status),
                ..AccountUpdate::default()
            },
        )
        .await?;
    audit(
        store,
        action,
        &acc.id,
        Some(format!("account '{}'", acc.name)),
    )
    .await;
    Ok(account_json(&acc))
}

pub async fn run(action: AccountAction, settings: &Settings) -> anyhow::Result<()> {
    let store = bootstrap::open_store(settings).await?;
    let out = match action {
        AccountAction::Create {
            name,
            role,
            description,
            rate_limit,
            ..
        } => {
            validate_name(&name).map_err(api)?;
            let role = parse_role(&role).map_err(api)?;
            anyhow::ensure!(
                rate_limit.is_none_or(|r| r > 0),
                "--rate-limit must be positive"
            );
            let secret = new_secret();
            let acc = store
                .create_account(&NewAccount {
                    name,
                    description,
                    client_id: new_client_id(),
                    client_secret: secret.clone(),
                    role,
                    rate_limit,
                    secret_expires_ms: Some(now_ms() + SECRET_LIFETIME_MS),
                    is_system: false,
                })
                .await?;
            audit(
                &store,
                "account.create",
                &acc.id,
                Some(format!("account '{}'", acc.name)),
            )
            .await;
            let mut v = account_json(&acc);
            v["client_secret"] = Value::String(secret);
            v
        }
        AccountAction::List {
            role, status, name, ..
        } => {
            let (items, total) = store
                .list_accounts(&AccountQuery {
                    role,
                    status,
                    name,
                    limit: 1000,
                    offset: 0,
                })
                .await?;
            json!({"items": items.iter().map(account_json).collect::<Vec<_>>(), "total": total})
        }
        AccountAction::Show { account, .. } => {
            let acc = find(&store, &account).await?;
            with_grants(&store, &acc).await?
        }
        AccountAction::Grants {
            account,
            grant,
            clear,
            ..
        } => {
            let acc = find(&store, &account).await?;
            if clear || !grant.is_empty() {
                let pairs = grant
                    .iter()
                    .map(|g| match g.split_once('=') {
                        Some((b, a)) => Ok((b.to_owned(), a.to_owned())),
                        None => Err(anyhow::anyhow!(
                            "--grant '{g}' must be BUCKET=read or BUCKET=write"
                        )),
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let grants = check_grants(pairs).map_err(api)?;
                guard_deleted(&acc).map_err(api)?;
                store.set_grants(&acc.id, &grants).await?;
                audit(
                    &store,
                    "account.grants",
                    &acc.id,
                    Some(format!("account '{}'", acc.name)),
                )
                .await;
            }
            with_grants(&store, &acc).await?
        }
        AccountAction::Rotate { account, .. } => {
            let acc = find(&store, &account).await?;
            guard_deleted(&acc).map_err(api)?;
            let secret = new_secret();
            let expires = if acc.is_system {
                acc.secret_expires_ms
            } else {
                Some(now_ms() + SECRET_LIFETIME_MS)
            };
            store
                .rotate_account_secret(&acc.id, &secret, expires)
                .await?;
            audit(
                &store,
                "account.rotate_secret",
                &acc.id,
                Some(format!("account '{}'", acc.name)),
            )
            .await;
            let acc = find(&store, &acc.id).await?;
            let mut v = account_json(&acc);
            v["client_secret"] = Value::String(secret);
            v
        }
        AccountAction::Suspend { account, .. } => {
            set_status(
                &store,
                &account,
                AccountStatus::Suspended,
                "account.suspend",
            )
            .await?
        }
        AccountAction::Activate { account, .. } => {
            set_status(&store, &account, AccountStatus::Active, "account.activate").await?
        }
        AccountAction::Delete { account, .. } => {
            set_status(&store, &account, AccountStatus::Deleted, "account.delete").await?
        }
    };
    store.close().await;
    print(&out)
}

pub async fn run_keys(action: KeysAction, settings: &Settings) -> anyhow::Result<()> {
    let store = bootstrap::open_store(settings).await?;
    match action {
        KeysAction::Rotate(_) => {
            let ring = KeyRing::open(store.clone()).await?;
            let kid = ring.rotate().await?;
            audit(&store, "keys.rotate", &kid, None).await;
            store.close().await;
            print(&json!({"kid": kid, "alg": "RS256"}))
        }
    }
}
