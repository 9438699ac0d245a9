//! The API over HTTPS, for the LAN: the hub's certificate (the one `rabble-hub tls init`
//! makes, re-loaded when renewed), every handshake in its own task with a deadline, and
//! the connections handed to the same server and router as plain HTTP (`api::serve` over
//! this [`TlsListener`]). Plain HTTP stays on loopback.

use crate::broker::tls::{Certified, HANDSHAKE_TIMEOUT};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// Handshakes in progress at most: more wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

/// Finished handshakes, as `api::serve` takes connections (axum's `Listener` trait).
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The acceptor stopped: the server is stopping too.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The listener, and the task that accepts and handshakes until `stop`.
pub fn listen(
    tcp: TcpListener,
    mut certified: Certified,
    stop: CancellationToken,
) -> std::io::Result<(TlsListener, impl std::future::Future<Output = ()> + Send)> {
    let local = tcp.local_addr()?;
    Ok(accept(tcp, local, move || certified.current(), stop))
}

/// The same, with the TLS configuration `acceptor` gives for each handshake (the hub
/// cluster's mutual TLS).
pub fn listen_with(
    tcp: TcpListener,
    acceptor: impl FnMut() -> tokio_rustls::TlsAcceptor + Send + 'static,
    stop: CancellationToken,
) -> (TlsListener, impl std::future::Future<Output = ()> + Send) {
    let local = tcp.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    accept(tcp, local, acceptor, stop)
}

fn accept(
    tcp: TcpListener,
    local: SocketAddr,
    mut current: impl FnMut() -> tokio_rustls::TlsAcceptor + Send + 'static,
    stop: CancellationToken,
) -> (TlsListener, impl std::future::Future<Output = ()> + Send) {
    let (tx, rx) = mpsc::channel(64);
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let accepting = async move {
        loop {
            let (stream, peer) = tokio::select! {
                () = stop.cancelled() => return,
                r = tcp.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "HTTPS accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Answers go out whole, not held back for an ACK (Nagle with a delayed ACK costs 40 ms).
            let _ = stream.set_nodelay(true);
            let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
            let (acceptor, tx) = (current(), tx.clone());
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => drop(tx.send((tls, peer)).await),
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "HTTPS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "HTTPS handshake timed out"),
                }
            });
        }
    };
    (TlsListener { rx, local }, accepting)
}
