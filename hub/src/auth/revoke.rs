//! Makes a revocation take effect at once, not at the node's next reconnect: watches
//! the credentials file and, for each newly revoked node, takes over its MQTT session
//! (rumqttd drops the older of two connections with one client id), says `offline` for
//! it (retained) and leaves. The agent's reconnects are then refused.
//!
//! This covers agents (client id `rabble-agent-<node>`); another client using the same
//! node's token under another id keeps its session until it drops.

use super::{AGENT_CLIENT_PREFIX, Authenticator};
use rabble_shared::{NodeId, topic};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, QoS};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const POLL: Duration = Duration::from_secs(1);

/// Runs until `stop` is cancelled. `broker` is where the hub reaches its embedded broker.
pub async fn run(auth: Arc<Authenticator>, broker: SocketAddr, stop: tokio_util::sync::CancellationToken) {
    let mut known = auth.revoked();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        if auth.refresh().is_err() {
            continue; // the next CONNECT logs it
        }
        let current = auth.revoked();
        for node in current.difference(&known) {
            match kick(&auth, broker, node).await {
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
async fn kick(auth: &Authenticator, broker: SocketAddr, node: &NodeId) -> Result<(), String> {
    let mut opts = MqttOptions::new(format!("{AGENT_CLIENT_PREFIX}{node}"), broker.ip().to_string(), broker.port());
    let (user, pass) = auth.hub_login();
    opts.set_credentials(user, pass).set_clean_session(true);
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
