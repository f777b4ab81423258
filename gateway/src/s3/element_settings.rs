//! Element settings changed through S3 (bucket tags, lifecycle rules): the index first, then
//! element.json, which `index rebuild` restores them from; the request fails if element.json
//! cannot follow.

use artstore_metadata::{Element, MetaError};
use s3s::{S3Result, s3_error};

use super::{Gateway, errors};

/// Writes element.json after `changed`, the index's answer to a change of `bucket`'s settings.
pub(super) async fn persist(
    gw: &Gateway,
    bucket: &str,
    changed: Result<Element, MetaError>,
) -> S3Result<()> {
    let el = match changed {
        Ok(el) => el,
        Err(MetaError::NotFound(_)) => {
            return Err(s3_error!(
                NoSuchBucket,
                "The specified bucket does not exist"
            ));
        }
        Err(e) => return Err(errors::meta(e)),
    };
    let history = gw.store.mode_history(bucket).await.map_err(errors::meta)?;
    gw.backend(&el)?
        .write_element_json(&el.element_json(&history))
        .await
        .map_err(errors::backend)
}
