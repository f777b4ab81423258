//! The one access-policy evaluator every S3 operation asks (DESIGN.md §2, §5).
//!
//! A request is allowed when the caller's role statements allow the action, the account's bucket
//! grants (if it has any) cover the bucket, and no Deny statement matches — the element's mode
//! statements above all, which nothing can override. Deny wins. The evaluator is pure: the
//! operations load the element and the caller's grants once per request and ask it as often as
//! they need (e.g. again at commit time, with the then-current facts).

use artstore_metadata::{Element, Identity, Mode, Role};
use s3s::{S3Error, s3_error};

/// What an S3 operation wants to do, in the terms of policy statements (`s3:<Action>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read an object's bytes (GetObject, and the source of CopyObject/UploadPartCopy).
    GetObject,
    /// HeadObject, GetObjectAttributes/Acl/Tagging: metadata only.
    HeadObject,
    /// ListObjects(V2), ListObjectVersions, ListMultipartUploads, ListParts, HeadBucket, location…
    ListBucket,
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
    GetObjectTagging,
    /// PutObjectTagging and DeleteObjectTagging are metadata updates, like UpdateObjectMetadata.
    PutObjectTagging,
    DeleteObjectTagging,
    GetBucketTagging,
    /// PutBucketTagging and DeleteBucketTagging (AWS names both `s3:PutBucketTagging`).
    PutBucketTagging,
}

impl Action {
    /// The action's name in policy documents.
    pub fn name(self) -> &'static str {
        match self {
            Action::GetObject => "s3:GetObject",
            Action::HeadObject => "s3:GetObjectAttributes",
            Action::ListBucket => "s3:ListBucket",
            Action::PutObject => "s3:PutObject",
            Action::UpdateObjectMetadata => "s3:PutObject",
            Action::DeleteObject => "s3:DeleteObject",
            Action::AbortMultipartUpload => "s3:AbortMultipartUpload",
            Action::RestoreObject => "s3:RestoreObject",
            Action::GetRestoredObject => "s3:GetObject",
            Action::CreateBucket => "s3:CreateBucket",
            Action::DeleteBucket => "s3:DeleteBucket",
            Action::GetBucketPolicy => "s3:GetBucketPolicy",
            Action::PutBucketPolicy => "s3:PutBucketPolicy",
            Action::DeleteBucketPolicy => "s3:DeleteBucketPolicy",
            Action::GetObjectTagging => "s3:GetObjectTagging",
            Action::PutObjectTagging => "s3:PutObjectTagging",
            Action::DeleteObjectTagging => "s3:DeleteObjectTagging",
            Action::GetBucketTagging => "s3:GetBucketTagging",
            Action::PutBucketTagging => "s3:PutBucketTagging",
        }
    }

    fn class(self) -> Class {
        match self {
            Action::GetObject
            | Action::GetRestoredObject
            | Action::HeadObject
            | Action::ListBucket
            | Action::GetObjectTagging => Class::Read,
            // A restore costs disk reads and changes the object's record: writers only.
            Action::PutObject
            | Action::UpdateObjectMetadata
            | Action::DeleteObject
            | Action::AbortMultipartUpload
            | Action::RestoreObject
            | Action::PutObjectTagging
            | Action::DeleteObjectTagging => Class::Write,
            Action::GetBucketPolicy | Action::GetBucketTagging => Class::ReadConfig,
            Action::PutBucketTagging
            | Action::CreateBucket
            | Action::DeleteBucket
            | Action::PutBucketPolicy
            | Action::DeleteBucketPolicy => Class::Admin,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Read,
    Write,
    ReadConfig,
    Admin,
}

/// Facts about the target the mode statements depend on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// The key already holds an object (a PutObject would overwrite it).
    pub key_exists: bool,
}

/// Access a bucket grant gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantAccess {
    Read,
    Write,
}

/// The caller as the evaluator sees it: identity, role and bucket grants.
#[derive(Debug, Clone)]
pub struct Principal {
    pub identity: Identity,
    /// `(bucket, access)`; empty means "every bucket" for user and readonly roles.
    pub grants: Vec<(String, GrantAccess)>,
}

impl Principal {
    pub fn new(identity: Identity, raw_grants: Vec<(String, String)>) -> Principal {
        // An unknown access string grants nothing (but still restricts the account to grants).
        let grants = raw_grants
            .into_iter()
            .map(|(b, a)| {
                let access = match a.as_str() {
                    "write" => GrantAccess::Write,
                    _ => GrantAccess::Read,
                };
                (b, access)
            })
            .collect();
        Principal { identity, grants }
    }

    fn role_name(&self) -> &'static str {
        self.identity.role.map_or("unknown", Role::as_str)
    }

    /// Whether the account's grants let it reach `bucket` for this class of action.
    fn grant_allows(&self, bucket: &str, class: Class) -> bool {
        if self.grants.is_empty() {
            return true;
        }
        self.grants.iter().any(|(b, a)| {
            b == bucket
                && match class {
                    Class::Read | Class::ReadConfig => true,
                    Class::Write => *a == GrantAccess::Write,
                    Class::Admin => false,
                }
        })
    }

    /// Whether the account may see `bucket` at all (ListBuckets filters by this).
    pub fn can_see(&self, bucket: &str) -> bool {
        match self.identity.role {
            Some(Role::Admin | Role::Auditor) => true,
            Some(Role::User | Role::Readonly) => self.grant_allows(bucket, Class::Read),
            None => false,
        }
    }
}

/// Effect of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A statement of the element's mode: which actions it denies, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeStatement {
    pub sid: &'static str,
    pub actions: &'static [&'static str],
    /// The explanation that ends the denial message (`objects cannot be deleted`).
    pub reason: &'static str,
}

/// The Deny statements a mode imposes (DESIGN.md §2), as they appear in the effective policy.
/// Overwrite-only denials (rw) are conditional on the key existing and are listed separately.
pub fn mode_statements(mode: Mode) -> Vec<ModeStatement> {
    const READ: ModeStatement = ModeStatement {
        sid: "ModeArchiveDenyRead",
        actions: &["s3:GetObject"],
        reason: "objects are archived and cannot be read",
    };
    const CREATE: ModeStatement = ModeStatement {
        sid: "ModeDenyWrite",
        actions: &[
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:DeleteObjectTagging",
        ],
        reason: "objects cannot be created or changed",
    };
    const OVERWRITE: ModeStatement = ModeStatement {
        sid: "ModeDenyOverwrite",
        actions: &["s3:PutObject"],
        reason: "existing objects cannot be overwritten",
    };
    const DELETE: ModeStatement = ModeStatement {
        sid: "ModeDenyDelete",
        actions: &["s3:DeleteObject"],
        reason: "objects cannot be deleted",
    };
    match mode {
        Mode::Edit => vec![],
        Mode::Rw => vec![OVERWRITE, DELETE],
        Mode::Ro => vec![CREATE, DELETE],
        Mode::Ar => vec![READ, CREATE, DELETE],
    }
}

/// Why the mode denies `action` under `facts`, if it does.
fn mode_denial(mode: Mode, action: Action, facts: Facts) -> Option<&'static str> {
    let statements = mode_statements(mode);
    let find = |sid: &str| statements.iter().find(|s| s.sid == sid).map(|s| s.reason);
    match action {
        Action::GetObject => find("ModeArchiveDenyRead"),
        Action::PutObject => {
            find("ModeDenyWrite").or_else(|| facts.key_exists.then(|| find("ModeDenyOverwrite"))?)
        }
        // Metadata-only updates are not overwrites of the data: rw allows them.
        Action::UpdateObjectMetadata | Action::PutObjectTagging | Action::DeleteObjectTagging => {
            find("ModeDenyWrite")
        }
        Action::DeleteObject => find("ModeDenyDelete"),
        Action::DeleteBucket if mode != Mode::Edit => {
            Some("only an empty element in mode edit can be deleted")
        }
        _ => None,
    }
}

/// An Allow or Deny statement of a bucket policy set with PutBucketPolicy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyStatement {
    pub effect: Effect,
    /// Account names or ids; `*` matches everyone.
    pub principals: Vec<String>,
    /// `s3:GetObject`, `s3:*`, …
    pub actions: Vec<String>,
}

impl PolicyStatement {
    fn matches(&self, p: &Principal, action: Action) -> bool {
        let who = self
            .principals
            .iter()
            .any(|x| x == "*" || *x == p.identity.name || *x == p.identity.account_id);
        let what = self
            .actions
            .iter()
            .any(|a| a == "*" || a == "s3:*" || a.eq_ignore_ascii_case(action.name()));
        who && what
    }
}

/// Whether the role's own statements allow this class of action.
fn role_allows(role: Option<Role>, class: Class) -> bool {
    matches!(
        (role, class),
        (Some(Role::Admin), _)
            | (
                Some(Role::User),
                Class::Read | Class::Write | Class::ReadConfig
            )
            | (Some(Role::Auditor), Class::Read | Class::ReadConfig)
            | (Some(Role::Readonly), Class::Read)
    )
}

/// Decides one request. `Ok(())` or the S3 error to answer with.
pub fn evaluate(
    p: &Principal,
    element: &Element,
    bucket_policy: &[PolicyStatement],
    action: Action,
    facts: Facts,
) -> Result<(), S3Error> {
    let class = action.class();
    let denied_by_account = || {
        s3_error!(
            AccessDenied,
            "service account '{}' (role {}) is not allowed to {} on storage element '{}'",
            p.identity.name,
            p.role_name(),
            action.name(),
            element.name
        )
    };
    // An unknown role is never allowed anything, whatever a bucket policy says.
    if p.identity.role.is_none() {
        return Err(denied_by_account());
    }
    // Explicit Deny statements of the bucket policy.
    if bucket_policy
        .iter()
        .any(|s| s.effect == Effect::Deny && s.matches(p, action))
    {
        return Err(s3_error!(
            AccessDenied,
            "the bucket policy of storage element '{}' denies {} to service account '{}'",
            element.name,
            action.name(),
            p.identity.name
        ));
    }
    // Mode statements: checked before the allows so no Allow can override them.
    if let Some(reason) = mode_denial(element.mode, action, facts) {
        let msg = format!(
            "storage element '{}' is in mode {}: {}",
            element.name, element.mode, reason
        );
        return Err(if action == Action::GetObject {
            S3Error::with_message(s3s::S3ErrorCode::InvalidObjectState, msg)
        } else {
            S3Error::with_message(s3s::S3ErrorCode::AccessDenied, msg)
        });
    }
    let by_role = role_allows(p.identity.role, class)
        && (p.identity.role == Some(Role::Admin)
            || p.identity.role == Some(Role::Auditor)
            || p.grant_allows(&element.name, class));
    // A bucket policy may allow object actions beyond the role, never bucket administration.
    let by_policy = class != Class::Admin
        && bucket_policy
            .iter()
            .any(|s| s.effect == Effect::Allow && s.matches(p, action));
    if by_role || by_policy {
        Ok(())
    } else {
        Err(denied_by_account())
    }
}

/// Whether the caller may create buckets (no element exists yet to evaluate against).
pub fn may_create_bucket(p: &Principal) -> Result<(), S3Error> {
    if role_allows(p.identity.role, Class::Admin) {
        Ok(())
    } else {
        Err(s3_error!(
            AccessDenied,
            "service account '{}' (role {}) is not allowed to s3:CreateBucket: only admins create storage elements",
            p.identity.name,
            p.role_name()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(mode: Mode) -> Element {
        Element {
            name: "invoices".into(),
            mode,
            backend: "{}".into(),
            capacity_bytes: None,
            used_bytes: 0,
            object_count: 0,
            description: None,
            created_by: "admin".into(),
            created_ms: 0,
            updated_ms: 0,
            mode_changed_ms: None,
            tags: Default::default(),
        }
    }

    fn who(role: Option<Role>, grants: &[(&str, &str)]) -> Principal {
        Principal::new(
            Identity {
                account_id: "id1".into(),
                name: "bob".into(),
                role,
            },
            grants
                .iter()
                .map(|(b, a)| ((*b).to_owned(), (*a).to_owned()))
                .collect(),
        )
    }

    fn code(r: Result<(), S3Error>) -> String {
        match r {
            Ok(()) => "ok".into(),
            Err(e) => e.code().as_str().to_owned(),
        }
    }

    #[test]
    fn mode_table() {
        let admin = who(Some(Role::Admin), &[]);
        let exists = Facts { key_exists: true };
        let new = Facts::default();
        let cases = [
            (Mode::Edit, Action::GetObject, new, "ok"),
            (Mode::Ar, Action::GetObject, new, "InvalidObjectState"),
            (Mode::Ar, Action::HeadObject, new, "ok"),
            (Mode::Ar, Action::ListBucket, new, "ok"),
            (Mode::Rw, Action::PutObject, new, "ok"),
            (Mode::Rw, Action::PutObject, exists, "AccessDenied"),
            (Mode::Edit, Action::PutObject, exists, "ok"),
            (Mode::Ro, Action::PutObject, new, "AccessDenied"),
            (Mode::Rw, Action::UpdateObjectMetadata, exists, "ok"),
            (
                Mode::Ro,
                Action::UpdateObjectMetadata,
                exists,
                "AccessDenied",
            ),
            (Mode::Rw, Action::DeleteObject, exists, "AccessDenied"),
            (Mode::Edit, Action::DeleteObject, exists, "ok"),
            (Mode::Rw, Action::DeleteBucket, new, "AccessDenied"),
            (Mode::Edit, Action::DeleteBucket, new, "ok"),
            (Mode::Ar, Action::RestoreObject, exists, "ok"),
            (Mode::Ar, Action::GetRestoredObject, exists, "ok"),
        ];
        for (mode, action, facts, want) in cases {
            let got = code(evaluate(&admin, &element(mode), &[], action, facts));
            assert_eq!(got, want, "{mode} {action:?} {facts:?}");
        }
    }

    #[test]
    fn denial_names_the_mode() {
        let admin = who(Some(Role::Admin), &[]);
        let e = evaluate(
            &admin,
            &element(Mode::Rw),
            &[],
            Action::DeleteObject,
            Facts::default(),
        )
        .err()
        .map(|e| e.message().unwrap_or_default().to_owned());
        assert_eq!(
            e.as_deref(),
            Some("storage element 'invoices' is in mode rw: objects cannot be deleted")
        );
    }

    #[test]
    fn roles_and_grants() {
        let el = element(Mode::Edit);
        let f = Facts::default();
        assert_eq!(
            code(evaluate(&who(None, &[]), &el, &[], Action::HeadObject, f)),
            "AccessDenied"
        );
        assert_eq!(
            code(evaluate(
                &who(Some(Role::User), &[]),
                &el,
                &[],
                Action::PutObject,
                f
            )),
            "ok"
        );
        assert_eq!(
            code(evaluate(
                &who(Some(Role::User), &[("other", "write")]),
                &el,
                &[],
                Action::GetObject,
                f
            )),
            "AccessDenied"
        );
        assert_eq!(
            code(evaluate(
                &who(Some(Role::User), &[("invoices", "read")]),
                &el,
                &[],
                Action::PutObject,
                f
            )),
            "AccessDenied"
        );
        assert_eq!(
            code(evaluate(
                &who(Some(Role::User), &[("invoices", "read")]),
                &el,
                &[],
                Action::GetObject,
                f
            )),
            "ok"
        );
        assert_eq!(
            code(evaluate(
                &who(Some(Role::Auditor), &[]),
                &el,
                &[],
                Action::PutObject,
                f
            )),
            "AccessDenied"
        );
        assert_eq!(
            code(evaluate(
                &who(Some(Role::Readonly), &[]),
                &el,
                &[],
                Action::GetObject,
                f
            )),
            "ok"
        );
        assert_eq!(
            code(evaluate(
                &who(Some(Role::Readonly), &[]),
                &el,
                &[],
                Action::DeleteObject,
                f
            )),
            "AccessDenied"
        );
        assert_eq!(
            code(evaluate(
                &who(Some(Role::User), &[]),
                &el,
                &[],
                Action::DeleteBucket,
                f
            )),
            "AccessDenied"
        );
    }

    #[test]
    fn restore_needs_write_access() {
        let el = element(Mode::Ar);
        let f = Facts { key_exists: true };
        let cases = [
            (who(Some(Role::Admin), &[]), "ok"),
            (who(Some(Role::User), &[]), "ok"),
            (who(Some(Role::User), &[("invoices", "write")]), "ok"),
            (
                who(Some(Role::User), &[("invoices", "read")]),
                "AccessDenied",
            ),
            (who(Some(Role::User), &[("other", "write")]), "AccessDenied"),
            (who(Some(Role::Auditor), &[]), "AccessDenied"),
            (who(Some(Role::Readonly), &[]), "AccessDenied"),
            (who(None, &[]), "AccessDenied"),
        ];
        for (p, want) in cases {
            let got = code(evaluate(&p, &el, &[], Action::RestoreObject, f));
            assert_eq!(got, want, "{p:?}");
        }
        // Reading the restored copy is a read: readonly may, other buckets' grantees may not.
        assert_eq!(
            code(evaluate(
                &who(Some(Role::Readonly), &[]),
                &el,
                &[],
                Action::GetRestoredObject,
                f
            )),
            "ok"
        );
        assert_eq!(
            code(evaluate(
                &who(Some(Role::User), &[("other", "read")]),
                &el,
                &[],
                Action::GetRestoredObject,
                f
            )),
            "AccessDenied"
        );
        // A bucket policy denying s3:GetObject covers restored copies too.
        let deny_get = PolicyStatement {
            effect: Effect::Deny,
            principals: vec!["*".into()],
            actions: vec!["s3:GetObject".into()],
        };
        assert_eq!(
            code(evaluate(
                &who(Some(Role::Admin), &[]),
                &el,
                std::slice::from_ref(&deny_get),
                Action::GetRestoredObject,
                f
            )),
            "AccessDenied"
        );
        let deny_restore = PolicyStatement {
            effect: Effect::Deny,
            principals: vec!["bob".into()],
            actions: vec!["s3:RestoreObject".into()],
        };
        assert_eq!(
            code(evaluate(
                &who(Some(Role::Admin), &[]),
                &el,
                &[deny_restore],
                Action::RestoreObject,
                f
            )),
            "AccessDenied"
        );
        assert_eq!(Action::RestoreObject.name(), "s3:RestoreObject");
    }

    #[test]
    fn bucket_policy_cannot_override_mode() {
        let allow_all = PolicyStatement {
            effect: Effect::Allow,
            principals: vec!["*".into()],
            actions: vec!["s3:*".into()],
        };
        let ro = who(Some(Role::Readonly), &[]);
        let f = Facts::default();
        assert_eq!(
            code(evaluate(
                &ro,
                &element(Mode::Edit),
                std::slice::from_ref(&allow_all),
                Action::PutObject,
                f
            )),
            "ok"
        );
        assert_eq!(
            code(evaluate(
                &ro,
                &element(Mode::Ro),
                std::slice::from_ref(&allow_all),
                Action::PutObject,
                f
            )),
            "AccessDenied"
        );
        let deny = PolicyStatement {
            effect: Effect::Deny,
            principals: vec!["bob".into()],
            actions: vec!["s3:GetObject".into()],
        };
        let admin = who(Some(Role::Admin), &[]);
        assert_eq!(
            code(evaluate(
                &admin,
                &element(Mode::Edit),
                &[deny],
                Action::GetObject,
                f
            )),
            "AccessDenied"
        );
    }
}
