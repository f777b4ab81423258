//! The checksums of multipart uploads, as AWS defines them: an upload's algorithm and type,
//! the part checksums named in CompleteMultipartUpload, and the object's COMPOSITE or
//! FULL_OBJECT value computed from the stored part values.

use std::collections::BTreeMap;

use artstore_backends::{ChecksumAlgorithm as Alg, composite_checksum, full_object_checksum};
use artstore_metadata::{Part, Upload};
use s3s::dto::*;
use s3s::{S3Result, s3_error};

/// The multipart checksum an upload keeps: its algorithm and COMPOSITE or FULL_OBJECT, as
/// AWS allows them (FULL_OBJECT only for CRCs, COMPOSITE for all but CRC64NVME, whose
/// default is FULL_OBJECT).
pub(crate) fn checksum_choice(
    algorithm: Option<&ChecksumAlgorithm>,
    kind: Option<&ChecksumType>,
) -> S3Result<(Option<Alg>, Option<&'static str>)> {
    let Some(a) = algorithm else {
        if kind.is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
            ));
        }
        return Ok((None, None));
    };
    let alg = Alg::parse(a.as_str()).ok_or_else(|| {
        s3_error!(
            InvalidRequest,
            "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]"
        )
    })?;
    let kind = match kind.map(|k| k.as_str().to_ascii_uppercase()) {
        None if alg == Alg::Crc64Nvme => ChecksumType::FULL_OBJECT,
        None => ChecksumType::COMPOSITE,
        Some(k) if k == ChecksumType::COMPOSITE && alg.supports_composite() => {
            ChecksumType::COMPOSITE
        }
        Some(k) if k == ChecksumType::FULL_OBJECT && alg.supports_full_object() => {
            ChecksumType::FULL_OBJECT
        }
        Some(k) => {
            return Err(s3_error!(
                InvalidRequest,
                "The {k} checksum type cannot be used with the {} checksum algorithm.",
                alg.name()
            ));
        }
    };
    Ok((Some(alg), Some(kind)))
}

/// The upload's checksum algorithm, if it keeps one.
pub(crate) fn upload_algorithm(u: &Upload) -> Option<Alg> {
    u.checksum_algorithm.as_deref().and_then(Alg::parse)
}

/// The value of `alg` a part of a CompleteMultipartUpload body carries.
fn given_checksum(p: &CompletedPart, alg: Alg) -> Option<&str> {
    match alg {
        Alg::Crc32 => p.checksum_crc32.as_deref(),
        Alg::Crc32c => p.checksum_crc32c.as_deref(),
        Alg::Crc64Nvme => p.checksum_crc64nvme.as_deref(),
        Alg::Sha1 => p.checksum_sha1.as_deref(),
        Alg::Sha256 => p.checksum_sha256.as_deref(),
    }
}

/// A part's checksum in the Complete body must be the one stored at UploadPart; COMPOSITE
/// uploads must name every part's checksum (AWS rules).
pub(crate) fn check_part_checksum(
    u: &Upload,
    given: &CompletedPart,
    stored: &Part,
) -> S3Result<()> {
    let Some(alg) = upload_algorithm(u) else {
        return Ok(());
    };
    let n = stored.part_number;
    match given_checksum(given, alg) {
        Some(v) if Some(v.trim()) != stored.checksums.get(alg.name()).map(String::as_str) => {
            Err(s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified checksum may not match the part's checksum: part {n}"
            ))
        }
        Some(_) => Ok(()),
        None if u.checksum_type.as_deref() == Some(ChecksumType::COMPOSITE) => Err(s3_error!(
            InvalidRequest,
            "The upload was created using a {} checksum. The complete request must include the checksum for each part. It was missing for part {n} in the request.",
            alg.name()
        )),
        None => Ok(()),
    }
}

/// The whole object's checksum, from the parts' stored checksums (no data is re-read),
/// checked against the one the Complete request declares, if any.
pub(crate) fn object_checksum(
    u: &Upload,
    i: &CompleteMultipartUploadInput,
    parts: &[&Part],
) -> S3Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Some(alg) = upload_algorithm(u) else {
        return Ok(out);
    };
    let declared = match alg {
        Alg::Crc32 => i.checksum_crc32.as_deref(),
        Alg::Crc32c => i.checksum_crc32c.as_deref(),
        Alg::Crc64Nvme => i.checksum_crc64nvme.as_deref(),
        Alg::Sha1 => i.checksum_sha1.as_deref(),
        Alg::Sha256 => i.checksum_sha256.as_deref(),
    };
    let Some(values) = parts
        .iter()
        .map(|p| p.checksums.get(alg.name()).map(String::as_str))
        .collect::<Option<Vec<_>>>()
    else {
        // Parts stored before per-part checksums were kept: the object gets none, and a
        // declared one cannot be checked.
        if declared.is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "some parts of this upload were stored without a {} checksum; the object's checksum cannot be verified",
                alg.name()
            ));
        }
        return Ok(out);
    };
    let value = if u.checksum_type.as_deref() == Some(ChecksumType::FULL_OBJECT) {
        let sized: Vec<(&str, u64)> = values
            .iter()
            .zip(parts)
            .map(|(v, p)| (*v, u64::try_from(p.size).unwrap_or_default()))
            .collect();
        full_object_checksum(alg, &sized)
    } else {
        composite_checksum(alg, &values)
    }
    .ok_or_else(|| s3_error!(InternalError, "a part's stored checksum is malformed"))?;
    // Clients send a COMPOSITE value with or without its "-N".
    let bare = value.split('-').next().unwrap_or_default();
    if let Some(d) = declared.map(str::trim)
        && d != value
        && d != bare
    {
        return Err(s3_error!(
            BadDigest,
            "The {} you specified did not match the calculated checksum.",
            alg.name().to_ascii_uppercase()
        ));
    }
    out.insert(alg.name().to_owned(), value);
    Ok(out)
}
