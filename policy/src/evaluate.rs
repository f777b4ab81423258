//! The evaluator. A request is allowed when the caller's role statements allow the action, the
//! account's bucket grants (if it has any) cover the bucket, or a bucket policy Allow matches —
//! and no Deny matches: the element's mode statements above all, which nothing can override.
//! Deny wins. Pure: callers load the element, grants and policy once per request and ask as
//! often as they need (e.g. again at commit time, with the then-current facts).

use artstore_metadata::{Element, Role};

use crate::action::{Action, Class};
use crate::context::{Context, Facts};
use crate::document::{Effect, Policy};
use crate::error::Denial;
use crate::mode::mode_denial;
use crate::principal::Principal;

/// Decides one check of a request.
pub fn evaluate(
    p: &Principal,
    element: &Element,
    policy: &Policy,
    cx: &Context,
    action: Action,
    facts: Facts<'_>,
) -> Result<(), Denial> {
    let class = action.class();
    let not_allowed = || Denial::NotAllowed {
        account: p.identity.name.clone(),
        role: p.role_name(),
        action: action.name(),
        element: element.name.clone(),
    };
    // An unknown role is never allowed anything, whatever a bucket policy says.
    if p.identity.role.is_none() {
        return Err(not_allowed());
    }
    let bucket = &element.name;
    // As S3's root user, an admin can always replace or remove a policy that locks it out.
    let unlock = p.identity.role == Some(Role::Admin)
        && matches!(action, Action::PutBucketPolicy | Action::DeleteBucketPolicy);
    if !unlock && policy.any_matches(Effect::Deny, p, cx, bucket, action, &facts) {
        return Err(Denial::BucketPolicy {
            element: element.name.clone(),
            action: action.name(),
            account: p.identity.name.clone(),
        });
    }
    // Mode statements: checked before the allows so no Allow can override them.
    if let Some(reason) = mode_denial(element.mode, action, &facts) {
        return Err(Denial::Mode {
            element: element.name.clone(),
            mode: element.mode,
            reason,
            archived_read: action == Action::GetObject,
        });
    }
    let by_role = p.role_reaches(bucket, class);
    // A bucket policy may allow object actions beyond the role, never bucket administration.
    let by_policy =
        class != Class::Admin && policy.any_matches(Effect::Allow, p, cx, bucket, action, &facts);
    if by_role || by_policy {
        Ok(())
    } else {
        Err(not_allowed())
    }
}

/// Whether the caller may create buckets (no element exists yet to evaluate against).
pub fn may_create_bucket(p: &Principal) -> Result<(), Denial> {
    if p.role_allows(Class::Admin) {
        Ok(())
    } else {
        Err(Denial::CreateBucket {
            account: p.identity.name.clone(),
            role: p.role_name(),
        })
    }
}
