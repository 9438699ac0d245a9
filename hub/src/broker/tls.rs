//! The MQTT-over-TLS listener: terminates TLS (rustls on ring) and relays each
//! connection to the embedded broker's plain listener on loopback.
//!
//! Why not rumqttd's own TLS listener: rumqttd 0.20 does the TLS handshake inline in its
//! accept loop, without a timeout, so one client that opens a TCP connection and sends
//! nothing stops every other node from connecting. Here each connection gets its own
//! task, the handshake a deadline, and the listener a connection cap. The broker still
//! checks credentials on the CONNECT that follows.

use super::acl;
use crate::auth::Authenticator;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// A client must finish the TLS handshake within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open TLS connections at most (the broker's own cap is the same).
pub const MAX_CONNECTIONS: usize = 1024;

/// Loads the hub's certificate chain and key; errors name the file.
fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<_> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it (expected PEM)", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| format!("{} does not go with {}: {e}", key.display(), cert.display()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificate in use, re-loaded when its files change (a renewed certificate is
/// picked up by the next connection, no restart). A broken renewal keeps the old one.
pub struct Certified {
    cert: PathBuf,
    key: PathBuf,
    stamp: Option<Stamp>,
    acceptor: TlsAcceptor,
}

type Stamp = [crate::stamp::Stamp; 2];

fn stamp(cert: &Path, key: &Path) -> Option<Stamp> {
    Some([crate::stamp::of(cert)?, crate::stamp::of(key)?])
}

impl Certified {
    /// Loads the files now; errors name the file.
    pub fn load(cert: &Path, key: &Path) -> Result<Certified, String> {
        let stamp = stamp(cert, key);
        Ok(Certified { cert: cert.to_owned(), key: key.to_owned(), stamp, acceptor: acceptor(cert, key)? })
    }

    pub(crate) fn current(&mut self) -> TlsAcceptor {
        let now = stamp(&self.cert, &self.key);
        if now != self.stamp {
            self.stamp = now;
            match acceptor(&self.cert, &self.key) {
                Ok(a) => {
                    self.acceptor = a;
                    tracing::info!(cert = %self.cert.display(), "MQTT/TLS certificate re-loaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "MQTT/TLS certificate changed but cannot be used; keeping the old one")
                }
            }
        }
        self.acceptor.clone()
    }
}

/// Accepts TLS connections on `listener` and relays them to `broker` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    mut certified: Certified,
    broker: SocketAddr,
    auth: Option<Arc<Authenticator>>,
    ha_prefix: Arc<str>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "MQTT/TLS accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "MQTT/TLS: {MAX_CONNECTIONS} connections open; refusing another");
            continue;
        };
        let acceptor = certified.current();
        let (auth, ha_prefix) = (auth.clone(), ha_prefix.clone());
        tokio::spawn(async move {
            let _slot = slot;
            relay(tcp, peer, acceptor, broker, auth, ha_prefix).await;
        });
    }
}

async fn relay(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    broker: SocketAddr,
    auth: Option<Arc<Authenticator>>,
    ha_prefix: Arc<str>,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            // The usual cause: a node with the wrong CA file, which aborts the handshake.
            tracing::warn!(%peer, error = %e, "MQTT/TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, "MQTT/TLS handshake not finished within {HANDSHAKE_TIMEOUT:?}; closed");
            return;
        }
    };
    let mut upstream = match TcpStream::connect(broker).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%broker, error = %e, "MQTT/TLS: cannot reach the embedded broker");
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    // MQTT has no use for half-closed connections: when either side is done, both are.
    // (Waiting for the other direction would keep a vanished Wi-Fi client's socket and
    // task alive long after the broker's keepalive closed its session.)
    let (mut from_client, mut to_client) = tokio::io::split(tls);
    let (mut from_broker, mut to_broker) = upstream.split();
    // Client to broker goes through the topic ACL when nodes log in with credentials.
    let up = async {
        match &auth {
            None => drop(tokio::io::copy(&mut from_client, &mut to_broker).await),
            Some(a) => {
                if let Err(why) = filtered(&mut from_client, &mut to_broker, a, acl::Session::new(ha_prefix)).await {
                    tracing::warn!(%peer, "MQTT/TLS: {why}; connection closed");
                }
            }
        }
    };
    let broker_done = tokio::select! {
        _ = up => false,
        _ = tokio::io::copy(&mut from_broker, &mut to_client) => true,
    };
    if broker_done {
        // The broker's last words (e.g. closing a refused CONNECT) are flushed; say
        // close_notify, but do not wait on a peer that may be gone.
        use tokio::io::AsyncWriteExt;
        let _ = tokio::time::timeout(Duration::from_secs(1), to_client.shutdown()).await;
    }
}

/// Forwards the client's packets one by one, each checked by the topic ACL first.
async fn filtered(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    w: &mut (impl tokio::io::AsyncWrite + Unpin),
    auth: &Authenticator,
    mut session: acl::Session,
) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = r.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(len) = acl::packet_len(&buf, rabble_shared::msg::MAX_PACKET).map_err(|v| v.to_string())? {
            if let Err(v) = session.check(&buf[..len], |u| auth.role(u)) {
                let who = match &session.role {
                    Some(acl::Role::Node(n)) => format!("node {n}"),
                    Some(acl::Role::Observer) => "an observer".to_owned(),
                    Some(acl::Role::Unknown(u)) => format!("unknown user {u:?}"),
                    None => "a client".to_owned(),
                };
                return Err(format!("{who}: {v}"));
            }
            w.write_all(&buf[..len]).await.map_err(|e| e.to_string())?;
            buf.drain(..len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = crate::auth::pki::init(&dir.path().join("a"), &["hub.test".into()]).unwrap();
        let b = crate::auth::pki::init(&dir.path().join("b"), &["hub.test".into()]).unwrap();
        assert!(Certified::load(&a.hub_cert, &a.hub_key).is_ok());
        let missing = dir.path().join("nope.pem");
        let e = acceptor(&missing, &a.hub_key).err().unwrap();
        assert!(e.contains("nope.pem"), "{e}");
        let e = acceptor(&a.hub_key, &a.hub_key).err().unwrap();
        assert!(e.contains("no certificate"), "{e}");
        let e = acceptor(&a.hub_cert, &b.hub_key).err().unwrap();
        assert!(e.contains("does not go with"), "{e}");
    }
}
