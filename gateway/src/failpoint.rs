//! Test-only crash points. With `ARTSTORE_TEST_CRASH_AT=<name>` the process aborts (as a
//! SIGKILL or power cut would stop it) the first time it reaches the named point, so the
//! black-box tests can create the exact state a crash leaves there. Unset, a point costs
//! one load of a cached value. Not a setting: never set it outside tests.

use std::sync::OnceLock;

/// After the index commit of a write that replaced an object, before the replaced
/// version's files are removed.
pub const REPLACED_COMMITTED: &str = "replaced-committed";
/// After the index commit of a DELETE, before the object's files are removed.
pub const DELETE_COMMITTED: &str = "delete-committed";

fn armed() -> Option<&'static str> {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    AT.get_or_init(|| {
        std::env::var("ARTSTORE_TEST_CRASH_AT")
            .ok()
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// Aborts the process here when the tests armed this point.
pub fn crash_point(name: &str) {
    if armed() == Some(name) {
        tracing::warn!(point = name, "test crash point reached: aborting");
        std::process::abort();
    }
}
