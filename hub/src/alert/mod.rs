//! The alert task (leader only): every second, and at once when the catalog changes, it
//! asks `rabble_core::alert` what is wrong (the built-in rules and `[[alert.rule]]`s over
//! `/metrics`), how long for, and what is due to whom, then sends each receiver its
//! request (`send`: retries with backoff, paced per receiver, at most 8 at once; a
//! receiver failing again and again is an alert of its own). An Alertmanager receiver
//! also hears of every firing alert each minute, as Prometheus resends. `config` reads
//! `[alert]`.
//!
//! **Invariant:** what fires and what was sent is written to the catalog (through the
//! writer) whenever it changes course, and read back when this hub starts leading: a
//! restarted hub, or a new leader, resends nothing and loses nothing. Silences are read
//! from the catalog each step.

pub mod config;
pub mod email;
pub mod mqtt;
mod send;
pub mod watchdog;

use crate::HubError;
use crate::WriterTx;
use crate::catalog::Catalog;
use crate::catalog::writer::LiveMap;
use crate::catalog::writer::{Done, Input};
use config::AlertConfig;
use rabble_core::alert::book::{AlertState, AlertUpdate};
use rabble_core::alert::group::muted;
use rabble_core::alert::rules::{Inputs, conditions, receiver_failing};
use rabble_core::alert::track::Change;
use rabble_core::alert::{Alert, expr, payload};
use rabble_core::catalog::state::Update;
use rabble_shared::NodeId;
use rabble_shared::msg::Heartbeat;
use rabble_shared::support::clock::now_ms;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Deliveries failed in a row (each after its retries, 15 s of them for a passing fault;
/// at once for a refusal that will not pass, a wrong password) that make a receiver an alert.
const FAILING_AFTER: u32 = 1;

pub struct Alerter {
    pub cfg: AlertConfig,
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub live: LiveMap,
    pub sched: watch::Receiver<Arc<crate::scheduler::task::SchedStatus>>,
    /// Where the alert state and forgotten silences go.
    pub writer: WriterTx,
    /// For `[[alert.rule]]`s: what `/metrics` says.
    pub metrics: Option<MetricsInputs>,
    /// ACME certificates (expiring, failing).
    pub certs: watch::Receiver<crate::acme::Status>,
    /// The hub cluster, when this hub leads one.
    pub cluster: Option<crate::cluster::Cluster>,
}

/// What rendering `/metrics` needs beside the catalog and heartbeats.
pub struct MetricsInputs {
    pub stats: Arc<crate::stats::Stats>,
    pub dns: Arc<crate::dns::DnsServer>,
    pub routes: watch::Receiver<crate::routes::Tables>,
    pub proxy: crate::ingest::ProxyMap,
}

impl Alerter {
    fn heartbeats(&self) -> HashMap<NodeId, Heartbeat> {
        crate::catalog::writer::heartbeats(&self.live)
    }

    fn samples(
        &self,
        m: &MetricsInputs,
        c: &Catalog,
        heartbeats: &HashMap<NodeId, Heartbeat>,
        now: u64,
    ) -> Vec<expr::Sample> {
        let lanes = m.routes.borrow().clone();
        let ingest = m.stats.snapshot();
        let proxy = m.proxy.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let text = crate::metrics::render(&crate::metrics::Sources {
            catalog: c,
            heartbeats,
            ingest: &ingest,
            dns: &m.dns.stats,
            lanes: &lanes,
            proxy: &proxy,
            now_ms: now,
        });
        expr::samples(&text)
    }

    pub async fn run(mut self, stop: CancellationToken) -> Result<(), HubError> {
        // Where the last leader (or this hub before its restart) left off.
        let kept = self.snapshot.borrow().alerts.state.clone();
        let AlertState { mut tracker, mut dispatcher } = (*kept).clone();
        let mut written = kept.course();
        if !tracker.watched.is_empty() {
            tracing::info!(watched = tracker.watched.len(), firing = tracker.firing().len(), "alert state restored");
        }
        let mut forgetting = Vec::new();
        let outbox = send::Outbox::new(email::mailers(&self.cfg.smtp));
        let mut am_sent_ms = now_ms();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // When a group's wait or interval ends: looked at then, not on the next tick.
        let mut due: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tick.tick() => {}
                r = self.snapshot.changed() => if r.is_err() { return Ok(()) },
                _ = async { match due { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => {}
            }
            let now = now_ms();
            let catalog = self.snapshot.borrow_and_update().clone();
            let heartbeats = self.heartbeats();
            let (unplaced, reverted): (BTreeMap<(String, String), String>, _) = {
                let s = self.sched.borrow();
                (s.unplaced.iter().map(|(k, u)| (k.clone(), u.to_string())).collect(), s.reverted.clone())
            };
            let certs = self.certs.borrow().certs.clone();
            let hubs = self.cluster.as_ref().map(crate::cluster::status::of);
            let inputs = Inputs {
                catalog: &catalog,
                heartbeats: &heartbeats,
                unplaced: &unplaced,
                reverted: &reverted,
                certs: &certs,
                hubs: hubs.as_ref(),
                now_ms: now,
            };
            let mut holding = conditions(&self.cfg.thresholds, &inputs);
            if let Some(m) = self.metrics.as_ref().filter(|_| !self.cfg.rules.is_empty()) {
                let samples = self.samples(m, &catalog, &heartbeats, now);
                for r in &self.cfg.rules {
                    holding.extend(r.conditions(&samples));
                }
            }
            holding.extend(outbox.failing(FAILING_AFTER).iter().map(|(name, e)| receiver_failing(name, e)));
            for change in tracker.step(holding, now) {
                match change {
                    Change::Fired(a) => tracing::warn!(alert = %a.key(), "alert firing: {}", summary(&a)),
                    Change::Resolved(a) => tracing::info!(alert = %a.key(), "alert resolved: {}", summary(&a)),
                }
            }
            let silences = catalog.alerts.live_silences(now);
            let firing = tracker.firing();
            let quiet: BTreeSet<String> =
                firing.iter().filter(|a| muted(a, &firing, &silences, now)).map(Alert::key).collect();
            for n in dispatcher.step(&self.cfg.route, &firing, &quiet, now) {
                for (name, kind) in &self.cfg.receivers {
                    let req = payload::request(name, kind, &n, &self.cfg.ui_url, now);
                    outbox.post(name, req, payload::title(&n));
                }
            }
            due = dispatcher
                .next_due(&self.cfg.route)
                .filter(|at| *at > now)
                .map(|at| tokio::time::Instant::now() + Duration::from_millis(at - now));
            if now >= am_sent_ms + payload::AM_RESEND_MS {
                am_sent_ms = now;
                let loud: Vec<Alert> = firing.iter().filter(|a| !quiet.contains(&a.key())).cloned().collect();
                for (name, kind) in &self.cfg.receivers {
                    if let payload::Kind::Alertmanager { url } = kind
                        && !loud.is_empty()
                    {
                        let req = payload::am_request(url, &loud, &self.cfg.ui_url, now);
                        outbox.post(name, req, format!("{} firing alert(s), again", loud.len()));
                    }
                }
            }
            let state = AlertState { tracker: tracker.clone(), dispatcher: dispatcher.clone() };
            let course = state.course();
            if course != written {
                written = course;
                self.write(AlertUpdate::State(Box::new(state))).await;
            }
            let stale = catalog.alerts.stale_silences(now);
            if !stale.is_empty() && stale != forgetting {
                forgetting = stale.clone();
                self.write(AlertUpdate::Forget(stale)).await;
            }
        }
    }

    /// Hands the writer an alert update (not waited for: the next step reads it back).
    async fn write(&self, u: AlertUpdate) {
        let input = Input { source: "hub (alerts)".into(), update: Some(Update::Alert(u)), done: Done::Nothing };
        // A closed writer means the hub is stopping; the stop token ends this task.
        let _ = self.writer.send(input).await;
    }
}

fn summary(a: &Alert) -> &str {
    a.annotations.get("summary").map_or_else(|| a.name(), String::as_str)
}
