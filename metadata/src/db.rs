use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use std::sync::Arc;

use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};

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
}

/// A write transaction; on SQLite it also holds this process's write turn until it ends.
pub(crate) struct WriteTx {
    tx: Transaction<'static, Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Store {
    /// The embedded default: a SQLite file under the data directory.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("artstore.db").display()
        )
    }

    pub async fn connect(url: &str, secrets: SecretBox) -> Result<Store, MetaError> {
        sqlx::any::install_default_drivers();
        let kind = if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            DbKind::Postgres
        } else {
            return Err(MetaError::BadUrl(url.to_owned()));
        };
        let opts: AnyConnectOptions = url.parse()?;
        let pool = match kind {
            DbKind::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the single writer; NORMAL is durable
                            // across process crashes, and the index can be rebuilt anyway.
                            conn.execute("PRAGMA journal_mode=WAL").await?;
                            conn.execute("PRAGMA synchronous=NORMAL").await?;
                            conn.execute("PRAGMA busy_timeout=30000").await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await?
            }
            DbKind::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?
            }
        };
        Ok(Store {
            pool,
            kind,
            secrets,
            write_turn: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    pub async fn migrate(&self) -> Result<(), MetaError> {
        match self.kind {
            DbKind::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            DbKind::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
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
                WriteTx {
                    tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                }
            }
            DbKind::Postgres => WriteTx {
                tx: self.pool.begin().await?,
                _turn: None,
            },
        })
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
