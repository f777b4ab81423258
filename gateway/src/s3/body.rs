//! Verifies request bodies for every operation, whichever part of the stack reads them.
//!
//! s3s reads the XML bodies of DeleteObjects, CompleteMultipartUpload, CreateBucket, bucket
//! configuration… whole before any handler runs and turns any body error into a 500, and it
//! checks neither `Content-MD5` nor `x-amz-checksum-*`. So every request body is wrapped here:
//! once the access check names the operation, bodies that s3s reads whole are hashed as they
//! pass, a mismatch with the signed `x-amz-content-sha256` or a declared digest fails the
//! stream, and the server answers with the recorded S3 error instead of what s3s made of it.
//! Streamed uploads (PutObject, UploadPart) verify their digests in the write path instead.
//! aws-chunked bodies must end with their zero-length chunk, whatever the operation.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use artstore_backends::Hasher;
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use s3s::{S3Error, S3Result, s3_error};

use super::checksum::Declared;

/// Operations whose handlers stream the body and verify it themselves.
const STREAMED: &[&str] = &["PutObject", "UploadPart", "PostObject"];

/// Largest body read for an operation that ignores it (s3s's XML limit).
const MAX_UNREAD_BODY: usize = 20 << 20;

/// What the server and the access check share with one request's body.
#[derive(Default)]
pub struct BodyCheck(Mutex<State>);

#[derive(Default)]
struct State {
    /// Bytes passed before the operation was known: too late to hash them.
    started: bool,
    verify: Option<Verify>,
    fault: Option<S3Error>,
}

struct Verify {
    declared: Declared,
    sha256: Option<[u8; 32]>,
    hasher: Hasher,
}

impl BodyCheck {
    /// Called by the access check, before s3s reads any body: plans what to verify.
    /// Malformed digest headers fail here (`InvalidDigest`).
    pub fn for_operation(&self, op: &str, headers: &HeaderMap) -> S3Result<()> {
        if STREAMED.contains(&op) {
            return Ok(());
        }
        // On CompleteMultipartUpload the x-amz-checksum-* headers declare the whole object's
        // checksum (checked by the operation), not the XML body's.
        let declared = if op == "CompleteMultipartUpload" {
            let filtered: HeaderMap = headers
                .iter()
                .filter(|(k, _)| !k.as_str().starts_with("x-amz-checksum-"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Declared::from_headers(&filtered)?
        } else {
            Declared::from_headers(headers)?
        };
        let payload = headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if payload.starts_with("STREAMING-") {
            // The digests are of the decoded payload, which only s3s sees.
            return Ok(());
        }
        let sha256 = hex::decode(payload)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        if sha256.is_none() && !declared.declares_any() {
            return Ok(());
        }
        let Ok(mut state) = self.0.lock() else {
            return Ok(());
        };
        if !state.started {
            state.verify = Some(Verify {
                hasher: Hasher::new(&declared.algorithms),
                declared,
                sha256,
            });
        }
        Ok(())
    }

    /// GET, HEAD and DELETE operations never read a body, so one sent with them is read and
    /// verified here before the operation runs: a DELETE whose body fails its signed hash
    /// must not delete. Passes the body on buffered.
    pub async fn verify_unread(
        &self,
        req: http::Request<s3s::Body>,
    ) -> S3Result<http::Request<s3s::Body>> {
        let bodiless = matches!(
            *req.method(),
            http::Method::GET | http::Method::HEAD | http::Method::DELETE
        );
        let declared_len = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if !bodiless || declared_len.unwrap_or(0) == 0 {
            return Ok(req);
        }
        self.for_operation("", req.headers())?;
        if !self.0.lock().is_ok_and(|s| s.verify.is_some()) {
            return Ok(req);
        }
        let (parts, mut body) = req.into_parts();
        let read = body.store_all_limited(MAX_UNREAD_BODY).await;
        if let Some(fault) = self.take_fault() {
            return Err(fault);
        }
        let bytes = read.map_err(|_| {
            s3_error!(
                MaxMessageLengthExceeded,
                "A request body of at most {MAX_UNREAD_BODY} bytes is accepted here."
            )
        })?;
        Ok(http::Request::from_parts(parts, s3s::Body::from(bytes)))
    }

    /// The S3 error the body ended with, if it was refused here.
    pub fn take_fault(&self) -> Option<S3Error> {
        self.0.lock().ok().and_then(|mut s| s.fault.take())
    }

    fn update(&self, data: &[u8]) {
        if let Ok(mut s) = self.0.lock() {
            s.started = true;
            if let Some(v) = s.verify.as_mut() {
                v.hasher.update(data);
            }
        }
    }

    /// Compares the whole body with what was declared; records and returns a mismatch.
    fn finish(&self) -> Option<String> {
        let mut s = self.0.lock().ok()?;
        let v = s.verify.take()?;
        let digests = v.hasher.finalize();
        let fault = if v.sha256.is_some_and(|h| h != digests.sha256) {
            Some(sha256_mismatch())
        } else {
            v.declared.verify(&digests, None).err()
        };
        let msg = fault.as_ref().map(|e| e.code().as_str().to_owned());
        s.fault = fault;
        msg
    }

    fn refuse(&self, e: S3Error) {
        if let Ok(mut s) = self.0.lock() {
            s.fault = Some(e);
        }
    }
}

pub(crate) fn sha256_mismatch() -> S3Error {
    let mut e = S3Error::with_message(
        s3s::S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
    e.set_status_code(http::StatusCode::BAD_REQUEST);
    e
}

/// The body stream ends in this error when it is refused here.
#[derive(Debug, thiserror::Error)]
#[error("request body refused: {0}")]
pub struct BodyRefused(String);

/// A request body that feeds its `BodyCheck`.
pub struct CheckedBody<B> {
    inner: B,
    check: Arc<BodyCheck>,
    /// Declared length: the digests are compared before the last bytes are passed on, so
    /// that no reader (s3s's own payload hash included) sees the body end first.
    remaining: Option<u64>,
    framing: Option<ChunkFraming>,
    done: bool,
}

impl<B> CheckedBody<B> {
    pub fn new(inner: B, check: Arc<BodyCheck>, headers: &HeaderMap) -> Self {
        let remaining = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let chunked = headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("STREAMING-"));
        CheckedBody {
            inner,
            check,
            remaining,
            framing: chunked.then(ChunkFraming::default),
            done: false,
        }
    }

    fn fail(&mut self, reason: String) -> Poll<Option<Result<Frame<Bytes>, s3s::StdError>>> {
        self.done = true;
        Poll::Ready(Some(Err(Box::new(BodyRefused(reason)))))
    }
}

impl<B> Body for CheckedBody<B>
where
    B: Body<Data = Bytes, Error = s3s::StdError> + Unpin,
{
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, s3s::StdError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.check.update(data);
                    if let Some(f) = this.framing.as_mut() {
                        f.feed(data);
                    }
                    if let Some(r) = this.remaining.as_mut() {
                        *r = r.saturating_sub(data.len() as u64);
                        if *r == 0
                            && let Some(reason) = this.check.finish()
                        {
                            return this.fail(reason);
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                if this.framing.as_ref().is_some_and(|f| !f.complete()) {
                    this.check.refuse(s3_error!(
                        IncompleteBody,
                        "The aws-chunked body ended without its final zero-length chunk."
                    ));
                    return this.fail("aws-chunked body without its final chunk".into());
                }
                if let Some(reason) = this.check.finish() {
                    return this.fail(reason);
                }
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                // The client went away or broke the framing: its fault, whoever reads.
                this.check.refuse(s3_error!(
                    IncompleteBody,
                    "You did not provide the number of bytes specified by the Content-Length HTTP header."
                ));
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Follows the chunk framing of an aws-chunked body (`<hex size>[;…]\r\n<data>\r\n`…) just
/// far enough to know whether the final zero-length chunk arrived.
#[derive(Default)]
struct ChunkFraming {
    state: Framing,
}

#[derive(Default)]
enum Framing {
    /// Reading a chunk header line.
    #[default]
    Header,
    HeaderText(Vec<u8>),
    /// Skipping chunk data plus its CRLF.
    Data(u64),
    /// The zero-length chunk was seen; trailers may follow.
    Final,
    /// Not aws-chunked as we understand it: s3s reports the format error.
    Unknown,
}

/// Longest chunk header line accepted (a size, `;chunk-signature=` and 64 hex digits).
const MAX_HEADER_LINE: usize = 4096;

impl ChunkFraming {
    fn complete(&self) -> bool {
        matches!(self.state, Framing::Final | Framing::Unknown)
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                Framing::Final | Framing::Unknown => return,
                Framing::Data(n) => {
                    let take = (*n).min(data.len() as u64);
                    *n -= take;
                    data = &data[take as usize..];
                    if *n == 0 {
                        self.state = Framing::Header;
                    }
                }
                Framing::Header => self.state = Framing::HeaderText(Vec::new()),
                Framing::HeaderText(line) => {
                    let Some(end) = data.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(data);
                        if line.len() > MAX_HEADER_LINE {
                            self.state = Framing::Unknown;
                        }
                        return;
                    };
                    line.extend_from_slice(&data[..end]);
                    data = &data[end + 1..];
                    let text = String::from_utf8_lossy(line);
                    let size = text.trim().split(';').next().unwrap_or_default().trim();
                    self.state = match u64::from_str_radix(size, 16) {
                        Ok(0) => Framing::Final,
                        Ok(n) => Framing::Data(n.saturating_add(2)),
                        Err(_) => Framing::Unknown,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(parts: &[&[u8]]) -> bool {
        let mut f = ChunkFraming::default();
        for p in parts {
            f.feed(p);
        }
        f.complete()
    }

    #[test]
    fn final_chunk_is_recognised_across_reads() {
        let whole = b"5;chunk-signature=ab\r\nhello\r\n0;chunk-signature=cd\r\n\r\n";
        assert!(framing(&[whole]));
        let (a, b) = whole.split_at(24);
        assert!(framing(&[a, b]));
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert!(framing(&bytes));
        assert!(!framing(&[b"5;chunk-signature=ab\r\nhello\r\n"]));
        assert!(!framing(&[b"5;chunk-signature=ab\r\nhel"]));
        assert!(framing(&[b"zz\r\n"]));
    }
}
