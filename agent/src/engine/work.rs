//! The engine's side of running work: verifying the hub's assignments, handing them
//! and task exits to the allocation runtime (`crate::allocs`), then publishing what
//! changed — allocation states, and the services of running allocations.

use super::Engine;
use crate::allocs::{self, process::TaskExit};
use crate::assign;
use rabble_shared::{msg, topic};
use rumqttc::QoS;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

impl Engine {
    /// A message on this node's assignments topic.
    pub(super) fn on_assignments(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return; // a cleared topic: nothing was assigned yet
        }
        match assign::verify(bytes, self.cfg.hub_key.as_deref(), &self.cfg.node, self.allocs.seq) {
            Ok(set) => {
                tracing::debug!(seq = set.seq, allocs = set.allocs.len(), "assignments accepted");
                self.allocs.assign(set, &self.facts, Instant::now());
                self.sync_work();
            }
            Err(why) => {
                self.refused += 1;
                tracing::warn!(refused = self.refused, "refused an assignment message: {why}");
            }
        }
    }

    /// A message on `rabble/node/<node>/templates/<alloc>`.
    pub(super) fn on_templates(&mut self, alloc: &rabble_shared::AllocId, bytes: &[u8]) {
        if bytes.is_empty() {
            self.allocs.drop_templates(alloc);
            return;
        }
        let token = self.cfg.credentials.as_ref().map(|(_, t)| t.as_str());
        match allocs::templates::verify(bytes, self.cfg.hub_key.as_deref(), &self.cfg.node, alloc, token) {
            Ok(t) => {
                self.allocs.templates(t, Instant::now());
                self.allocs.tick(&self.facts, Instant::now());
                self.sync_work();
            }
            Err(why) => {
                self.refused += 1;
                tracing::warn!(refused = self.refused, alloc = %alloc, "refused rendered templates: {why}");
            }
        }
    }

    /// A message on this node's logs-request topic.
    pub(super) fn on_logs_request(&mut self, bytes: &[u8]) {
        let now = rabble_shared::support::clock::now_ms();
        match crate::logs::verify(bytes, self.cfg.hub_key.as_deref(), &self.cfg.node, now) {
            Ok(req) => {
                let source = self.allocs.log_source(&req.alloc, &req.task, req.stream);
                self.logs.handle(req, source, &self.client, &self.cfg.node);
            }
            Err(why) => {
                self.refused += 1;
                tracing::warn!(refused = self.refused, "refused a logs request: {why}");
            }
        }
    }

    /// The lanes' counters, when they moved (QoS 0: a lost one is made up by the next).
    pub(super) fn publish_proxy_stats(&mut self) {
        if self.lanes.is_empty() || !self.connected {
            return;
        }
        let stats = self.lanes.stats();
        if stats != self.proxy_sent {
            let _ = self.client.try_publish(topic::proxy(&self.cfg.node), QoS::AtMostOnce, false, msg::encode(&stats));
            self.proxy_sent = stats;
        }
    }

    pub(super) fn on_task_exit(&mut self, x: TaskExit) {
        self.allocs.on_exit(x, &self.facts, Instant::now());
        self.sync_work();
    }

    pub(super) fn tick_work(&mut self) {
        if !self.allocs.is_empty() {
            self.allocs.tick(&self.facts, Instant::now());
            self.sync_work();
        }
    }

    /// Publishes changed allocation states and re-applies services if the running
    /// allocations' services changed.
    fn sync_work(&mut self) {
        for (id, st) in self.allocs.reports() {
            let payload = st.map(|s| msg::encode(&s)).unwrap_or_default();
            self.put(topic::alloc(&self.cfg.node, &id), QoS::AtLeastOnce, true, payload);
        }
        let defs = allocs::service_defs(&self.allocs, &self.facts);
        if defs != self.job_services {
            self.job_services = defs;
            self.apply_all();
        }
    }

    /// On shutdown: stop the tasks that are the agent's children (raw_exec, exec),
    /// waiting for them up to their kill timeouts (at most 10 s). Containers keep
    /// running: the agent adopts them when it is back (within the hub's grace, the
    /// allocation is not even marked lost).
    pub(super) async fn stop_work(&mut self, exits: &mut mpsc::Receiver<TaskExit>) {
        self.allocs.stop_processes(Instant::now());
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.allocs.processes_alive() && Instant::now() < deadline {
            tokio::select! {
                Some(x) = exits.recv() => self.allocs.on_exit(x, &self.facts, Instant::now()),
                _ = tokio::time::sleep(Duration::from_millis(100)) => self.allocs.tick(&self.facts, Instant::now()),
            }
            self.sync_work();
        }
    }
}
