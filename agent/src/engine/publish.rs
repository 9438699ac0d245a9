//! Publishing the node's state: one message per service, check, manifest, facts,
//! heartbeat and availability, and the full re-publish after every connect. Nothing is
//! published while disconnected (everything is re-published on connect), so no queue
//! grows while the hub is away.

use super::Engine;
use crate::driver::Drivers;
use rabble_shared::msg::{self, Availability, Manifest};
use rabble_shared::{TopicId, topic};
use rumqttc::QoS;
use tokio::time::Instant;

impl Engine {
    pub(super) fn put(&mut self, topic: String, qos: QoS, retain: bool, payload: Vec<u8>) {
        if !self.connected {
            return; // everything is re-published on connect
        }
        if let Err(e) = self.client.try_publish(topic, qos, retain, payload) {
            tracing::warn!(error = %e, "publish queue full; will re-publish everything");
            self.resync_at.get_or_insert_with(Instant::now);
        }
    }

    pub(super) fn put_service(&mut self, key: &TopicId) {
        let payload = self.services.get(key).map(|s| msg::encode(&s.reg)).unwrap_or_default();
        self.put(topic::service(&self.cfg.node, key), QoS::AtLeastOnce, true, payload);
    }

    pub(super) fn put_check(&mut self, key: &TopicId) {
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

    pub(super) fn put_manifest(&mut self) {
        let m = Manifest {
            services: self.services.keys().cloned().collect(),
            checks: self.checks.keys().cloned().collect(),
        };
        self.put(topic::node_manifest(&self.cfg.node), QoS::AtLeastOnce, true, msg::encode(&m));
    }

    pub(super) fn put_status(&mut self, a: Availability) {
        self.put(topic::node_status(&self.cfg.node), QoS::AtLeastOnce, true, a.as_str().as_bytes().to_vec());
    }

    /// Everything, in an order that lets a reader build the node from scratch.
    pub(super) fn publish_all(&mut self) {
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
        for st in self.allocs.all_states() {
            self.put(topic::alloc(&self.cfg.node, &st.id), QoS::AtLeastOnce, true, msg::encode(&st));
        }
        let n = (services.len(), checks.len());
        tracing::info!(services = n.0, checks = n.1, "published node state");
    }

    /// Clean shutdown: deregister everything, say offline, disconnect.
    pub(super) fn goodbye(&mut self) {
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

    pub(super) fn heartbeat(&mut self) {
        if self.connected {
            let mut hb = self.sampler.heartbeat();
            hb.assignments_refused = self.refused;
            self.put(topic::node_heartbeat(&self.cfg.node), QoS::AtMostOnce, false, msg::encode(&hb));
        }
    }

    /// The driver task saw a change (Docker came up, went away, was upgraded).
    pub(super) fn set_drivers(&mut self, drivers: Drivers) {
        tracing::info!(drivers = ?drivers, "task drivers changed");
        self.facts.drivers = drivers;
        self.put(topic::node_facts(&self.cfg.node), QoS::AtLeastOnce, true, msg::encode(&self.facts));
    }

    /// Re-reads the machine's facts (an address from DHCP may have moved) and publishes
    /// them if they changed.
    pub(super) fn refresh_facts(&mut self) {
        let mut facts = self.sampler.facts(&self.cfg.identity);
        facts.drivers = self.facts.drivers.clone();
        facts.host_volumes = self.facts.host_volumes.clone();
        facts.tls_lanes = self.facts.tls_lanes.clone();
        facts.alloc_dir = self.facts.alloc_dir.clone();
        if facts != self.facts {
            tracing::info!(advertise = %facts.advertise, "node facts changed");
            self.facts = facts;
            self.put(topic::node_facts(&self.cfg.node), QoS::AtLeastOnce, true, msg::encode(&self.facts));
        }
    }
}
