//! Bucket lifecycle configuration: Put/Get/DeleteBucketLifecycleConfiguration. Only rules
//! whose action is `AbortIncompleteMultipartUpload` are accepted (the upload expiry sweep,
//! `crate::upload_expiry`, applies them); any other action is `NotImplemented`. Kept with the
//! element, in the index and in element.json.

use std::collections::HashSet;

use artstore_metadata::{Lifecycle, LifecycleRule as StoredRule, PrefixForm};
use s3s::dto::*;
use s3s::{S3Error, S3Request, S3Response, S3Result, s3_error};

use super::Gateway;
use crate::policy::Action;

/// AWS's limits: 1000 rules per configuration, IDs of up to 255 characters.
const MAX_RULES: usize = 1000;
const MAX_ID_CHARS: usize = 255;

fn malformed(why: &str) -> S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema: {why}"
    )
}

/// The actions of a rule ArtStore does not carry out, by their XML names.
fn unsupported_actions(r: &LifecycleRule) -> Vec<&'static str> {
    let mut out = Vec::new();
    if r.expiration.is_some() {
        out.push("Expiration");
    }
    if r.transitions.as_ref().is_some_and(|t| !t.is_empty()) {
        out.push("Transition");
    }
    if r.noncurrent_version_expiration.is_some() {
        out.push("NoncurrentVersionExpiration");
    }
    if r.noncurrent_version_transitions
        .as_ref()
        .is_some_and(|t| !t.is_empty())
    {
        out.push("NoncurrentVersionTransition");
    }
    out
}

/// The rule's prefix and the form it was given in; tag and size filters cannot select
/// uploads (AWS refuses them with this action too).
fn prefix_of(r: &LifecycleRule) -> S3Result<(String, PrefixForm)> {
    let no_tags = || {
        s3_error!(
            InvalidRequest,
            "Tag-based and object-size filters cannot be used with the AbortIncompleteMultipartUpload action"
        )
    };
    match (&r.filter, &r.prefix) {
        (Some(_), Some(_)) => Err(malformed("a rule has both Filter and Prefix")),
        (None, Some(p)) => Ok((p.clone(), PrefixForm::Rule)),
        (None, None) => Err(malformed("a rule needs a Filter or a Prefix")),
        (Some(f), None) => {
            let given = usize::from(f.prefix.is_some())
                + usize::from(f.tag.is_some())
                + usize::from(f.and.is_some())
                + usize::from(f.object_size_greater_than.is_some())
                + usize::from(f.object_size_less_than.is_some());
            if given > 1 {
                return Err(malformed(
                    "a Filter holds exactly one of Prefix, Tag, ObjectSizeGreaterThan, ObjectSizeLessThan or And",
                ));
            }
            if f.tag.is_some()
                || f.object_size_greater_than.is_some()
                || f.object_size_less_than.is_some()
            {
                return Err(no_tags());
            }
            match &f.and {
                Some(a) => {
                    if a.tags.as_ref().is_some_and(|t| !t.is_empty())
                        || a.object_size_greater_than.is_some()
                        || a.object_size_less_than.is_some()
                    {
                        return Err(no_tags());
                    }
                    Ok((a.prefix.clone().unwrap_or_default(), PrefixForm::And))
                }
                None => Ok((f.prefix.clone().unwrap_or_default(), PrefixForm::Filter)),
            }
        }
    }
}

/// Checks a configuration as AWS does and turns it into what the index stores.
fn parse(cfg: &BucketLifecycleConfiguration) -> S3Result<Lifecycle> {
    if cfg.rules.is_empty() {
        return Err(malformed("at least one Rule is required"));
    }
    if cfg.rules.len() > MAX_RULES {
        return Err(malformed(&format!(
            "a configuration holds at most {MAX_RULES} rules, this one has {}",
            cfg.rules.len()
        )));
    }
    let mut ids = HashSet::new();
    let mut rules = Vec::with_capacity(cfg.rules.len());
    for r in &cfg.rules {
        let enabled = match r.status.as_str() {
            ExpirationStatus::ENABLED => true,
            ExpirationStatus::DISABLED => false,
            other => {
                return Err(malformed(&format!(
                    "Status must be Enabled or Disabled, not '{other}'"
                )));
            }
        };
        if let Some(id) = &r.id {
            if id.chars().count() > MAX_ID_CHARS {
                return Err(s3_error!(
                    InvalidArgument,
                    "ID length should not exceed allowed limit of {MAX_ID_CHARS}"
                ));
            }
            if !ids.insert(id.as_str()) {
                return Err(s3_error!(
                    InvalidArgument,
                    "Rule ID must be unique. Found same ID for more than one rule: '{id}'"
                ));
            }
        }
        let unsupported = unsupported_actions(r);
        if !unsupported.is_empty() {
            return Err(s3_error!(
                NotImplemented,
                "Lifecycle action {} is not implemented: ArtStore supports only AbortIncompleteMultipartUpload",
                unsupported.join(", ")
            ));
        }
        let Some(abort) = &r.abort_incomplete_multipart_upload else {
            return Err(s3_error!(
                InvalidRequest,
                "At least one action needs to be specified in a rule"
            ));
        };
        let Some(days) = abort.days_after_initiation else {
            return Err(malformed(
                "AbortIncompleteMultipartUpload needs DaysAfterInitiation",
            ));
        };
        let days = u32::try_from(days).ok().filter(|d| *d > 0).ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer, not {days}"
            )
        })?;
        let (prefix, prefix_form) = prefix_of(r)?;
        rules.push(StoredRule {
            id: r.id.clone(),
            enabled,
            prefix,
            prefix_form,
            days_after_initiation: days,
        });
    }
    Ok(Lifecycle { rules })
}

/// A stored rule as S3 returns it, in the form it was given.
fn to_dto(r: &StoredRule) -> LifecycleRule {
    let (filter, prefix) = match r.prefix_form {
        PrefixForm::Rule => (None, Some(r.prefix.clone())),
        PrefixForm::Filter => (
            Some(LifecycleRuleFilter {
                prefix: Some(r.prefix.clone()),
                ..Default::default()
            }),
            None,
        ),
        PrefixForm::And => (
            Some(LifecycleRuleFilter {
                and: Some(LifecycleRuleAndOperator {
                    prefix: Some(r.prefix.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            None,
        ),
    };
    LifecycleRule {
        abort_incomplete_multipart_upload: Some(AbortIncompleteMultipartUpload {
            days_after_initiation: i32::try_from(r.days_after_initiation).ok(),
        }),
        expiration: None,
        filter,
        id: r.id.clone(),
        noncurrent_version_expiration: None,
        noncurrent_version_transitions: None,
        prefix,
        status: ExpirationStatus::from_static(if r.enabled {
            ExpirationStatus::ENABLED
        } else {
            ExpirationStatus::DISABLED
        }),
        transitions: None,
    }
}

pub(crate) async fn put(
    gw: &Gateway,
    req: S3Request<PutBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
    let i = &req.input;
    gw.access(&req, &i.bucket)
        .await?
        .check_bucket(Action::PutLifecycleConfiguration)?;
    if i.transition_default_minimum_object_size.is_some() {
        return Err(s3_error!(
            NotImplemented,
            "x-amz-transition-default-minimum-object-size is not implemented: ArtStore has no transitions"
        ));
    }
    let cfg = i
        .lifecycle_configuration
        .as_ref()
        .ok_or_else(|| s3_error!(MissingRequestBodyError, "Request Body is empty"))?;
    let lifecycle = parse(cfg)?;
    store(gw, &i.bucket, Some(&lifecycle)).await?;
    Ok(S3Response::new(
        PutBucketLifecycleConfigurationOutput::default(),
    ))
}

pub(crate) async fn get(
    gw: &Gateway,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    let access = gw.access(&req, &req.input.bucket).await?;
    access.check_bucket(Action::GetLifecycleConfiguration)?;
    let Some(lifecycle) = &access.element.lifecycle else {
        return Err(s3_error!(
            NoSuchLifecycleConfiguration,
            "The lifecycle configuration does not exist"
        ));
    };
    Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
        rules: Some(lifecycle.rules.iter().map(to_dto).collect()),
        transition_default_minimum_object_size: None,
    }))
}

pub(crate) async fn delete(
    gw: &Gateway,
    req: S3Request<DeleteBucketLifecycleInput>,
) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
    let bucket = &req.input.bucket;
    gw.access(&req, bucket)
        .await?
        .check_bucket(Action::PutLifecycleConfiguration)?;
    store(gw, bucket, None).await?;
    let mut resp = S3Response::new(DeleteBucketLifecycleOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

async fn store(gw: &Gateway, bucket: &str, lifecycle: Option<&Lifecycle>) -> S3Result<()> {
    let changed = gw.store.set_bucket_lifecycle(bucket, lifecycle).await;
    super::element_settings::persist(gw, bucket, changed).await
}
