//! One-pass hashing of object data: MD5 (the ETag), SHA-256 (the checksum) and any checksum
//! algorithm the client declared.
//!
//! The hasher is split in two halves (`Md5Part`, `RestPart`) so that the storage pipeline can
//! run MD5 — the slowest — on its own thread, in parallel with SHA-256 and the extras.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

/// Checksum algorithms of the S3 `x-amz-checksum-*` family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    /// All algorithms, in a stable order.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// Lower-case name as used in `x-amz-checksum-<name>` and in attr.json `checksums`.
    pub fn name(&self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "crc32",
            ChecksumAlgorithm::Crc32c => "crc32c",
            ChecksumAlgorithm::Crc64Nvme => "crc64nvme",
            ChecksumAlgorithm::Sha1 => "sha1",
            ChecksumAlgorithm::Sha256 => "sha256",
        }
    }

    /// Case-insensitive parse of a name (`CRC32`, `crc64nvme`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s.trim()))
    }
}

impl std::fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ChecksumAlgorithm {
    fn crc(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            ChecksumAlgorithm::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            ChecksumAlgorithm::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            ChecksumAlgorithm::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
        }
    }

    /// Whether a multipart object may carry a FULL_OBJECT checksum of this algorithm (only
    /// CRCs combine without re-reading the data).
    pub fn supports_full_object(self) -> bool {
        self.crc().is_some()
    }

    /// Whether a multipart object may carry a COMPOSITE checksum of this algorithm.
    pub fn supports_composite(self) -> bool {
        self != ChecksumAlgorithm::Crc64Nvme
    }
}

/// S3's COMPOSITE multipart checksum: the algorithm over the concatenated raw part
/// checksums, as base64 with `-N` appended. `None` if a part value is not valid base64.
pub fn composite_checksum(alg: ChecksumAlgorithm, parts: &[&str]) -> Option<String> {
    let mut h = Hasher::new(&[alg]);
    for p in parts {
        h.update(&BASE64.decode(p).ok()?);
    }
    let d = h.finalize();
    Some(format!("{}-{}", d.checksum(alg)?, parts.len()))
}

/// S3's FULL_OBJECT multipart checksum: the CRC of the whole data, combined from the parts'
/// CRCs and sizes (`(base64, bytes)` in part order). `None` for non-CRC algorithms or
/// malformed part values.
pub fn full_object_checksum(alg: ChecksumAlgorithm, parts: &[(&str, u64)]) -> Option<String> {
    let crc = alg.crc()?;
    let mut acc: Option<u64> = None;
    for (value, len) in parts {
        let raw = BASE64.decode(value).ok()?;
        let v = match raw.len() {
            4 => u64::from(u32::from_be_bytes(raw.try_into().ok()?)),
            8 => u64::from_be_bytes(raw.try_into().ok()?),
            _ => return None,
        };
        acc = Some(match acc {
            None => v,
            Some(a) => crc_fast::checksum_combine(crc, a, v, *len),
        });
    }
    let total = acc.unwrap_or_else(|| crc_fast::checksum(crc, b""));
    Some(match alg {
        ChecksumAlgorithm::Crc64Nvme => BASE64.encode(total.to_be_bytes()),
        _ => BASE64.encode((total as u32).to_be_bytes()),
    })
}

/// Result of hashing a whole body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Digests {
    pub size: u64,
    pub md5: [u8; 16],
    pub sha256: [u8; 32],
    /// Requested extra checksums, base64 of the big-endian value as S3 encodes them.
    pub checksums: BTreeMap<ChecksumAlgorithm, String>,
}

impl Digests {
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }

    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    pub fn md5_base64(&self) -> String {
        BASE64.encode(self.md5)
    }

    pub fn sha256_base64(&self) -> String {
        BASE64.encode(self.sha256)
    }

    /// Base64 value of one requested checksum.
    pub fn checksum(&self, alg: ChecksumAlgorithm) -> Option<&str> {
        self.checksums.get(&alg).map(String::as_str)
    }

    /// The requested checksums keyed by name, the shape of attr.json `checksums`.
    pub fn checksums_by_name(&self) -> BTreeMap<String, String> {
        self.checksums
            .iter()
            .map(|(a, v)| (a.name().to_owned(), v.clone()))
            .collect()
    }
}

/// Incremental hasher computing MD5, SHA-256 and the requested extras in one pass.
#[derive(Clone)]
pub struct Hasher {
    md5: Md5Part,
    rest: RestPart,
}

impl Hasher {
    pub fn new(extra: &[ChecksumAlgorithm]) -> Self {
        Hasher {
            md5: Md5Part::new(),
            rest: RestPart::new(extra),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.rest.update(data);
    }

    pub fn finalize(self) -> Digests {
        self.rest.finalize(self.md5.finalize())
    }

    /// Splits into the halves that may run on different threads.
    pub(crate) fn split(self) -> (Md5Part, RestPart) {
        (self.md5, self.rest)
    }
}

/// MD5 half of a `Hasher`.
#[derive(Clone)]
pub(crate) struct Md5Part(Md5);

impl Md5Part {
    fn new() -> Self {
        Md5Part(Md5::new())
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finalize(self) -> [u8; 16] {
        self.0.finalize().into()
    }
}

// At most four of these per upload; boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Extra {
    Crc(ChecksumAlgorithm, crc_fast::Digest),
    Sha1(Sha1),
}

/// SHA-256 + extras half of a `Hasher`; also counts the bytes.
#[derive(Clone)]
pub(crate) struct RestPart {
    size: u64,
    sha256: Sha256,
    extras: Vec<Extra>,
    /// SHA-256 was requested as an extra: reuse the one always computed.
    want_sha256: bool,
}

impl RestPart {
    fn new(extra: &[ChecksumAlgorithm]) -> Self {
        let mut extras = Vec::new();
        let mut want_sha256 = false;
        for alg in ChecksumAlgorithm::ALL {
            if !extra.contains(&alg) {
                continue;
            }
            let crc = |a| Extra::Crc(alg, crc_fast::Digest::new(a));
            match alg {
                ChecksumAlgorithm::Crc32 => extras.push(crc(crc_fast::CrcAlgorithm::Crc32IsoHdlc)),
                ChecksumAlgorithm::Crc32c => extras.push(crc(crc_fast::CrcAlgorithm::Crc32Iscsi)),
                ChecksumAlgorithm::Crc64Nvme => extras.push(crc(crc_fast::CrcAlgorithm::Crc64Nvme)),
                ChecksumAlgorithm::Sha1 => extras.push(Extra::Sha1(Sha1::new())),
                ChecksumAlgorithm::Sha256 => want_sha256 = true,
            }
        }
        RestPart {
            size: 0,
            sha256: Sha256::new(),
            extras,
            want_sha256,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        self.sha256.update(data);
        for e in &mut self.extras {
            match e {
                Extra::Crc(_, d) => d.update(data),
                Extra::Sha1(d) => d.update(data),
            }
        }
    }

    pub(crate) fn finalize(self, md5: [u8; 16]) -> Digests {
        let sha256: [u8; 32] = self.sha256.finalize().into();
        let mut checksums = BTreeMap::new();
        for e in self.extras {
            let (alg, value) = match e {
                // CRC32 variants are 32-bit values in a u64; S3 sends the big-endian bytes.
                Extra::Crc(alg @ ChecksumAlgorithm::Crc64Nvme, d) => {
                    (alg, BASE64.encode(d.finalize().to_be_bytes()))
                }
                Extra::Crc(alg, d) => (alg, BASE64.encode((d.finalize() as u32).to_be_bytes())),
                Extra::Sha1(d) => (ChecksumAlgorithm::Sha1, BASE64.encode(d.finalize())),
            };
            checksums.insert(alg, value);
        }
        if self.want_sha256 {
            checksums.insert(ChecksumAlgorithm::Sha256, BASE64.encode(sha256));
        }
        Digests {
            size: self.size,
            md5,
            sha256,
            checksums,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(data: &[u8], extra: &[ChecksumAlgorithm]) -> Digests {
        let mut h = Hasher::new(extra);
        h.update(data);
        h.finalize()
    }

    #[test]
    fn names_round_trip() {
        for a in ChecksumAlgorithm::ALL {
            assert_eq!(ChecksumAlgorithm::parse(a.name()), Some(a));
            assert_eq!(ChecksumAlgorithm::parse(&a.name().to_uppercase()), Some(a));
        }
        assert_eq!(
            ChecksumAlgorithm::parse("CRC64NVME"),
            Some(ChecksumAlgorithm::Crc64Nvme)
        );
        assert_eq!(ChecksumAlgorithm::parse("md5"), None);
    }

    #[test]
    fn known_vectors() {
        let d = hash(b"hello", &ChecksumAlgorithm::ALL);
        assert_eq!(d.size, 5);
        assert_eq!(d.md5_hex(), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(d.md5_base64(), "XUFAKrxLKna5cZ2REBfFkg==");
        assert_eq!(
            d.sha256_hex(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(
            d.sha256_base64(),
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        );
        assert_eq!(d.checksum(ChecksumAlgorithm::Crc32), Some("NhCmhg=="));
        assert_eq!(d.checksum(ChecksumAlgorithm::Crc32c), Some("mnG7TA=="));
        assert_eq!(
            d.checksum(ChecksumAlgorithm::Sha1),
            Some("qvTGHdzF6KLavt4PO0gs2a6pQ00=")
        );
        assert_eq!(
            d.checksum(ChecksumAlgorithm::Sha256),
            Some(d.sha256_base64().as_str())
        );
        // CRC-64/NVME check value: "123456789" -> 0xae8b14860a799888.
        let d = hash(b"123456789", &[ChecksumAlgorithm::Crc64Nvme]);
        assert_eq!(
            d.checksum(ChecksumAlgorithm::Crc64Nvme),
            Some(
                BASE64
                    .encode(0xae8b_1486_0a79_9888u64.to_be_bytes())
                    .as_str()
            )
        );
        assert_eq!(
            d.checksums_by_name().keys().collect::<Vec<_>>(),
            ["crc64nvme"]
        );
    }

    #[test]
    fn multipart_checksums() {
        let a = vec![7u8; 1000];
        let b = vec![9u8; 333];
        let whole: Vec<u8> = a.iter().chain(&b).copied().collect();
        for alg in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let (pa, pb, w) = (hash(&a, &[alg]), hash(&b, &[alg]), hash(&whole, &[alg]));
            let parts = [
                (pa.checksum(alg).unwrap(), 1000),
                (pb.checksum(alg).unwrap(), 333),
            ];
            assert_eq!(
                full_object_checksum(alg, &parts).as_deref(),
                w.checksum(alg)
            );
        }
        assert_eq!(full_object_checksum(ChecksumAlgorithm::Sha256, &[]), None);
        // COMPOSITE: the hash of the raw part hashes, then "-N".
        let alg = ChecksumAlgorithm::Sha256;
        let (pa, pb) = (hash(&a, &[alg]), hash(&b, &[alg]));
        let raw: Vec<u8> = pa.sha256.iter().chain(&pb.sha256).copied().collect();
        let expected = format!("{}-2", hash(&raw, &[]).sha256_base64());
        assert_eq!(
            composite_checksum(alg, &[pa.checksum(alg).unwrap(), pb.checksum(alg).unwrap()]),
            Some(expected)
        );
    }

    #[test]
    fn empty_and_incremental() {
        let d = hash(b"", &[]);
        assert_eq!(d.md5_hex(), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(d.checksums.is_empty());

        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let whole = hash(&data, &ChecksumAlgorithm::ALL);
        let mut h = Hasher::new(&ChecksumAlgorithm::ALL);
        for c in data.chunks(777) {
            h.update(c);
        }
        assert_eq!(h.finalize(), whole);
        // Halves on their own give the same result.
        let (mut m, mut r) = Hasher::new(&ChecksumAlgorithm::ALL).split();
        m.update(&data);
        r.update(&data);
        assert_eq!(r.finalize(m.finalize()), whole);
    }
}
