//! A TCP switch in front of a real server, for outages: while off, new connections
//! are closed at once and open ones are cut, as when the server is stopped; on again,
//! connections reach the server unchanged.

use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running switch; stops when dropped.
pub struct Switch {
    /// Base URL (`http://127.0.0.1:port`) that reaches the server while on.
    pub url: String,
    on: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Switch {
    /// A switch, on, in front of `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (on, _) = watch::channel(true);
        let on = Arc::new(on);
        let target = target.to_string();
        let state = on.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut rx = state.subscribe();
                if !*rx.borrow() {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = rx.wait_for(|on| !*on) => {}
                    }
                });
            }
        });
        Self { url, on, task }
    }

    /// A switch in front of the server at `url` (`http://host:port`).
    pub async fn in_front_of(url: &str) -> Self {
        let target = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        Self::start(&target).await
    }

    /// Cuts every connection and refuses new ones.
    pub fn off(&self) {
        self.on.send_replace(false);
    }

    /// Lets connections through again.
    pub fn on(&self) {
        self.on.send_replace(true);
    }
}
