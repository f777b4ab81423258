//! Bucket policies: GetBucketPolicy (the effective document: the mode's Deny statements plus
//! what PutBucketPolicy stored), PutBucketPolicy, DeleteBucketPolicy.

use artstore_metadata::Mode;
use s3s::dto::*;
use s3s::{S3Error, S3Request, S3Response, S3Result, s3_error};
use serde_json::{Value, json};

use super::{Gateway, errors};
use crate::policy::{Action, Effect, Facts, PolicyStatement, mode_statements};

/// Actions a stored statement may name.
const KNOWN_ACTIONS: &[&str] = &[
    "s3:*",
    "s3:GetObject",
    "s3:GetObjectAttributes",
    "s3:ListBucket",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:RestoreObject",
    "s3:GetBucketPolicy",
    "s3:GetObjectTagging",
    "s3:PutObjectTagging",
    "s3:DeleteObjectTagging",
    "s3:GetBucketTagging",
    "s3:PutBucketTagging",
];

fn malformed(msg: impl std::fmt::Display) -> S3Error {
    S3Error::with_message(s3s::S3ErrorCode::MalformedPolicy, msg.to_string())
}

/// A string or a list of strings, as policy documents allow.
fn strings(v: &Value, what: &str) -> S3Result<Vec<String>> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| malformed(format!("{what} entries must be strings")))
            })
            .collect(),
        _ => Err(malformed(format!(
            "{what} must be a string or a non-empty list of strings"
        ))),
    }
}

/// Parses and validates a policy document for `bucket` into its statements.
pub(crate) fn parse_policy(bucket: &str, doc: &str) -> S3Result<Vec<PolicyStatement>> {
    let v: Value = serde_json::from_str(doc)
        .map_err(|e| malformed(format!("Policies must be valid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| malformed("the policy must be a JSON object"))?;
    for k in obj.keys() {
        if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
            return Err(malformed(format!("unknown policy field '{k}'")));
        }
    }
    if let Some(ver) = obj.get("Version")
        && !matches!(ver.as_str(), Some("2012-10-17" | "2008-10-17"))
    {
        return Err(malformed("Version must be \"2012-10-17\""));
    }
    let stmts = match obj.get("Statement") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => return Err(malformed("the policy needs a non-empty Statement list")),
    };
    let resource_ok = |r: &str| {
        let arn = format!("arn:aws:s3:::{bucket}");
        r == arn
            || r == "*"
            || r.strip_prefix(arn.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    };
    stmts
        .iter()
        .map(|s| {
            let s = s
                .as_object()
                .ok_or_else(|| malformed("each statement must be a JSON object"))?;
            for k in s.keys() {
                if !matches!(
                    k.as_str(),
                    "Sid" | "Effect" | "Principal" | "Action" | "Resource"
                ) {
                    return Err(malformed(format!("unsupported statement field '{k}'")));
                }
            }
            let effect = match s.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err(malformed("Effect must be \"Allow\" or \"Deny\"")),
            };
            let principals = match s.get("Principal") {
                Some(Value::String(star)) if star == "*" => vec!["*".to_owned()],
                Some(Value::Object(p)) if p.len() == 1 && p.contains_key("AWS") => {
                    strings(&p["AWS"], "Principal.AWS")?
                }
                _ => {
                    return Err(malformed(
                        "Principal must be \"*\" or {\"AWS\": [service account names]}",
                    ));
                }
            };
            let actions = strings(
                s.get("Action")
                    .ok_or_else(|| malformed("every statement needs an Action"))?,
                "Action",
            )?;
            if let Some(bad) = actions
                .iter()
                .find(|a| !KNOWN_ACTIONS.contains(&a.as_str()))
            {
                return Err(malformed(format!(
                    "unknown action '{bad}'; supported: {}",
                    KNOWN_ACTIONS.join(", ")
                )));
            }
            if let Some(r) = s.get("Resource") {
                let rs = strings(r, "Resource")?;
                if let Some(bad) = rs.iter().find(|r| !resource_ok(r)) {
                    return Err(malformed(format!(
                        "resource '{bad}' is outside bucket '{bucket}'"
                    )));
                }
            }
            Ok(PolicyStatement {
                effect,
                principals,
                actions,
            })
        })
        .collect()
}

/// The mode's Deny statements as AWS policy JSON.
fn mode_json(bucket: &str, mode: Mode) -> Vec<Value> {
    mode_statements(mode)
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
            if s.sid == "ModeDenyOverwrite" {
                st["Condition"] = json!({"Bool": {"artstore:ObjectExists": "true"}});
            }
            st
        })
        .collect()
}

fn stored_json(bucket: &str, statements: &[PolicyStatement]) -> Vec<Value> {
    statements
        .iter()
        .map(|s| {
            json!({
                "Effect": match s.effect { Effect::Allow => "Allow", Effect::Deny => "Deny" },
                "Principal": if s.principals.iter().any(|p| p == "*") { json!("*") } else { json!({"AWS": s.principals}) },
                "Action": s.actions,
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            })
        })
        .collect()
}

pub(crate) async fn get_bucket_policy(
    gw: &Gateway,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let bucket = &req.input.bucket;
    let access = gw.access(&req, bucket).await?;
    access.check(Action::GetBucketPolicy, Facts::default())?;
    let mut statements = mode_json(bucket, access.element.mode);
    statements.extend(stored_json(bucket, &access.statements));
    if statements.is_empty() {
        return Err(s3_error!(
            NoSuchBucketPolicy,
            "The bucket policy does not exist"
        ));
    }
    let doc = json!({
        "Version": "2012-10-17",
        "Id": format!("artstore-effective-{bucket}"),
        "Statement": statements,
    });
    Ok(S3Response::new(GetBucketPolicyOutput {
        policy: Some(doc.to_string()),
    }))
}

pub(crate) async fn put_bucket_policy(
    gw: &Gateway,
    req: S3Request<PutBucketPolicyInput>,
) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let i = &req.input;
    let access = gw.access(&req, &i.bucket).await?;
    access.check(Action::PutBucketPolicy, Facts::default())?;
    parse_policy(&i.bucket, &i.policy)?;
    gw.store
        .put_bucket_policy(&i.bucket, &i.policy, &access.principal.identity.name)
        .await
        .map_err(errors::meta)?;
    let mut resp = S3Response::new(PutBucketPolicyOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn delete_bucket_policy(
    gw: &Gateway,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    let bucket = &req.input.bucket;
    let access = gw.access(&req, bucket).await?;
    access.check(Action::DeleteBucketPolicy, Facts::default())?;
    gw.store
        .delete_bucket_policy(bucket)
        .await
        .map_err(errors::meta)?;
    let mut resp = S3Response::new(DeleteBucketPolicyOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

/// The statements of a stored policy document (none without one). Documents are validated when
/// stored; an unreadable one denies nothing extra and allows nothing.
pub(crate) fn statements_of(bucket: &str, doc: Option<&str>) -> Vec<PolicyStatement> {
    doc.map_or_else(Vec::new, |doc| {
        parse_policy(bucket, doc).unwrap_or_else(|e| {
            tracing::error!(bucket, error = %e, "stored bucket policy does not parse");
            Vec::new()
        })
    })
}
