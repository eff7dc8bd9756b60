//! One client connection's bookkeeping: when a request last started or ended and how
//! many are in flight, so a connection that does nothing can be closed (HTTP/2 pings
//! are not activity: an idle client's stack answers them by itself); and the answer to
//! a connection over the bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What one connection is doing, shared by its I/O and its service.
#[derive(Debug)]
pub(super) struct Activity {
    born: Instant,
    /// Milliseconds after `born` when a request last started or ended.
    last_ms: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    /// A connection that just opened.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            born: Instant::now(),
            last_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let ms = self.born.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// True when no request is in flight and none started or ended for `idle`.
    pub(super) fn idle_for(&self, idle: Duration) -> bool {
        let quiet = self
            .born
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)));
        self.busy.load(Ordering::Acquire) == 0 && quiet >= idle
    }

    /// Marks a request in flight until the guard is dropped (its response future ended
    /// or was cancelled).
    pub(super) fn request(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.touch();
        Busy(self.clone())
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub(super) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

/// Answers a plain-HTTP connection over the bound with OpenWhisk's 503 (in its error
/// shape, `Retry-After: 1`) and closes it, within a second whatever the client does.
pub(super) async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let tid = crate::whisk::TransactionId::generate();
    let body = serde_json::json!({
        "error": crate::whisk::messages::SERVICE_UNAVAILABLE,
        "code": tid.as_str(),
    })
    .to_string();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nx-request-id: {}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        tid.as_str(),
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent before closing: closing with unread data resets
        // the connection, and the client would see the reset instead of the 503.
        let mut sink = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => left = left.saturating_sub(n),
            }
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_only_without_requests_and_bytes() {
        let a = Activity::new();
        assert!(a.idle_for(Duration::ZERO));
        let busy = a.request();
        assert!(!a.idle_for(Duration::ZERO));
        drop(busy);
        assert!(a.idle_for(Duration::ZERO));
        assert!(!a.idle_for(Duration::from_secs(60)));
    }
}
