//! `element.json`: the self-description kept in each element's directory (DESIGN.md §2), so an
//! element, its mode history and its creation time can be recovered from disk alone.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{Element, Mode, ModeChange};

fn rfc(ms: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

fn ms(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// One transition as `element.json` keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct HistoryEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    from: Mode,
    to: Mode,
    by: String,
    at: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Document {
    name: String,
    mode: Mode,
    #[serde(default)]
    backend: serde_json::Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    capacity_bytes: Option<i64>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    last_mode_change: Option<String>,
    #[serde(default)]
    mode_history: Vec<HistoryEntry>,
    /// Bucket tags (PutBucketTagging).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    tags: std::collections::BTreeMap<String, String>,
    /// Lifecycle rules (PutBucketLifecycleConfiguration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lifecycle: Option<crate::Lifecycle>,
}

impl Element {
    /// The element's `element.json`, with every mode change so far (oldest first).
    pub fn element_json(&self, history: &[ModeChange]) -> Vec<u8> {
        let doc = Document {
            name: self.name.clone(),
            mode: self.mode,
            backend: serde_json::from_str(&self.backend).unwrap_or(serde_json::Value::Null),
            description: self.description.clone(),
            capacity_bytes: self.capacity_bytes,
            created: rfc(self.created_ms),
            created_by: Some(self.created_by.clone()),
            last_mode_change: self.mode_changed_ms.and_then(rfc),
            mode_history: history
                .iter()
                .map(|c| HistoryEntry {
                    id: Some(c.id.clone()),
                    from: c.from,
                    to: c.to,
                    by: c.changed_by.clone(),
                    at: rfc(c.changed_ms).unwrap_or_default(),
                    reason: c.reason.clone(),
                })
                .collect(),
            tags: self.tags.clone(),
            lifecycle: self.lifecycle.clone(),
        };
        serde_json::to_vec_pretty(&doc).unwrap_or_default()
    }
}

/// What an `element.json` says about its element.
#[derive(Debug, Clone)]
pub struct ElementDoc {
    pub mode: Mode,
    pub description: Option<String>,
    pub capacity_bytes: Option<i64>,
    pub created_ms: Option<i64>,
    pub created_by: Option<String>,
    pub history: Vec<ModeChange>,
    pub tags: std::collections::BTreeMap<String, String>,
    pub lifecycle: Option<crate::Lifecycle>,
    /// The backend as recorded (e.g. an imported element's key template, see
    /// `imported_backend`).
    pub backend: serde_json::Value,
}

impl ElementDoc {
    /// Parses the document of element `name`; a document that is not JSON, names another
    /// element or lacks a valid mode is an error (the caller decides how cautious to be).
    pub fn parse(name: &str, bytes: &[u8]) -> Result<ElementDoc, String> {
        let doc: Document = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if doc.name != name {
            return Err(format!("it describes element '{}'", doc.name));
        }
        let mut history = Vec::with_capacity(doc.mode_history.len());
        for h in doc.mode_history {
            let changed_ms =
                ms(&h.at).ok_or_else(|| format!("mode change time '{}' is not RFC 3339", h.at))?;
            history.push(ModeChange {
                id: h.id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
                element: name.to_owned(),
                from: h.from,
                to: h.to,
                changed_by: h.by,
                reason: h.reason,
                changed_ms,
            });
        }
        Ok(ElementDoc {
            mode: doc.mode,
            description: doc.description,
            capacity_bytes: doc.capacity_bytes,
            created_ms: doc.created.as_deref().and_then(ms),
            created_by: doc.created_by,
            history,
            tags: doc.tags,
            lifecycle: doc.lifecycle,
            backend: doc.backend,
        })
    }
}
