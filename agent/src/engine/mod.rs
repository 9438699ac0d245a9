//! The agent's engine: one task, one `select!` loop over a closed set of events. It
//! owns the node's state (facts, services, checks) and publishes it (`publish.rs`);
//! startup, file changes, SIGHUP and `rabble-agent reload` all take the same `reload`
//! path (`reload.rs`); a check's live state is `check_state.rs`.

mod check_state;
mod publish;
mod reload;
mod work;

use crate::checks::CheckResult;
use crate::config::Config;
use crate::control::{self, Command};
use crate::driver::{self, Drivers};
use crate::error::AgentError;
use crate::facts::Sampler;
use crate::link::{self, LinkEvent};
use crate::services::{Loader, Probe, ServiceDef};
use check_state::{Change, CheckRt};
use rabble_shared::control::{Reply, Request};
use rabble_shared::msg::{self, NodeFacts};
use rabble_shared::{Status, TopicId, topic};
use reload::{Fingerprint, fingerprint};
use rumqttc::{AsyncClient, QoS};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

/// Bounded queues: nothing grows while the hub is away.
const LINK_QUEUE: usize = 64;
const CHECK_QUEUE: usize = 64;
const CONTROL_QUEUE: usize = 8;
/// rumqttc's request queue: room for a full re-publish (services + checks + a few).
const MQTT_QUEUE: usize = crate::services::MAX_SERVICES + crate::services::MAX_CHECKS + 16;
const TICK: Duration = Duration::from_millis(500);
/// The services directory is re-scanned this often (stat only; nothing is written).
const WATCH_EVERY_TICKS: u32 = 4;
/// The lane proxy's counters are published this often, when they changed.
const PROXY_EVERY_TICKS: u32 = 10;
/// Facts (addresses, disks, ...) are re-read this often and published if they changed.
const FACTS_EVERY_TICKS: u32 = 120;

/// Everything that can happen to the engine.
#[derive(Debug)]
enum Event {
    Link(LinkEvent),
    Check(CheckResult),
    Control(Command),
    Reload(&'static str),
    Drivers(Drivers),
    TaskExit(crate::allocs::process::TaskExit),
    Heartbeat,
    Tick,
    Shutdown,
}

struct Engine {
    cfg: Config,
    client: AsyncClient,
    connected: bool,
    /// A full re-publish is owed (a publish was dropped, or the hub asked).
    resync_at: Option<Instant>,
    sampler: Sampler,
    facts: NodeFacts,
    loader: Loader,
    fingerprint: Fingerprint,
    services: BTreeMap<TopicId, ServiceDef>,
    /// Services removed by `deregister_critical_service_after`, with the definition
    /// they had; they stay away until that definition changes or an explicit reload.
    reaped: HashMap<TopicId, ServiceDef>,
    checks: BTreeMap<TopicId, CheckRt>,
    generation: u64,
    check_tx: mpsc::Sender<CheckResult>,
    /// What the services directory defines (job services are added to it).
    file_defs: crate::services::Definitions,
    /// The allocations the hub assigned and their tasks.
    allocs: crate::allocs::Allocs,
    /// The services of running allocations, registered like the files' services.
    job_services: Vec<ServiceDef>,
    /// Assignment and logs-request messages refused since start (reported in heartbeats).
    refused: u64,
    /// `rabble alloc logs` sessions.
    logs: crate::logs::Sessions,
    /// The HTTP lanes this node serves.
    lanes: crate::proxy::Lanes,
    /// The proxy counters last published.
    proxy_sent: rabble_shared::routes::ProxyStats,
    /// The DNS zone this node answers from, when it answers DNS.
    dns: Option<crate::dns::Dns>,
}

/// Runs the agent until `shutdown` resolves, then deregisters and says `offline`.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    let node = cfg.node.clone();
    let hubs = link::options_all(&cfg, MQTT_QUEUE)?;
    let (client, eventloop) = AsyncClient::new(hubs[0].clone(), MQTT_QUEUE);
    let (link_tx, mut link_rx) = mpsc::channel(LINK_QUEUE);
    let join = cfg.join.clone().zip(cfg.credentials.as_ref().map(|(_, t)| t.clone()));
    let link = tokio::spawn(link::run(eventloop, link_tx, node.clone(), join, hubs));
    let (exit_tx, mut exit_rx) = mpsc::channel(CHECK_QUEUE);
    let (check_tx, mut check_rx) = mpsc::channel(CHECK_QUEUE);
    let (control_tx, mut control_rx) = mpsc::channel(CONTROL_QUEUE);
    let control_task = match &cfg.socket {
        Some(path) => {
            let l = control::bind(path).map_err(|source| AgentError::Socket { path: path.clone(), error: source })?;
            Some(tokio::spawn(control::serve(l, control_tx)))
        }
        None => None,
    };
    let (lanes, lane_tasks) = crate::proxy::Lanes::start(&cfg.lanes).await?;
    let (dns, dns_tasks) = start_dns(cfg.dns_listen).await;
    let (driver_tx, mut driver_rx) = mpsc::channel(1);
    let driver_task = tokio::spawn(driver::run(cfg.drivers.clone(), driver_tx));
    let mut sampler = Sampler::new();
    sampler.metrics_every = cfg.metrics_every();
    let mut facts = sampler.facts(&cfg.identity);
    facts.host_volumes = cfg
        .host_volumes
        .iter()
        .map(|(k, p)| (k.clone(), rabble_shared::msg::HostVolume { path: p.display().to_string(), read_only: false }))
        .collect();
    facts.tls_lanes = cfg.lanes.iter().filter(|l| l.tls_listen.is_some()).map(|l| l.name.clone()).collect();
    facts.alloc_dir = cfg.alloc_dir.display().to_string();
    // Containers this node ran before the agent (re)started: adopted or removed once
    // the hub's assignments arrive.
    #[cfg(feature = "docker")]
    let docker_found = crate::allocs::docker::recorded(&cfg.alloc_dir);
    #[cfg(not(feature = "docker"))]
    let docker_found = Default::default();
    let hub_list: Vec<String> = cfg.hubs.iter().map(ToString::to_string).collect();
    tracing::info!(node = %node, hub = %hub_list.join(", "), advertise = %facts.advertise, "agent starting");
    let mut engine = Engine {
        client,
        connected: false,
        resync_at: None,
        sampler,
        facts,
        loader: Loader::default(),
        fingerprint: Vec::new(),
        services: BTreeMap::new(),
        reaped: HashMap::new(),
        checks: BTreeMap::new(),
        generation: 0,
        check_tx,
        file_defs: Default::default(),
        allocs: crate::allocs::Allocs::new(
            crate::allocs::Settings {
                node: node.clone(),
                alloc_dir: cfg.alloc_dir.clone(),
                cgroups: cfg.drivers.exec && crate::cgroup::probe().healthy,
                host_volumes: cfg.host_volumes.clone(),
            },
            exit_tx,
        )
        .with_docker(engines(&cfg), docker_found),
        job_services: Vec::new(),
        refused: 0,
        logs: Default::default(),
        lanes,
        proxy_sent: Default::default(),
        dns,
        cfg,
    };
    engine.reload("startup", true);

    // SIGHUP re-reads the service files (Windows has no SIGHUP: `rabble-agent reload`).
    #[cfg(unix)]
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    let mut sighup: Option<tokio::sync::mpsc::Receiver<()>> = None;
    let mut heartbeat = tokio::time::interval(engine.cfg.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut ticks = 0u32;
    tokio::pin!(shutdown);
    loop {
        let ev = tokio::select! {
            biased;
            _ = &mut shutdown => Event::Shutdown,
            Some(ev) = link_rx.recv() => Event::Link(ev),
            Some(r) = check_rx.recv() => Event::Check(r),
            Some(c) = control_rx.recv() => Event::Control(c),
            Some(d) = driver_rx.recv() => Event::Drivers(d),
            Some(x) = exit_rx.recv() => Event::TaskExit(x),
            Some(()) = async { match sighup.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => Event::Reload("SIGHUP"),
            _ = heartbeat.tick() => Event::Heartbeat,
            _ = tick.tick() => Event::Tick,
        };
        match ev {
            Event::Shutdown => break,
            Event::Link(e) => engine.on_link(e),
            Event::Check(r) => engine.on_result(r),
            Event::Control((req, reply)) => {
                let _ = reply.send(engine.on_control(req));
            }
            Event::Reload(why) => {
                engine.reload(why, true);
            }
            Event::Drivers(d) => engine.set_drivers(d),
            Event::TaskExit(x) => engine.on_task_exit(x),
            Event::Heartbeat => engine.heartbeat(),
            Event::Tick => {
                engine.tick_work();
                ticks = ticks.wrapping_add(1);
                engine.tick(ticks % WATCH_EVERY_TICKS == 0);
                if ticks % PROXY_EVERY_TICKS == 0 {
                    engine.publish_proxy_stats();
                }
                if ticks % FACTS_EVERY_TICKS == 0 {
                    engine.refresh_facts();
                }
            }
        }
    }

    engine.stop_work(&mut exit_rx).await;
    if engine.connected {
        engine.goodbye();
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            while let Some(ev) = link_rx.recv().await {
                if matches!(ev, LinkEvent::Closed) {
                    break;
                }
            }
        })
        .await;
    }
    engine.checks.clear(); // stops every check task
    link.abort();
    driver_task.abort();
    for t in lane_tasks.into_iter().chain(dns_tasks) {
        t.abort();
    }
    if let Some(t) = control_task {
        t.abort();
    }
    if let Some(p) = &engine.cfg.socket {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!(node = %node, "agent stopped");
    Ok(())
}

/// Answers DNS on `listen` (UDP and TCP). A port already taken (a hub on this host
/// answers there) is worth a warning, not a dead agent: the node runs without DNS.
async fn start_dns(
    listen: Option<std::net::SocketAddr>,
) -> (Option<crate::dns::Dns>, Vec<tokio::task::JoinHandle<()>>) {
    let Some(addr) = listen else { return (None, Vec::new()) };
    match crate::dns::bind(addr).await {
        Ok((udp, tcp)) => {
            let dns = crate::dns::Dns::default();
            tracing::info!(addr = %udp.local_addr().unwrap_or(addr), "answering DNS from the hub's zone");
            let tasks = vec![tokio::spawn(crate::dns::serve(dns.clone(), udp, tcp))];
            (Some(dns), tasks)
        }
        Err(e) => {
            tracing::warn!(%addr, error = %e, "cannot answer DNS there (a hub on this host answers itself; set dns_listen = \"\" to say so); running without DNS");
            (None, Vec::new())
        }
    }
}

/// The engines to run container tasks with, where this build has the driver and the node
/// has a socket configured (the handles connect when first used).
fn engines(cfg: &Config) -> crate::allocs::Engines {
    let _ = cfg;
    #[cfg(feature = "docker")]
    let connect = |sock: &std::path::PathBuf| crate::driver::connect_engine(sock, 120).ok();
    crate::allocs::Engines {
        #[cfg(feature = "docker")]
        docker: cfg.drivers.docker_socket.as_ref().and_then(connect),
        #[cfg(feature = "podman")]
        podman: cfg.drivers.podman_socket.as_ref().and_then(connect),
    }
}

impl Engine {
    fn on_link(&mut self, e: LinkEvent) {
        match e {
            LinkEvent::Connected(hub) => {
                tracing::info!(%hub, "connected to the hub");
                self.connected = true;
                let _ = self.client.try_subscribe(topic::HUB_STATUS, QoS::AtLeastOnce);
                let _ = self.client.try_subscribe(topic::assignments(&self.cfg.node), QoS::AtLeastOnce);
                let _ = self.client.try_subscribe(topic::logs_request(&self.cfg.node), QoS::AtLeastOnce);
                if self.cfg.hub_key.is_some() {
                    let _ = self.client.try_subscribe(topic::all_templates(&self.cfg.node), QoS::AtLeastOnce);
                }
                for lane in self.lanes.names() {
                    let _ = self.client.try_subscribe(topic::routes(lane), QoS::AtLeastOnce);
                }
                if !self.facts.tls_lanes.is_empty() {
                    let _ = self.client.try_subscribe(topic::all_certs(&self.cfg.node), QoS::AtLeastOnce);
                }
                if self.dns.is_some() {
                    // The settings first: they list the names the zone holds. QoS 0, as
                    // the hub publishes them: on a QoS 1 subscription the embedded broker
                    // replays only as many retained messages as its in-flight window (100).
                    for f in [topic::DNS_ZONE, topic::ALL_DNS_SERVICES, topic::ALL_DNS_NODES] {
                        let _ = self.client.try_subscribe(f, QoS::AtMostOnce);
                    }
                }
                self.publish_all();
            }
            LinkEvent::Disconnected(_) => self.connected = false,
            LinkEvent::Hub { online: true, retained: false } => {
                // The hub (re)started: re-publish after a jitter so a fleet does not stampede.
                let jitter = Duration::from_millis(fastrand::u64(0..1500));
                tracing::info!(?jitter, "hub came online; re-publishing");
                self.resync_at = Some(Instant::now() + jitter);
            }
            LinkEvent::Hub { online, .. } => tracing::debug!(online, "hub status"),
            LinkEvent::Closed => self.connected = false,
            LinkEvent::Assignments(bytes) => self.on_assignments(&bytes),
            LinkEvent::LogsRequest(bytes) => self.on_logs_request(&bytes),
            LinkEvent::Routes(lane, bytes) => self.lanes.update(&lane, &bytes),
            LinkEvent::Templates(alloc, bytes) => self.on_templates(&alloc, &bytes),
            LinkEvent::Dns(t, bytes) => {
                if let Some(dns) = &self.dns
                    && let Err(e) = dns.update(&t, &bytes)
                {
                    tracing::warn!(error = %e, "a DNS zone message was refused");
                }
            }
            LinkEvent::Certs(lane, bytes) => {
                let token = self.cfg.credentials.as_ref().map(|(_, t)| t.as_str());
                self.lanes.certs(&self.cfg.node, &lane, &bytes, token);
            }
        }
    }

    fn on_result(&mut self, r: CheckResult) {
        let Some(rt) = self.checks.get_mut(&r.key) else { return };
        if rt.generation != r.generation {
            return; // from a check a reload replaced
        }
        match rt.observe(r.outcome) {
            Change::None => {}
            Change::Status => {
                tracing::info!(check = %rt.state.id, status = %rt.state.status, output = %rt.state.output, "check changed");
                self.put_check(&r.key);
            }
            Change::Output => rt.output_dirty = true,
        }
    }

    fn on_control(&mut self, req: Request) -> Reply {
        match req {
            Request::Reload => {
                let errors = self.reload("control socket", true);
                if errors.is_empty() { Reply::ok() } else { Reply::err(errors.join("\n")) }
            }
            Request::UpdateTtl { check, status, note } => {
                let key = self
                    .checks
                    .iter()
                    .find(|(k, rt)| rt.def.id == check || k.as_str() == check)
                    .map(|(k, _)| k.clone());
                let Some(key) = key else { return Reply::err(format!("no check {check:?} on this agent")) };
                let Some(rt) = self.checks.get_mut(&key) else { return Reply::err("gone") };
                if !matches!(rt.def.probe, Probe::Ttl { .. }) {
                    return Reply::err(format!("check {check:?} is not a TTL check"));
                }
                let mut note = note;
                msg::truncate_utf8(&mut note, msg::MAX_CHECK_OUTPUT);
                if rt.ttl_update(status, note) != Change::None {
                    self.put_check(&key);
                }
                Reply::ok()
            }
        }
    }

    fn tick(&mut self, watch: bool) {
        let now = Instant::now();
        let mut publish = Vec::new();
        let mut reap = Vec::new();
        for (k, rt) in self.checks.iter_mut() {
            if rt.ttl_deadline.is_some_and(|d| d <= now) {
                rt.ttl_deadline = None;
                if rt.set(Status::Critical, "TTL expired".into()) == Change::Status {
                    publish.push(k.clone());
                }
            }
            if rt.output_due(now) {
                publish.push(k.clone());
            }
            if let (Some(after), Some(since), Some(sid)) =
                (rt.def.deregister_critical_after, rt.critical_since, rt.def.service_id.as_ref())
            {
                if now.duration_since(since) >= after {
                    reap.push(sid.clone());
                }
            }
        }
        for k in publish {
            self.put_check(&k);
        }
        for sid in reap {
            self.reap(&sid);
        }
        if self.connected && self.resync_at.is_some_and(|t| t <= now) {
            self.publish_all();
        }
        if watch && self.fingerprint != fingerprint(&self.cfg.services_dir) {
            self.reload("services directory changed", false);
        }
    }

    /// `deregister_critical_service_after` fired: drop the service and its checks.
    fn reap(&mut self, service_id: &str) {
        let Some(key) = self.services.iter().find(|(_, s)| s.reg.id == service_id).map(|(k, _)| k.clone()) else {
            return;
        };
        tracing::warn!(
            service = service_id,
            "critical for too long; deregistering (deregister_critical_service_after)"
        );
        if let Some(def) = self.services.remove(&key) {
            for c in &def.checks {
                self.checks.remove(&c.key);
                self.put_check(&c.key);
            }
            self.reaped.insert(key.clone(), def);
        }
        self.put_service(&key);
        self.put_manifest();
    }
}
