//! RestoreObject, and what a restore changes for HeadObject and GetObject of archived objects
//! (the verification itself is in `crate::restore_worker`).
//!
//! S3 semantics: the first request answers `202 Accepted`; while the data is being verified,
//! HEAD shows `x-amz-restore: ongoing-request="true"` and another request gets
//! `409 RestoreAlreadyInProgress`; afterwards HEAD and GET show
//! `ongoing-request="false", expiry-date="…"`, GET works until the expiry, and a new request
//! answers `200 OK` and moves the expiry. A restore whose data does not verify fails: HEAD
//! shows `ongoing-request="false"` without an expiry date and `x-artstore-restore-status:
//! failed`, GET stays refused, and a new request verifies again (the file may have been repaired).

use artstore_metadata::{Mode, ObjectRecord, RestoreStatus};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::object::lookup;
use super::record::{check_key, format_http_date, timestamp};
use super::{Access, Gateway, errors, identity};
use crate::policy::Action;
use crate::restore_worker::{MAX_RESTORE_DAYS, Requested, RestoreError};

/// ArtStore's own header naming the restore state: ongoing, completed, expired or failed.
pub(crate) const RESTORE_STATUS_HEADER: &str = "x-artstore-restore-status";

pub(crate) async fn restore_object(
    gw: &Gateway,
    req: S3Request<RestoreObjectInput>,
) -> S3Result<S3Response<RestoreObjectOutput>> {
    let who = identity(&req)?;
    let input = &req.input;
    let access = gw.access(&req, &input.bucket).await?;
    access.check_existing(Action::RestoreObject, &input.key)?;
    check_key(&input.key)?;
    let days = requested_days(input.restore_request.as_ref())?;
    // Like S3 for an object that is not in an archive storage class (a missing key is still
    // NoSuchKey; in `ar` the restorer reads the object itself).
    if access.element.mode != Mode::Ar {
        lookup(gw, &input.bucket, &input.key).await?;
        return Err(s3_error!(
            InvalidObjectState,
            "Restore is not allowed for the object's current storage class: storage element '{}' is in mode {}, only objects in mode ar are archived",
            access.element.name,
            access.element.mode
        ));
    }
    // A damaged object would only fail its restore's verification: say why now.
    super::damage::refuse_damaged(gw, &lookup(gw, &input.bucket, &input.key).await?, None).await?;
    let done = gw
        .restorer
        .request(&input.bucket, &input.key, days, &who)
        .await;
    let started = match done {
        Ok(Some(Requested::Started)) => true,
        Ok(Some(Requested::Extended)) => false,
        Ok(Some(Requested::InProgress)) | Err(RestoreError::Conflict) => {
            return Err(s3_error!(
                RestoreAlreadyInProgress,
                "Object restore is already in progress"
            ));
        }
        Ok(None) => return Err(s3_error!(NoSuchKey, "The specified key does not exist.")),
        Err(RestoreError::Index(e)) => return Err(errors::meta(e)),
        Err(RestoreError::Storage(e)) => return Err(errors::backend(e)),
    };
    tracing::info!(bucket = %input.bucket, key = %input.key, days, by = %who.name, started, "restore requested");
    let mut resp = S3Response::new(RestoreObjectOutput::default());
    if started {
        resp.extensions
            .insert(StatusOverride(http::StatusCode::ACCEPTED));
    }
    Ok(resp)
}

/// A status an operation answers with that s3s 0.14.1 cannot express: it ignores
/// `S3Response::status` for modelled operations (RestoreObject is always 200), so the status
/// travels as a response extension and the server applies it with `apply_status`.
#[derive(Debug, Clone, Copy)]
pub struct StatusOverride(pub http::StatusCode);

/// Applies an operation's `StatusOverride` (e.g. RestoreObject's `202 Accepted`).
pub fn apply_status<B>(resp: &mut http::Response<B>) {
    if let Some(StatusOverride(status)) = resp.extensions_mut().remove::<StatusOverride>() {
        *resp.status_mut() = status;
    }
}

/// The `Days` of a standard restore; nothing else is accepted.
fn requested_days(req: Option<&RestoreRequest>) -> S3Result<i64> {
    let Some(r) = req else {
        return Err(s3_error!(
            MalformedXML,
            "RestoreObject needs a <RestoreRequest> body with <Days>"
        ));
    };
    if r.type_.is_some() || r.select_parameters.is_some() || r.output_location.is_some() {
        return Err(s3_error!(
            NotImplemented,
            "only standard restores with <Days> are supported, not SELECT or OutputLocation"
        ));
    }
    let tiers = [
        r.tier.as_ref(),
        r.glacier_job_parameters.as_ref().map(|g| &g.tier),
    ];
    for tier in tiers.into_iter().flatten() {
        if !matches!(tier.as_str(), "Expedited" | "Standard" | "Bulk") {
            return Err(s3_error!(
                InvalidArgument,
                "unknown restore tier '{}' (Expedited, Standard or Bulk)",
                tier.as_str()
            ));
        }
    }
    match r.days {
        None => Err(s3_error!(
            MalformedXML,
            "<RestoreRequest> needs <Days>: how many days the object stays readable"
        )),
        Some(d) if !(1..=MAX_RESTORE_DAYS).contains(&d) => Err(s3_error!(
            InvalidArgument,
            "Days must be between 1 and {MAX_RESTORE_DAYS}, not {d}"
        )),
        Some(d) => Ok(i64::from(d)),
    }
}

/// GetObject in an `ar` element, which the mode denied with `denied`: allowed while a verified
/// restored copy is readable. A missing key is `NoSuchKey`, but only for callers that may read
/// the bucket at all.
pub(crate) async fn readable_if_restored(
    gw: &Gateway,
    access: &Access,
    bucket: &str,
    key: &str,
    denied: S3Error,
) -> S3Result<ObjectRecord> {
    access.check_existing(Action::GetRestoredObject, key)?;
    let rec = lookup(gw, bucket, key).await?;
    // Again with the object's tags, which conditions may name.
    access.check_key(Action::GetRestoredObject, key, Some(&rec))?;
    let now = artstore_metadata::now_ms();
    let why = match &rec.restore {
        Some(r) if r.is_active(now) => return Ok(rec),
        Some(r) if r.status == RestoreStatus::Ongoing => "its restore is still in progress",
        Some(r) if r.status == RestoreStatus::Failed => {
            "its last restore failed: the data did not verify against its SHA-256"
        }
        _ => return Err(denied),
    };
    Err(S3Error::with_message(
        S3ErrorCode::InvalidObjectState,
        format!("{}; {why}", denied.message().unwrap_or_default()),
    ))
}

/// The `x-amz-restore` value for HEAD and GET, if the object has a restore to report.
pub(crate) fn restore_header(rec: &ObjectRecord, now_ms: i64) -> Option<String> {
    let r = rec.restore.as_ref()?;
    match r.status {
        RestoreStatus::Ongoing => Some(r#"ongoing-request="true""#.to_owned()),
        RestoreStatus::Completed if r.is_active(now_ms) => {
            let expiry = http_date(r.expires_ms.unwrap_or_default());
            Some(format!(
                r#"ongoing-request="false", expiry-date="{expiry}""#
            ))
        }
        // Expired: the restored copy is gone, as in S3.
        RestoreStatus::Completed => None,
        RestoreStatus::Failed => Some(r#"ongoing-request="false""#.to_owned()),
    }
}

/// The `x-artstore-restore-status` header, so a failed restore is told apart from none.
pub(crate) fn restore_status_headers(rec: &ObjectRecord, now_ms: i64) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    if let Some(r) = &rec.restore {
        let status = match r.status {
            RestoreStatus::Completed if !r.is_active(now_ms) => "expired",
            other => other.as_str(),
        };
        h.insert(
            RESTORE_STATUS_HEADER,
            http::HeaderValue::from_static(status),
        );
    }
    h
}

/// RFC 1123 in GMT, e.g. `Fri, 21 Dec 2012 00:00:00 GMT`.
fn http_date(ms: i64) -> String {
    format_http_date(&timestamp(ms)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use artstore_metadata::RestoreState;

    fn with(status: RestoreStatus, expires_ms: Option<i64>) -> ObjectRecord {
        ObjectRecord {
            restore: Some(RestoreState {
                status,
                days: 1,
                requested_ms: 0,
                requested_by: "svc".into(),
                completed_ms: None,
                expires_ms,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn headers() {
        let day = 86_400_000;
        let exp = 1_356_048_000_000; // 2012-12-21T00:00:00Z
        assert_eq!(restore_header(&ObjectRecord::default(), 0), None);
        assert_eq!(
            restore_header(&with(RestoreStatus::Ongoing, None), 0).as_deref(),
            Some(r#"ongoing-request="true""#)
        );
        assert_eq!(
            restore_header(&with(RestoreStatus::Completed, Some(exp)), exp - day).as_deref(),
            Some(r#"ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT""#)
        );
        assert_eq!(
            restore_header(&with(RestoreStatus::Completed, Some(exp)), exp),
            None
        );
        assert_eq!(
            restore_header(&with(RestoreStatus::Failed, None), 0).as_deref(),
            Some(r#"ongoing-request="false""#)
        );
        let h = restore_status_headers(&with(RestoreStatus::Completed, Some(exp)), exp + 1);
        assert_eq!(h.get(RESTORE_STATUS_HEADER).unwrap(), "expired");
        assert!(restore_status_headers(&ObjectRecord::default(), 0).is_empty());
    }

    #[test]
    fn status_override_is_applied_once() {
        let mut resp = http::Response::new(());
        apply_status(&mut resp);
        assert_eq!(resp.status(), http::StatusCode::OK);
        resp.extensions_mut()
            .insert(StatusOverride(http::StatusCode::ACCEPTED));
        apply_status(&mut resp);
        assert_eq!(resp.status(), http::StatusCode::ACCEPTED);
        assert!(resp.extensions().get::<StatusOverride>().is_none());
    }

    #[test]
    fn days_are_validated() {
        let req = |days: Option<i32>| RestoreRequest {
            days,
            ..Default::default()
        };
        let code = |r: S3Result<i64>| r.map_err(|e| e.code().as_str().to_owned());
        assert_eq!(code(requested_days(Some(&req(Some(3))))), Ok(3));
        assert_eq!(
            code(requested_days(Some(&req(Some(MAX_RESTORE_DAYS))))),
            Ok(i64::from(MAX_RESTORE_DAYS))
        );
        for bad in [0, -1, MAX_RESTORE_DAYS + 1] {
            assert_eq!(
                code(requested_days(Some(&req(Some(bad))))),
                Err("InvalidArgument".into())
            );
        }
        assert_eq!(
            code(requested_days(Some(&req(None)))),
            Err("MalformedXML".into())
        );
        assert_eq!(code(requested_days(None)), Err("MalformedXML".into()));
    }
}
