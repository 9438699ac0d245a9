//! DNS on every node: the agent answers `<service>.service.<domain>` (and the rest of the
//! hub's names) on `dns_listen` from the zone the hub publishes retained under
//! `rabble/hub/dns/` (`rabble_shared::dns`), so a host's Unbound asks its own node, as
//! it asked a local Consul agent, and names keep resolving while the hub is gone: the
//! last zone stays until the hub's next one replaces it.
//!
//! The engine applies the zone's messages ([`Dns::update`]); a UDP task and a TCP task
//! answer from it with `rabble_shared::dns::answer` (pure, compared query by query with
//! the hub's answers). Nothing here writes to disk; the zone is bounded
//! (`rabble_shared::dns::MAX_NAMES` names, `MAX_TARGETS` instances each).

use rabble_shared::dns::answer::{Transport, answer};
use rabble_shared::dns::{Zone, wire};
use rabble_shared::topic::Topic;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

/// TCP clients answered at once; more wait for the accept loop.
const MAX_TCP: usize = 16;
/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(5);

/// The zone, shared by the engine (which applies the hub's messages) and the servers.
#[derive(Debug, Clone, Default)]
pub struct Dns {
    zone: Arc<RwLock<Zone>>,
}

impl Dns {
    /// Applies one of the hub's zone messages (`rabble/hub/dns/...`); a bad one is
    /// refused with the reason and changes nothing.
    pub fn update(&self, topic: &Topic, payload: &[u8]) -> Result<(), String> {
        let Some(change) = wire::change(topic, payload).map_err(|e| format!("{topic:?}: {e}"))? else { return Ok(()) };
        let mut zone = self.zone.write().unwrap_or_else(|e| e.into_inner());
        if zone.apply(change) { Ok(()) } else { Err(format!("{topic:?}: the zone is full or the name is not a label")) }
    }

    fn answer(&self, req: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let zone = self.zone.read().unwrap_or_else(|e| e.into_inner());
        answer(req, &zone, transport, fastrand::u64(..))
    }
}

/// Binds UDP and TCP on `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let udp = UdpSocket::bind(addr).await?;
    // The same port for TCP (the UDP socket's, when `addr` asked for port 0).
    let tcp = TcpListener::bind(udp.local_addr()?).await?;
    Ok((udp, tcp))
}

/// Answers over UDP and TCP (length-prefixed, several queries per connection, each
/// client in its own task, at most [`MAX_TCP`] at once) until the task is aborted.
pub async fn serve(dns: Dns, udp: UdpSocket, tcp: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_TCP));
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            r = udp.recv_from(&mut buf) => {
                let Ok((n, peer)) = r else { continue };
                if let Some(reply) = dns.answer(&buf[..n], Transport::Udp) {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
            r = tcp.accept(), if slots.available_permits() > 0 => {
                let (Ok((stream, _)), Ok(permit)) = (r, slots.clone().try_acquire_owned()) else { continue };
                let dns = dns.clone();
                tokio::spawn(async move {
                    let _ = tcp_client(&dns, stream).await;
                    drop(permit);
                });
            }
        }
    }
}

async fn tcp_client(dns: &Dns, mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 512];
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        let len = usize::from(u16::from_be_bytes(len));
        buf.resize(len, 0);
        if tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf)).await.is_err() {
            return Ok(());
        }
        let Some(reply) = dns.answer(&buf, Transport::Tcp) else { return Ok(()) };
        let mut out = Vec::with_capacity(reply.len() + 2);
        out.extend_from_slice(&(reply.len() as u16).to_be_bytes());
        out.extend_from_slice(&reply);
        stream.write_all(&out).await?;
    }
}
