//! Why a document is refused, and why a request is denied.

use artstore_metadata::Mode;

/// A bucket policy document that cannot be stored; the message names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

impl PolicyError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        PolicyError(msg.into())
    }
}

/// Why the evaluator denied a request. `Display` is the message the caller sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// Neither the role (with its grants) nor a bucket policy Allow covers the action.
    #[error(
        "service account '{account}' (role {role}) is not allowed to {action} on storage element '{element}'"
    )]
    NotAllowed {
        account: String,
        role: &'static str,
        action: &'static str,
        element: String,
    },
    /// Only admins create storage elements.
    #[error(
        "service account '{account}' (role {role}) is not allowed to s3:CreateBucket: only admins create storage elements"
    )]
    CreateBucket { account: String, role: &'static str },
    /// A Deny statement of the stored bucket policy matched.
    #[error(
        "the bucket policy of storage element '{element}' denies {action} to service account '{account}'"
    )]
    BucketPolicy {
        element: String,
        action: &'static str,
        account: String,
    },
    /// A statement of the element's mode; nothing overrides it.
    #[error("storage element '{element}' is in mode {mode}: {reason}")]
    Mode {
        element: String,
        mode: Mode,
        reason: &'static str,
        /// The archive mode denies reading bytes (S3 answers `InvalidObjectState`).
        archived_read: bool,
    },
}
