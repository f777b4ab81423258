//! The one access-policy engine of ArtStore (DESIGN.md §2, §5): bucket policy documents with AWS
//! semantics, the Deny statements an element's mode imposes, and the evaluator every S3
//! operation and search ask. No HTTP here: callers map a [`Denial`] to their protocol's error.

mod action;
mod cache;
mod condition;
mod context;
mod document;
mod error;
mod evaluate;
mod mode;
mod principal;
mod reach;
mod wildcard;

pub use action::{Action, KNOWN_ACTIONS};
pub use cache::PolicyCache;
pub use context::{Context, Facts, Tags};
pub use document::{Effect, Policy};
pub use error::{Denial, PolicyError};
pub use evaluate::{evaluate, may_create_bucket};
pub use mode::{ModeStatement, effective_policy, mode_statements};
pub use principal::{GrantAccess, Principal};
pub use reach::{Reach, reach};

#[cfg(test)]
mod tests;
