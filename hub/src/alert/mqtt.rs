//! The `mqtt` receiver: every alert firing and sent (not silenced, not inhibited) kept
//! retained on `rabble/alerts/<fingerprint>` as Alertmanager's v2 shape, cleared (an
//! empty retained message) when it resolves or is muted — so `mosquitto_sub -t
//! 'rabble/alerts/#'` or a Home Assistant automation sees what is wrong now. It reads the
//! catalog's alert state (what the alert task wrote) and keeps its topics through
//! [`crate::retained`].

use crate::catalog::Catalog;
use crate::retained::{self, Payload, Retained, Want};
use rabble_core::alert::book::alert_views;
use rabble_shared::alerts::GettableAlert;
use rabble_shared::support::clock::now_ms;
use rabble_shared::topic;
use rumqttc::AsyncClient;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Silences end without the catalog changing: looked at again this often.
const TICK: Duration = Duration::from_secs(1);
/// An alert's JSON is small; one over this (a runaway summary) clears its topic instead.
const MAX_ALERT: usize = 64 * 1024;

/// The topics: each alert sent now, as its JSON.
pub fn mirrored(catalog: &Catalog, receivers: &[String], ui_url: &str, now_ms: u64) -> Vec<(String, Vec<u8>)> {
    alert_views(&catalog.alerts, receivers, ui_url, now_ms)
        .into_iter()
        .filter(|a: &GettableAlert| a.status.state == "active")
        .map(|a| (topic::alert(&a.fingerprint), serde_json::to_vec(&a).unwrap_or_default()))
        .collect()
}

pub struct AlertMirror {
    pub receivers: Vec<String>,
    pub ui_url: String,
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub client: AsyncClient,
    pub connects: watch::Receiver<u64>,
}

impl AlertMirror {
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), &'static str> {
        let mut out = Retained::new(self.client.clone(), MAX_ALERT);
        let mut tick = tokio::time::interval(TICK);
        loop {
            let catalog = self.snapshot.borrow_and_update().clone();
            let want = mirrored(&catalog, &self.receivers, &self.ui_url, now_ms()).into_iter().map(|(t, json)| {
                // Stable while the alert is: its times are its start, its words the last evaluation.
                let fingerprint = retained::fingerprint(&json);
                (t, Want::Publish { fingerprint, make: move || Payload::Open(json) })
            });
            out.sync(want).await;
            let retry = out.retry_at();
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = self.snapshot.changed() => if r.is_err() { return Ok(()) },
                _ = tick.tick() => {}
                r = self.connects.changed() => {
                    if r.is_err() {
                        return Ok(());
                    }
                    out.reconnected();
                }
                _ = retained::retry(retry) => {}
            }
        }
    }
}
