//! GetObjectAttributes: ETag, checksum, part sizes, storage class and size in one call.

use artstore_metadata::PartRun;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::Gateway;
use super::checksum::{checksum_type_of, fill_checksums};
use super::object::lookup;
use super::record::timestamp;
use crate::policy::Action;

pub(crate) async fn get_object_attributes(
    gw: &Gateway,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let i = &req.input;
    gw.access(&req, &i.bucket)
        .await?
        .check_existing(Action::HeadObject, &i.key)?;
    // s3s takes each header line as one attribute; boto3 sends one comma-separated line.
    let asked: Vec<&str> = i
        .object_attributes
        .iter()
        .flat_map(|a| a.as_str().split(','))
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    let wanted = |a: &str| asked.contains(&a);
    if asked.is_empty() {
        return Err(s3_error!(
            InvalidArgument,
            "x-amz-object-attributes must name at least one attribute"
        ));
    }
    let rec = lookup(gw, &i.bucket, &i.key).await?;
    let mut out = GetObjectAttributesOutput {
        last_modified: Some(timestamp(rec.updated_ms)),
        ..Default::default()
    };
    if wanted(ObjectAttributes::ETAG) {
        out.e_tag = Some(ETag::Strong(rec.etag.clone()));
    }
    if wanted(ObjectAttributes::OBJECT_SIZE) {
        out.object_size = Some(rec.size);
    }
    if wanted(ObjectAttributes::STORAGE_CLASS) {
        out.storage_class = Some(StorageClass::from_static(StorageClass::STANDARD));
    }
    if wanted(ObjectAttributes::CHECKSUM) && !rec.checksums.is_empty() {
        let mut c = Checksum {
            checksum_type: checksum_type_of(&rec.checksums),
            ..Default::default()
        };
        fill_checksums!(c, &rec.checksums);
        out.checksum = Some(c);
    }
    if wanted(ObjectAttributes::OBJECT_PARTS)
        && let Some(total) = rec.parts_count
    {
        out.object_parts = Some(parts_page(
            &rec.part_sizes,
            total,
            i.part_number_marker.unwrap_or(0),
            i.max_parts.unwrap_or(1000).clamp(0, 1000),
        ));
    }
    Ok(S3Response::new(out))
}

/// One page of part sizes, after part `marker`.
fn parts_page(runs: &[PartRun], total: i64, marker: i32, max: i32) -> GetObjectAttributesParts {
    let after = usize::try_from(marker).unwrap_or_default();
    let max_n = usize::try_from(max).unwrap_or_default();
    let mut sizes = PartRun::sizes(runs).enumerate().skip(after);
    let parts: Vec<ObjectPart> = sizes
        .by_ref()
        .take(max_n)
        .map(|(at, size)| ObjectPart {
            part_number: i32::try_from(at + 1).ok(),
            size: Some(size),
            ..Default::default()
        })
        .collect();
    let truncated = sizes.next().is_some();
    GetObjectAttributesParts {
        is_truncated: Some(truncated),
        max_parts: Some(max),
        next_part_number_marker: parts
            .last()
            .and_then(|p| p.part_number)
            .filter(|_| truncated),
        part_number_marker: Some(marker),
        total_parts_count: i32::try_from(total).ok(),
        parts: Some(parts),
    }
}
