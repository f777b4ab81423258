//! How far an object action reaches into one bucket for one caller: every object, none, or
//! only some (then each object must be asked). Search uses it to filter whole buckets in SQL
//! and ask the evaluator only where the answer can differ between objects.

use artstore_metadata::Element;

use crate::action::Action;
use crate::context::{Context, Facts};
use crate::document::{Effect, Policy, Scope};
use crate::evaluate::evaluate;
use crate::mode::mode_denial;
use crate::principal::Principal;

/// What [`evaluate`](crate::evaluate) answers for `action` on the objects of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Allowed for every object.
    All,
    /// Allowed for no object.
    None,
    /// Depends on the object (its key or its tags): ask `evaluate` per object.
    Depends,
}

/// Classifies `action` (an object action on existing objects, e.g. `HeadObject`) on every
/// object of `element`, with the same rules as `evaluate`. Never `All` when `evaluate` would
/// deny some object, never `None` when it would allow one; `Depends` when unsure.
pub fn reach(
    p: &Principal,
    element: &Element,
    policy: &Policy,
    cx: &Context,
    action: Action,
) -> Reach {
    if p.identity.role.is_none() {
        return Reach::None;
    }
    if !action.on_object() {
        // A bucket action has one answer for the whole bucket.
        return match evaluate(p, element, policy, cx, action, Facts::default()) {
            Ok(()) => Reach::All,
            Err(_) => Reach::None,
        };
    }
    let bucket = &element.name;
    let existing = Facts {
        key: None,
        key_exists: true,
        existing_tags: None,
    };
    // The mode statements of object actions on existing objects do not look at the key.
    if mode_denial(element.mode, action, &existing).is_some() {
        return Reach::None;
    }
    let deny = policy.object_scope(Effect::Deny, p, cx, bucket, action);
    let class = action.class();
    let allow = if p.role_reaches(bucket, class) {
        Scope::Every
    } else if class == crate::action::Class::Admin {
        Scope::NoObject
    } else {
        policy.object_scope(Effect::Allow, p, cx, bucket, action)
    };
    match (deny, allow) {
        (Scope::Every, _) | (_, Scope::NoObject) => Reach::None,
        (Scope::NoObject, Scope::Every) => Reach::All,
        _ => Reach::Depends,
    }
}
