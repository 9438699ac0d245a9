//! The agent's engine: one task, one `select!` loop over a closed set of events. It
//! owns the node's state (facts, services, checks) and publishes it; startup, file
//! changes, SIGHUP and `rabble-agent reload` all take the same `reload` path.

mod checks;

use crate::checks::CheckResult;
use crate::config::Config;
use crate::control::{self, Command};
use crate::driver::{self, Drivers};
use crate::facts::Sampler;
use crate::link::{self, LinkEvent};
use crate::services::{CheckDef, Definitions, Loader, Probe, ServiceDef};
use checks::{Change, CheckRt};
use rabble_shared::control::{Reply, Request};
use rabble_shared::msg::{self, Availability, Manifest, NodeFacts};
use rabble_shared::{Status, TopicId, topic};
use rumqttc::{AsyncClient, QoS};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
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
/// Facts (addresses, disks, ...) are re-read this often and published if they changed.
const FACTS_EVERY_TICKS: u32 = 120;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("control socket {path}: {error}")]
    Socket { path: PathBuf, error: std::io::Error },
    #[error("TLS to the hub: {0}")]
    Tls(String),
}

/// Everything that can happen to the engine.
#[derive(Debug)]
enum Event {
    Link(LinkEvent),
    Check(CheckResult),
    Control(Command),
    Reload(&'static str),
    Drivers(Drivers),
    Heartbeat,
    Tick,
    Shutdown,
}

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

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
}

/// Runs the agent until `shutdown` resolves, then deregisters and says `offline`.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    let node = cfg.node.clone();
    let opts = link::options(&cfg, MQTT_QUEUE)?;
    let (client, eventloop) = AsyncClient::new(opts, MQTT_QUEUE);
    let (link_tx, mut link_rx) = mpsc::channel(LINK_QUEUE);
    let link = tokio::spawn(link::run(eventloop, link_tx));
    let (check_tx, mut check_rx) = mpsc::channel(CHECK_QUEUE);
    let (control_tx, mut control_rx) = mpsc::channel(CONTROL_QUEUE);
    let control_task = match &cfg.socket {
        Some(path) => {
            let l = control::bind(path).map_err(|source| AgentError::Socket { path: path.clone(), error: source })?;
            Some(tokio::spawn(control::serve(l, control_tx)))
        }
        None => None,
    };
    let (driver_tx, mut driver_rx) = mpsc::channel(1);
    let driver_task = tokio::spawn(driver::run(cfg.drivers.clone(), driver_tx));
    let mut sampler = Sampler::new();
    let facts = sampler.facts(&cfg.identity);
    tracing::info!(node = %node, hub = %cfg.hub, advertise = %facts.advertise, "agent starting");
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
        cfg,
    };
    engine.reload("startup", true);

    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
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
            Event::Heartbeat => engine.heartbeat(),
            Event::Tick => {
                ticks = ticks.wrapping_add(1);
                engine.tick(ticks % WATCH_EVERY_TICKS == 0);
                if ticks % FACTS_EVERY_TICKS == 0 {
                    engine.refresh_facts();
                }
            }
        }
    }

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
    if let Some(t) = control_task {
        t.abort();
    }
    if let Some(p) = &engine.cfg.socket {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!(node = %node, "agent stopped");
    Ok(())
}

impl Engine {
    fn put(&mut self, topic: String, qos: QoS, retain: bool, payload: Vec<u8>) {
        if !self.connected {
            return; // everything is re-published on connect
        }
        if let Err(e) = self.client.try_publish(topic, qos, retain, payload) {
            tracing::warn!(error = %e, "publish queue full; will re-publish everything");
            self.resync_at.get_or_insert_with(Instant::now);
        }
    }

    fn put_service(&mut self, key: &TopicId) {
        let payload = self.services.get(key).map(|s| msg::encode(&s.reg)).unwrap_or_default();
        self.put(topic::service(&self.cfg.node, key), QoS::AtLeastOnce, true, payload);
    }

    fn put_check(&mut self, key: &TopicId) {
        let payload = match self.checks.get_mut(key) {
            Some(rt) => {
                rt.last_published = Some(Instant::now());
                rt.output_dirty = false;
                msg::encode(&rt.state)
            }
            None => Vec::new(),
        };
        self.put(topic::check(&self.cfg.node, key), QoS::AtLeastOnce, true, payload);
    }

    fn put_manifest(&mut self) {
        let m = Manifest {
            services: self.services.keys().cloned().collect(),
            checks: self.checks.keys().cloned().collect(),
        };
        self.put(topic::node_manifest(&self.cfg.node), QoS::AtLeastOnce, true, msg::encode(&m));
    }

    fn put_status(&mut self, a: Availability) {
        self.put(topic::node_status(&self.cfg.node), QoS::AtLeastOnce, true, a.as_str().as_bytes().to_vec());
    }

    /// Everything, in an order that lets a reader build the node from scratch.
    fn publish_all(&mut self) {
        self.resync_at = None;
        self.put_status(Availability::Online);
        self.put(topic::node_facts(&self.cfg.node), QoS::AtLeastOnce, true, msg::encode(&self.facts));
        let services: Vec<TopicId> = self.services.keys().cloned().collect();
        for k in &services {
            self.put_service(k);
        }
        let checks: Vec<TopicId> = self.checks.keys().cloned().collect();
        for k in &checks {
            self.put_check(k);
        }
        self.put_manifest();
        let n = (services.len(), checks.len());
        tracing::info!(services = n.0, checks = n.1, "published node state");
    }

    /// Clean shutdown: deregister everything, say offline, disconnect.
    fn goodbye(&mut self) {
        let services: Vec<TopicId> = std::mem::take(&mut self.services).into_keys().collect();
        for k in &services {
            self.put_service(k);
        }
        let checks: Vec<TopicId> = std::mem::take(&mut self.checks).into_keys().collect();
        for k in &checks {
            self.put_check(k); // the check is gone: an empty payload removes it
        }
        self.put_manifest();
        self.put_status(Availability::Offline);
        let _ = self.client.try_disconnect();
    }

    fn on_link(&mut self, e: LinkEvent) {
        match e {
            LinkEvent::Connected => {
                tracing::info!(hub = %self.cfg.hub, "connected to the hub");
                self.connected = true;
                let _ = self.client.try_subscribe(topic::HUB_STATUS, QoS::AtLeastOnce);
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

    fn heartbeat(&mut self) {
        if self.connected {
            let hb = self.sampler.heartbeat();
            self.put(topic::node_heartbeat(&self.cfg.node), QoS::AtMostOnce, false, msg::encode(&hb));
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

    /// The driver task saw a change (Docker came up, went away, was upgraded).
    fn set_drivers(&mut self, drivers: Drivers) {
        tracing::info!(drivers = ?drivers, "task drivers changed");
        self.facts.drivers = drivers;
        self.put(topic::node_facts(&self.cfg.node), QoS::AtLeastOnce, true, msg::encode(&self.facts));
    }

    /// Re-reads the machine's facts (an address from DHCP may have moved) and publishes
    /// them if they changed.
    fn refresh_facts(&mut self) {
        let mut facts = self.sampler.facts(&self.cfg.identity);
        facts.drivers = self.facts.drivers.clone();
        if facts != self.facts {
            tracing::info!(advertise = %facts.advertise, "node facts changed");
            self.facts = facts;
            self.put(topic::node_facts(&self.cfg.node), QoS::AtLeastOnce, true, msg::encode(&self.facts));
        }
    }

    /// Reads the services directory and applies it: the one path for startup and reload.
    /// Returns the problems found (already logged).
    fn reload(&mut self, why: &str, explicit: bool) -> Vec<String> {
        self.fingerprint = fingerprint(&self.cfg.services_dir);
        let (defs, errors) = self.loader.load(&self.cfg.services_dir);
        for e in &errors {
            tracing::error!("{e}");
        }
        if explicit {
            self.reaped.clear();
        }
        self.refresh_facts();
        self.apply(defs);
        tracing::info!(
            why,
            services = self.services.len(),
            checks = self.checks.len(),
            errors = errors.len(),
            "loaded services"
        );
        errors.iter().map(|e| e.to_string()).collect()
    }

    fn apply(&mut self, defs: Definitions) {
        let node_checks = defs.node_checks;
        let mut next: BTreeMap<TopicId, ServiceDef> = BTreeMap::new();
        for s in defs.services {
            match self.reaped.get(&s.key) {
                Some(old) if *old == s => continue,
                Some(_) => {
                    self.reaped.remove(&s.key);
                }
                None => {}
            }
            next.insert(s.key.clone(), s);
        }
        let old = std::mem::replace(&mut self.services, next);
        let mut dirty_services: Vec<TopicId> =
            old.keys().filter(|k| !self.services.contains_key(*k)).cloned().collect();
        dirty_services.extend(self.services.iter().filter(|(k, s)| old.get(*k) != Some(s)).map(|(k, _)| k.clone()));

        let wanted: Vec<CheckDef> =
            self.services.values().flat_map(|s| s.checks.iter().cloned()).chain(node_checks).collect();
        let mut dirty_checks: Vec<TopicId> = Vec::new();
        let mut next_checks = BTreeMap::new();
        for def in wanted {
            let key = def.key.clone();
            match self.checks.remove(&key) {
                Some(rt) if rt.def == def => {
                    next_checks.insert(key, rt);
                }
                _ => {
                    self.generation += 1;
                    let mut rt = CheckRt::new(def, self.generation);
                    rt.task = crate::checks::spawn(
                        &rt.def,
                        self.generation,
                        self.cfg.enable_script_checks,
                        self.check_tx.clone(),
                    );
                    if matches!(rt.def.probe, Probe::Script { .. }) && !self.cfg.enable_script_checks {
                        tracing::error!(check = %rt.def.id, "script checks are disabled on this agent; the check stays critical (--enable-script-checks)");
                    }
                    dirty_checks.push(key.clone());
                    next_checks.insert(key, rt);
                }
            }
        }
        // Whatever is left was removed.
        dirty_checks.extend(std::mem::replace(&mut self.checks, next_checks).into_keys());
        for k in &dirty_services {
            self.put_service(k);
        }
        for k in &dirty_checks {
            self.put_check(k);
        }
        if !dirty_services.is_empty() || !dirty_checks.is_empty() {
            self.put_manifest();
        }
    }
}

fn fingerprint(dir: &std::path::Path) -> Fingerprint {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Fingerprint = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.path(), m.len(), m.modified().ok()))
        })
        .collect();
    v.sort();
    v
}
