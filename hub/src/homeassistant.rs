//! Node summaries and Home Assistant. The summaries task (leader only) keeps each node's
//! `rabble/hub/nodes/<node>` (`rabble_core::homeassistant::summary`) retained, looking
//! again at each catalog change and every few seconds (heartbeats are not in the
//! catalog), at most once a second. With `[homeassistant] enabled`, it also keeps each
//! node's device discovery retained on `<prefix>/device/rabble_<node>/config`, sends them
//! all again when Home Assistant says `online` on `<prefix>/status` (ingest routes that
//! here), removes a component that went, and a forgotten node's device (an empty
//! retained payload: [`crate::retained`] clears what is no longer wanted).

use crate::catalog::Catalog;
use crate::catalog::writer::LiveMap;
use crate::retained::{self, Payload, Retained, Want};
use rabble_core::homeassistant::{Settings, components, device_topic, discovery, platforms, running, summary};
use rabble_shared::msg::Heartbeat;
use rabble_shared::{NodeId, topic};
use rumqttc::AsyncClient;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Heartbeats move the summaries without a catalog change: looked at this often.
const TICK: Duration = Duration::from_secs(5);
/// At most one pass a second, however often the catalog changes.
const MIN_GAP: Duration = Duration::from_secs(1);
const MAX_SUMMARY: usize = 64 * 1024;

/// `[homeassistant]` in hub.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeAssistantFile {
    #[serde(default)]
    pub enabled: bool,
    pub discovery_prefix: Option<String>,
    /// Only these nodes become devices (default: every node).
    #[serde(default)]
    pub nodes: Vec<String>,
}

/// `[homeassistant]`, checked: `None` when off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeAssistant {
    pub prefix: String,
    pub nodes: Vec<String>,
}

/// The discovery prefix in use: hub.toml's, or Home Assistant's default when it is off
/// (the summaries task and the broker's observer ACL agree on it).
pub fn prefix(ha: Option<&HomeAssistant>) -> &str {
    ha.map_or(topic::policy::HA_PREFIX, |h| h.prefix.as_str())
}

impl HomeAssistantFile {
    pub fn resolve(self) -> Result<Option<HomeAssistant>, rabble_shared::support::config::ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let prefix = self.discovery_prefix.unwrap_or_else(|| topic::policy::HA_PREFIX.into());
        if prefix.is_empty() || prefix.contains(['+', '#', '\0']) || prefix.starts_with("rabble") {
            return Err(rabble_shared::support::config::ConfigError::Field {
                field: "homeassistant.discovery_prefix",
                message: format!("{prefix:?} cannot be a discovery prefix (a topic level, not under rabble/)"),
            });
        }
        Ok(Some(HomeAssistant { prefix, nodes: self.nodes }))
    }
}

pub struct Summaries {
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub live: LiveMap,
    pub client: AsyncClient,
    pub connects: watch::Receiver<u64>,
    pub ha: Option<HomeAssistant>,
    /// Bumped when Home Assistant says `online`.
    pub ha_online: watch::Receiver<u64>,
    pub ui_url: String,
}

impl Summaries {
    fn heartbeats(&self) -> HashMap<NodeId, Heartbeat> {
        crate::catalog::writer::heartbeats(&self.live)
    }

    pub async fn run(mut self, stop: CancellationToken) -> Result<(), &'static str> {
        let mut sums = Retained::new(self.client.clone(), MAX_SUMMARY);
        let prefix = prefix(self.ha.as_ref()).to_owned();
        let mut devices = Retained::foreign(self.client.clone(), MAX_SUMMARY, &prefix);
        let settings = self.ha.as_ref().map(|ha| Settings {
            prefix: ha.prefix.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            ui_url: self.ui_url.clone(),
        });
        // Each device's components as last published (component id → platform).
        let mut published: BTreeMap<NodeId, BTreeMap<String, String>> = BTreeMap::new();
        let mut tick = tokio::time::interval(TICK);
        // Without `[homeassistant]` nobody holds the sender: that branch is off.
        let mut ha_listening = self.ha.is_some();
        loop {
            let catalog = self.snapshot.borrow_and_update().clone();
            let heartbeats = self.heartbeats();
            let busy = running(&catalog);
            let mut now: BTreeMap<NodeId, rabble_shared::summary::NodeSummary> = BTreeMap::new();
            for (id, node) in &catalog.nodes {
                now.insert(id.clone(), summary(node, heartbeats.get(id), busy.get(id).copied().unwrap_or(0)));
            }
            sums.sync(now.iter().map(|(id, s)| {
                let json = serde_json::to_vec(s).unwrap_or_default();
                (
                    topic::node_summary(id),
                    Want::Publish { fingerprint: retained::fingerprint(&json), make: move || Payload::Open(json) },
                )
            }))
            .await;
            if let (Some(ha), Some(set)) = (&self.ha, &settings) {
                let mut want = Vec::new();
                for (id, s) in
                    now.iter().filter(|(id, _)| ha.nodes.is_empty() || ha.nodes.iter().any(|n| n == id.as_str()))
                {
                    let current: BTreeMap<String, String> = components(id, s)
                        .into_iter()
                        .filter_map(|(k, v)| Some((k, v["p"].as_str()?.to_owned())))
                        .collect();
                    let before = published.get(id).cloned().unwrap_or_default();
                    let gone: BTreeMap<String, String> =
                        before.into_iter().filter(|(k, _)| !current.contains_key(k)).collect();
                    let payload = discovery(id, &catalog.nodes[id], s, &gone, set);
                    published.insert(id.clone(), platforms(&payload));
                    let json = serde_json::to_vec(&payload).unwrap_or_default();
                    want.push((device_topic(&ha.prefix, id), json));
                }
                published.retain(|id, _| now.contains_key(id));
                devices
                    .sync(want.into_iter().map(|(t, json)| {
                        (
                            t,
                            Want::Publish {
                                fingerprint: retained::fingerprint(&json),
                                make: move || Payload::Open(json),
                            },
                        )
                    }))
                    .await;
            }
            let retry = sums.retry_at().into_iter().chain(devices.retry_at()).min();
            tokio::time::sleep(MIN_GAP).await;
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = self.snapshot.changed() => if r.is_err() { return Ok(()) },
                _ = tick.tick() => {}
                r = self.connects.changed() => {
                    if r.is_err() {
                        return Ok(());
                    }
                    sums.reconnected();
                    devices.reconnected();
                }
                r = self.ha_online.changed(), if ha_listening => match r {
                    Ok(()) => {
                        tracing::info!("Home Assistant is online: sending its devices again");
                        devices.reconnected();
                    }
                    Err(_) => ha_listening = false,
                },
                _ = retained::retry(retry) => {}
            }
        }
    }
}
