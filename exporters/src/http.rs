//! The Prometheus scrape endpoint (`GET /metrics`, default port 11001, as
//! MSK's open monitoring).
//!
//! A deliberately small HTTP/1.1 server: one request per connection, a
//! bounded request head, a deadline on every connection, and nothing but
//! `GET /metrics` (and `GET /` pointing to it). Scrapes run on the caller's
//! runtime and only read the registry.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::registry::{prometheus, MetricsRegistry};
use crate::Error;

/// MSK's open-monitoring port for the broker's metrics.
pub const DEFAULT_PORT: u16 = 11001;
const MAX_HEAD: usize = 8192;
const CONN_DEADLINE: Duration = Duration::from_secs(10);

/// Binds the endpoint's address, e.g. `0.0.0.0:11001` (port 0 picks one).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        addr: addr.to_string(),
        source,
    })
}

/// Serves scrapes on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    registry: MetricsRegistry,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let registry = registry.clone();
                    conns.spawn(async move {
                        let _ = tokio::time::timeout(CONN_DEADLINE, handle(stream, registry)).await;
                    });
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

async fn handle(mut stream: TcpStream, registry: MetricsRegistry) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"",
            )
            .await;
        }
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            let body = prometheus::render(&registry.collect());
            respond(
                &mut stream,
                "200 OK",
                prometheus::CONTENT_TYPE,
                body.as_bytes(),
            )
            .await
        }
        ("GET", "/") => {
            respond(
                &mut stream,
                "200 OK",
                "text/plain; charset=utf-8",
                b"Wharf broker metrics: /metrics\n",
            )
            .await
        }
        ("GET", _) => {
            respond(
                &mut stream,
                "404 Not Found",
                "text/plain",
                b"not found; try /metrics\n",
            )
            .await
        }
        _ => {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                b"only GET\n",
            )
            .await
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}
