//! The gateway's side of the one policy engine (`artstore-policy`, DESIGN.md §2): its
//! decisions as S3 errors, and bucket policies parsed once per change, not per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

pub use artstore_policy::{Action, Context, Denial, Facts, Policy, Principal, Tags};
use s3s::{S3Error, S3ErrorCode};

/// The S3 error for a denial: `InvalidObjectState` for reading an archived object (as S3 does
/// for archived storage classes), `AccessDenied` otherwise; the message names the reason.
pub fn to_s3(d: Denial) -> S3Error {
    let code = match d {
        Denial::Mode {
            archived_read: true,
            ..
        } => S3ErrorCode::InvalidObjectState,
        _ => S3ErrorCode::AccessDenied,
    };
    S3Error::with_message(code, d.to_string())
}

/// Whether the caller may create buckets (no element exists yet to evaluate against).
pub fn may_create_bucket(p: &Principal) -> Result<(), S3Error> {
    artstore_policy::may_create_bucket(p).map_err(to_s3)
}

/// Parsed bucket policies by bucket, with the text they were parsed from: a request reuses
/// the parsed form while the stored text is unchanged.
#[derive(Default)]
pub struct PolicyCache {
    parsed: Mutex<HashMap<String, (String, Arc<Policy>)>>,
    none: Arc<Policy>,
}

impl PolicyCache {
    /// The parsed form of `doc`, the stored policy text of `bucket` (`None`: no policy).
    pub fn get(&self, bucket: &str, doc: Option<&str>) -> Arc<Policy> {
        let Some(doc) = doc else {
            self.lock().remove(bucket);
            return self.none.clone();
        };
        if let Some((text, p)) = self.lock().get(bucket)
            && text == doc
        {
            return p.clone();
        }
        // Documents are validated when stored; one that no longer parses adds nothing.
        let parsed = Arc::new(Policy::parse(bucket, doc).unwrap_or_else(|e| {
            tracing::error!(bucket, error = %e, "stored bucket policy does not parse");
            Policy::default()
        }));
        self.lock()
            .insert(bucket.to_owned(), (doc.to_owned(), parsed.clone()));
        parsed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Arc<Policy>)>> {
        // A panic while holding the map cannot leave it inconsistent: entries are whole.
        self.parsed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"*"}}"#;

    #[test]
    fn parsed_once_per_text() {
        let cache = PolicyCache::default();
        let a = cache.get("b", Some(DOC));
        assert!(Arc::ptr_eq(&a, &cache.get("b", Some(DOC))), "reused");
        let changed = DOC.replace("GetObject", "PutObject");
        let c = cache.get("b", Some(&changed));
        assert!(!Arc::ptr_eq(&a, &c), "reparsed after a change");
        assert_eq!(*cache.get("b", None), Policy::default());
        assert!(cache.lock().is_empty(), "a deleted policy leaves no entry");
    }
}
