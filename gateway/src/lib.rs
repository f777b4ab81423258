//! ArtStore's S3 gateway: the S3 protocol over the index and the backends, request
//! authentication, and the wiring of the `artstore` binary.

pub mod account_cli;
pub mod auth;
pub mod bearer;
pub mod bootstrap;
pub mod config;
pub mod element_cli;
pub mod element_import;
pub mod failpoint;
pub mod host;
pub mod import_job;
pub mod index_backup;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod progress;
pub mod recovery;
pub mod restore_worker;
pub mod s3;
pub mod scrub;
pub mod search_cli;
pub mod server;
pub mod signed;
pub mod upload_expiry;
