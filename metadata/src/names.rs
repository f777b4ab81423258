//! The bucket naming rules, shared by every place a storage element is named (S3
//! CreateBucket and every S3 path, the admin API, the CLI, account grants).

/// Whether `name` is a valid general-purpose S3 bucket name, as AWS defines it.
pub fn is_valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (3..=63).contains(&b.len())
        && b.iter().all(|c| alnum(c) || *c == b'.' || *c == b'-')
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        // A dot next to a dot or hyphen makes an invalid DNS label.
        && !["..", ".-", "-."].iter().any(|s| name.contains(s))
        && name.parse::<std::net::Ipv4Addr>().is_err()
        // Names AWS reserves for its own kinds of endpoints.
        && !["xn--", "sthree-", "amzn-s3-demo-"]
            .iter()
            .any(|p| name.starts_with(p))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .iter()
            .any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::is_valid_bucket_name;

    #[test]
    fn aws_rules() {
        for ok in ["abc", "a-b.c1", "1numeric-start", "my.bucket.name", "a--b"] {
            assert!(is_valid_bucket_name(ok), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in [
            "ab",
            long.as_str(),
            "Upper",
            "under_score",
            "-lead",
            "trail-",
            "a..b",
            "a.-b",
            "a-.b",
            "192.168.1.10",
            "xn--abc",
            "sthree-x",
            "x-s3alias",
            "x--ol-s3",
        ] {
            assert!(!is_valid_bucket_name(bad), "{bad}");
        }
    }
}
