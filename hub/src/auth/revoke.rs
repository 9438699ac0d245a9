//! Makes a revocation take effect at once, not at the node's next reconnect: watches
//! the credentials file and, for each newly revoked node, takes over its MQTT session
//! (rumqttd drops the older of two connections with one client id), says `offline` for
//! it (retained) and leaves. The agent's reconnects are then refused.
//!
//! This covers agents (client id `rabble-agent-<node>`); another client using the same
//! node's token under another id keeps its session until it drops.

use super::Credentials;
use rabble_shared::{NodeId, topic};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, QoS};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

const POLL: Duration = Duration::from_secs(1);

/// Where to reach the embedded broker as the hub.
#[derive(Debug, Clone)]
pub struct Kicker {
    pub host: String,
    pub port: u16,
    pub login: (String, String),
}

fn revoked(c: &Credentials) -> BTreeSet<NodeId> {
    c.nodes.iter().filter(|(_, n)| n.revoked.is_some()).map(|(id, _)| id.clone()).collect()
}

/// Runs until the task is aborted.
pub async fn run(path: PathBuf, kicker: Kicker) {
    let mut last = crate::stamp::of(&path);
    let mut known = Credentials::load(&path).map(|c| revoked(&c)).unwrap_or_default();
    loop {
        tokio::time::sleep(POLL).await;
        let now = crate::stamp::of(&path);
        if now == last {
            continue;
        }
        last = now;
        let Ok(creds) = Credentials::load(&path) else { continue }; // the authenticator logs it
        let current = revoked(&creds);
        for node in current.difference(&known) {
            match kick(&kicker, node).await {
                Ok(()) => tracing::warn!(node = %node, "credentials revoked: closed the node's MQTT session"),
                Err(e) => {
                    tracing::error!(node = %node, error = %e, "credentials revoked, but closing its session failed")
                }
            }
        }
        known = current;
    }
}

/// Takes over `rabble-agent-<node>`'s session, publishes its `offline`, disconnects.
async fn kick(k: &Kicker, node: &NodeId) -> Result<(), String> {
    let mut opts = MqttOptions::new(format!("{}{node}", super::AGENT_CLIENT_PREFIX), k.host.clone(), k.port);
    opts.set_credentials(k.login.0.clone(), k.login.1.clone()).set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(opts, 4);
    client.try_publish(topic::node_status(node), QoS::AtLeastOnce, true, topic::OFFLINE).map_err(|e| e.to_string())?;
    let work = async {
        let mut closing = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                    client.try_disconnect().map_err(|e| e.to_string())?;
                }
                // Queued, not yet flushed: poll on until the broker hangs up.
                Ok(Event::Outgoing(Outgoing::Disconnect)) => closing = true,
                Ok(_) => {}
                Err(_) if closing => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .map_err(|_| "no answer from the broker in 5s".to_owned())?
}
