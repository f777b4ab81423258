//! A minimal S3 client: hyper 1 (HTTP/1.1, plain TCP, TCP_NODELAY, keep-alive pool), path-style
//! URLs, SigV4 header signing with UNSIGNED-PAYLOAD. Request bodies are streamed from one shared
//! pseudo-random buffer; response bodies are drained and counted, never buffered.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result, anyhow, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Size of the pattern buffer every body is cut from.
pub const PATTERN_LEN: usize = 1 << 20;

/// 1 MiB of xorshift64* output: incompressible enough, cheap to make, shared by all bodies.
pub fn pattern(seed: u64) -> Bytes {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(PATTERN_LEN);
    while v.len() < PATTERN_LEN {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    Bytes::from(v)
}

/// A request body: nothing, or `len` bytes of the pattern starting at `offset` (cyclically),
/// yielded as zero-copy slices of at most 1 MiB.
pub enum ReqBody {
    Empty,
    Pattern {
        buf: Bytes,
        offset: u64,
        remaining: u64,
    },
}

impl ReqBody {
    pub fn pattern(buf: &Bytes, offset: u64, len: u64) -> ReqBody {
        ReqBody::Pattern {
            buf: buf.clone(),
            offset,
            remaining: len,
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::Pattern {
                buf,
                offset,
                remaining,
            } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let start = (*offset % buf.len() as u64) as usize;
                let n = (buf.len() - start).min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                *offset += n as u64;
                *remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(buf.slice(start..start + n)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Pattern { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Pattern { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

/// Checks that a stream of chunks equals the pattern from a given offset.
pub struct Verifier<'a> {
    buf: &'a [u8],
    pos: u64,
    pub ok: bool,
}

impl<'a> Verifier<'a> {
    pub fn new(buf: &'a [u8], offset: u64) -> Self {
        Verifier {
            buf,
            pos: offset,
            ok: true,
        }
    }

    pub fn feed(&mut self, mut chunk: &[u8]) {
        while self.ok && !chunk.is_empty() {
            let start = (self.pos % self.buf.len() as u64) as usize;
            let n = (self.buf.len() - start).min(chunk.len());
            if chunk[..n] != self.buf[start..start + n] {
                self.ok = false;
            }
            chunk = &chunk[n..];
            self.pos += n as u64;
        }
    }
}

/// What one GET returned.
#[derive(Debug, Clone, Copy)]
pub struct GetResult {
    pub bytes: u64,
    /// Time from sending the request to the response head.
    pub ttfb: Duration,
}

#[derive(Clone)]
pub struct S3Client {
    http: Client<HttpConnector, ReqBody>,
    endpoint: String,
    host: String,
    identity: Identity,
    region: String,
    timeout: Duration,
}

impl S3Client {
    pub fn new(
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
        region: &str,
        pool: usize,
        timeout: Duration,
    ) -> Result<S3Client> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let uri: http::Uri = endpoint.parse().context("parse --endpoint")?;
        if uri.scheme_str() != Some("http") {
            bail!("endpoint must be http://HOST:PORT, got {endpoint}");
        }
        if !matches!(uri.path(), "" | "/") {
            bail!("endpoint must not have a path (path-style URLs are built from it): {endpoint}");
        }
        let host = uri
            .authority()
            .ok_or_else(|| anyhow!("endpoint has no host: {endpoint}"))?
            .to_string();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let identity =
            Credentials::new(access_key, secret_key, None, None, "artstore-bench").into();
        Ok(S3Client {
            http,
            endpoint,
            host,
            identity,
            region: region.to_string(),
            timeout,
        })
    }

    fn signed(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        len: u64,
    ) -> Result<Request<ReqBody>> {
        let uri = format!("{}{}", self.endpoint, path);
        let mut req = Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::HOST, &self.host)
            .body(body)?;
        if len > 0 || req.method() == Method::PUT {
            req.headers_mut()
                .insert(header::CONTENT_LENGTH, len.to_string().parse()?);
        }
        if len > 0 {
            req.headers_mut()
                .insert(header::CONTENT_TYPE, "application/octet-stream".parse()?);
        }
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let signable = SignableRequest::new(
            req.method().as_str(),
            uri.as_str(),
            std::iter::once(("host", self.host.as_str())),
            SignableBody::UnsignedPayload,
        )?;
        let (instructions, _sig) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(&mut req);
        Ok(req)
    }

    async fn send(&self, req: Request<ReqBody>) -> Result<Response<Incoming>> {
        let what = format!("{} {}", req.method(), req.uri().path());
        let resp = self
            .http
            .request(req)
            .await
            .with_context(|| format!("{what}: request failed"))?;
        Ok(resp)
    }

    /// Runs `fut` under the per-request timeout.
    async fn timed<T>(&self, what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| anyhow!("{what}: timed out after {:?}", self.timeout))?
    }

    /// CreateBucket; an existing bucket we own is fine.
    pub async fn create_bucket(&self, bucket: &str) -> Result<()> {
        let path = format!("/{bucket}");
        self.timed("CreateBucket", async {
            let resp = self
                .send(self.signed(Method::PUT, &path, ReqBody::Empty, 0)?)
                .await?;
            let status = resp.status();
            if status.is_success() {
                drain(resp.into_body()).await?;
                return Ok(());
            }
            let body = error_body(resp.into_body()).await;
            if status == StatusCode::CONFLICT && body.contains("BucketAlreadyOwnedByYou") {
                return Ok(());
            }
            bail!("CreateBucket {bucket}: HTTP {status}: {body}")
        })
        .await
    }

    /// PutObject of `len` pattern bytes from `offset`.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        pat: &Bytes,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let path = format!("/{bucket}/{key}");
        self.timed("PUT", async {
            let req = self.signed(Method::PUT, &path, ReqBody::pattern(pat, offset, len), len)?;
            let resp = self.send(req).await?;
            let status = resp.status();
            if !status.is_success() {
                let body = error_body(resp.into_body()).await;
                bail!("PUT {path}: HTTP {status}: {body}");
            }
            drain(resp.into_body()).await?;
            Ok(())
        })
        .await
    }

    /// GetObject, draining the body; checks its length and (with `verify`) its bytes.
    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
        verify: Option<(&Bytes, u64)>,
        expect_len: u64,
    ) -> Result<GetResult> {
        let path = format!("/{bucket}/{key}");
        self.timed("GET", async {
            let t0 = Instant::now();
            let resp = self
                .send(self.signed(Method::GET, &path, ReqBody::Empty, 0)?)
                .await?;
            let ttfb = t0.elapsed();
            let status = resp.status();
            if !status.is_success() {
                let body = error_body(resp.into_body()).await;
                bail!("GET {path}: HTTP {status}: {body}");
            }
            let mut body = resp.into_body();
            let mut verifier = verify.map(|(p, off)| Verifier::new(p, off));
            let mut bytes = 0u64;
            while let Some(frame) =
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            {
                let frame = frame.with_context(|| format!("GET {path}: reading body"))?;
                if let Ok(data) = frame.into_data() {
                    bytes += data.len() as u64;
                    if let Some(v) = verifier.as_mut() {
                        v.feed(&data);
                    }
                }
            }
            if bytes != expect_len {
                bail!("GET {path}: got {bytes} bytes, expected {expect_len}");
            }
            if verifier.is_some_and(|v| !v.ok) {
                bail!("GET {path}: body differs from what was PUT");
            }
            Ok(GetResult { bytes, ttfb })
        })
        .await
    }

    /// ListObjectsV2 of up to `max_keys` keys; returns how many keys the page held.
    pub async fn list_v2(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        max_keys: u32,
    ) -> Result<u64> {
        // SigV4 leaves the unreserved characters as they are.
        const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~');
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, QUERY).to_string();
        let path = format!(
            "/{bucket}?list-type=2&max-keys={max_keys}&prefix={}&start-after={}",
            enc(prefix),
            enc(start_after)
        );
        self.timed("ListObjectsV2", async {
            let resp = self
                .send(self.signed(Method::GET, &path, ReqBody::Empty, 0)?)
                .await?;
            let status = resp.status();
            if !status.is_success() {
                let body = error_body(resp.into_body()).await;
                bail!("ListObjectsV2 {path}: HTTP {status}: {body}");
            }
            count_keys(resp.into_body()).await
        })
        .await
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let path = format!("/{bucket}/{key}");
        self.timed("DELETE", async {
            let resp = self
                .send(self.signed(Method::DELETE, &path, ReqBody::Empty, 0)?)
                .await?;
            let status = resp.status();
            if !status.is_success() {
                let body = error_body(resp.into_body()).await;
                bail!("DELETE {path}: HTTP {status}: {body}");
            }
            drain(resp.into_body()).await?;
            Ok(())
        })
        .await
    }
}

/// Reads and discards a body, returning its length.
async fn drain(mut body: Incoming) -> Result<u64> {
    let mut n = 0u64;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            n += data.len() as u64;
        }
    }
    Ok(n)
}

/// The first 2 KiB of an error response body, as text.
/// Counts the `<Key>` elements of a listing as the body streams in.
async fn count_keys(mut body: Incoming) -> Result<u64> {
    const TAG: &[u8] = b"<Key>";
    let mut carry: Vec<u8> = Vec::new();
    let mut n = 0u64;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame.context("ListObjectsV2: reading body")?.into_data() {
            carry.extend_from_slice(&data);
            n += carry.windows(TAG.len()).filter(|w| *w == TAG).count() as u64;
            // A tag split across frames: the last bytes, too short to hold a counted one.
            let keep = carry.len().saturating_sub(TAG.len() - 1);
            carry.drain(..keep);
        }
    }
    Ok(n)
}

async fn error_body(mut body: Incoming) -> String {
    const LIMIT: usize = 2048;
    let mut out = Vec::new();
    while let Some(Ok(frame)) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
    {
        if let Ok(data) = frame.into_data() {
            let take = (LIMIT - out.len()).min(data.len());
            out.extend_from_slice(&data[..take]);
            if out.len() >= LIMIT {
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(mut b: ReqBody) -> Vec<u8> {
        assert_eq!(
            b.size_hint().exact(),
            match &b {
                ReqBody::Empty => Some(0),
                ReqBody::Pattern { remaining, .. } => Some(*remaining),
            }
        );
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut out = Vec::new();
        while let Poll::Ready(Some(Ok(f))) = Pin::new(&mut b).poll_frame(&mut cx) {
            let d = f.into_data().unwrap();
            assert!(!d.is_empty() && d.len() <= PATTERN_LEN);
            out.extend_from_slice(&d);
        }
        assert!(b.is_end_stream());
        out
    }

    #[test]
    fn pattern_is_deterministic_and_varied() {
        let a = pattern(1);
        assert_eq!(a.len(), PATTERN_LEN);
        assert_eq!(a, pattern(1));
        assert_ne!(a, pattern(2));
        assert_ne!(a[..4096], a[4096..8192]);
    }

    #[test]
    fn body_streams_the_pattern_cyclically() {
        let p = pattern(7);
        assert!(collect(ReqBody::Empty).is_empty());
        let small = collect(ReqBody::pattern(&p, 100, 4096));
        assert_eq!(small, p[100..4196]);
        // Wraps around the end of the buffer.
        let off = PATTERN_LEN as u64 - 10;
        let wrap = collect(ReqBody::pattern(&p, off, 30));
        assert_eq!(wrap[..10], p[PATTERN_LEN - 10..]);
        assert_eq!(wrap[10..], p[..20]);
        // Larger than the buffer.
        let len = 2 * PATTERN_LEN as u64 + 5;
        let big = collect(ReqBody::pattern(&p, 3, len));
        assert_eq!(big.len() as u64, len);
        let mut v = Verifier::new(&p, 3);
        v.feed(&big[..1000]);
        v.feed(&big[1000..]);
        assert!(v.ok);
    }

    #[test]
    fn verifier_detects_corruption_and_offset() {
        let p = pattern(3);
        let mut data = collect(ReqBody::pattern(&p, 50, 3 * PATTERN_LEN as u64));
        let mut v = Verifier::new(&p, 51);
        v.feed(&data);
        assert!(!v.ok, "wrong offset must fail");
        data[PATTERN_LEN + 17] ^= 1;
        let mut v = Verifier::new(&p, 50);
        for c in data.chunks(65_537) {
            v.feed(c);
        }
        assert!(!v.ok, "flipped bit must fail");
    }

    #[test]
    fn signs_path_style_requests() {
        let c = S3Client::new(
            "http://127.0.0.1:9000/",
            "AK",
            "SK",
            "us-east-1",
            4,
            Duration::from_secs(1),
        )
        .unwrap();
        let req = c.signed(Method::PUT, "/b/k/1", ReqBody::Empty, 5).unwrap();
        assert_eq!(req.uri(), "http://127.0.0.1:9000/b/k/1");
        let h = req.headers();
        assert_eq!(h["host"], "127.0.0.1:9000");
        assert_eq!(h["content-length"], "5");
        assert_eq!(h["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
        assert!(h.contains_key("x-amz-date"));
        let auth = h["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AK/")
                && auth.contains("/us-east-1/s3/aws4_request"),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date"),
            "{auth}"
        );
        assert!(S3Client::new("https://x", "a", "b", "r", 1, Duration::from_secs(1)).is_err());
        assert!(S3Client::new("http://x/p", "a", "b", "r", 1, Duration::from_secs(1)).is_err());
    }
}
