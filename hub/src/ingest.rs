//! The hub's MQTT client task: subscribes to `rabble/node/#`, validates every message into
//! a catalog [`Update`], and hands it to the writer with the publish to acknowledge
//! once it is durable ([`MqttAcker`]). Bad input is counted and logged, acknowledged
//! (in order, through the writer, so the broker never stalls) and dropped: it never
//! reaches the catalog.

use crate::catalog::writer::{Acker, Done, Input};
use crate::catalog::{AllocUpdate, NodeUpdate, Update};
use crate::stats::Stats;
use rabble_shared::TopicId;
use rabble_shared::assign::AllocState;
use rabble_shared::msg::{
    self, Availability, CheckState, DecodeError, Heartbeat, Manifest, NodeFacts, ServiceRegistration,
};
use rabble_shared::support::mqtt::Backoff;
use rabble_shared::topic::{self, Topic};
use rumqttc::{AsyncClient, Event, EventLoop, Packet, Publish, QoS};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The writer's input from MQTT: the update and the QoS 1 publish to acknowledge.
pub type Ingested = Input<Publish>;

/// Acknowledges QoS 1 publishes on the hub's MQTT connection, once they are durable.
#[derive(Debug, Clone)]
pub struct MqttAcker(pub AsyncClient);

impl Acker for MqttAcker {
    type Token = Publish;
    async fn ack(&self, p: Publish) {
        if let Err(e) = self.0.ack(&p).await {
            tracing::warn!(error = %e, "could not acknowledge");
        }
    }
}

/// Why a message was refused; the label is what `/api/v1/health` counts.
#[derive(Debug, thiserror::Error)]
pub enum Reject {
    #[error("{0}")]
    Topic(#[from] topic::TopicError),
    #[error("{0}")]
    Payload(#[from] DecodeError),
    #[error("payload id {id:?} maps to topic id {mapped:?}, not {topic:?}")]
    IdMismatch { id: String, mapped: String, topic: String },
}

impl Reject {
    pub fn label(&self) -> &'static str {
        match self {
            Reject::Topic(_) => "bad-topic",
            Reject::Payload(DecodeError::TooLarge { .. }) => "too-large",
            Reject::Payload(DecodeError::UnknownVersion { .. } | DecodeError::NoVersion) => "bad-version",
            Reject::Payload(_) => "bad-payload",
            Reject::IdMismatch { .. } => "id-mismatch",
        }
    }
}

fn check_id(id: &str, key: &TopicId) -> Result<(), Reject> {
    match TopicId::from_name(id) {
        Some(m) if &m == key => Ok(()),
        m => Err(Reject::IdMismatch {
            id: id.to_owned(),
            mapped: m.map(String::from).unwrap_or_default(),
            topic: key.to_string(),
        }),
    }
}

/// Turns one MQTT message into an update; `Ok(None)` for messages that carry no
/// change (our own hub status, a cleared retained topic that has no meaning).
pub fn validate(topic_name: &str, payload: &[u8]) -> Result<Option<Update>, Reject> {
    let t = Topic::parse(topic_name)?;
    // The hub's own messages (a public KV value may be larger than a node's limit).
    if matches!(
        t,
        Topic::HubStatus | Topic::Routes(_) | Topic::Kv(_) | Topic::DnsZone | Topic::DnsService(_) | Topic::DnsNode(_)
    ) {
        return Ok(None);
    }
    if payload.len() > msg::MAX_PAYLOAD {
        return Err(DecodeError::TooLarge { size: payload.len(), limit: msg::MAX_PAYLOAD }.into());
    }
    let empty = payload.is_empty();
    let (node, u) = match t {
        Topic::HubStatus
        | Topic::Routes(_)
        | Topic::Kv(_)
        | Topic::DnsZone
        | Topic::DnsService(_)
        | Topic::DnsNode(_) => {
            return Ok(None);
        }
        Topic::NodeStatus(_) | Topic::NodeFacts(_) | Topic::NodeManifest(_) | Topic::NodeHeartbeat(_) if empty => {
            return Ok(None);
        }
        Topic::NodeStatus(n) => match Availability::decode(payload)? {
            Availability::Online => (n, NodeUpdate::Online),
            Availability::Offline => (n, NodeUpdate::Offline),
        },
        Topic::NodeFacts(n) => (n, NodeUpdate::Facts(Box::new(msg::decode::<NodeFacts>(payload)?))),
        Topic::NodeHeartbeat(n) => (n, NodeUpdate::Heartbeat(msg::decode::<Heartbeat>(payload)?)),
        Topic::NodeManifest(n) => (n, NodeUpdate::Manifest(msg::decode::<Manifest>(payload)?)),
        Topic::Service(n, k) if empty => (n, NodeUpdate::Service(k, None)),
        Topic::Service(n, k) => {
            let reg = msg::decode::<ServiceRegistration>(payload)?;
            check_id(&reg.id, &k)?;
            (n, NodeUpdate::Service(k, Some(reg)))
        }
        Topic::Check(n, k) if empty => (n, NodeUpdate::Check(k, None)),
        Topic::Check(n, k) => {
            let st = msg::decode::<CheckState>(payload)?;
            check_id(&st.id, &k)?;
            (n, NodeUpdate::Check(k, Some(st)))
        }
        // The hub's own publications, task output (routed by `run`, not the catalog),
        // and a cleared allocation topic: no change.
        Topic::Assignments(_)
        | Topic::LogsRequest(_)
        | Topic::Logs(..)
        | Topic::Proxy(_)
        | Topic::Certs(..)
        | Topic::Templates(..) => {
            return Ok(None);
        }
        Topic::Alloc(..) if empty => return Ok(None),
        Topic::Alloc(n, id) => {
            let st = msg::decode::<AllocState>(payload)?;
            if st.id != id {
                return Err(Reject::IdMismatch {
                    id: st.id.to_string(),
                    mapped: st.id.to_string(),
                    topic: id.to_string(),
                });
            }
            // The time is stamped by `run` (this function stays pure).
            let u =
                AllocUpdate::Client { status: st.status, reason: st.reason, at_ms: 0, node: Some(n), tasks: st.tasks };
            return Ok(Some(Update::Alloc(id, u)));
        }
    };
    Ok(Some(Update::Node(node, u)))
}

/// The ingest task's parts: the hub's MQTT client, the writer's input, and where
/// task output goes (`crate::alloc_logs`).
pub struct Ingest {
    pub client: AsyncClient,
    pub tx: mpsc::Sender<Ingested>,
    pub stats: Arc<Stats>,
    pub connected: Arc<AtomicBool>,
    pub connects: tokio::sync::watch::Sender<u64>,
    pub logs: Arc<crate::alloc_logs::LogHub>,
    /// Each node's lane proxy counters (for `/metrics`; not the catalog).
    pub proxy: ProxyMap,
    /// Home Assistant's status topic, and what to bump when it says `online`
    /// (`[homeassistant]` on: its devices are sent again).
    pub ha_status: Option<(String, tokio::sync::watch::Sender<u64>)>,
}

/// Each node's latest lane proxy counters.
pub type ProxyMap =
    Arc<std::sync::Mutex<std::collections::HashMap<rabble_shared::NodeId, rabble_shared::routes::ProxyStats>>>;

impl Ingest {
    /// Polls the hub's MQTT connection until `stop`: subscribes and announces the hub
    /// after every CONNACK (agents re-publish everything when they see it), reconnects
    /// with backoff. When told to stop it says `offline` itself (a clean DISCONNECT
    /// suppresses the Will) and returns once the broker has closed the connection.
    /// It also returns if the writer is gone.
    pub async fn run(self, mut eventloop: EventLoop, stop: CancellationToken) {
        let Ingest { client, tx, stats, connected, connects, logs, proxy, ha_status } = self;
        let mut backoff = Backoff::default();
        let mut closing = false;
        // Never completes: once `stop` fires it queues the goodbye, and the loop below
        // sees our DISCONNECT go out. (The poll itself is never cancelled.)
        let goodbye = {
            let (client, stop) = (client.clone(), stop.clone());
            async move {
                stop.cancelled().await;
                tracing::info!("hub stopping");
                let _ = client.try_publish(topic::HUB_STATUS, QoS::AtLeastOnce, true, topic::OFFLINE);
                let _ = client.try_disconnect();
                std::future::pending::<()>().await
            }
        };
        tokio::pin!(goodbye);
        loop {
            let event = tokio::select! {
                _ = &mut goodbye => unreachable!("goodbye never completes"),
                e = eventloop.poll() => e,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    connected.store(true, Ordering::Relaxed);
                    tracing::info!("connected to the broker; announcing the hub");
                    // What the nodes say; not what the hub itself publishes outside node topics
                    // (lane tables, the DNS zone, public KV), which would only come back
                    // to be acked.
                    let _ = client.try_subscribe(topic::ALL_NODES, QoS::AtLeastOnce);
                    if let Some((t, _)) = &ha_status {
                        let _ = client.try_subscribe(t.as_str(), QoS::AtLeastOnce);
                    }
                    let _ = client.try_publish(topic::HUB_STATUS, QoS::AtLeastOnce, true, topic::ONLINE);
                    connects.send_modify(|n| *n += 1);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let ack = (p.qos != QoS::AtMostOnce).then(|| {
                        let mut a = p.clone();
                        a.payload = Default::default();
                        a
                    });
                    // Home Assistant (re)started: not a Rabble topic, only a signal.
                    if let Some((t, online)) = ha_status.as_ref().filter(|(t, _)| *t == p.topic) {
                        if p.payload.as_ref() == topic::ONLINE.as_bytes() {
                            tracing::debug!(topic = %t, "Home Assistant says online");
                            online.send_modify(|n| *n += 1);
                        }
                        if !ack_only(&tx, &p.topic, ack).await {
                            return;
                        }
                        continue;
                    }
                    // Side channels (not the catalog): task output and proxy counters.
                    match Topic::parse(&p.topic) {
                        Ok(Topic::Logs(node, _)) => {
                            if let Err(e) = logs.deliver(&node, &p.payload) {
                                stats.rejected("bad-payload");
                                tracing::warn!(topic = %p.topic, "rejected log chunk: {e}");
                            }
                        }
                        Ok(Topic::Proxy(node)) => match msg::decode::<rabble_shared::routes::ProxyStats>(&p.payload) {
                            Ok(s) => {
                                proxy.lock().unwrap_or_else(|e| e.into_inner()).insert(node, s);
                            }
                            Err(e) => {
                                stats.rejected(Reject::Payload(e).label());
                                tracing::warn!(topic = %p.topic, "rejected proxy counters");
                            }
                        },
                        _ => {}
                    }
                    match validate(&p.topic, &p.payload) {
                        Ok(Some(mut update)) => {
                            if let Update::Alloc(_, AllocUpdate::Client { at_ms, .. }) = &mut update {
                                *at_ms = rabble_shared::support::clock::now_ms();
                            }
                            stats.accepted();
                            let done = ack.map_or(Done::Nothing, Done::Ack);
                            if tx.send(Input { source: p.topic.clone(), update: Some(update), done }).await.is_err() {
                                return; // the writer is gone
                            }
                        }
                        other => {
                            if let Err(e) = other {
                                stats.rejected(e.label());
                                tracing::warn!(topic = %p.topic, reason = e.label(), "rejected message: {e}");
                            }
                            if !ack_only(&tx, &p.topic, ack).await {
                                return;
                            }
                        }
                    }
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => closing = true,
                Ok(_) => {}
                Err(_) if closing || stop.is_cancelled() => return, // stopping: our DISCONNECT went out, or no broker
                Err(e) => {
                    if connected.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "lost the broker; reconnecting");
                    } else {
                        tracing::debug!(error = %e, "cannot reach the broker; retrying");
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
    }
}

/// A message that changes nothing is acked through the writer too, so acks leave in
/// arrival order; false when the writer is gone.
async fn ack_only(tx: &mpsc::Sender<Ingested>, topic: &str, ack: Option<Publish>) -> bool {
    match ack {
        Some(a) => tx.send(Input { source: topic.to_owned(), update: None, done: Done::Ack(a) }).await.is_ok(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_labels_every_kind_of_bad_input() {
        let cases: [(&str, &[u8], &str); 8] = [
            ("rabble/node/Bad/facts", b"{}", "bad-topic"),
            ("rabble/node/a/what", b"{}", "bad-topic"),
            ("rabble/node/a/facts", b"{\"v\":2}", "bad-version"),
            ("rabble/node/a/facts", b"{\"name\":1}", "bad-version"),
            ("rabble/node/a/facts", b"\xff\xfe", "bad-payload"),
            ("rabble/node/a/status", b"maybe", "bad-payload"),
            ("rabble/node/a/heartbeat", &[b' '; msg::MAX_PAYLOAD + 1], "too-large"),
            ("rabble/node/a/service/web", br#"{"v":1,"id":"db","name":"db"}"#, "id-mismatch"),
        ];
        for (t, p, want) in cases {
            let e = validate(t, p).unwrap_err();
            assert_eq!(e.label(), want, "{t}: {e}");
        }
    }

    #[test]
    fn empty_payloads_deregister_or_mean_nothing() {
        assert!(matches!(
            validate("rabble/node/a/service/web", b""),
            Ok(Some(Update::Node(_, NodeUpdate::Service(_, None))))
        ));
        assert!(matches!(
            validate("rabble/node/a/check/c", b""),
            Ok(Some(Update::Node(_, NodeUpdate::Check(_, None))))
        ));
        assert!(matches!(validate("rabble/node/a/facts", b""), Ok(None)));
        assert!(matches!(validate("rabble/hub/status", b"online"), Ok(None)));
        assert!(matches!(validate("rabble/node/a/status", b"online"), Ok(Some(Update::Node(_, NodeUpdate::Online)))));
    }

    /// Every topic the hub reads, with mutations of real payloads (and of the topic): a
    /// verdict every time, never a panic.
    #[test]
    fn any_mutation_of_a_real_message_gets_a_verdict() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tests/golden");
        let files: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
        let seeds: Vec<&str> = files.iter().map(String::as_str).collect();
        let topics = [
            "rabble/node/pi1/facts",
            "rabble/node/pi1/heartbeat",
            "rabble/node/pi1/service/web",
            "rabble/node/pi1/check/web-http",
            "rabble/node/pi1/manifest",
            "rabble/node/pi1/status",
            "rabble/node/pi1/alloc/5f0c3a1e",
            "rabble/node/pi1/logs/5f0c3a1e",
            "rabble/node/pi1/proxy",
        ];
        let mut n = 0;
        rabble_shared::support::mutate::mutations(&seeds, b"{}[]\":,0123456789-. truefalsn", 20_000, 0x1ee5, |b| {
            n += 1;
            let _ = validate(topics[n % topics.len()], b);
        });
        rabble_shared::support::mutate::mutations(&topics, b"/+#abc-_ \0", 5_000, 3, |t| {
            let _ = validate(&String::from_utf8_lossy(t), b"{\"v\":1}");
        });
    }
}
