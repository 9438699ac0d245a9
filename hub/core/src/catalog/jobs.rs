//! Jobs and allocations in the catalog, and the rules that change them. Pure: the
//! scheduler decides, these rules only record (and refuse what makes no sense).

use super::state::{Applied, Dirty};
use rabble_shared::AllocId;
use rabble_shared::alloc::{Allocation, ClientStatus, DesiredStatus};
use rabble_shared::job::JobSpec;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How many earlier versions of a job are kept for `rabble job history`.
pub const HISTORY: u64 = 10;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum JobUpdate {
    /// Submitted: a new version when it differs from the current one (or the job was
    /// stopped); nothing otherwise. `group_hashes` come from the scheduler's rule.
    Register {
        spec: Box<JobSpec>,
        group_hashes: BTreeMap<String, u64>,
        at_ms: u64,
    },
    Stop,
    /// Forget the job, its history and its allocations.
    Purge,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AllocUpdate {
    Create(Box<Allocation>),
    Desired {
        status: DesiredStatus,
        reason: String,
        at_ms: u64,
    },
    /// A node's report (`node`: the reporting node, which must be the allocation's)
    /// or the hub's own verdict (`node: None`, e.g. `lost`).
    Client {
        status: ClientStatus,
        reason: String,
        at_ms: u64,
        node: Option<rabble_shared::NodeId>,
        /// The node's report of each task (none from the hub's own verdicts).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tasks: BTreeMap<String, rabble_shared::assign::TaskState>,
    },
    Version {
        version: u64,
        at_ms: u64,
    },
    /// An operator asked for its running tasks to restart in place (`rabble alloc restart`).
    Restart {
        at_ms: u64,
    },
}

/// A job as the hub keeps it: the spec of its current version and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Shared with its version in `history` and with every snapshot: a commit copies the
    /// catalog's maps, not the jobs in them.
    pub spec: Arc<JobSpec>,
    /// 0 for the first submission, then one more for every change.
    pub version: u64,
    /// `rabble job stop`: kept (with its history) until purged.
    pub stopped: bool,
    pub submit_ms: u64,
    /// Per group, the fingerprint allocations carry (a group with the same one is
    /// updated in place by a new version).
    pub group_hashes: BTreeMap<String, u64>,
}

/// Jobs, their earlier versions and allocations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Work {
    pub jobs: BTreeMap<String, JobRecord>,
    /// (job, version) → spec, for `rabble job history`; the newest `HISTORY` are kept.
    pub history: BTreeMap<(String, u64), Arc<JobSpec>>,
    /// (job, version) → when it was submitted (ms); absent for versions stored before 0.3.
    pub history_ms: BTreeMap<(String, u64), u64>,
    /// Shared between snapshots until one changes (`Arc::make_mut`).
    pub allocs: BTreeMap<AllocId, Arc<Allocation>>,
}

impl Work {
    pub fn apply_job(&mut self, id: String, u: JobUpdate) -> Applied {
        let mut out = Applied::default();
        match u {
            JobUpdate::Register { spec, group_hashes, at_ms } => {
                let version = match self.jobs.get(&id) {
                    Some(cur) if *cur.spec == *spec && !cur.stopped => return out,
                    Some(cur) if *cur.spec == *spec => cur.version,
                    Some(cur) => cur.version + 1,
                    None => 0,
                };
                let word = if version == 0 { "registered" } else { "updated" };
                out.summaries.push(format!("job {id} {word} (version {version})"));
                let spec: Arc<JobSpec> = Arc::new(*spec);
                self.history.insert((id.clone(), version), spec.clone());
                self.history_ms.insert((id.clone(), version), at_ms);
                if version >= HISTORY {
                    let old = (id.clone(), version - HISTORY);
                    self.history_ms.remove(&old);
                    if self.history.remove(&old).is_some() {
                        out.dirty.push(Dirty::JobVersion(old.0, old.1));
                    }
                }
                out.dirty.push(Dirty::JobVersion(id.clone(), version));
                self.jobs
                    .insert(id.clone(), JobRecord { spec, version, stopped: false, submit_ms: at_ms, group_hashes });
                out.dirty.push(Dirty::Job(id));
            }
            JobUpdate::Stop => {
                if let Some(j) = self.jobs.get_mut(&id).filter(|j| !j.stopped) {
                    j.stopped = true;
                    out.summaries.push(format!("job {id} stopped"));
                    out.dirty.push(Dirty::Job(id));
                }
            }
            JobUpdate::Purge => {
                if self.jobs.remove(&id).is_some() {
                    out.summaries.push(format!("job {id} purged"));
                    out.dirty.push(Dirty::Job(id.clone()));
                }
                let versions: Vec<(String, u64)> = self.history.keys().filter(|(j, _)| j == &id).cloned().collect();
                for k in versions {
                    self.history.remove(&k);
                    self.history_ms.remove(&k);
                    out.dirty.push(Dirty::JobVersion(k.0, k.1));
                }
                let allocs: Vec<AllocId> =
                    self.allocs.iter().filter(|(_, a)| a.job_id == id).map(|(k, _)| k.clone()).collect();
                for k in allocs {
                    self.allocs.remove(&k);
                    out.dirty.push(Dirty::Alloc(k));
                }
            }
        }
        out
    }

    pub fn apply_alloc(&mut self, id: AllocId, u: AllocUpdate) -> Applied {
        let mut out = Applied::default();
        if let AllocUpdate::Create(a) = u {
            if !self.allocs.contains_key(&id) {
                out.summaries.push(format!("allocation {} ({id}) placed on {}", a.name, a.node));
                self.allocs.insert(id.clone(), Arc::new(*a));
                out.dirty.push(Dirty::Alloc(id));
            }
            return out;
        }
        let Some(a) = self.allocs.get_mut(&id).map(Arc::make_mut) else { return out };
        match u {
            AllocUpdate::Create(_) => unreachable!("handled above"),
            AllocUpdate::Desired { status, reason, at_ms } => {
                if a.desired == status {
                    return out;
                }
                a.desired = status;
                a.desired_reason = reason;
                a.modify_ms = at_ms;
                out.summaries.push(format!("allocation {} ({id}) to stop: {}", a.name, a.desired_reason));
            }
            AllocUpdate::Client { status, reason, at_ms, node, tasks } => {
                // Only its own node speaks for an allocation; a finished allocation stays
                // finished (a late report cannot revive it).
                if node.is_some_and(|n| n != a.node) || a.client_status.is_terminal() {
                    return out;
                }
                let tasks_changed = rabble_shared::alloc::merge_tasks(&mut a.tasks, &tasks, at_ms);
                if (a.client_status, &a.client_reason) == (status, &reason) {
                    if tasks_changed {
                        out.dirty.push(Dirty::Alloc(id));
                    }
                    return out;
                }
                a.client_status = status;
                a.client_reason = reason;
                a.modify_ms = at_ms;
                let why = if a.client_reason.is_empty() { String::new() } else { format!(": {}", a.client_reason) };
                out.summaries.push(format!("allocation {} ({id}) on {} {}{why}", a.name, a.node, status.as_str()));
            }
            AllocUpdate::Restart { at_ms } => {
                if a.desired != DesiredStatus::Run || a.client_status.is_terminal() {
                    return out;
                }
                a.restart_asked += 1;
                a.modify_ms = at_ms;
                out.summaries.push(format!("allocation {} ({id}) on {}: restart asked", a.name, a.node));
            }
            AllocUpdate::Version { version, at_ms } => {
                if a.job_version == version {
                    return out;
                }
                a.job_version = version;
                a.modify_ms = at_ms;
            }
        }
        out.dirty.push(Dirty::Alloc(id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rabble_shared::job::{JobType, Resources};

    pub fn spec(meta: &str) -> JobSpec {
        JobSpec {
            id: "web".into(),
            name: "web".into(),
            kind: JobType::Service,
            priority: 50,
            region: "global".into(),
            datacenters: vec!["*".into()],
            meta: [("v".to_owned(), meta.to_owned())].into(),
            constraints: vec![],
            periodic: None,
            parameterized: None,
            groups: vec![],
            ignored: vec![],
        }
    }

    fn register(w: &mut Work, meta: &str) -> Applied {
        w.apply_job(
            "web".into(),
            JobUpdate::Register { spec: Box::new(spec(meta)), group_hashes: Default::default(), at_ms: 1 },
        )
    }

    #[test]
    fn versions_move_only_on_change_and_history_is_bounded() {
        let mut w = Work::default();
        assert_eq!(register(&mut w, "a").summaries, ["job web registered (version 0)"]);
        assert_eq!(register(&mut w, "a"), Applied::default(), "an unchanged file changes nothing");
        assert_eq!(register(&mut w, "b").summaries, ["job web updated (version 1)"]);
        for i in 0..20 {
            register(&mut w, &format!("m{i}"));
        }
        assert_eq!(w.jobs["web"].version, 21);
        assert_eq!(w.history.len() as u64, HISTORY);
        assert!(w.apply_job("web".into(), JobUpdate::Stop).summaries[0].contains("stopped"));
        assert_eq!(
            register(&mut w, "m19").summaries,
            ["job web updated (version 21)"],
            "re-running a stopped job starts it"
        );
        let p = w.apply_job("web".into(), JobUpdate::Purge);
        assert!(w.jobs.is_empty() && w.history.is_empty());
        assert_eq!(p.dirty.len(), 1 + HISTORY as usize);
    }

    #[test]
    fn allocation_states_only_move_forward() {
        let mut w = Work::default();
        let id = AllocId::new("a1").unwrap();
        let a = Allocation {
            id: id.clone(),
            name: "web.g[0]".into(),
            job_id: "web".into(),
            job_version: 0,
            spec_hash: None,
            group: "g".into(),
            index: 0,
            node: rabble_shared::NodeId::new("pi").unwrap(),
            desired: DesiredStatus::Run,
            desired_reason: String::new(),
            client_status: ClientStatus::Pending,
            client_reason: String::new(),
            ports: vec![],
            resources: Resources::DEFAULT,
            create_ms: 0,
            modify_ms: 0,
            previous: None,
            reschedule_times_ms: vec![],
            restart_asked: 0,
            tasks: Default::default(),
        };
        assert_eq!(w.apply_alloc(id.clone(), AllocUpdate::Create(Box::new(a.clone()))).dirty.len(), 1);
        assert!(w.apply_alloc(id.clone(), AllocUpdate::Create(Box::new(a))).dirty.is_empty());
        let client = |s, r: &str| AllocUpdate::Client {
            status: s,
            reason: r.into(),
            at_ms: 5,
            node: None,
            tasks: Default::default(),
        };
        let other = rabble_shared::NodeId::new("other").unwrap();
        let forged = AllocUpdate::Client {
            status: ClientStatus::Running,
            reason: String::new(),
            at_ms: 5,
            node: Some(other),
            tasks: Default::default(),
        };
        assert!(w.apply_alloc(id.clone(), forged).dirty.is_empty(), "another node cannot report on it");
        let out = w.apply_alloc(id.clone(), client(ClientStatus::Failed, "exit code 1"));
        assert_eq!(out.summaries, ["allocation web.g[0] (a1) on pi failed: exit code 1"]);
        assert!(w.apply_alloc(id.clone(), client(ClientStatus::Running, "")).dirty.is_empty(), "failed stays failed");
        assert!(w.apply_alloc(AllocId::new("nope").unwrap(), client(ClientStatus::Running, "")).dirty.is_empty());
    }
}
