//! owl-healthcheck: the container image's HEALTHCHECK. Distroless images have no shell
//! and no curl, so this std-only program asks owl's liveness endpoint itself:
//! `GET /healthz` over plain HTTP/1.0 on loopback, exit 0 on `200`, 1 otherwise.
//!
//! Usage: owl-healthcheck [URL_PATH]          (default /healthz; /readyz for readiness)
//! `/healthz` is asked on the API listener, from OWL_LISTEN (as `owl serve` reads it;
//! default 0.0.0.0:8080); any other path (`/readyz`) on the admin listener, from
//! OWL_ADMIN_LISTEN (default 127.0.0.1:9090); OWL_HEALTHCHECK_ADDR (host:port) wins
//! when set. Everything times out after 3 s.
//! With `[server] tls_cert` owl speaks TLS only: disable the image's health check then.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

fn target(path: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = std::env::var("OWL_HEALTHCHECK_ADDR") {
        return addr
            .to_socket_addrs()
            .map_err(|e| format!("OWL_HEALTHCHECK_ADDR={addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("OWL_HEALTHCHECK_ADDR={addr}: no address"));
    }
    let (var, default) = if path == "/healthz" {
        ("OWL_LISTEN", "0.0.0.0:8080")
    } else {
        ("OWL_ADMIN_LISTEN", "127.0.0.1:9090")
    };
    let listen = std::env::var(var).unwrap_or_else(|_| default.to_string());
    let mut addr: SocketAddr = listen.parse().map_err(|e| format!("{var}={listen}: {e}"))?;
    // A wildcard listener is reached on loopback of the same family.
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(addr)
}

fn check(path: &str) -> Result<(), String> {
    let addr = target(path)?;
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: owl-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{addr}: {e}"))?;
    // Only the status line matters; read at most 4 KiB.
    let mut head = Vec::new();
    stream
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| format!("{addr}: {e}"))?;
    let head = String::from_utf8_lossy(&head);
    let status_line = head.lines().next().unwrap_or("");
    let mut parts = status_line.split(' ');
    match (parts.next(), parts.next()) {
        (Some(version), Some("200")) if version.starts_with("HTTP/1.") => Ok(()),
        _ => Err(format!("{addr}{path}: {status_line:?}")),
    }
}

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/healthz".to_string());
    if !path.starts_with('/') {
        eprintln!("owl-healthcheck: the argument is a URL path such as /healthz");
        return ExitCode::from(2);
    }
    match check(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("owl-healthcheck: unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}
