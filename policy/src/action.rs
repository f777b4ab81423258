//! What a request wants to do, in the terms of policy statements (`s3:<Action>`).

/// An operation as the evaluator sees it. Several S3 operations may share one (every list of a
/// bucket's objects is `ListBucket`), and some share a policy name (`s3:GetObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read an object's bytes (GetObject, and the source of CopyObject/UploadPartCopy).
    GetObject,
    /// HeadObject: metadata only, named `s3:GetObject` as in S3; the archive mode allows it.
    HeadObject,
    GetObjectAcl,
    GetObjectTagging,
    PutObjectTagging,
    DeleteObjectTagging,
    /// ListObjects(V2), HeadBucket.
    ListBucket,
    ListBucketVersions,
    ListBucketMultipartUploads,
    ListMultipartUploadParts,
    GetBucketLocation,
    GetBucketVersioning,
    GetBucketAcl,
    GetBucketCors,
    GetBucketTagging,
    /// Store an object: PutObject, CopyObject target, every multipart step that leads to one.
    PutObject,
    /// CopyObject onto itself with `REPLACE`: new metadata, same bytes.
    UpdateObjectMetadata,
    DeleteObject,
    AbortMultipartUpload,
    /// RestoreObject: make an archived object readable for some days (after verifying it).
    RestoreObject,
    /// GetObject of an archived object whose restore completed and has not expired. Named
    /// `s3:GetObject` like any read; the archive mode does not deny it.
    GetRestoredObject,
    CreateBucket,
    DeleteBucket,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    /// PutBucketTagging and DeleteBucketTagging (AWS names both `s3:PutBucketTagging`).
    PutBucketTagging,
    /// GetBucketLifecycleConfiguration.
    GetLifecycleConfiguration,
    /// PutBucketLifecycleConfiguration and DeleteBucketLifecycle (AWS names both
    /// `s3:PutLifecycleConfiguration`).
    PutLifecycleConfiguration,
}

/// Every action name a statement may name (wildcards must match at least one of them).
pub const KNOWN_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:GetObjectAcl",
    "s3:GetObjectTagging",
    "s3:PutObjectTagging",
    "s3:DeleteObjectTagging",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
    "s3:ListMultipartUploadParts",
    "s3:GetBucketLocation",
    "s3:GetBucketVersioning",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketTagging",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:RestoreObject",
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:GetBucketPolicy",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketTagging",
    "s3:GetLifecycleConfiguration",
    "s3:PutLifecycleConfiguration",
];

/// What a role must be allowed to do for an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Read,
    Write,
    ReadConfig,
    Admin,
}

impl Action {
    /// The action's name in policy documents.
    pub fn name(self) -> &'static str {
        use Action::*;
        match self {
            GetObject | HeadObject | GetRestoredObject => "s3:GetObject",
            GetObjectAcl => "s3:GetObjectAcl",
            GetObjectTagging => "s3:GetObjectTagging",
            PutObjectTagging => "s3:PutObjectTagging",
            DeleteObjectTagging => "s3:DeleteObjectTagging",
            ListBucket => "s3:ListBucket",
            ListBucketVersions => "s3:ListBucketVersions",
            ListBucketMultipartUploads => "s3:ListBucketMultipartUploads",
            ListMultipartUploadParts => "s3:ListMultipartUploadParts",
            GetBucketLocation => "s3:GetBucketLocation",
            GetBucketVersioning => "s3:GetBucketVersioning",
            GetBucketAcl => "s3:GetBucketAcl",
            GetBucketCors => "s3:GetBucketCORS",
            GetBucketTagging => "s3:GetBucketTagging",
            PutObject | UpdateObjectMetadata => "s3:PutObject",
            DeleteObject => "s3:DeleteObject",
            AbortMultipartUpload => "s3:AbortMultipartUpload",
            RestoreObject => "s3:RestoreObject",
            CreateBucket => "s3:CreateBucket",
            DeleteBucket => "s3:DeleteBucket",
            GetBucketPolicy => "s3:GetBucketPolicy",
            PutBucketPolicy => "s3:PutBucketPolicy",
            DeleteBucketPolicy => "s3:DeleteBucketPolicy",
            PutBucketTagging => "s3:PutBucketTagging",
            GetLifecycleConfiguration => "s3:GetLifecycleConfiguration",
            PutLifecycleConfiguration => "s3:PutLifecycleConfiguration",
        }
    }

    /// Whether the action is on an object (resource `arn:aws:s3:::bucket/key`) rather than on
    /// the bucket (`arn:aws:s3:::bucket`).
    pub fn on_object(self) -> bool {
        use Action::*;
        matches!(
            self,
            GetObject
                | HeadObject
                | GetObjectAcl
                | GetObjectTagging
                | PutObjectTagging
                | DeleteObjectTagging
                | ListMultipartUploadParts
                | PutObject
                | UpdateObjectMetadata
                | DeleteObject
                | AbortMultipartUpload
                | RestoreObject
                | GetRestoredObject
        )
    }

    pub(crate) fn class(self) -> Class {
        use Action::*;
        match self {
            GetObject
            | GetRestoredObject
            | HeadObject
            | GetObjectAcl
            | GetObjectTagging
            | ListBucket
            | ListBucketVersions
            | ListBucketMultipartUploads
            | ListMultipartUploadParts
            | GetBucketLocation
            | GetBucketVersioning
            | GetBucketAcl
            | GetBucketCors
            | GetBucketTagging => Class::Read,
            // A restore costs disk reads and changes the object's record: writers only.
            PutObject | UpdateObjectMetadata | DeleteObject | AbortMultipartUpload
            | RestoreObject | PutObjectTagging | DeleteObjectTagging => Class::Write,
            GetBucketPolicy | GetLifecycleConfiguration => Class::ReadConfig,
            CreateBucket
            | DeleteBucket
            | PutBucketPolicy
            | DeleteBucketPolicy
            | PutBucketTagging
            | PutLifecycleConfiguration => Class::Admin,
        }
    }
}
