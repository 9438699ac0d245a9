//! rabble-hub: the embedded broker, the catalog in redb, and the HTTP API.
//!
//! [`run`] wires the tasks together, each named in a [`topology::Topology`]: ingest
//! (MQTT in) -> writer (catalog, redb) -> DNS zone and snapshot -> DNS and the API. It
//! takes already-bound listeners and a shutdown future so tests and `rabble dev` can
//! bind port 0.

pub mod acme;
pub mod admin;
pub mod alert;
pub mod alloc_logs;
pub mod api;
pub mod auth;
pub mod broker;
pub mod catalog;
pub mod cluster;
pub mod config;
pub mod dispatch;
pub mod dns;
pub mod dnsmirror;
pub mod forget;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod homeassistant;
pub mod ingest;
pub mod install;
pub use rabble_core::jobspec;
pub mod kvmirror;
mod leading;
pub use rabble_core::metrics;
pub mod render;
pub(crate) mod retained;
pub mod routes;
pub mod scheduler;
pub mod secrets;
pub use rabble_shared::support::stamp;
pub mod stats;
pub use rabble_core::template;
pub mod topology;
mod ui;

use catalog::Store;
use catalog::writer::{Commit, LiveMap, Writer};
use config::{BrokerChoice, Config};
use rumqttc::AsyncClient;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::{broadcast, mpsc, watch};
use topology::{Stage, Topology};

/// The catalog writer's input, as the API and the scheduler hold it (the token is
/// what ingest acks with; other inputs never ack).
pub type WriterTx = mpsc::Sender<catalog::writer::Input<rumqttc::Publish>>;

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
    #[error(transparent)]
    TaskDied(#[from] topology::TaskDied),
    #[error(transparent)]
    Key(#[from] dispatch::sign::KeyError),
    #[error(transparent)]
    Secrets(#[from] secrets::SecretsError),
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    /// A cluster member that led and no longer does: it stops, to start again as a follower.
    #[error("this hub no longer leads the cluster; it restarts to follow the new leader")]
    SteppedDown,
    #[error("{what} address {addr}: {error}")]
    Bind { what: &'static str, addr: std::net::SocketAddr, error: std::io::Error },
}

/// The already-bound sockets the hub serves on (the broker binds its own; see `broker`).
#[derive(Debug)]
pub struct Listeners {
    pub http: tokio::net::TcpListener,
    pub dns_udp: tokio::net::UdpSocket,
    pub dns_tcp: tokio::net::TcpListener,
    /// MQTT over TLS, when the embedded broker has a certificate.
    pub mqtts: Option<tokio::net::TcpListener>,
    /// The API over HTTPS (`https_listen`).
    pub https: Option<tokio::net::TcpListener>,
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
            https: match &cfg.https {
                Some(t) => Some(tokio::net::TcpListener::bind(t.listen).await.map_err(err("HTTPS API", t.listen))?),
                None => None,
            },
        })
    }
}

/// Runs the hub until `shutdown` resolves, or until one of its tasks dies (then it
/// stops everything and returns the dead task's error).
pub async fn run(
    cfg: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HubError> {
    let mut shutdown = Box::pin(shutdown);
    let Listeners { http, dns_udp, dns_tcp, mqtts, https } = listeners;
    let (store, catalog) = Store::open(&cfg.data_dir)?;
    tracing::info!(
        data_dir = %cfg.data_dir.display(),
        nodes = catalog.nodes.len(),
        instances = catalog.instance_count(),
        index = catalog.index,
        "catalog loaded"
    );
    let mut topo = Topology::default();
    let stats = Arc::new(stats::Stats::default());
    let live: LiveMap = Default::default();
    let (snap_tx, snap_rx) = watch::channel(Arc::new(catalog.clone()));
    let (events, _) = broadcast::channel(EVENT_QUEUE);
    let dns_server = Arc::new(dns::DnsServer::new(cfg.dns.settings.clone(), cfg.dns.recursors.clone(), &catalog));
    let domain = cfg.dns.settings.domain_name().trim_end_matches('.').to_owned();
    let (route_table, routes_rx) = routes::RouteTable::new(cfg.lanes.clone(), domain, &catalog);
    let applier = catalog::apply::Applier {
        store: Arc::new(store),
        observers: vec![dns_server.clone() as Arc<dyn catalog::writer::Observer>, route_table],
        catalog,
        snapshot: snap_tx,
        events: events.clone(),
        stats: stats.clone(),
    };
    let stepped_down = Arc::new(AtomicBool::new(false));
    let (commit, member) = match &cfg.cluster {
        None => (Commit::Local(Box::new(applier)), None),
        Some(cc) => {
            let Some(member) = become_member(cc, applier, &mut topo, &mut shutdown).await? else { return Ok(()) };
            (Commit::Cluster(Box::new(member.proposer())), Some(member))
        }
    };
    // After forming: a member that joined holds the cluster's keys by now.
    let key = Arc::new(dispatch::sign::SigningKey::load_or_create(&cfg.data_dir)?);
    let seal = Arc::new(secrets::key(&cfg.data_dir)?);
    let hub_key = key.public_b64();
    tracing::info!(hub_key = %hub_key, "assignments are signed with this key (agents: hub_key)");
    // The one reader of credentials.json: the broker's auth hook, and the keys secrets are sealed with.
    let creds = Arc::new(auth::Authenticator::new(auth::Credentials::path(&cfg.data_dir))?);
    let session = broker::session::plan(&cfg, 4 * INGEST_QUEUE, &creds)?;
    let (client, eventloop) = AsyncClient::new(session.options, 4 * INGEST_QUEUE);
    let connected = Arc::new(AtomicBool::new(false));
    let (ingest_tx, ingest_rx) = mpsc::channel(INGEST_QUEUE);
    let writer = Writer {
        commit,
        rx: ingest_rx,
        acker: ingest::MqttAcker(client.clone()),
        heartbeat_ttl: cfg.heartbeat_ttl,
        restart_grace: cfg.restart_grace,
        snapshot: snap_rx.clone(),
        live: live.clone(),
    };
    topo.spawn("writer", Stage::Core, |_| writer.run());
    let (sched_tx, sched_rx) = watch::channel(Arc::new(scheduler::task::SchedStatus::default()));
    let (connects_tx, connects_rx) = watch::channel(0u64);
    let logs = alloc_logs::LogHub::new(client.clone(), key.clone());
    if let Some(m) = &member {
        let _ = m.logs.set(logs.clone());
        // The rules run on the leader; a cluster without one is watched by every member.
        if !cfg.alert.receivers.is_empty() {
            let name = cfg.cluster.as_ref().map_or_else(String::new, |c| c.name.clone());
            let dog = alert::watchdog::Watchdog { cfg: cfg.alert.clone(), cluster: m.clone(), name };
            topo.spawn("alert-watchdog", Stage::Doors, |stop| dog.run(stop));
        }
    }
    let (certs_tx, certs_rx) = watch::channel(acme::Status::default());
    let (waits_tx, waits_rx) = watch::channel(render::Waits::default());
    let proxy_stats: ingest::ProxyMap = Default::default();
    let leading = leading::Leading {
        cfg: cfg.clone(),
        mqtts,
        creds: creds.clone(),
        client: client.clone(),
        eventloop,
        key,
        seal: seal.clone(),
        snapshot: snap_rx.clone(),
        writer: ingest_tx.clone(),
        sched: sched_tx,
        connects: (connects_tx, connects_rx),
        routes: routes_rx.clone(),
        certs: certs_tx,
        waits: waits_tx,
        dns: dns_server.clone(),
        stats: stats.clone(),
        connected: connected.clone(),
        proxy: proxy_stats.clone(),
        logs: logs.clone(),
        live: live.clone(),
        cluster: member.clone(),
    };
    match &member {
        None => leading.spawn(&mut topo).await?,
        Some(m) => {
            let (m, flag) = (m.clone(), stepped_down.clone());
            topo.spawn("leading", Stage::Inputs, |stop| leading.when_leading(m, flag, stop));
        }
    }
    let writer_tx = ingest_tx;
    tracing::info!(
        addr = %dns_udp.local_addr().map_err(HubError::Http)?,
        domain = %cfg.dns.settings.domain_name(),
        recursors = cfg.dns.recursors.len(),
        "DNS listening"
    );
    let dns_for_api = dns_server.clone();
    topo.spawn("dns", Stage::Doors, |stop| dns::serve(dns_server, dns_udp, dns_tcp, stop.cancelled_owned()));
    let app = api::router(api::AppState {
        auth: session.auth.clone(),
        hub_key: hub_key.clone(),
        snapshot: snap_rx,
        live,
        events,
        stats,
        broker: session.describe,
        mqtt_connected: connected,
        stop: topo.token(Stage::Doors),
        writer: writer_tx,
        sched: sched_rx,
        logs,
        routes: routes_rx,
        certs: certs_rx,
        seal,
        template_waits: waits_rx,
        dns: dns_for_api,
        proxy: proxy_stats,
        anonymous: rabble_core::acl::Authorizer::anonymous(&cfg.anonymous),
        data_dir: cfg.data_dir.clone(),
        cluster: member,
        alerting: Arc::new(api::Alerting { receivers: cfg.alert.receiver_names(), ui_url: cfg.alert.ui_url.clone() }),
    });
    if let (Some(tcp), Some(t)) = (https, &cfg.https) {
        let certified = broker::tls::Certified::load(&t.cert, &t.key).map_err(HubError::Tls)?;
        let addr = tcp.local_addr().map_err(HubError::Http)?;
        let (listener, accepting) =
            api::https::listen(tcp, certified, topo.token(Stage::Doors)).map_err(HubError::Http)?;
        topo.spawn("https-accept", Stage::Doors, |_| accepting);
        // Requests that came over TLS say so (the UI's session cookie is then `Secure`).
        let app = app.clone().layer(axum::Extension(api::serve::OverTls));
        topo.spawn("https-api", Stage::Doors, |stop| api::serve::serve(listener, app, stop));
        tracing::info!(%addr, "HTTPS API listening");
    }
    tracing::info!(addr = %http.local_addr().map_err(HubError::Http)?, "HTTP API listening");
    topo.spawn("http-api", Stage::Doors, |stop| {
        // The peer's address goes with each request: loopback is trusted until the ACLs are
        // bootstrapped (api::door).
        api::serve::serve(http, app, stop)
    });
    let ended = topo.run_until(shutdown).await;
    if stepped_down.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(HubError::SteppedDown);
    }
    ended?;
    tracing::info!("hub stopped");
    Ok(())
}

/// Starts this hub's cluster member and waits until it is one (started, joined, or a
/// restart), keeping its secrets in step from then on; `None` when told to stop first (the
/// topology is stopped then).
async fn become_member(
    cc: &cluster::ClusterConfig,
    applier: catalog::apply::Applier,
    topo: &mut Topology,
    shutdown: &mut std::pin::Pin<Box<impl Future<Output = ()> + Send + 'static>>,
) -> Result<Option<cluster::Cluster>, HubError> {
    let member = cluster::start(cc, applier, topo).await?;
    tokio::select! {
        formed = cluster::form(&member, cc) => {
            tracing::info!(how = ?formed?, id = member.id, witness = cc.witness, "a member of the hub cluster");
        }
        () = shutdown.as_mut() => {
            std::mem::take(topo).run_until(std::future::ready(())).await?;
            return Ok(None);
        }
    }
    let (m, c) = (member.clone(), cc.clone());
    topo.spawn("cluster-secrets", Stage::Doors, |stop| cluster::follow(m, c, stop));
    Ok(Some(member))
}

/// A witness (`rabble-hub --witness`): a cluster member that votes and keeps the log and
/// the catalog, and serves nothing else — no broker, DNS or API, no listener but the
/// cluster's — so it fits on a Pi beside its agent. It hands on any leadership it wins.
pub async fn run_witness(cfg: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), HubError> {
    let mut shutdown = Box::pin(shutdown);
    let Some(cc) = cfg.cluster.as_ref().filter(|c| c.witness) else {
        return Err(HubError::Cluster(cluster::ClusterError::Join("--witness needs [cluster] settings".into())));
    };
    let (store, catalog) = Store::open(&cfg.data_dir)?;
    let mut topo = Topology::default();
    let (snapshot, _) = watch::channel(Arc::new(catalog.clone()));
    let (events, _) = broadcast::channel(EVENT_QUEUE);
    let applier = catalog::apply::Applier {
        store: Arc::new(store),
        observers: vec![],
        catalog,
        snapshot,
        events,
        stats: Default::default(),
    };
    let Some(member) = become_member(cc, applier, &mut topo, &mut shutdown).await? else { return Ok(()) };
    topo.spawn("witness", Stage::Inputs, |stop| cluster::hand_on_leadership(member, stop));
    topo.run_until(shutdown).await?;
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
