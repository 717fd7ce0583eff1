//! [`Body`]: the one HTTP body type of the web layer.

use std::{
    any::Any,
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, combinators::UnsyncBoxBody};

/// The error type of bodies: any error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every request and response of the web layer: empty, a buffer, or any boxed
/// [`http_body::Body`] of [`Bytes`].
///
/// `Send` but not `Sync` (like axum's body). Empty and buffered bodies are not boxed, nor
/// (with feature `axum`) axum's bodies.
///
/// ```
/// use http_body_util::BodyExt;
/// use xcore::web::Body;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let body = Body::from("hello");
/// assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
/// let wrapped = Body::new(http_body_util::Full::new(bytes::Bytes::from_static(b"hi")));
/// assert_eq!(wrapped.collect().await.unwrap().to_bytes(), "hi");
/// # }
/// ```
pub struct Body(Inner);

enum Inner {
    Full(Option<Bytes>),
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
    /// An axum body, kept as it is so that axum → xcore → axum costs no boxing.
    #[cfg(feature = "axum")]
    Axum(::axum::body::Body),
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Self(Inner::Full(None))
    }

    /// Wraps any body of [`Bytes`] (a `Body` is taken as it is, not boxed again).
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let body = match try_downcast::<Body, B>(body) {
            Ok(body) => return body,
            Err(body) => body,
        };
        #[cfg(feature = "axum")]
        let body = match try_downcast::<::axum::body::Body, B>(body) {
            Ok(body) => return Self(Inner::Axum(body)),
            Err(body) => body,
        };
        Self(Inner::Boxed(body.map_err(Into::into).boxed_unsync()))
    }

    /// The body as an axum body (not boxed again if it came from axum).
    #[cfg(feature = "axum")]
    pub(crate) fn into_axum(self) -> ::axum::body::Body {
        match self.0 {
            Inner::Axum(body) => body,
            Inner::Full(None) => ::axum::body::Body::empty(),
            Inner::Full(Some(bytes)) => ::axum::body::Body::from(bytes),
            Inner::Boxed(body) => ::axum::body::Body::new(body),
        }
    }
}

/// `Ok(k as T)` when `K` is `T`.
fn try_downcast<T: 'static, K: 'static>(k: K) -> Result<T, K> {
    let mut slot = Some(k);
    if let Some(t) = (&mut slot as &mut dyn Any).downcast_mut::<Option<T>>()
        && let Some(t) = t.take()
    {
        return Ok(t);
    }
    match slot {
        Some(k) => Err(k),
        // `take` above only runs when `K` is `T`, and then returns.
        None => unreachable!("a downcast took the value without returning it"),
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Full(None) => f.write_str("Body(empty)"),
            Inner::Full(Some(b)) => write!(f, "Body({} bytes)", b.len()),
            Inner::Boxed(_) => f.write_str("Body(stream)"),
            #[cfg(feature = "axum")]
            Inner::Axum(_) => f.write_str("Body(axum)"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self(Inner::Full((!bytes.is_empty()).then_some(bytes)))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes::from(bytes).into()
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Bytes::from(text).into()
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Bytes::from_static(text.as_bytes()).into()
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Bytes::from_static(bytes).into()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Boxed(body) => Pin::new(body).poll_frame(cx),
            #[cfg(feature = "axum")]
            Inner::Axum(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as BoxError),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Full(bytes) => bytes.is_none(),
            Inner::Boxed(body) => body.is_end_stream(),
            #[cfg(feature = "axum")]
            Inner::Axum(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Boxed(body) => body.size_hint(),
            #[cfg(feature = "axum")]
            Inner::Axum(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;

    use super::*;

    #[tokio::test]
    async fn bodies() {
        let empty = Body::empty();
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
        let full = Body::from("abc");
        assert_eq!(full.size_hint().exact(), Some(3));
        assert_eq!(full.collect().await.unwrap().to_bytes(), "abc");
        // A `Body` is not boxed twice.
        let again = Body::new(Body::from("x"));
        assert!(matches!(again.0, Inner::Full(Some(_))));
        let boxed = Body::new(http_body_util::Empty::<Bytes>::new());
        assert!(boxed.is_end_stream());
        assert_eq!(format!("{:?}", Body::from("")), "Body(empty)");
    }
}
