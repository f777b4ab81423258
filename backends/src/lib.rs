//! ArtStore backends: where object bytes and attr.json sidecars live.

pub mod attr;
pub mod backend;
pub mod config;
pub mod digest;
pub mod error;
pub mod legacy;
pub mod legacy_tree;
pub mod naming;
pub mod registry;
pub mod s3remote;

pub use attr::{
    AttrJson, HttpHeaders, MAX_ATTR_BYTES, MAX_USER_METADATA_BYTES, SCHEMA_VERSION,
    format_timestamp, format_timestamp_ms, user_metadata_size,
};
pub use backend::{Backend, BodyStream, PartSlice, Progress, Reread, body_stream};
pub use config::{BackendConfig, ImportConfig, LocalConfig, S3Config, Secret, SecretSealer};
pub use digest::{ChecksumAlgorithm, Digests, Hasher, composite_checksum, full_object_checksum};
pub use error::BackendError;
pub use legacy::{AdoptError, Adopted, KeyTemplate};
pub use legacy_tree::{LegacyTree, SidecarFile};
pub use naming::{MAX_FILE_NAME_BYTES, StorageName, sanitize, storage_name};
pub use range::ObjectStream;
pub use registry::Backends;
pub use reread::MIN_REREAD_CHUNK;
pub use s3remote::{S3Remote, S3RemoteConfig};
pub use staging::Staged;

mod concat;
mod fsutil;
mod local;
mod local_element;
mod range;
mod reread;
mod scan;
mod staging;
