//! Opening the index: pool settings, and waiting at start-up for a database that is not up yet
//! (a container starting beside its database, a PostgreSQL restarting).

use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::any::AnyConnectOptions;

use crate::db::DEFAULT_DB_TIMEOUT;
use crate::{DbKind, MetaError, SecretBox, Store};

/// Connections a PostgreSQL pool opens at most, unless configured.
pub const DEFAULT_POOL_SIZE_POSTGRES: u32 = 16;
/// Connections a SQLite pool opens at most, unless configured (one writer at a time anyway).
pub const DEFAULT_POOL_SIZE_SQLITE: u32 = 8;
/// Longest a single PostgreSQL statement may run, unless configured.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long start-up waits for the database to answer, unless configured.
pub const DEFAULT_STARTUP_WAIT: Duration = Duration::from_secs(60);

/// First and longest pause between two start-up attempts.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How the index's connection pool behaves.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Most connections open at once; `None`: 16 for PostgreSQL, 8 for SQLite.
    pub pool_size: Option<u32>,
    /// PostgreSQL: how long an operation waits for a connection (connecting, or checking an
    /// idle one is alive) before it fails as unavailable. SQLite keeps a long wait: its
    /// connections are only ever busy, never lost.
    pub acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout` of every connection; `None`: no limit. Migrations run
    /// without it. SQLite has no such setting.
    pub statement_timeout: Option<Duration>,
    /// How long `connect_waiting` keeps trying a database that does not answer.
    pub startup_wait: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            pool_size: None,
            acquire_timeout: DEFAULT_DB_TIMEOUT,
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
            startup_wait: DEFAULT_STARTUP_WAIT,
        }
    }
}

pub(crate) fn kind_of(url: &str) -> Result<DbKind, MetaError> {
    if url.starts_with("sqlite:") {
        Ok(DbKind::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(DbKind::Postgres)
    } else {
        Err(MetaError::BadUrl(url.to_owned()))
    }
}

impl Store {
    /// Like `connect_with`, but a PostgreSQL that does not answer yet (refused, unknown host,
    /// starting up, no connection in time) is tried again with exponential backoff for up to
    /// `opts.startup_wait`, each retry logged at WARN with its error. Errors that waiting
    /// cannot cure (bad credentials, no such database) and SQLite's fail at once.
    pub async fn connect_waiting(
        url: &str,
        secrets: SecretBox,
        opts: &DbOptions,
    ) -> Result<Store, MetaError> {
        sqlx::any::install_default_drivers();
        if kind_of(url)? == DbKind::Sqlite {
            return Store::connect_with(url, secrets, opts).await;
        }
        let deadline = Instant::now() + opts.startup_wait;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1u32;
        loop {
            // One bare connection first: its error names the cause (the pool's would only
            // say that it timed out).
            let outcome = match probe(url, opts.acquire_timeout).await {
                Ok(()) => Store::connect_with(url, secrets.clone(), opts).await,
                Err(e) => Err(e),
            };
            let err = match outcome {
                Ok(store) => {
                    if attempt > 1 {
                        tracing::info!(attempts = attempt, "the index database answers");
                    }
                    return Ok(store);
                }
                Err(e) if e.is_unavailable() => e,
                Err(e) => return Err(e),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(err);
            }
            let pause = backoff.min(left);
            tracing::warn!(
                error = %err,
                attempt,
                retry_in_ms = pause.as_millis() as u64,
                "the index database does not answer yet; trying again"
            );
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }
}

/// Opens and closes one connection, within `limit`.
async fn probe(url: &str, limit: Duration) -> Result<(), MetaError> {
    let opts: AnyConnectOptions = url.parse()?;
    match tokio::time::timeout(limit, sqlx::AnyConnection::connect_with(&opts)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(e.into()),
        // Counted as the pool would: no connection in time.
        Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
    }
}
