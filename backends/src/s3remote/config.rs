//! What an `S3Remote` element needs to reach its bucket, and the SDK client built from it.

use std::fmt;
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};

use crate::error::BackendError;
use crate::fsutil::invalid_input;

/// The smallest part a remote multipart upload accepts (except its last part).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// The largest single PutObject, UploadPart or CopyObject S3 accepts.
pub(crate) const MAX_SINGLE_OBJECT: u64 = 5 << 30;

/// Where one storage element lives on a remote S3-compatible service, and how to talk to it.
#[derive(Clone)]
pub struct S3RemoteConfig {
    /// `http://host:port` or `https://host`.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Empty, or ending in `/`: several elements may share a bucket under different prefixes.
    pub prefix: String,
    /// `http://endpoint/bucket/key` instead of `http://bucket.endpoint/key`.
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Bodies up to this size go as one PutObject; larger ones as multipart uploads of parts
    /// this large (at least `MIN_PART_SIZE`).
    pub part_size: usize,
    /// Parts of one upload in flight at once; memory per upload is about
    /// `(upload_concurrency + 1) * part_size`.
    pub upload_concurrency: usize,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed from sending a request (a whole part, on uploads) to the start of its
    /// response and, on downloads, between two chunks of the body.
    pub read_timeout: Duration,
    /// Attempts per request (first one included) on 5xx, throttling and timeouts, with
    /// exponential backoff between them.
    pub max_attempts: u32,
}

impl Default for S3RemoteConfig {
    fn default() -> Self {
        S3RemoteConfig {
            endpoint: String::new(),
            region: "us-east-1".to_owned(),
            bucket: String::new(),
            prefix: String::new(),
            path_style: true,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            part_size: 8 << 20,
            upload_concurrency: 4,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            max_attempts: 4,
        }
    }
}

// The secret never reaches a log line.
impl fmt::Debug for S3RemoteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3RemoteConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field("part_size", &self.part_size)
            .field("upload_concurrency", &self.upload_concurrency)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl S3RemoteConfig {
    /// Refuses settings no request could succeed with, before anything is sent.
    pub(crate) fn validate(&self) -> Result<(), BackendError> {
        let ep = self.endpoint.as_str();
        if !(ep.starts_with("http://") || ep.starts_with("https://")) {
            return Err(invalid_input(format!(
                "remote endpoint {ep:?} must start with http:// or https://"
            )));
        }
        if self.bucket.is_empty() || self.bucket.contains('/') {
            return Err(invalid_input(format!(
                "remote bucket {:?} is not a bucket name",
                self.bucket
            )));
        }
        if !self.prefix.is_empty() {
            let inner = self.prefix.strip_suffix('/').unwrap_or_default();
            if inner.is_empty() || !super::keys::is_plain_rel(inner) {
                return Err(invalid_input(format!(
                    "remote prefix {:?} must be empty or end in '/', without empty, '.' or '..' segments",
                    self.prefix
                )));
            }
        }
        if self.part_size < MIN_PART_SIZE || self.part_size as u64 > MAX_SINGLE_OBJECT {
            return Err(invalid_input(format!(
                "remote part size {} must be between 5 MiB and 5 GiB",
                self.part_size
            )));
        }
        if self.upload_concurrency == 0 || self.max_attempts == 0 {
            return Err(invalid_input(
                "remote upload concurrency and attempts must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// The SDK client: retries with backoff, connect and read timeouts, no per-request
    /// checksums of its own (this crate hashes every body off the async threads).
    pub(crate) fn client(&self) -> aws_sdk_s3::Client {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let creds = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            None,
            None,
            "artstore-element",
        );
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(self.region.clone()))
            .force_path_style(self.path_style)
            .credentials_provider(creds)
            .http_client(http)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .read_timeout(self.read_timeout)
                    .build(),
            )
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(self.max_attempts)
                    .with_initial_backoff(Duration::from_millis(100))
                    .with_max_backoff(Duration::from_secs(5)),
            )
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}
