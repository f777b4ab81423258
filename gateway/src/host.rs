//! Virtual-hosted-style parsing, and the bucket-name rules every request path is held to.
//! s3s 0.14's own parsers treat any unknown host (even `localhost:9000`) as a bucket name,
//! so unknown hosts are path-style here.

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

pub struct ArtHost {
    /// Configured domain without port, lower-case.
    domain: Option<String>,
}

impl ArtHost {
    pub fn new(domain: Option<&str>) -> Self {
        ArtHost {
            domain: domain.map(|d| strip_port(d).to_ascii_lowercase()),
        }
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map_or(host, |h| &host[..=h.len()]);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

impl S3Host for ArtHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = strip_port(host);
        if let Some(domain) = &self.domain
            && let Some(bucket) = name
                .len()
                .checked_sub(domain.len() + 1)
                .filter(|&i| name[i..].eq_ignore_ascii_case(&format!(".{domain}")))
                .map(|i| &name[..i])
            && !bucket.is_empty()
        {
            return Ok(VirtualHost::new(domain.as_str()).with_bucket(bucket));
        }
        Ok(VirtualHost::new(host))
    }
}

/// Bucket names in request paths and hosts follow ArtStore's one rule set, so S3 refuses
/// exactly the names the admin API refuses.
pub struct BucketNames;

impl s3s::validation::NameValidation for BucketNames {
    fn validate_bucket_name(&self, name: &str) -> bool {
        artstore_metadata::is_valid_bucket_name(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_hosts_are_path_style_and_subdomains_are_buckets() {
        let h = ArtHost::new(Some("s3.example.com"));
        assert_eq!(
            h.parse_host_header("localhost:9000").unwrap().bucket(),
            None
        );
        assert_eq!(
            h.parse_host_header("127.0.0.1:9000").unwrap().bucket(),
            None
        );
        assert_eq!(
            h.parse_host_header("s3.example.com:9000").unwrap().bucket(),
            None
        );
        assert_eq!(
            h.parse_host_header("docs.s3.example.com:9000")
                .unwrap()
                .bucket(),
            Some("docs")
        );
        assert_eq!(
            h.parse_host_header("a.b.S3.Example.com").unwrap().bucket(),
            Some("a.b")
        );
        let none = ArtHost::new(None);
        assert_eq!(
            none.parse_host_header("docs.localhost:9000")
                .unwrap()
                .bucket(),
            None
        );
        assert_eq!(strip_port("[::1]:9000"), "[::1]");
    }
}
