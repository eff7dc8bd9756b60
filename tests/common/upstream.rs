//! Small upstreams standing in for a controller in proxy tests: one that echoes what it
//! receives (streaming the body back), one that never answers, one that is down.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use std::net::SocketAddr;

/// A running upstream; stops when dropped.
pub struct Upstream {
    /// Base URL.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(app: Router) -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Upstream { url, task }
}

/// Echoes the request: the body streams back unchanged; the method, path, query and
/// headers come back as `x-echo-*` response headers.
pub async fn echo() -> Upstream {
    serve(Router::new().fallback(|req: Request| async move {
        let (parts, body) = req.into_parts();
        let mut resp = Response::builder()
            .status(200)
            .header("x-echo-method", parts.method.as_str())
            .header("x-echo-uri", parts.uri.to_string());
        for (k, v) in &parts.headers {
            resp = resp.header(format!("x-echo-h-{}", k.as_str()), v.clone());
        }
        resp.body(Body::new(body)).unwrap()
    }))
    .await
}

/// Accepts connections and never answers.
pub async fn hanging() -> Upstream {
    serve(Router::new().fallback(|| async {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        ""
    }))
    .await
}

/// An address where nothing listens.
pub fn down() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}
