//! What the evaluator knows about a request beyond who asks and which action: the values of
//! the condition keys, and facts about the target object.

use std::collections::BTreeMap;
use std::net::IpAddr;

use time::OffsetDateTime;

/// Object tags, key → value.
pub type Tags = BTreeMap<String, String>;

/// Per-request values of the condition keys (the caller's name and id come from the
/// [`crate::Principal`]). `None` means the request does not carry the key.
#[derive(Debug, Clone)]
pub struct Context {
    /// `aws:SourceIp`.
    pub source_ip: Option<IpAddr>,
    /// `aws:SecureTransport`.
    pub secure_transport: bool,
    /// `aws:CurrentTime`.
    pub current_time: OffsetDateTime,
    /// `s3:prefix`, `s3:delimiter`, `s3:max-keys` of a listing.
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    pub max_keys: Option<String>,
    /// `s3:x-amz-metadata-directive` and `s3:x-amz-copy-source` of a copy.
    pub metadata_directive: Option<String>,
    pub copy_source: Option<String>,
    /// `s3:RequestObjectTag/<k>` and `s3:RequestObjectTagKeys`: the tags the request sets.
    pub request_tags: Option<Tags>,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            source_ip: None,
            secure_transport: false,
            current_time: OffsetDateTime::now_utc(),
            prefix: None,
            delimiter: None,
            max_keys: None,
            metadata_directive: None,
            copy_source: None,
            request_tags: None,
        }
    }
}

/// Facts about the target of one check (a request may ask several times, e.g. per key of a
/// DeleteObjects, or again at commit time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts<'a> {
    /// The object key; `None` for bucket actions.
    pub key: Option<&'a str>,
    /// The key already holds an object (a PutObject would overwrite it).
    pub key_exists: bool,
    /// `s3:ExistingObjectTag/<k>`: the tags of the object as stored.
    pub existing_tags: Option<&'a Tags>,
}
