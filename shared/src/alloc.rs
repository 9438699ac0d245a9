//! Allocations: one placement of a job's task group on a node, as the hub keeps it
//! (durable, through the writer) and as `rabble alloc status` shows it. Nomad's words
//! for the states: desired `run`/`stop`; client `pending`, `running`, `complete`,
//! `failed`, `lost`.

use crate::NodeId;
use crate::id::AllocId;
use crate::job::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the hub wants of an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredStatus {
    Run,
    Stop,
}

/// What the node last said about an allocation (`lost`: the hub's verdict when the
/// node went down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientStatus {
    Pending,
    Running,
    Complete,
    Failed,
    Lost,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Pending => "pending",
            ClientStatus::Running => "running",
            ClientStatus::Complete => "complete",
            ClientStatus::Failed => "failed",
            ClientStatus::Lost => "lost",
        }
    }

    /// Finished for good: nothing more will happen to it on its node.
    pub fn is_terminal(self) -> bool {
        matches!(self, ClientStatus::Complete | ClientStatus::Failed | ClientStatus::Lost)
    }
}

/// A host port given to an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocPort {
    pub label: String,
    /// The port on the node.
    pub value: u16,
    /// The port inside the container (`to`), when mapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u16>,
}

/// One allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub id: AllocId,
    /// Nomad's name: `<job>.<group>[<index>]`.
    pub name: String,
    pub job_id: String,
    /// The job version it runs; a newer version replaces it.
    pub job_version: u64,
    /// A fingerprint of the group it was placed from: a new job version whose group
    /// has the same one updates it in place instead of replacing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<u64>,
    pub group: String,
    pub index: u32,
    pub node: NodeId,
    pub desired: DesiredStatus,
    /// Why the hub wants what it wants (`scaled down`, `job stopped`, `node drained`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub desired_reason: String,
    pub client_status: ClientStatus,
    /// The node's (or the hub's) words for the status: an exit code, an engine error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_reason: String,
    pub ports: Vec<AllocPort>,
    /// What it reserves on its node: the sum of its tasks'.
    pub resources: Resources,
    pub create_ms: u64,
    pub modify_ms: u64,
    /// The allocation this one replaces (rescheduled or lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<AllocId>,
    /// When earlier allocations in this chain were rescheduled (ms), for the
    /// `reschedule` policy's attempts-per-interval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reschedule_times_ms: Vec<u64>,
    /// How many times an operator asked for its tasks to restart (`rabble alloc restart`):
    /// its node restarts them in place when the number it is assigned changes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restart_asked: u32,
    /// Each task as its node last reported it, with what happened to it (by task name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<String, TaskStatus>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A task of an allocation as the hub knows it: its node's last report, and the events
/// seen in the reports (the newest [`MAX_TASK_EVENTS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TaskStatus {
    /// `pending`, `running` or `dead`.
    pub state: String,
    pub failed: bool,
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// When it was last reported starting to run, and finishing (ms), as Nomad's
    /// `StartedAt`/`FinishedAt` (a restart moves the first and clears the second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<TaskEvent>,
}

/// Something that happened to a task (`started`, `exited with code 1; restarting in
/// 15s`), in the agent's words, and when the hub heard of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvent {
    pub at_ms: u64,
    pub text: String,
}

/// The most events kept per task.
pub const MAX_TASK_EVENTS: usize = 12;

/// Folds a node's report of its tasks into what the hub knows; whether anything changed.
pub fn merge_tasks(
    known: &mut BTreeMap<String, TaskStatus>,
    reported: &BTreeMap<String, crate::assign::TaskState>,
    at_ms: u64,
) -> bool {
    let mut changed = false;
    for (name, r) in reported {
        let t = known.entry(name.clone()).or_default();
        let before = t.clone();
        (t.failed, t.restarts, t.exit_code) = (r.failed, r.restarts, r.exit_code);
        if r.state != t.state {
            match r.state.as_str() {
                "running" => (t.started_ms, t.finished_ms) = (Some(at_ms), None),
                "dead" => t.finished_ms = Some(at_ms),
                _ => {}
            }
            t.state = r.state.clone();
        }
        if !r.event.is_empty() && t.events.last().is_none_or(|e| e.text != r.event) {
            t.events.push(TaskEvent { at_ms, text: r.event.clone() });
            let over = t.events.len().saturating_sub(MAX_TASK_EVENTS);
            t.events.drain(..over);
        }
        changed |= *t != before;
    }
    changed
}

impl Allocation {
    /// Counts against its node's resources and ports: wanted and not finished.
    pub fn holds_resources(&self) -> bool {
        self.desired == DesiredStatus::Run && !self.client_status.is_terminal()
    }
}

/// `<job>.<group>[<index>]`.
pub fn alloc_name(job: &str, group: &str, index: u32) -> String {
    format!("{job}.{group}[{index}]")
}

impl crate::msg::Payload for Allocation {
    const WHAT: &'static str = "allocation";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::TaskState;

    fn report(state: &str, event: &str, restarts: u32) -> BTreeMap<String, TaskState> {
        let t = TaskState { state: state.into(), failed: false, restarts, exit_code: None, event: event.into() };
        [("web".to_owned(), t)].into()
    }

    #[test]
    fn a_tasks_events_are_kept_in_order_once_each_and_bounded() {
        let mut known = BTreeMap::new();
        assert!(merge_tasks(&mut known, &report("pending", "not started", 0), 1));
        assert!(merge_tasks(&mut known, &report("running", "started", 0), 2));
        assert!(!merge_tasks(&mut known, &report("running", "started", 0), 3), "the same report: no change");
        assert!(merge_tasks(&mut known, &report("pending", "exited with code 1; restarting in 15s", 1), 4));
        assert!(merge_tasks(&mut known, &report("running", "restarted", 1), 5));
        let t = &known["web"];
        let texts: Vec<&str> = t.events.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["not started", "started", "exited with code 1; restarting in 15s", "restarted"]);
        assert_eq!((t.started_ms, t.restarts, t.state.as_str()), (Some(5), 1, "running"), "the last start");
        for i in 0..30 {
            merge_tasks(&mut known, &report("running", &format!("event {i}"), 1), 10 + i);
        }
        assert_eq!(known["web"].events.len(), MAX_TASK_EVENTS);
        assert_eq!(known["web"].events.last().unwrap().text, "event 29");
        assert!(merge_tasks(&mut known, &report("dead", "exited with code 0", 1), 99));
        assert_eq!(known["web"].finished_ms, Some(99));
    }
}
