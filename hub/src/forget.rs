//! Forgetting nodes, the leader's side. A node that leaves the catalog (`rabble node forget`,
//! Consul's deregister of an external node, or this task's own collection of nodes down
//! longer than `node_gc_threshold`, Nomad's default a day) has the retained topics its
//! agent left behind cleared — an empty retained message each, MQTT's way — so neither a
//! restarted hub nor a reconnected broker brings it back from them. Its agent, started
//! again, joins again. Pure core: [`gone_topics`] and [`overdue`].

use crate::WriterTx;
use crate::catalog::writer::{Done, Input};
use rabble_core::catalog::{Catalog, NodeUpdate, Update};
use rabble_shared::api::NodeStatus;
use rabble_shared::support::clock::now_ms;
use rabble_shared::{NodeId, topic};
use rumqttc::{AsyncClient, QoS};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often nodes are looked at for the threshold: a quarter of it, between 1 and 30 s.
fn sweep_every(threshold: Option<Duration>) -> Duration {
    threshold.map_or(Duration::from_secs(30), |t| (t / 4).clamp(Duration::from_secs(1), Duration::from_secs(30)))
}

pub struct Forgetter {
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub client: AsyncClient,
    pub writer: WriterTx,
    /// A node down this long is forgotten (`None`: never).
    pub threshold: Option<Duration>,
}

enum Event {
    Catalog,
    Sweep,
    Stop,
}

/// The retained topics the agents of nodes in `before` but not in `after` published:
/// status, facts, manifest, each service and check, each allocation's state.
pub fn gone_topics(before: &Catalog, after: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    for (id, node) in before.nodes.iter().filter(|(id, _)| !after.nodes.contains_key(*id)) {
        out.extend([topic::node_status(id), topic::node_facts(id), topic::node_manifest(id)]);
        out.extend(node.services.keys().map(|k| topic::service(id, k)));
        out.extend(node.checks.keys().map(|k| topic::check(id, k)));
        out.extend(before.work.allocs.values().filter(|a| &a.node == id).map(|a| topic::alloc(id, &a.id)));
    }
    out
}

/// The nodes down for longer than `threshold` at `now_ms`. A node whose catalog record
/// does not say since when (written before 0.2) counts from when this task first saw it
/// down (`first_seen`).
pub fn overdue(c: &Catalog, threshold: Duration, now_ms: u64, first_seen: &mut HashMap<NodeId, u64>) -> Vec<NodeId> {
    first_seen.retain(|id, _| c.nodes.get(id).is_some_and(|n| n.status == NodeStatus::Down));
    let mut out = Vec::new();
    for (id, n) in c.nodes.iter().filter(|(_, n)| n.status == NodeStatus::Down) {
        let since =
            if n.status_since_ms > 0 { n.status_since_ms } else { *first_seen.entry(id.clone()).or_insert(now_ms) };
        if now_ms.saturating_sub(since) >= threshold.as_millis() as u64 {
            out.push(id.clone());
        }
    }
    out
}

impl Forgetter {
    pub async fn run(mut self, stop: CancellationToken) {
        let mut before = self.snapshot.borrow_and_update().clone();
        let mut sweep = tokio::time::interval(sweep_every(self.threshold));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut first_seen = HashMap::new();
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => Event::Stop,
                r = self.snapshot.changed() => if r.is_ok() { Event::Catalog } else { Event::Stop },
                _ = sweep.tick() => Event::Sweep,
            };
            match event {
                Event::Stop => return,
                Event::Catalog => {
                    let now = self.snapshot.borrow_and_update().clone();
                    for t in gone_topics(&before, &now) {
                        // Queued for the broker; a hub that stops first leaves them for the
                        // next leader, which sees the node gone only as "not there" (the
                        // topics stay until its agent clears or re-publishes them).
                        if let Err(e) = self.client.publish(t.as_str(), QoS::AtLeastOnce, true, Vec::new()).await {
                            tracing::warn!(topic = %t, error = %e, "could not clear a forgotten node's topic");
                        }
                    }
                    before = now;
                }
                Event::Sweep => {
                    let Some(threshold) = self.threshold else { continue };
                    let c = self.snapshot.borrow().clone();
                    for id in overdue(&c, threshold, now_ms(), &mut first_seen) {
                        tracing::info!(node = %id, ?threshold, "forgetting a node down longer than node_gc_threshold");
                        let u = Update::Node(id, NodeUpdate::Forget);
                        let input =
                            Input { source: "hub (node_gc_threshold)".into(), update: Some(u), done: Done::Nothing };
                        if self.writer.send(input).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rabble_shared::TopicId;
    use rabble_shared::msg::ServiceRegistration;

    fn n(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        let reg = ServiceRegistration {
            id: "web".into(),
            name: "web".into(),
            tags: vec![],
            address: None,
            port: Some(80),
            meta: Default::default(),
            source: String::new(),
        };
        c.apply(Update::Node(n("pi1"), NodeUpdate::Online));
        c.apply(Update::Node(n("pi2"), NodeUpdate::Service(TopicId::new("web").unwrap(), Some(reg))));
        c.apply(Update::Node(n("pi2"), NodeUpdate::Offline));
        c
    }

    #[test]
    fn a_forgotten_node_has_every_topic_its_agent_left_cleared_and_no_other() {
        let before = catalog();
        let mut after = before.clone();
        after.apply(Update::Node(n("pi2"), NodeUpdate::Forget));
        assert_eq!(
            gone_topics(&before, &after),
            [
                "rabble/node/pi2/status",
                "rabble/node/pi2/facts",
                "rabble/node/pi2/manifest",
                "rabble/node/pi2/service/web"
            ]
        );
        assert!(gone_topics(&before, &before).is_empty());
    }

    #[test]
    fn only_nodes_down_past_the_threshold_are_forgotten() {
        let mut c = catalog();
        let down_at = 1_796_000_000_000;
        c.nodes.get_mut(&n("pi2")).unwrap().status_since_ms = down_at;
        let day = Duration::from_secs(86_400);
        let mut seen = HashMap::new();
        assert!(overdue(&c, day, down_at + 1000, &mut seen).is_empty());
        assert_eq!(overdue(&c, day, down_at + 86_400_000, &mut seen), [n("pi2")]);
        // A record from before status_since_ms: counted from when it was first seen down.
        c.nodes.get_mut(&n("pi2")).unwrap().status_since_ms = 0;
        assert!(overdue(&c, day, 5_000_000_000_000, &mut seen).is_empty());
        assert_eq!(overdue(&c, day, 5_000_000_000_000 + 86_400_000, &mut seen), [n("pi2")]);
    }
}
