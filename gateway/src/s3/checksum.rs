//! Client-declared integrity values: `Content-MD5` and `x-amz-checksum-*`, as headers or
//! aws-chunked trailers. s3s verifies none of them, so every write path checks them here
//! against the digests computed while the body streamed, before anything is committed.

use std::collections::BTreeMap;

use artstore_backends::{ChecksumAlgorithm, Digests};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::HeaderMap;
use s3s::{S3Result, s3_error};

const ALL: [ChecksumAlgorithm; 5] = [
    ChecksumAlgorithm::Crc32,
    ChecksumAlgorithm::Crc32c,
    ChecksumAlgorithm::Crc64Nvme,
    ChecksumAlgorithm::Sha1,
    ChecksumAlgorithm::Sha256,
];

fn digest_len(alg: ChecksumAlgorithm) -> usize {
    match alg {
        ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
        ChecksumAlgorithm::Crc64Nvme => 8,
        ChecksumAlgorithm::Sha1 => 20,
        ChecksumAlgorithm::Sha256 => 32,
    }
}

fn header_name(alg: ChecksumAlgorithm) -> String {
    format!("x-amz-checksum-{}", alg.name())
}

/// What the client declared for one body.
#[derive(Debug, Default)]
pub(crate) struct Declared {
    content_md5: Option<Vec<u8>>,
    values: Vec<(ChecksumAlgorithm, String)>,
    trailer: Option<ChecksumAlgorithm>,
    /// Algorithms to compute while streaming.
    pub algorithms: Vec<ChecksumAlgorithm>,
}

impl Declared {
    /// Reads the request's headers. Malformed values fail now (`InvalidDigest`), before any
    /// byte of the body is stored.
    pub(crate) fn from_headers(headers: &HeaderMap) -> S3Result<Declared> {
        let mut d = Declared::default();
        if let Some(v) = headers.get("content-md5") {
            let raw = v
                .to_str()
                .ok()
                .and_then(|s| B64.decode(s.trim()).ok())
                .filter(|b| b.len() == 16)
                .ok_or_else(|| {
                    s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid.")
                })?;
            d.content_md5 = Some(raw);
        }
        for alg in ALL {
            if let Some(v) = headers.get(header_name(alg).as_str()) {
                let text = v.to_str().unwrap_or_default().trim().to_owned();
                let ok = B64.decode(&text).is_ok_and(|b| b.len() == digest_len(alg));
                if !ok {
                    return Err(s3_error!(
                        InvalidDigest,
                        "Value for {} header is invalid.",
                        header_name(alg)
                    ));
                }
                d.values.push((alg, text));
                d.algorithms.push(alg);
            }
        }
        if let Some(t) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
            let name = t.trim().to_ascii_lowercase();
            if let Some(alg) = name
                .strip_prefix("x-amz-checksum-")
                .and_then(ChecksumAlgorithm::parse)
            {
                d.trailer = Some(alg);
                d.algorithms.push(alg);
            }
        }
        for h in ["x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"] {
            if let Some(alg) = headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .and_then(ChecksumAlgorithm::parse)
            {
                d.algorithms.push(alg);
            }
        }
        d.algorithms.sort_by_key(|a| a.name());
        d.algorithms.dedup();
        Ok(d)
    }

    /// Whether a digest of the body itself (not a trailer) was declared.
    pub(crate) fn declares_any(&self) -> bool {
        self.content_md5.is_some() || !self.values.is_empty()
    }

    /// The algorithms the client sent a value for (header or trailer).
    pub(crate) fn sent(&self) -> impl Iterator<Item = ChecksumAlgorithm> + '_ {
        self.values.iter().map(|(a, _)| *a).chain(self.trailer)
    }

    /// Also computes `alg` while streaming (the checksum a multipart upload keeps per part).
    pub(crate) fn compute(&mut self, alg: ChecksumAlgorithm) {
        if !self.algorithms.contains(&alg) {
            self.algorithms.push(alg);
        }
    }

    /// Compares everything declared with what was computed; returns the checksums to keep
    /// with the object (name → base64).
    pub(crate) fn verify(
        &self,
        digests: &Digests,
        trailers: Option<HeaderMap>,
    ) -> S3Result<BTreeMap<String, String>> {
        if let Some(md5) = &self.content_md5
            && md5.as_slice() != digests.md5.as_slice()
        {
            return Err(s3_error!(
                BadDigest,
                "The Content-MD5 you specified did not match what we received."
            ));
        }
        let mismatch = |alg: ChecksumAlgorithm| {
            s3_error!(
                BadDigest,
                "The {} you specified did not match the calculated checksum.",
                alg.name().to_ascii_uppercase()
            )
        };
        for (alg, expected) in &self.values {
            if digests.checksum(*alg) != Some(expected.as_str()) {
                return Err(mismatch(*alg));
            }
        }
        if let Some(alg) = self.trailer {
            let value = trailers
                .as_ref()
                .and_then(|t| t.get(header_name(alg).as_str()))
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_owned());
            match value {
                Some(v) if digests.checksum(alg) == Some(v.as_str()) => {}
                Some(_) => return Err(mismatch(alg)),
                None => {
                    return Err(s3_error!(
                        InvalidRequest,
                        "the trailer {} announced in x-amz-trailer was not sent",
                        header_name(alg)
                    ));
                }
            }
        }
        Ok(digests.checksums_by_name())
    }
}

/// The type of a stored checksum: multipart COMPOSITE values end in `-N`.
pub(crate) fn checksum_type_of(sums: &BTreeMap<String, String>) -> Option<s3s::dto::ChecksumType> {
    let v = sums.values().next()?;
    Some(s3s::dto::ChecksumType::from_static(if v.contains('-') {
        s3s::dto::ChecksumType::COMPOSITE
    } else {
        s3s::dto::ChecksumType::FULL_OBJECT
    }))
}

/// Sets the `checksum_*` fields of an output struct from stored checksums.
macro_rules! fill_checksums {
    ($out:expr, $sums:expr) => {{
        let sums: &std::collections::BTreeMap<String, String> = $sums;
        $out.checksum_crc32 = sums.get("crc32").cloned();
        $out.checksum_crc32c = sums.get("crc32c").cloned();
        $out.checksum_crc64nvme = sums.get("crc64nvme").cloned();
        $out.checksum_sha1 = sums.get("sha1").cloned();
        $out.checksum_sha256 = sums.get("sha256").cloned();
    }};
}
pub(crate) use fill_checksums;

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn malformed_values_are_invalid_digest() {
        let e = Declared::from_headers(&headers(&[("content-md5", "abc")])).unwrap_err();
        assert_eq!(e.code().as_str(), "InvalidDigest");
        let e =
            Declared::from_headers(&headers(&[("x-amz-checksum-crc32", "AAAAAAAA")])).unwrap_err();
        assert_eq!(e.code().as_str(), "InvalidDigest");
    }

    #[test]
    fn trailer_and_sdk_algorithm_are_computed() {
        let d = Declared::from_headers(&headers(&[
            ("x-amz-trailer", "x-amz-checksum-crc32c"),
            ("x-amz-sdk-checksum-algorithm", "CRC32"),
        ]))
        .unwrap();
        assert_eq!(
            d.algorithms,
            vec![ChecksumAlgorithm::Crc32, ChecksumAlgorithm::Crc32c]
        );
    }
}
