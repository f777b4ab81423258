//! The caller as the evaluator sees it: identity, role and bucket grants.

use artstore_metadata::{Identity, Role};

use crate::action::Class;

/// Access a bucket grant gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantAccess {
    Read,
    Write,
}

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

    pub(crate) fn role_name(&self) -> &'static str {
        self.identity.role.map_or("unknown", Role::as_str)
    }

    /// Whether the account's grants let it reach `bucket` for this class of action.
    pub(crate) fn grant_allows(&self, bucket: &str, class: Class) -> bool {
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

    /// Whether the role allows this class of action on `bucket`: admins and auditors reach
    /// every bucket, the other roles their granted ones (all when they have no grants).
    pub(crate) fn role_reaches(&self, bucket: &str, class: Class) -> bool {
        self.role_allows(class)
            && (matches!(self.identity.role, Some(Role::Admin | Role::Auditor))
                || self.grant_allows(bucket, class))
    }

    /// Whether the role's own statements allow this class of action.
    pub(crate) fn role_allows(&self, class: Class) -> bool {
        matches!(
            (self.identity.role, class),
            (Some(Role::Admin), _)
                | (
                    Some(Role::User),
                    Class::Read | Class::Write | Class::ReadConfig
                )
                | (Some(Role::Auditor), Class::Read | Class::ReadConfig)
                | (Some(Role::Readonly), Class::Read)
        )
    }
}
