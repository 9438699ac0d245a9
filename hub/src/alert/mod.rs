//! The alert task (leader only): every second, and at once when the catalog changes, it
//! asks `rabble_core::alert` what is wrong (the built-in rules and `[[alert.rule]]`s over
//! `/metrics`), how long for, and what is due to whom, then sends each receiver its
//! request (`send`: retries with backoff, at most 8 at once). `config` reads `[alert]`.

pub mod config;
mod send;

use crate::HubError;
use crate::catalog::Catalog;
use crate::catalog::writer::LiveMap;
use config::AlertConfig;
use rabble_core::alert::group::{Dispatcher, Silence, muted};
use rabble_core::alert::rules::{Inputs, conditions};
use rabble_core::alert::track::{Change, Tracker};
use rabble_core::alert::{Alert, expr, payload};
use rabble_shared::NodeId;
use rabble_shared::msg::Heartbeat;
use rabble_shared::support::clock::now_ms;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

/// The most notifications in flight at once.
const IN_FLIGHT: usize = 8;

pub struct Alerter {
    pub cfg: AlertConfig,
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub live: LiveMap,
    pub sched: watch::Receiver<Arc<crate::scheduler::task::SchedStatus>>,
    /// For `[[alert.rule]]`s: what `/metrics` says.
    pub metrics: Option<MetricsInputs>,
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
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.iter().filter_map(|(id, l)| Some((id.clone(), l.heartbeat.clone()?))).collect()
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
        let (mut tracker, mut dispatcher) = (Tracker::default(), Dispatcher::default());
        let silences: Vec<Silence> = Vec::new();
        let sender = send::Sender::new();
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tick.tick() => {}
                r = self.snapshot.changed() => if r.is_err() { return Ok(()) },
            }
            let now = now_ms();
            let catalog = self.snapshot.borrow_and_update().clone();
            let heartbeats = self.heartbeats();
            let unplaced: BTreeMap<(String, String), String> =
                self.sched.borrow().unplaced.iter().map(|(k, u)| (k.clone(), u.to_string())).collect();
            let inputs = Inputs { catalog: &catalog, heartbeats: &heartbeats, unplaced: &unplaced, now_ms: now };
            let mut holding = conditions(&self.cfg.thresholds, &inputs);
            if let Some(m) = self.metrics.as_ref().filter(|_| !self.cfg.rules.is_empty()) {
                let samples = self.samples(m, &catalog, &heartbeats, now);
                for r in &self.cfg.rules {
                    holding.extend(r.conditions(&samples));
                }
            }
            for change in tracker.step(holding, now) {
                match change {
                    Change::Fired(a) => tracing::warn!(alert = %a.key(), "alert firing: {}", summary(&a)),
                    Change::Resolved(a) => tracing::info!(alert = %a.key(), "alert resolved: {}", summary(&a)),
                }
            }
            let firing = tracker.firing();
            let quiet: BTreeSet<String> =
                firing.iter().filter(|a| muted(a, &firing, &silences, now)).map(Alert::key).collect();
            for n in dispatcher.step(&self.cfg.route, &firing, &quiet, now) {
                for (name, kind) in &self.cfg.receivers {
                    let req = payload::request(name, kind, &n, &self.cfg.ui_url);
                    let (sender, name, title) = (sender.clone(), name.clone(), payload::title(&n));
                    let Ok(slot) = slots.clone().acquire_owned().await else { return Ok(()) };
                    tokio::spawn(async move {
                        match sender.send(&req).await {
                            Ok(tries) => tracing::info!(receiver = %name, tries, "sent {title}"),
                            Err(e) => tracing::warn!(receiver = %name, "could not send {title}: {e}"),
                        }
                        drop(slot);
                    });
                }
            }
        }
    }
}

fn summary(a: &Alert) -> &str {
    a.annotations.get("summary").map_or_else(|| a.name(), String::as_str)
}
