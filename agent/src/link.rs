//! The agent's MQTT link task: polls rumqttc's event loop (and does nothing else, so
//! it never blocks on a publish), reconnects with backoff, and reports what matters
//! to the engine over a bounded channel.

use crate::mqtt::Backoff;
use rabble_shared::topic;
use rumqttc::{Event, EventLoop, Outgoing, Packet};
use tokio::sync::mpsc;

/// What the link tells the engine.
#[derive(Debug)]
pub enum LinkEvent {
    /// A CONNACK arrived: the engine re-publishes everything.
    Connected,
    /// The connection failed or dropped; the link is backing off.
    Disconnected(String),
    /// `rabble/hub/status` changed. `retained` is true when the broker replayed it on
    /// subscribe (the hub did not just come up).
    Hub { online: bool, retained: bool },
    /// Our DISCONNECT went out and the broker closed the connection: the link has stopped.
    Closed,
}

/// Runs until the engine's DISCONNECT goes out or the engine drops the receiver.
pub async fn run(mut eventloop: EventLoop, tx: mpsc::Sender<LinkEvent>) {
    let mut backoff = Backoff::default();
    let mut up = false;
    let mut closing = false;
    loop {
        let ev = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                up = true;
                LinkEvent::Connected
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == topic::HUB_STATUS => {
                LinkEvent::Hub { online: &p.payload[..] == topic::ONLINE.as_bytes(), retained: p.retain }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                // Queued, not yet flushed: keep polling until the broker hangs up.
                closing = true;
                continue;
            }
            Ok(_) => continue,
            Err(_) if closing => {
                let _ = tx.send(LinkEvent::Closed).await;
                return;
            }
            Err(e) => {
                let delay = backoff.next_delay();
                if up {
                    tracing::warn!(error = %e, "lost the hub; reconnecting");
                } else {
                    tracing::debug!(error = %e, ?delay, "cannot reach the hub; retrying");
                }
                up = false;
                if tx.send(LinkEvent::Disconnected(e.to_string())).await.is_err() {
                    return;
                }
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        if tx.send(ev).await.is_err() {
            return;
        }
    }
}
