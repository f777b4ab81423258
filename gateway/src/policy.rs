//! The gateway's side of the one policy engine (`artstore-policy`, DESIGN.md §2): its
//! decisions as S3 errors.

pub use artstore_policy::{Action, Context, Denial, Facts, Policy, PolicyCache, Principal, Tags};
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
