//! A request body that fails when the client pauses too long between two pieces, so a
//! slow sender cannot hold a request (and a connection to the controller) open
//! indefinitely. The clock starts when owl first reads the body, not when the request
//! arrived, so time owl spends before reading (metadata lookups) is not charged to the
//! client.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The body did not make progress within the allowed pause.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled for more than {0:?}")]
pub(crate) struct Stalled(Duration);

/// True if `err` (or what it wraps) is a [`Stalled`] body.
pub fn is_stall(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<Stalled>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Wraps a body with a per-piece deadline.
pub struct IdleTimeout<B> {
    inner: Pin<Box<B>>,
    idle: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> IdleTimeout<B> {
    /// `inner`, failing after `idle` without a frame.
    pub fn new(inner: B, idle: Duration) -> Self {
        Self {
            inner: Box::pin(inner),
            idle,
            sleep: None,
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let idle = this.idle;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => {
                sleep.as_mut().reset(Instant::now() + idle);
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(Stalled(this.idle))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
