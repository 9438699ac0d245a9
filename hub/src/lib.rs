//! rabble-hub: the embedded broker, the catalog in redb, and the HTTP API.
//!
//! [`run`] wires the tasks together: ingest (MQTT in) -> writer (catalog, redb) ->
//! snapshot -> API. It takes an already-bound HTTP listener and a shutdown future so
//! tests and `rabble dev` can bind port 0.

pub mod api;
pub mod auth;
pub mod broker;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod dns;
pub mod ingest;
pub mod stamp;
pub mod stats;

use catalog::Store;
use catalog::writer::{LiveMap, Writer};
use config::{BrokerChoice, Config};
use rabble_shared::{msg, topic};
use rumqttc::{AsyncClient, LastWill, MqttOptions, QoS};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// Validated updates waiting for the writer; ingest waits (backpressure) when full.
const INGEST_QUEUE: usize = 1024;
const EVENT_QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Store(#[from] catalog::StoreError),
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
    #[error(transparent)]
    Credentials(#[from] auth::CredentialsError),
    #[error("TLS to the external broker: {0}")]
    Tls(String),
    #[error("HTTP API: {0}")]
    Http(std::io::Error),
    #[error("{what} address {addr}: {error}")]
    Bind { what: &'static str, addr: std::net::SocketAddr, error: std::io::Error },
}

/// Runs the hub until `shutdown` resolves.
/// The already-bound sockets the hub serves on (the broker binds its own; see `broker`).
#[derive(Debug)]
pub struct Listeners {
    pub http: tokio::net::TcpListener,
    pub dns_udp: tokio::net::UdpSocket,
    pub dns_tcp: tokio::net::TcpListener,
    /// MQTT over TLS, when the embedded broker has a certificate.
    pub mqtts: Option<tokio::net::TcpListener>,
}

impl Listeners {
    /// Binds the addresses in `cfg`, naming the one that fails.
    pub async fn bind(cfg: &Config) -> Result<Listeners, HubError> {
        fn err(what: &'static str, addr: std::net::SocketAddr) -> impl FnOnce(std::io::Error) -> HubError {
            move |error| HubError::Bind { what, addr, error }
        }
        Ok(Listeners {
            http: tokio::net::TcpListener::bind(cfg.http_listen).await.map_err(err("HTTP API", cfg.http_listen))?,
            dns_udp: tokio::net::UdpSocket::bind(cfg.dns.listen).await.map_err(err("DNS (UDP)", cfg.dns.listen))?,
            dns_tcp: tokio::net::TcpListener::bind(cfg.dns.listen).await.map_err(err("DNS (TCP)", cfg.dns.listen))?,
            mqtts: match &cfg.broker {
                BrokerChoice::Embedded { tls: Some(t), .. } => {
                    Some(tokio::net::TcpListener::bind(t.listen).await.map_err(err("MQTT/TLS", t.listen))?)
                }
                _ => None,
            },
        })
    }
}

/// Runs the hub until `shutdown` resolves.
pub async fn run(
    cfg: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HubError> {
    let Listeners { http, dns_udp, dns_tcp, mqtts } = listeners;
    let (store, catalog) = Store::open(&cfg.data_dir)?;
    tracing::info!(
        data_dir = %cfg.data_dir.display(),
        nodes = catalog.nodes.len(),
        instances = catalog.instance_count(),
        index = catalog.index,
        "catalog loaded"
    );
    let mut background = Vec::new();
    let (host, port, broker_desc, login) = match &cfg.broker {
        BrokerChoice::Embedded { listen, tls, require_credentials } => {
            let auth = match require_credentials {
                true => Some(Arc::new(auth::Authenticator::new(auth::Credentials::path(&cfg.data_dir))?)),
                false => None,
            };
            let login = auth.as_ref().map(|a| a.hub_login());
            // A bad certificate or key stops the hub here, naming the file.
            let certified = match tls {
                Some(t) => Some(broker::tls::Certified::load(&t.cert, &t.key).map_err(broker::BrokerError::Tls)?),
                None => None,
            };
            broker::start(&broker::BrokerSetup { listen: *listen, auth: auth.clone() }).await?;
            let local = broker::local_addr(*listen);
            if let (Some(l), Some(certified)) = (mqtts, certified) {
                let serve = broker::tls::serve(l, certified, local, std::future::pending());
                background.push(tokio::spawn(serve));
            }
            if let Some(auth) = auth {
                background.push(tokio::spawn(auth::revoke::run(auth, local)));
            }
            let mut desc = format!("embedded mqtt://{listen}");
            if let Some(t) = tls {
                desc.push_str(&format!(" mqtts://{}", t.listen));
            }
            tracing::info!(broker = %desc, require_credentials, "embedded MQTT broker listening");
            (local.ip().to_string(), local.port(), desc, login)
        }
        BrokerChoice::External(addr) => {
            (addr.host.clone(), addr.port, format!("external {addr}"), cfg.broker_login.clone())
        }
    };
    let mut opts = MqttOptions::new("rabble-hub", host, port);
    if let Some((user, pass)) = login {
        opts.set_credentials(user, pass);
    }
    if let BrokerChoice::External(addr) = &cfg.broker
        && addr.tls
    {
        // An external broker over TLS, verified against `broker_ca` or the system's trust store.
        let tls = rabble_agent::tls::hub_config(cfg.broker_ca.as_deref()).map_err(HubError::Tls)?;
        opts.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(tls)));
    }
    opts.set_keep_alive(Duration::from_secs(10))
        .set_clean_session(true)
        .set_manual_acks(true)
        // Larger than anything valid, so an oversized message is rejected by us (and
        // counted) instead of breaking the connection.
        .set_max_packet_size(4 * 1024 * 1024, msg::MAX_PAYLOAD + 1024)
        .set_request_channel_capacity(4 * INGEST_QUEUE)
        .set_last_will(LastWill::new(topic::HUB_STATUS, topic::OFFLINE, QoS::AtLeastOnce, true));
    let (client, eventloop) = AsyncClient::new(opts, 4 * INGEST_QUEUE);

    let stats = Arc::new(stats::Stats::default());
    let connected = Arc::new(AtomicBool::new(false));
    let live: LiveMap = Default::default();
    let (snap_tx, snap_rx) = watch::channel(Arc::new(catalog.clone()));
    let (events, _) = broadcast::channel(EVENT_QUEUE);
    let (ingest_tx, ingest_rx) = mpsc::channel(INGEST_QUEUE);

    let dns_server = Arc::new(dns::DnsServer::new(cfg.dns.settings.clone(), cfg.dns.recursors.clone(), &catalog));
    let ingest = tokio::spawn(ingest::run(eventloop, client.clone(), ingest_tx, stats.clone(), connected.clone()));
    let writer = tokio::spawn(
        Writer {
            store: Arc::new(store),
            observers: vec![dns_server.clone() as Arc<dyn catalog::writer::Observer>],
            catalog,
            rx: ingest_rx,
            acker: client.clone(),
            heartbeat_ttl: cfg.heartbeat_ttl,
            snapshot: snap_tx,
            live: live.clone(),
            events: events.clone(),
            stats: stats.clone(),
        }
        .run(),
    );
    tracing::info!(
        addr = %dns_udp.local_addr().map_err(HubError::Http)?,
        domain = %cfg.dns.settings.domain_name(),
        recursors = cfg.dns.recursors.len(),
        "DNS listening"
    );
    let (dns_stop_tx, mut dns_stop_rx) = watch::channel(false);
    let dns_task = tokio::spawn(dns::serve(dns_server, dns_udp, dns_tcp, async move {
        let _ = dns_stop_rx.wait_for(|s| *s).await;
    }));
    let app = api::router(api::AppState {
        snapshot: snap_rx,
        live,
        events,
        stats,
        broker: broker_desc,
        mqtt_connected: connected,
    });
    tracing::info!(addr = %http.local_addr().map_err(HubError::Http)?, "HTTP API listening");
    axum::serve(http, app).with_graceful_shutdown(shutdown).await.map_err(HubError::Http)?;

    let _ = dns_stop_tx.send(true);
    let _ = dns_task.await;
    background.iter().for_each(|t| t.abort());
    // Say goodbye ourselves (a clean DISCONNECT suppresses our Will), then stop.
    tracing::info!("hub stopping");
    let _ = client.try_publish(topic::HUB_STATUS, QoS::AtLeastOnce, true, topic::OFFLINE);
    let _ = client.try_disconnect();
    if tokio::time::timeout(Duration::from_secs(2), ingest).await.is_err() {
        tracing::warn!("the broker did not close our connection in time");
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    Ok(())
}

/// Structured logs to stderr; `RABBLE_LOG` filters. The embedded broker is silent by
/// default (rumqttd logs every ordinary disconnect as an error); `RABBLE_LOG=info,rumqttd=info`
/// shows it.
pub fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("RABBLE_LOG").unwrap_or_else(|_| "info,rumqttd=off".into());
    // No colour codes into journald or a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
    }
}
