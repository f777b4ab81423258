//! Slices of stored data read one after the other as one body (assembling a multipart upload),
//! for any backend: it says how to open one slice.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};

use crate::error::BackendError;
use crate::range::ObjectStream;

/// Opens one slice. Boxed and `'static` (owning what it needs), so the body stays `Send` for
/// callers behind `async_trait`.
pub(crate) type OpenSlice<T> =
    Box<dyn Fn(T) -> BoxFuture<'static, Result<ObjectStream, BackendError>> + Send + Sync>;

/// The slices in order as one stream; the first error ends it.
pub(crate) fn concat<T: Send + 'static>(
    slices: impl IntoIterator<Item = T>,
    open: OpenSlice<T>,
) -> impl Stream<Item = Result<Bytes, BackendError>> + Send + 'static {
    let state = Concat {
        slices: slices.into_iter().collect(),
        current: None,
        open,
    };
    // A named fn, not closures: closures here trip rustc's higher-ranked lifetime inference
    // once the future must be Send.
    futures::stream::unfold(state, next)
}

/// Reading position across the slices.
struct Concat<T> {
    slices: VecDeque<T>,
    current: Option<ObjectStream>,
    open: OpenSlice<T>,
}

async fn next<T: Send + 'static>(
    mut st: Concat<T>,
) -> Option<(Result<Bytes, BackendError>, Concat<T>)> {
    loop {
        if let Some(cur) = st.current.as_mut() {
            match cur.next().await {
                Some(Ok(b)) => return Some((Ok(b), st)),
                Some(Err(e)) => {
                    st.slices.clear();
                    st.current = None;
                    return Some((Err(BackendError::from(e)), st));
                }
                None => st.current = None,
            }
        }
        let slice = st.slices.pop_front()?;
        match (st.open)(slice).await {
            Ok(s) => st.current = Some(s),
            Err(e) => {
                st.slices.clear();
                return Some((Err(e), st));
            }
        }
    }
}
