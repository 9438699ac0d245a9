//! DNS over UDP and TCP on already-bound sockets. Queries read the zone the catalog
//! writer built at its last commit (before that commit was acknowledged or shown
//! anywhere), so an answer is never older than the catalog. Names outside the domain
//! are relayed as-is to the configured recursors (like dnsmasq), or REFUSED.

use super::answer::{Outcome, Transport, answer, error_reply};
use super::zone::{DnsSettings, Zone};
use crate::catalog::Catalog;
use crate::catalog::writer::Observer;
use hickory_proto::op::ResponseCode;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

/// UDP receive loops sharing the socket.
const UDP_WORKERS: usize = 2;
/// Relayed queries in flight at once; beyond it the client gets SERVFAIL at once.
const MAX_FORWARDS: usize = 256;
const MAX_TCP_CONNECTIONS: usize = 128;
const TCP_IDLE: Duration = Duration::from_secs(10);
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The DNS service's state, shared by every worker. The zone is replaced by the
/// catalog writer after each commit (see [`crate::catalog::writer::Observer`]), before
/// the commit is visible anywhere else, so queries only ever read it.
pub struct DnsServer {
    settings: DnsSettings,
    recursors: Vec<SocketAddr>,
    zone: RwLock<Arc<Zone>>,
    forwards: Semaphore,
    /// Counters for `/metrics`.
    pub stats: super::stats::DnsStats,
}

impl Observer for DnsServer {
    fn committed(&self, catalog: &Arc<Catalog>) {
        let zone = Arc::new(Zone::build(catalog, &self.settings));
        *self.zone.write().unwrap_or_else(|e| e.into_inner()) = zone;
    }
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer").field("domain", &self.settings.domain).finish()
    }
}

impl DnsServer {
    pub fn new(settings: DnsSettings, recursors: Vec<SocketAddr>, catalog: &Catalog) -> DnsServer {
        let zone = Zone::build(catalog, &settings);
        DnsServer {
            settings,
            recursors,
            zone: RwLock::new(Arc::new(zone)),
            forwards: Semaphore::new(MAX_FORWARDS),
            stats: Default::default(),
        }
    }

    /// The settings answers are made with.
    pub fn settings(&self) -> &DnsSettings {
        &self.settings
    }

    /// The zone as of the last commit.
    pub fn zone(&self) -> Arc<Zone> {
        self.zone.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Answers one request (relaying it when it is not ours).
    pub async fn handle(&self, req: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let start = tokio::time::Instant::now();
        let recursion = !self.recursors.is_empty();
        let reply = match answer(req, &self.zone(), &self.settings, transport, recursion) {
            Outcome::Reply(r) => Some(r),
            Outcome::Drop => None,
            Outcome::Forward => self.relay(req, transport).await,
        };
        self.stats.record(req, reply.as_deref(), start.elapsed());
        reply
    }

    /// Relays a request outside our domain; SERVFAIL when no recursor answers or too
    /// many relays are already in flight.
    async fn relay(&self, req: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let relayed = match self.forwards.try_acquire() {
            Ok(_permit) => forward(req, &self.recursors, transport).await,
            Err(_) => None,
        };
        match relayed {
            Some(r) => Some(r),
            None => match error_reply(req, ResponseCode::ServFail) {
                Outcome::Reply(r) => Some(r),
                _ => None,
            },
        }
    }
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    server: Arc<DnsServer>,
    udp: UdpSocket,
    tcp: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), &'static str> {
    let udp = Arc::new(udp);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..UDP_WORKERS {
        tasks.spawn(udp_worker(server.clone(), udp.clone()));
    }
    tasks.spawn(tcp_acceptor(server, tcp));
    // The workers never return on their own: one that does (a panic) ends DNS, and
    // the hub's topology stops the hub rather than serve DNS at half strength.
    tokio::select! {
        _ = shutdown => Ok(()),
        _ = tasks.join_next() => Err("a DNS worker stopped"),
    }
}

async fn udp_worker(server: Arc<DnsServer>, sock: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "dns udp recv");
                continue;
            }
        };
        let req = &buf[..n];
        // Our own names are answered inline (no allocation beyond the reply); a relay
        // is slow, so it gets its own task and the worker moves on.
        let recursion = !server.recursors.is_empty();
        let start = tokio::time::Instant::now();
        match answer(req, &server.zone(), &server.settings, Transport::Udp, recursion) {
            Outcome::Reply(r) => {
                server.stats.record(req, Some(&r), start.elapsed());
                let _ = sock.send_to(&r, peer).await;
            }
            Outcome::Drop => server.stats.record(req, None, start.elapsed()),
            Outcome::Forward => {
                let (server, sock, req) = (server.clone(), sock.clone(), req.to_vec());
                tokio::spawn(async move {
                    let r = server.relay(&req, Transport::Udp).await;
                    server.stats.record(&req, r.as_deref(), start.elapsed());
                    if let Some(r) = r {
                        let _ = sock.send_to(&r, peer).await;
                    }
                });
            }
        }
    }
}

async fn tcp_acceptor(server: Arc<DnsServer>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream); // too many connections: refuse this one
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            tcp_connection(&server, stream).await;
            drop(permit);
        });
    }
}

/// Length-prefixed messages until the client stops, idles, or sends garbage.
async fn tcp_connection(server: &DnsServer, mut s: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        if tokio::time::timeout(TCP_IDLE, s.read_exact(&mut len)).await.map_or(true, |r| r.is_err()) {
            return;
        }
        let len = usize::from(u16::from_be_bytes(len));
        buf.resize(len, 0);
        if tokio::time::timeout(TCP_IDLE, s.read_exact(&mut buf)).await.map_or(true, |r| r.is_err()) {
            return;
        }
        let Some(reply) = server.handle(&buf, Transport::Tcp).await else { return };
        let mut out = Vec::with_capacity(reply.len() + 2);
        out.extend_from_slice(&(reply.len() as u16).to_be_bytes());
        out.extend_from_slice(&reply);
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Relays a query to each recursor in turn until one answers.
async fn forward(req: &[u8], recursors: &[SocketAddr], transport: Transport) -> Option<Vec<u8>> {
    for r in recursors {
        let got = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
            match transport {
                Transport::Udp => forward_udp(req, *r).await,
                Transport::Tcp => forward_tcp(req, *r).await,
            }
        })
        .await;
        match got {
            Ok(Ok(reply)) if reply.len() >= 2 && reply[..2] == req[..2] => return Some(reply),
            Ok(Ok(_)) => tracing::debug!(recursor = %r, "recursor answered with the wrong id"),
            Ok(Err(e)) => tracing::debug!(recursor = %r, error = %e, "recursor failed"),
            Err(_) => tracing::debug!(recursor = %r, "recursor timed out"),
        }
    }
    None
}

async fn forward_udp(req: &[u8], to: SocketAddr) -> std::io::Result<Vec<u8>> {
    let bind: SocketAddr =
        if to.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(to).await?;
    sock.send(req).await?;
    let mut buf = vec![0u8; 65535];
    let n = sock.recv(&mut buf).await?;
    buf.truncate(n);
    Ok(buf)
}

async fn forward_tcp(req: &[u8], to: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(to).await?;
    let mut out = Vec::with_capacity(req.len() + 2);
    out.extend_from_slice(&(req.len() as u16).to_be_bytes());
    out.extend_from_slice(req);
    s.write_all(&out).await?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}
