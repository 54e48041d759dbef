//! The body of a request on its way to a plain-HTTP upstream over
//! latchkey's own connections (`send`): the client's own, streamed, or none
//! (a request without a body sent again). The type the idle connections
//! (`idle`) are made for.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};

/// A request body on its way up: the client's own, or none (a request sent
/// again).
pub(super) enum UpBody {
    Client(Incoming),
    Empty,
}

impl HttpBody for UpBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpBody::Client(body) => Pin::new(body).poll_frame(cx),
            UpBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Client(body) => body.is_end_stream(),
            UpBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Client(body) => body.size_hint(),
            UpBody::Empty => SizeHint::with_exact(0),
        }
    }
}
