//! One check's live state inside the engine: Consul's status rules (thresholds, TTL
//! expiry, critical-since for `deregister_critical_service_after`) and when to publish.

use crate::checks::Outcome;
use crate::services::{CheckDef, Probe};
use rabble_shared::Status;
use rabble_shared::msg::CheckState;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Output-only changes are published at most this often (Consul's `check_update_interval`);
/// status changes are published at once.
pub const OUTPUT_UPDATE_INTERVAL: Duration = Duration::from_secs(300);

/// Whether a change must go out now.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    None,
    /// Status changed: publish now.
    Status,
    /// Only the output changed: publish when [`OUTPUT_UPDATE_INTERVAL`] allows.
    Output,
}

#[derive(Debug)]
pub struct CheckRt {
    pub def: CheckDef,
    pub state: CheckState,
    pub generation: u64,
    pub task: Option<JoinHandle<()>>,
    successes: u32,
    failures: u32,
    pub ttl_deadline: Option<Instant>,
    pub critical_since: Option<Instant>,
    pub last_published: Option<Instant>,
    pub output_dirty: bool,
    /// No run has reported yet: the first result is always published.
    fresh: bool,
}

impl Drop for CheckRt {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl CheckRt {
    pub fn new(def: CheckDef, generation: u64) -> CheckRt {
        let now = Instant::now();
        let ttl_deadline = match def.probe {
            Probe::Ttl { ttl } => Some(now + ttl),
            _ => None,
        };
        let state = CheckState {
            id: def.id.clone(),
            name: def.name.clone(),
            service_id: def.service_id.clone(),
            kind: def.probe.kind(),
            status: def.initial,
            output: String::new(),
            since_ms: rabble_shared::support::clock::now_ms(),
        };
        CheckRt {
            critical_since: (def.initial == Status::Critical).then_some(now),
            def,
            state,
            generation,
            task: None,
            successes: 0,
            failures: 0,
            ttl_deadline,
            last_published: None,
            output_dirty: false,
            fresh: true,
        }
    }

    /// Applies a run's outcome through the success/failure thresholds.
    pub fn observe(&mut self, o: Outcome) -> Change {
        match o.status {
            Status::Passing => {
                self.successes = self.successes.saturating_add(1);
                self.failures = 0;
                if self.successes < self.def.success_before_passing && self.state.status != Status::Passing {
                    return Change::None;
                }
            }
            _ => {
                self.failures = self.failures.saturating_add(1);
                self.successes = 0;
                if self.failures < self.def.failures_before_critical && self.state.status == Status::Passing {
                    return Change::None;
                }
            }
        }
        let first = std::mem::take(&mut self.fresh);
        match self.set(o.status, o.output) {
            Change::Output if first => Change::Status,
            c => c,
        }
    }

    /// Sets status and output directly (TTL updates and expiry).
    pub fn set(&mut self, status: Status, output: String) -> Change {
        if status != self.state.status {
            self.state.status = status;
            self.state.output = output;
            self.state.since_ms = rabble_shared::support::clock::now_ms();
            self.critical_since = (status == Status::Critical).then(Instant::now);
            Change::Status
        } else if output != self.state.output {
            self.state.output = output;
            Change::Output
        } else {
            Change::None
        }
    }

    /// A TTL check heard from its owner: renew the deadline.
    pub fn ttl_update(&mut self, status: Status, note: String) -> Change {
        if let Probe::Ttl { ttl } = self.def.probe {
            self.ttl_deadline = Some(Instant::now() + ttl);
        }
        self.set(status, note)
    }

    /// Whether a pending output-only change may go out now.
    pub fn output_due(&self, now: Instant) -> bool {
        self.output_dirty && self.last_published.is_none_or(|t| now.duration_since(t) >= OUTPUT_UPDATE_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rabble_shared::TopicId;

    fn def(success_before_passing: u32, failures_before_critical: u32) -> CheckDef {
        CheckDef {
            key: TopicId::new("c").unwrap(),
            id: "c".into(),
            name: "c".into(),
            service_id: None,
            probe: Probe::Tcp { addr: "a:1".into() },
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            initial: Status::Critical,
            deregister_critical_after: None,
            success_before_passing,
            failures_before_critical,
        }
    }

    #[test]
    fn status_changes_publish_at_once_output_changes_later() {
        let mut c = CheckRt::new(def(0, 0), 1);
        assert_eq!(c.observe(Outcome::new(Status::Passing, "a")), Change::Status);
        assert_eq!(c.critical_since, None);
        assert_eq!(c.observe(Outcome::new(Status::Passing, "a")), Change::None);
        assert_eq!(c.observe(Outcome::new(Status::Passing, "b")), Change::Output);
        assert_eq!(c.observe(Outcome::new(Status::Critical, "x")), Change::Status);
        assert!(c.critical_since.is_some());
    }

    #[test]
    fn thresholds_follow_consul() {
        let mut c = CheckRt::new(def(3, 2), 1);
        assert_eq!(c.observe(Outcome::new(Status::Passing, "")), Change::None);
        assert_eq!(c.observe(Outcome::new(Status::Passing, "")), Change::None);
        assert_eq!(c.observe(Outcome::new(Status::Passing, "")), Change::Status);
        assert_eq!(c.observe(Outcome::new(Status::Critical, "x")), Change::None);
        assert_eq!(c.state.status, Status::Passing);
        assert_eq!(c.observe(Outcome::new(Status::Critical, "x")), Change::Status);
        assert_eq!(c.state.status, Status::Critical);
    }
}
