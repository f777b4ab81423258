//! ArtStore's index and control data.
//!
//! One code path serves SQLite (the embedded default) and PostgreSQL through sqlx's `Any` driver;
//! every statement uses `$N` placeholders, which both accept. Domain types shared by the other
//! crates (modes, roles, identities) live here too.

mod accounts;
mod audit;
mod bulk;
mod cache;
mod connect;
mod db;
mod element_doc;
mod elements;
mod error;
mod jobs;
mod keys;
mod lifecycle;
mod list;
mod model;
mod multipart;
mod names;
mod objects;
mod scrub;
mod search;
mod secret;
mod spool;

pub use accounts::{AccountQuery, AccountUpdate};
pub use audit::{AuditEvent, AuditQuery};
pub use cache::{Cached, Coordination};
pub use connect::{
    DEFAULT_POOL_SIZE_POSTGRES, DEFAULT_POOL_SIZE_SQLITE, DEFAULT_STARTUP_WAIT,
    DEFAULT_STATEMENT_TIMEOUT, DbOptions,
};
pub use db::{DEFAULT_DB_TIMEOUT, DbKind, Store};
pub use element_doc::ElementDoc;
pub use elements::{
    ElementUpdateError, ModeChange, ModeChangeError, NewElement, allowed_targets,
    import_key_template, imported_backend, local_backend,
};
pub use error::MetaError;
pub use jobs::{Job, JobStartError, JobStatus, NewJob, STALE_JOB_ERROR};
pub use keys::SigningKey;
pub use lifecycle::{Lifecycle, LifecycleRule, PrefixForm, UploadAge};
pub use list::{ListEntry, ListPage, ListQuery};
pub use model::*;
pub use names::is_valid_bucket_name;
pub use objects::{Checked, WriteView};
pub use scrub::{ScrubBatch, ScrubItem};
pub use search::params as search_params;
pub use search::{
    AttrCond, AttrFilter, CursorError, DEFAULT_LIMIT, FACET_TOP, Facet, FacetField, FacetValue,
    MAX_LIMIT, MAX_QUERY_CHARS, MAX_TERMS, QueryError, SearchError, SearchHit, SearchPage,
    SearchQuery, Sort, SortField, TagFilter,
};
pub use secret::{MasterKey, SecretBox};
pub use spool::SpoolStats;

/// Milliseconds since the Unix epoch, the unit of every timestamp in the index.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
