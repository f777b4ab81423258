//! Bucket policies parsed once per change, not per request: every endpoint that evaluates
//! policies (S3, search) keeps one cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::document::Policy;

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
