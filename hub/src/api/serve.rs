//! The API's HTTP server, for the plain and the TLS listener alike: hyper's HTTP/1.1 with
//! a deadline for every request's head (a slowloris client is cut, not waited for),
//! bounded head buffers, and a cap on connections per client address and in all — one
//! more gets a 429 in the API's error shape and is closed, so no client (and none of its
//! blocking queries, one per connection) can take the hub's API from the others. The
//! peer's address goes to the door with each request.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// A request's head (line and headers) must arrive within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections from one client address at most, and in all.
pub const MAX_PER_CLIENT: usize = 128;
pub const MAX_CONNECTIONS: usize = 1024;
/// The most a request's head may take in the read buffer.
const MAX_HEAD: usize = 64 * 1024;

/// Marks a request that came over the HTTPS listener.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// The peer of a connection, plain or TLS (the door trusts loopback before bootstrap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// Open connections by client address.
#[derive(Clone, Default)]
struct Clients(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One admitted connection; counted out when dropped.
struct Admitted(Clients, IpAddr);

impl Clients {
    fn admit(&self, ip: IpAddr) -> Result<Admitted, &'static str> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if open.values().sum::<usize>() >= MAX_CONNECTIONS {
            return Err("the hub's API has too many open connections; try again shortly");
        }
        let n = open.entry(ip).or_default();
        if *n >= MAX_PER_CLIENT {
            return Err("too many open connections from this address (at most 128); close some, then retry");
        }
        *n += 1;
        Ok(Admitted(self.clone(), ip))
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.0.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.1);
            }
        }
    }
}

/// Serves `app` on `listener` until `stop`.
pub async fn serve<L>(mut listener: L, app: Router, stop: CancellationToken)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let clients = Clients::default();
    loop {
        let (io, peer) = tokio::select! {
            () = stop.cancelled() => return,
            c = listener.accept() => c,
        };
        let admitted = match clients.admit(peer.ip()) {
            Ok(a) => a,
            Err(why) => {
                tokio::spawn(refuse(io, why));
                continue;
            }
        };
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let _admitted = admitted;
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(Peer(peer)));
                Box::pin(tower::ServiceExt::oneshot(app.clone(), req))
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(MAX_HEAD);
            let mut conn = builder.serve_connection(TokioIo::new(io), svc);
            let mut run = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx));
            let r = tokio::select! {
                r = &mut run => r,
                () = stop.cancelled() => {
                    drop(run);
                    std::pin::Pin::new(&mut conn).graceful_shutdown();
                    std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)).await
                }
            };
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "API connection ended");
            }
            linger(conn.into_parts().io.into_inner()).await;
        });
    }
}

/// Closes a connection as nginx's lingering close does: the answer is flushed and the
/// write side shut, then whatever the client still sends (the rest of a body refused by
/// its length) is read and dropped for a moment. Closing with unread bytes would send a
/// reset, and the client would lose the 413 it was about to read.
async fn linger<IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut io: IO) {
    const IDLE: Duration = Duration::from_secs(1);
    const AT_MOST: Duration = Duration::from_secs(5);
    let drain = async {
        if io.shutdown().await.is_err() {
            return;
        }
        let mut buf = [0u8; 8192];
        let mut left = 16usize << 20;
        while left > 0 {
            match tokio::time::timeout(IDLE, io.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(AT_MOST, drain).await;
}

/// A 429 in the API's error shape, then the connection closes.
async fn refuse<IO: tokio::io::AsyncWrite + Unpin>(mut io: IO, why: &str) {
    let body = serde_json::to_string(&rabble_shared::api::ApiError { error: why.into() }).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        io.write_all(head.as_bytes()).await?;
        io.write_all(body.as_bytes()).await?;
        io.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}
