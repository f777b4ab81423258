use thiserror::Error;

#[derive(Debug, Error)]
pub enum MetaError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} not found")]
    NotFound(String),
    /// A write named an element that no longer exists (deleted while the write ran).
    #[error("storage element '{0}' not found")]
    NoSuchElement(String),
    #[error("storage element '{0}' is not empty")]
    NotEmpty(String),
    #[error(
        "storage element '{element}' is full: {used} of {capacity} bytes used, {needed} more needed"
    )]
    QuotaExceeded {
        element: String,
        capacity: i64,
        used: i64,
        needed: i64,
    },
    /// A conditional write's expectation did not hold inside its transaction.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("corrupt index row: {0}")]
    Corrupt(String),
    #[error("secret encryption failed: {0}")]
    Crypto(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("unsupported database url: {0}")]
    BadUrl(String),
    /// The Redis URL of the cache invalidations is not usable.
    #[error("invalid Redis URL: {0}")]
    Redis(String),
    /// The on-disk audit spool could not be written or read.
    #[error("audit spool: {0}")]
    Spool(String),
}

impl MetaError {
    /// The database could not be reached or gave no connection in time (stopped, restarting,
    /// hanging): the operation did nothing and may be retried later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            MetaError::Db(e) => db_unavailable(e),
            _ => false,
        }
    }

    /// The index's storage is full (SQLite `SQLITE_FULL`, PostgreSQL `disk_full`).
    pub fn is_index_full(&self) -> bool {
        match self {
            MetaError::Db(sqlx::Error::Database(d)) => {
                matches!(d.code().as_deref(), Some("13") | Some("53100"))
            }
            _ => false,
        }
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        MetaError::Corrupt(what.to_string())
    }
}

/// True when the error is a unique-key violation (both drivers report it the same way).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn db_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL: connection exceptions (08…), a statement cancelled by
        // `statement_timeout` (57014), the server shutting down or starting up (57P01-57P03),
        // too many connections (53300).
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            c.starts_with("08") || matches!(&*c, "57014" | "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}
