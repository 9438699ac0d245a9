//! The embedded MQTT broker (rumqttd), sized for a 512 MB LXC.
//!
//! rumqttd binds its own listener, so unlike the HTTP API it cannot take a bound
//! socket: we check the address is free first, for a clear error, then wait until it
//! accepts connections. Its sample config's commit log (100 MiB x 10) is replaced by
//! 1 MiB x 4 segments per subscription filter.
//!
//! rumqttd serves plain MQTT only; MQTT over TLS is terminated in front of it by `tls`
//! (see there for why). With credentials required, rumqttd asks the `Authenticator` on
//! every CONNECT, and closes a refused connection without a CONNACK.

pub mod acl;
pub mod session;
pub mod tls;

use crate::auth::Authenticator;
use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("MQTT listen address {addr}: {error}")]
    Bind { addr: SocketAddr, error: std::io::Error },
    #[error("embedded broker did not start listening on {0} within 5 s")]
    NotListening(SocketAddr),
    #[error("embedded broker thread: {0}")]
    Thread(std::io::Error),
    #[error("TLS listener: {0} (tls_cert / tls_key)")]
    Tls(String),
}

/// What the embedded broker serves.
#[derive(Debug, Clone)]
pub struct BrokerSetup {
    pub listen: SocketAddr,
    /// Checks credentials on every CONNECT when set.
    pub auth: Option<Arc<Authenticator>>,
}

/// Limits for the embedded broker.
pub fn config(setup: &BrokerSetup) -> Config {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        // A little above the hub's own payload limit, so oversized messages are refused
        // by the broker before they cost the hub anything.
        // Room for a node's signed assignments (the hub's largest publish); ingest
        // still refuses anything over 64 KiB from agents.
        max_payload_size: rabble_shared::assign::MAX_ASSIGNMENTS + 1024,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    if let Some(a) = &setup.auth {
        connections.external_auth = Some(a.clone().handler());
    }
    let server = ServerSettings {
        name: "mqtt".into(),
        listen: setup.listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1024,
            // QoS 0 subscribers (mosquitto_sub's default) get this many retained
            // messages on subscribe: enough for every node's topics.
            max_outgoing_packet_count: 20_000,
            max_segment_size: 1024 * 1024,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Default::default()
    }
}

/// Where the hub itself should connect to reach a broker listening on `listen`.
pub fn local_addr(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port()),
        _ => listen,
    }
}

/// Starts the broker on its own thread and waits until it accepts connections. The
/// receiver resolves if the thread ever ends (rumqttd returned or panicked), so the
/// hub's topology notices a dead broker.
pub async fn start(setup: &BrokerSetup) -> Result<tokio::sync::oneshot::Receiver<()>, BrokerError> {
    let listen = setup.listen;
    drop(std::net::TcpListener::bind(listen).map_err(|source| BrokerError::Bind { addr: listen, error: source })?);
    let login = setup.auth.as_ref().map(|a| a.hub_login());
    let cfg = config(setup);
    let (ended_tx, ended) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            // Dropped when the thread ends, however it ends: the receiver then resolves.
            let _ended = ended_tx;
            let mut broker = rumqttd::Broker::new(cfg);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(BrokerError::Thread)?;
    let target = local_addr(listen);
    for _ in 0..100 {
        if probe(target, login.as_ref()).await.is_ok() {
            return Ok(ended);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BrokerError::NotListening(listen))
}

/// A minimal MQTT 3.1.1 session: CONNECT, expect CONNACK "accepted", DISCONNECT.
/// Proves the broker is up and speaking MQTT (a bare TCP connect makes rumqttd log
/// an error for the aborted handshake).
async fn probe(addr: SocketAddr, login: Option<&(String, String)>) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const ID: &[u8] = b"rabble-hub-probe";
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, if login.is_some() { 0xc2 } else { 0x02 }, 0, 10];
    let mut field = |b: &[u8]| {
        body.extend_from_slice(&(b.len() as u16).to_be_bytes());
        body.extend_from_slice(b);
    };
    field(ID);
    if let Some((user, pass)) = login {
        field(user.as_bytes());
        field(pass.as_bytes());
    }
    // Remaining length fits one byte: the hub's login is short.
    let mut pkt = vec![0x10, body.len() as u8];
    pkt.extend_from_slice(&body);
    let mut s = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await??;
    s.write_all(&pkt).await?;
    let mut ack = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(1), s.read_exact(&mut ack)).await??;
    s.write_all(&[0xe0, 0]).await?;
    if ack == [0x20, 2, 0, 0] { Ok(()) } else { Err(std::io::Error::other(format!("unexpected CONNACK {ack:?}"))) }
}
