//! ArtStore backends: where object bytes and attr.json sidecars live.

pub mod attr;
pub mod digest;
pub mod error;
pub mod legacy;
pub mod legacy_tree;
pub mod local;
pub mod naming;
pub mod s3remote;

pub use attr::{
    AttrJson, HttpHeaders, MAX_ATTR_BYTES, MAX_USER_METADATA_BYTES, SCHEMA_VERSION,
    format_timestamp, format_timestamp_ms, user_metadata_size,
};
pub use digest::{ChecksumAlgorithm, Digests, Hasher, composite_checksum, full_object_checksum};
pub use error::BackendError;
pub use legacy::{AdoptError, Adopted, KeyTemplate};
pub use legacy_tree::{LegacyTree, SidecarFile};
pub use local::{LocalFs, ObjectStream, Staged};
pub use naming::{MAX_FILE_NAME_BYTES, StorageName, sanitize, storage_name};
pub use reread::{MIN_REREAD_CHUNK, Reread};
pub use s3remote::{RemoteReread, RemoteStaged, S3Remote, S3RemoteConfig};

mod fsutil;
mod range;
mod reread;
mod scan;
mod staging;
