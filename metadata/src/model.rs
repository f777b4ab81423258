use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Lifecycle mode of a storage element (DESIGN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Edit,
    Rw,
    Ro,
    Ar,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Edit => "edit",
            Mode::Rw => "rw",
            Mode::Ro => "ro",
            Mode::Ar => "ar",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "edit" => Ok(Mode::Edit),
            "rw" => Ok(Mode::Rw),
            "ro" => Ok(Mode::Ro),
            "ar" => Ok(Mode::Ar),
            other => Err(format!(
                "unknown mode '{other}' (expected edit, rw, ro or ar)"
            )),
        }
    }
}

/// Role of a service account (DESIGN.md §5). Unknown roles never parse, so they can never be admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
    Auditor,
    Readonly,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Auditor => "auditor",
            Role::Readonly => "readonly",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            "auditor" => Ok(Role::Auditor),
            "readonly" => Ok(Role::Readonly),
            other => Err(format!("unknown role '{other}'")),
        }
    }
}

/// Who is making a request, as established by SigV4 or a bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account_id: String,
    pub name: String,
    pub role: Option<Role>,
}

/// A bucket, seen as an ArtStore storage element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Element {
    pub name: String,
    pub mode: Mode,
    /// Backend description as JSON, e.g. `{"kind":"local"}`.
    pub backend: String,
    pub capacity_bytes: Option<i64>,
    pub used_bytes: i64,
    pub object_count: i64,
    pub description: Option<String>,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub mode_changed_ms: Option<i64>,
    /// Bucket tags (PutBucketTagging); empty = no tag set.
    pub tags: BTreeMap<String, String>,
    /// Lifecycle rules (PutBucketLifecycleConfiguration); not part of the admin API's view.
    #[serde(skip)]
    pub lifecycle: Option<crate::Lifecycle>,
}

/// One object's index row: a cache of its attr.json plus where its data lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectRecord {
    pub bucket: String,
    pub key: String,
    pub file_id: String,
    /// Data file path relative to the element root; the sidecar is this plus `.attr.json`.
    pub storage_path: String,
    pub size: i64,
    /// Bare ETag (no quotes): md5 hex, or `hex-N` for multipart objects.
    pub etag: String,
    pub sha256: String,
    pub content_type: String,
    /// Standard headers kept with the object, by lower-case header name.
    pub http_headers: BTreeMap<String, String>,
    /// Declared S3 checksums, by algorithm name (`crc32`, …), base64.
    pub checksums: BTreeMap<String, String>,
    pub custom_attributes: BTreeMap<String, String>,
    /// S3 object tags (x-amz-tagging, PutObjectTagging).
    pub tags: BTreeMap<String, String>,
    pub owner_id: String,
    pub owner_name: String,
    pub parts_count: Option<i64>,
    /// Sizes of a multipart object's parts, run-length encoded; empty for single-part objects.
    pub part_sizes: Vec<PartRun>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The last RestoreObject of an archived object (cache of attr.json's `restore`).
    pub restore: Option<RestoreState>,
}

/// `count` consecutive parts of `size` bytes each. Uploads mostly use one part size, so a
/// 10 000-part object takes two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRun {
    pub size: i64,
    pub count: i64,
}

impl PartRun {
    /// Run-length encodes part sizes in part order.
    pub fn encode(sizes: impl IntoIterator<Item = i64>) -> Vec<PartRun> {
        let mut runs: Vec<PartRun> = Vec::new();
        for size in sizes {
            match runs.last_mut() {
                Some(r) if r.size == size => r.count += 1,
                _ => runs.push(PartRun { size, count: 1 }),
            }
        }
        runs
    }

    /// Byte offset and size of part `n` (1-based), if the object has it.
    pub fn locate(runs: &[PartRun], n: i64) -> Option<(i64, i64)> {
        let (mut first, mut offset) = (1i64, 0i64);
        for r in runs {
            if n < first + r.count {
                return (n >= first).then(|| (offset + (n - first) * r.size, r.size));
            }
            first += r.count;
            offset += r.count * r.size;
        }
        None
    }

    /// Every part's size, in order.
    pub fn sizes(runs: &[PartRun]) -> impl Iterator<Item = i64> + '_ {
        runs.iter()
            .flat_map(|r| std::iter::repeat_n(r.size, usize::try_from(r.count).unwrap_or(0)))
    }
}

/// What a conditional delete requires of the current object; every given value must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteIf {
    /// Bare ETag, or `*` for "exists".
    pub etag: Option<String>,
    /// Last-Modified, in whole seconds since the epoch (the precision clients see).
    pub modified_secs: Option<i64>,
    pub size: Option<i64>,
}

impl DeleteIf {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.modified_secs.is_none() && self.size.is_none()
    }

    pub fn holds(&self, rec: &ObjectRecord) -> bool {
        self.etag
            .as_deref()
            .is_none_or(|e| e == "*" || e == rec.etag)
            && self
                .modified_secs
                .is_none_or(|s| s == rec.updated_ms.div_euclid(1000))
            && self.size.is_none_or(|s| s == rec.size)
    }
}

/// A finished multipart upload, remembered for a day so that a retried Complete finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedUpload {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub file_id: String,
    pub etag: String,
    pub completed_ms: i64,
}

/// Where a restore of an archived object stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreStatus {
    /// The data is being re-read and checked against its SHA-256.
    Ongoing,
    /// Verified: readable until `expires_ms`.
    Completed,
    /// The data did not verify (bit rot, missing or unreadable file): it stays unreadable.
    Failed,
}

impl RestoreStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreStatus::Ongoing => "ongoing",
            RestoreStatus::Completed => "completed",
            RestoreStatus::Failed => "failed",
        }
    }
}

impl FromStr for RestoreStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ongoing" => Ok(RestoreStatus::Ongoing),
            "completed" => Ok(RestoreStatus::Completed),
            "failed" => Ok(RestoreStatus::Failed),
            other => Err(format!("unknown restore status '{other}'")),
        }
    }
}

/// The state of an object's last restore. Times are ms since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreState {
    pub status: RestoreStatus,
    pub days: i64,
    pub requested_ms: i64,
    /// Name of the service account that asked.
    pub requested_by: String,
    /// When the verification ended (successfully or not).
    pub completed_ms: Option<i64>,
    /// End of the readable period (completed restores only).
    pub expires_ms: Option<i64>,
}

impl RestoreState {
    /// Whether a verified restored copy is readable at `now_ms`.
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.status == RestoreStatus::Completed && self.expires_ms.is_some_and(|e| e > now_ms)
    }
}

/// An in-progress multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Upload {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub owner_id: String,
    pub owner_name: String,
    pub content_type: String,
    pub http_headers: BTreeMap<String, String>,
    pub custom_attributes: BTreeMap<String, String>,
    pub checksum_algorithm: Option<String>,
    /// Tags given at CreateMultipartUpload, applied to the object at completion.
    pub tags: BTreeMap<String, String>,
    pub created_ms: i64,
    /// `COMPOSITE` or `FULL_OBJECT` when `checksum_algorithm` is set.
    pub checksum_type: Option<String>,
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Part {
    pub upload_id: String,
    pub part_number: i64,
    pub size: i64,
    pub etag: String,
    pub checksums: BTreeMap<String, String>,
    pub created_ms: i64,
}

/// Account lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Suspended,
    Expired,
    Deleted,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Expired => "expired",
            AccountStatus::Deleted => "deleted",
        }
    }
}

impl FromStr for AccountStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(AccountStatus::Active),
            "suspended" => Ok(AccountStatus::Suspended),
            "expired" => Ok(AccountStatus::Expired),
            "deleted" => Ok(AccountStatus::Deleted),
            other => Err(format!("unknown status '{other}'")),
        }
    }
}

/// A service account with its secret decrypted (never log it).
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// Raw role text; `Role::from_str` fails for unknown roles, which are then denied.
    pub role: String,
    pub status: AccountStatus,
    pub rate_limit: Option<i64>,
    pub secret_expires_ms: Option<i64>,
    pub is_system: bool,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("role", &self.role)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn identity(&self) -> Identity {
        Identity {
            account_id: self.id.clone(),
            name: self.name.clone(),
            role: self.role.parse().ok(),
        }
    }
}

/// What to create a service account with.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub description: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub role: Role,
    pub rate_limit: Option<i64>,
    pub secret_expires_ms: Option<i64>,
    pub is_system: bool,
}

pub(crate) fn map_to_json(m: &BTreeMap<String, String>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".to_owned())
}

pub(crate) fn runs_to_json(runs: &[PartRun]) -> Option<String> {
    (!runs.is_empty()).then(|| {
        let pairs: Vec<[i64; 2]> = runs.iter().map(|r| [r.size, r.count]).collect();
        serde_json::to_string(&pairs).unwrap_or_default()
    })
}

pub(crate) fn runs_from_json(s: Option<&str>) -> Result<Vec<PartRun>, crate::MetaError> {
    let Some(s) = s else { return Ok(Vec::new()) };
    let pairs: Vec<[i64; 2]> = serde_json::from_str(s).map_err(crate::MetaError::corrupt)?;
    Ok(pairs
        .into_iter()
        .map(|[size, count]| PartRun { size, count })
        .collect())
}

pub(crate) fn map_from_json(s: &str) -> Result<BTreeMap<String, String>, crate::MetaError> {
    serde_json::from_str(s).map_err(crate::MetaError::corrupt)
}
