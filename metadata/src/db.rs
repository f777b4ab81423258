use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Executor};

use crate::connect::{DEFAULT_POOL_SIZE_POSTGRES, DEFAULT_POOL_SIZE_SQLITE, DbOptions};
use crate::{MetaError, SecretBox};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

/// Handle to the index. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    kind: DbKind,
    pub(crate) secrets: SecretBox,
    /// SQLite has one write lock. Writers of this process wait for it here, in order, instead
    /// of in SQLite's busy handler, which sleeps up to 100 ms between tries (the PUT tail).
    write_turn: Arc<tokio::sync::Mutex<()>>,
    /// Bound on waiting for a PostgreSQL connection (and on settling a failed transaction).
    timeout: Duration,
    /// PostgreSQL `statement_timeout` of every pooled connection (`None`: none).
    statement_timeout: Option<Duration>,
    pub(crate) spool: Option<Arc<crate::spool::AuditSpool>>,
    /// This node's cache of control data, shared by every clone (see `cache`).
    pub(crate) cache: Arc<crate::cache::Caches>,
}

/// How long a PostgreSQL index may take to hand out a connection (connecting included) before
/// a request gives up with "unavailable", unless the caller sets another bound.
pub const DEFAULT_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// First-start work that must happen once per deployment (see `Store::lock_once`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Once {
    SystemAccount = 1,
    FirstSigningKey = 2,
}

/// First key of the advisory locks of `Once` ("ARTS").
const ONCE_LOCK_CLASS: i32 = 0x4152_5453;

/// `SET statement_timeout` for a limit (`None` or zero: none).
fn statement_timeout_sql(limit: Option<Duration>) -> String {
    let ms = limit
        .filter(|d| !d.is_zero())
        .map_or(0, |d| d.as_millis().max(1));
    format!("SET statement_timeout = {ms}")
}

/// A write transaction on a pooled connection; on SQLite it also holds this process's write
/// turn until it ends.
///
/// BEGIN, COMMIT and ROLLBACK are issued here rather than through sqlx's `Transaction`: after a
/// failed statement or COMMIT (e.g. `SQLITE_FULL`, which may roll the transaction back by
/// itself) sqlx's queued rollback fails, its transaction depth stays at 1, and the pooled
/// connection refused every later `BEGIN IMMEDIATE`. A transaction that does not commit is
/// settled by an explicit ROLLBACK; only a connection whose ROLLBACK succeeded (so it is
/// provably outside any transaction) goes back to the pool, any other is closed.
pub(crate) struct WriteTx {
    conn: Option<PoolConnection<Any>>,
    /// BEGIN was (or may have been) sent and neither COMMIT nor ROLLBACK has succeeded.
    open: bool,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    settle_timeout: Duration,
}

impl WriteTx {
    async fn begin(
        pool: &AnyPool,
        begin: &'static str,
        turn: Option<tokio::sync::OwnedMutexGuard<()>>,
        settle_timeout: Duration,
    ) -> Result<WriteTx, MetaError> {
        let conn = pool.acquire().await?;
        // Open before BEGIN runs: a failed or abandoned BEGIN is settled like any other.
        let mut tx = WriteTx {
            conn: Some(conn),
            open: true,
            turn,
            settle_timeout,
        };
        tx.execute(begin).await?;
        Ok(tx)
    }

    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        match self.execute("COMMIT").await {
            Ok(_) => {
                self.open = false;
                Ok(())
            }
            Err(e) => {
                // The outcome is settled before the error is returned (and the write turn
                // released), so the next writer finds a clean connection.
                self.open = false;
                if let Some(conn) = self.conn.take() {
                    settle(conn, self.turn.take(), self.settle_timeout).await;
                }
                Err(e)
            }
        }
    }
}

/// Rolls back what may still be open on `conn`; returns it to the pool only if that worked.
async fn settle(
    mut conn: PoolConnection<Any>,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    limit: Duration,
) {
    match tokio::time::timeout(limit, conn.execute("ROLLBACK")).await {
        Ok(Ok(_)) => drop(conn),
        outcome => {
            let reason = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            tracing::debug!(%reason, "rollback failed; closing the index connection");
            // Dropping the bare connection closes it: SQLite and PostgreSQL both discard an
            // open transaction with its connection.
            drop(conn.detach());
        }
    }
    drop(turn);
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !self.open {
            return;
        }
        let turn = self.turn.take();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(settle(conn, turn, self.settle_timeout));
            }
            // No runtime to roll back on: never let the connection back into the pool.
            Err(_) => conn.close_on_drop(),
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        // `conn` is only taken by `commit` (which consumes the transaction) and by `drop`.
        self.conn
            .as_deref()
            .unwrap_or_else(|| unreachable!("write transaction already ended"))
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("write transaction already ended"))
    }
}

impl Store {
    /// The box that seals secrets under the master key (account secrets, remote backend
    /// credentials).
    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    /// The embedded default: a SQLite file under the data directory.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("artstore.db").display()
        )
    }

    pub async fn connect(url: &str, secrets: SecretBox) -> Result<Store, MetaError> {
        Store::connect_with(url, secrets, &DbOptions::default()).await
    }

    /// Opens the pool as `opts` says; a PostgreSQL index that gives no connection within
    /// `opts.acquire_timeout` fails the operation with an error for which
    /// `MetaError::is_unavailable` holds.
    pub async fn connect_with(
        url: &str,
        secrets: SecretBox,
        opts: &DbOptions,
    ) -> Result<Store, MetaError> {
        sqlx::any::install_default_drivers();
        let kind = crate::connect::kind_of(url)?;
        let conn_opts: AnyConnectOptions = url.parse()?;
        let pool = match kind {
            DbKind::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(opts.pool_size.unwrap_or(DEFAULT_POOL_SIZE_SQLITE))
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the single writer; NORMAL is durable
                            // across process crashes, and the index can be rebuilt anyway.
                            conn.execute("PRAGMA journal_mode=WAL").await?;
                            conn.execute("PRAGMA synchronous=NORMAL").await?;
                            conn.execute("PRAGMA busy_timeout=30000").await?;
                            if let Some(pages) = test_max_pages() {
                                let pragma = format!("PRAGMA max_page_count={pages}");
                                sqlx::raw_sql(sqlx::AssertSqlSafe(pragma))
                                    .execute(&mut *conn)
                                    .await?;
                            }
                            Ok(())
                        })
                    })
                    .connect_with(conn_opts)
                    .await?
            }
            DbKind::Postgres => {
                let limit = statement_timeout_sql(opts.statement_timeout);
                AnyPoolOptions::new()
                    .max_connections(opts.pool_size.unwrap_or(DEFAULT_POOL_SIZE_POSTGRES))
                    .acquire_timeout(opts.acquire_timeout)
                    // A pooled connection to a server that stopped answering is found out
                    // here, within the acquire timeout, not mid-request.
                    .test_before_acquire(true)
                    .after_connect(move |conn, _| {
                        let limit = limit.clone();
                        Box::pin(async move {
                            // A statement stuck behind a lock or on a sick server ends with
                            // an error instead of holding its request (and connection).
                            sqlx::raw_sql(AssertSqlSafe(limit)).execute(conn).await?;
                            Ok(())
                        })
                    })
                    .connect_with(conn_opts)
                    .await?
            }
        };
        Ok(Store {
            pool,
            kind,
            secrets,
            write_turn: Arc::new(tokio::sync::Mutex::new(())),
            timeout: opts.acquire_timeout,
            statement_timeout: opts.statement_timeout,
            spool: None,
            cache: Arc::new(crate::cache::Caches::new()),
        })
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Applies pending migrations. Nodes starting at once take turns: sqlx's migrator holds
    /// a PostgreSQL advisory lock (one per database) while it checks and applies them, and
    /// SQLite's write lock serialises them there.
    pub async fn migrate(&self) -> Result<(), MetaError> {
        match self.kind {
            DbKind::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            DbKind::Postgres => {
                let mut conn = self.pool.acquire().await?;
                // A migration (or the wait for another node's) may outlast any statement
                // timeout meant for requests.
                conn.execute("SET statement_timeout = 0").await?;
                let ran = POSTGRES_MIGRATIONS.run(&mut *conn).await;
                let restored =
                    sqlx::raw_sql(AssertSqlSafe(statement_timeout_sql(self.statement_timeout)))
                        .execute(&mut *conn)
                        .await;
                if ran.is_err() || restored.is_err() {
                    // Never pool a connection that may lack the limit or still hold the lock.
                    drop(conn.detach());
                }
                ran?;
                restored?;
            }
        }
        self.backfill_search().await
    }

    /// Whether the database holds an ArtStore index (its migrations table), as opposed to an
    /// empty database someone pointed us at by mistake.
    pub async fn has_schema(&self) -> Result<bool, MetaError> {
        let sql = match self.kind {
            DbKind::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            DbKind::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await?;
        Ok(n > 0)
    }

    /// Writes a consistent copy of a SQLite index to `out` (`VACUUM INTO`: one read
    /// transaction, so writers carry on meanwhile). `out` must not exist yet.
    pub async fn backup_sqlite(&self, out: &Path) -> Result<(), MetaError> {
        if self.kind != DbKind::Sqlite {
            return Err(MetaError::Unsupported(
                "online backup by artstore is for SQLite; back up PostgreSQL with pg_dump".into(),
            ));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(out.to_string_lossy().into_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), MetaError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The id every node of this deployment shares (created by the migrations).
    pub async fn deployment_id(&self) -> Result<String, MetaError> {
        let id: String =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = 'deployment_id'")
                .fetch_one(&self.pool)
                .await?;
        Ok(id)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction. SQLite takes the write lock up front so a read-then-write
    /// transaction can never fail to upgrade under concurrency.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, MetaError> {
        Ok(match self.kind {
            DbKind::Sqlite => {
                let turn = self.write_turn.clone().lock_owned().await;
                WriteTx::begin(&self.pool, "BEGIN IMMEDIATE", Some(turn), self.timeout).await?
            }
            DbKind::Postgres => WriteTx::begin(&self.pool, "BEGIN", None, self.timeout).await?,
        })
    }

    /// Serialises the nodes doing one piece of first-start work until the transaction ends,
    /// so that N nodes starting at once on an empty index do it once. SQLite needs nothing:
    /// `BEGIN IMMEDIATE` already holds the database's only write lock.
    pub(crate) async fn lock_once(&self, tx: &mut WriteTx, what: Once) -> Result<(), MetaError> {
        if self.kind == DbKind::Postgres {
            // The two-key form: its key space never meets the one-key locks of `lock_key`.
            sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
                .bind(ONCE_LOCK_CLASS)
                .bind(what as i32)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Serialises writers of one (bucket, key) until the transaction ends. SQLite needs
    /// nothing: `BEGIN IMMEDIATE` already holds the database's only write lock.
    pub(crate) async fn lock_key(
        &self,
        tx: &mut WriteTx,
        bucket: &str,
        key: &str,
    ) -> Result<(), MetaError> {
        if self.kind == DbKind::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!("{bucket}/{key}"))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// Test-only: `ARTSTORE_TEST_SQLITE_MAX_PAGES=<n>` caps the SQLite index at `n` pages, so the
/// tests can fill the index without a small filesystem (mounting one needs root). Not a
/// setting: never set it outside tests.
fn test_max_pages() -> Option<u64> {
    static PAGES: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *PAGES.get_or_init(|| {
        std::env::var("ARTSTORE_TEST_SQLITE_MAX_PAGES")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}
