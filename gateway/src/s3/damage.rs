//! Objects whose data no longer matches what was stored: the scrub marks them in the index,
//! and every read of their data (GET, HEAD, a copy source, a restore) answers this error
//! instead of bytes that are not the object's.

use artstore_metadata::ObjectRecord;
use s3s::{S3Error, S3ErrorCode, S3Result};

use super::{Gateway, errors};

/// The S3 error code of a damaged object.
pub(crate) const CODE: &str = "ObjectCorrupted";

/// `503 ObjectCorrupted`, naming the file and what is wrong with it. Not a 500: the server
/// works and knows exactly what failed; not a 4xx: the client did nothing wrong. The data
/// stays unreadable until it is restored from a backup, or the key is overwritten or deleted.
pub(crate) fn corrupted(rec: &ObjectRecord, what: &str) -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom(CODE.into()),
        format!(
            "the stored data of {}/{} (file_id {}) is damaged: {what}; it is not served until it is restored from a backup",
            rec.bucket, rec.key, rec.file_id
        ),
    );
    e.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
    e
}

/// The damage read together with an object's row (`Store::get_object_marked`), by file id.
pub(crate) type Known = (String, Option<String>);

/// The row and what `refuse_damaged` needs to know about it, from one read.
pub(crate) fn split(
    found: Option<(ObjectRecord, Option<String>)>,
) -> (Option<ObjectRecord>, Option<Known>) {
    match found {
        Some((rec, damage)) => {
            let known = (rec.file_id.clone(), damage);
            (Some(rec), Some(known))
        }
        None => (None, None),
    }
}

/// Fails with [`corrupted`] when the scrub marked this version of the object. `known` saves
/// the index a read when it was read with the row of this same file.
pub(crate) async fn refuse_damaged(
    gw: &Gateway,
    rec: &ObjectRecord,
    known: Option<&Known>,
) -> S3Result<()> {
    let damage = match known {
        Some((file_id, damage)) if *file_id == rec.file_id => damage.clone(),
        _ => gw
            .store
            .damage_of(&rec.bucket, &rec.key, &rec.file_id)
            .await
            .map_err(errors::meta)?,
    };
    match damage {
        Some(what) => Err(corrupted(rec, &what)),
        None => Ok(()),
    }
}
