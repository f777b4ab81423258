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
}

impl MetaError {
    /// The database could not be reached (pool exhausted or closed, connection lost): the
    /// request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            MetaError::Db(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))
        )
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        MetaError::Corrupt(what.to_string())
    }
}

/// True when the error is a unique-key violation (both drivers report it the same way).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
