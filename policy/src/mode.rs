//! The Deny statements an element's mode imposes (DESIGN.md §2), and the effective policy
//! document: those statements plus the stored bucket policy.

use artstore_metadata::Mode;
use serde_json::{Value, json};

use crate::action::Action;
use crate::context::Facts;

/// A statement of the element's mode: which actions it denies, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeStatement {
    pub sid: &'static str,
    pub actions: &'static [&'static str],
    /// The explanation that ends the denial message (`objects cannot be deleted`).
    pub reason: &'static str,
}

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

/// The Deny statements of `mode`. Overwrite-only denials (rw) are conditional on the key
/// existing.
pub fn mode_statements(mode: Mode) -> Vec<ModeStatement> {
    match mode {
        Mode::Edit => vec![],
        Mode::Rw => vec![OVERWRITE, DELETE],
        Mode::Ro => vec![CREATE, DELETE],
        Mode::Ar => vec![READ, CREATE, DELETE],
    }
}

/// Why the mode denies `action` under `facts`, if it does.
pub(crate) fn mode_denial(mode: Mode, action: Action, facts: &Facts<'_>) -> Option<&'static str> {
    let statements = mode_statements(mode);
    let find = |m: &ModeStatement| statements.contains(m).then_some(m.reason);
    match action {
        Action::GetObject => find(&READ),
        Action::PutObject => {
            find(&CREATE).or_else(|| facts.key_exists.then(|| find(&OVERWRITE))?)
        }
        // Metadata-only updates are not overwrites of the data: rw allows them.
        Action::UpdateObjectMetadata | Action::PutObjectTagging | Action::DeleteObjectTagging => {
            find(&CREATE)
        }
        Action::DeleteObject => find(&DELETE),
        Action::DeleteBucket if mode != Mode::Edit => {
            Some("only an empty element in mode edit can be deleted")
        }
        _ => None,
    }
}

/// The effective policy of an element as a document: the mode's Deny statements first, then
/// the statements of the stored document exactly as they were set.
pub fn effective_policy(bucket: &str, mode: Mode, stored: Option<&Value>) -> Value {
    let mut statements: Vec<Value> = mode_statements(mode)
        .into_iter()
        .map(|s| {
            let mut st = json!({
                "Sid": format!("{}{}", s.sid, mode.as_str().to_uppercase()),
                "Effect": "Deny",
                "Principal": "*",
                "Action": s.actions,
                "Resource": format!("arn:aws:s3:::{bucket}/*"),
            });
            // rw denies only overwrites; S3 has no condition key for that, so ours is named.
            if s.sid == OVERWRITE.sid {
                st["Condition"] = json!({"Bool": {"artstore:ObjectExists": "true"}});
            }
            st
        })
        .collect();
    match stored.and_then(|d| d.get("Statement")) {
        Some(Value::Array(a)) => statements.extend(a.iter().cloned()),
        Some(one @ Value::Object(_)) => statements.push(one.clone()),
        _ => {}
    }
    json!({
        "Version": "2012-10-17",
        "Id": format!("artstore-effective-{bucket}"),
        "Statement": statements,
    })
}
