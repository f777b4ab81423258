//! S3 side of the metrics: which operation a request is, and byte counting on the streamed
//! request and response bodies (nothing is buffered).
//!
//! `server::handle` runs each request inside [`scope`]; `auth::Access::check`, which s3s calls
//! once it knows the operation, names it with [`set_operation`]. s3s runs the operation inside
//! that same task, so a task-local is enough and costs no allocation or lock.

use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, RwLock};
use std::task::{Context, Poll};

use artstore_admin::metrics::Counter;
use artstore_admin::metrics::{Metrics, UNKNOWN_OPERATION};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

tokio::task_local! {
    static S3_OPERATION: Cell<&'static str>;
}

/// Runs one S3 request with an operation slot (initially "unknown").
pub async fn scope<F: Future>(f: F) -> F::Output {
    S3_OPERATION.scope(Cell::new(UNKNOWN_OPERATION), f).await
}

/// Names the current request's operation, e.g. `PutObject`.
pub fn set_operation(name: &str) {
    let name = intern(name);
    let _ = S3_OPERATION.try_with(|c| c.set(name));
}

/// s3s lends operation names only for the borrow of its context; they are a fixed set of
/// about a hundred, so each is leaked once and then shared as a label value.
fn intern(name: &str) -> &'static str {
    static NAMES: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(Default::default);
    if let Ok(names) = NAMES.read()
        && let Some(n) = names.get(name)
    {
        return n;
    }
    let Ok(mut names) = NAMES.write() else {
        return UNKNOWN_OPERATION;
    };
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// The current request's operation, or "unknown".
pub fn operation() -> &'static str {
    S3_OPERATION
        .try_with(Cell::get)
        .unwrap_or(UNKNOWN_OPERATION)
}

/// A request body that counts the bytes read from it. The operation is not known when the body
/// is wrapped, so the count is added when the body is dropped, which happens inside the
/// request's scope (s3s drops the body within the operation).
pub struct ReceivedBody<B> {
    inner: B,
    bytes: u64,
    metrics: Arc<Metrics>,
}

impl<B> ReceivedBody<B> {
    pub fn new(inner: B, metrics: Arc<Metrics>) -> Self {
        ReceivedBody {
            inner,
            bytes: 0,
            metrics,
        }
    }
}

impl<B> Drop for ReceivedBody<B> {
    fn drop(&mut self) {
        self.metrics.s3_received(operation(), self.bytes);
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for ReceivedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.bytes += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that adds every frame it sends to the operation's byte counter.
pub struct SentBody<B> {
    inner: B,
    counter: Counter,
}

impl<B> SentBody<B> {
    pub fn new(inner: B, counter: Counter) -> Self {
        SentBody { inner, counter }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for SentBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.counter.inc_by(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
