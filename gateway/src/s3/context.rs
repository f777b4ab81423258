//! The condition-key values of one S3 request (`aws:SourceIp`, `s3:prefix`, request tags…),
//! gathered once for the policy evaluator.

use std::net::IpAddr;

use artstore_metadata::ObjectRecord;
use percent_encoding::percent_decode_str;
use s3s::S3Request;

use crate::policy::{Context, Tags};

/// The client's address, put in the request extensions by the server.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// `k=v&k2=v2`, URL-encoded, as in the query string and the `x-amz-tagging` header.
fn pairs(s: &str) -> impl Iterator<Item = (String, String)> + '_ {
    s.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (decode(k), decode(v))
    })
}

fn header(req_headers: &http::HeaderMap, name: &str) -> Option<String> {
    req_headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The context of `req`. The gateway serves plain HTTP, so `aws:SecureTransport` is false.
pub(crate) fn of<T>(req: &S3Request<T>) -> Context {
    let mut cx = Context {
        source_ip: req.extensions.get::<ClientIp>().map(|c| c.0.to_canonical()),
        ..Context::default()
    };
    for (k, v) in pairs(req.uri.query().unwrap_or_default()) {
        match k.as_str() {
            "prefix" => cx.prefix = Some(v),
            "delimiter" => cx.delimiter = Some(v),
            "max-keys" => cx.max_keys = Some(v),
            _ => {}
        }
    }
    let h = &req.headers;
    cx.metadata_directive = header(h, "x-amz-metadata-directive");
    // As `bucket/key`, decoded, whether or not the client sent a leading slash.
    cx.copy_source = header(h, "x-amz-copy-source").map(|s| {
        let s = s.strip_prefix('/').unwrap_or(&s);
        percent_decode_str(s).decode_utf8_lossy().into_owned()
    });
    cx.request_tags = header(h, "x-amz-tagging").map(|t| pairs(&t).collect::<Tags>());
    cx
}

/// `s3:ExistingObjectTag/<k>`: the tags stored with an object.
pub(crate) fn existing_tags(rec: &ObjectRecord) -> Option<&Tags> {
    Some(&rec.tags)
}

#[cfg(test)]
mod tests {
    use super::pairs;

    #[test]
    fn tagging_header_is_url_decoded() {
        let got: Vec<_> = pairs("team=blue%20sky&env=prod&flag&a%26b=c%3Dd").collect();
        let want = [
            ("team", "blue sky"),
            ("env", "prod"),
            ("flag", ""),
            ("a&b", "c=d"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(got, want);
    }
}
