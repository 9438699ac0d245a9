//! The allocations this node runs: what the hub assigned (already verified), each
//! task's lifecycle and restarts, and stopping what is no longer assigned. The engine
//! drives it with three events — a new assignment set, a task's exit, a tick — and
//! publishes what [`Allocs::reports`] says changed. Per allocation it keeps a few
//! hundred bytes and its tasks' output tails: no helper process, no disk writes (task
//! directories live under `alloc_dir`, a tmpfs).

#[cfg(feature = "docker")]
pub mod docker;
mod driver;
mod engines;
pub use rabble_shared::job::env;
mod ended;
pub mod output;
pub mod policy;
pub mod process;
pub mod programs;
mod report;
mod services;
pub mod templates;
mod volumes;

use driver::{launch, start_container, stop_task};
use policy::AfterExit;
use process::{Running, TaskExit, TaskKey};
use rabble_shared::alloc::ClientStatus;
use rabble_shared::assign::{AllocState, Assignment, Assignments, TaskState};
use rabble_shared::job::{Hook, Task};
use rabble_shared::msg::NodeFacts;
use rabble_shared::{AllocId, NodeId};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use engines::{DockerEngine, Engines, is_container};
pub use services::service_defs;

/// A started task: a child process (raw_exec, exec) or a container (docker).
#[derive(Debug)]
enum Handle {
    Proc(Running),
    #[cfg(feature = "docker")]
    Container(docker::Container),
}

#[derive(Debug)]
enum Phase {
    Pending,
    Running { generation: u64, run: Handle },
    Waiting { until: Instant },
    Stopping { generation: u64, run: Handle, kill_at: Instant },
    Dead { ok: bool },
}

#[derive(Debug)]
struct TaskRt {
    spec: Task,
    phase: Phase,
    restarts: VecDeque<Instant>,
    restarts_total: u32,
    exit_code: Option<i32>,
    failed: bool,
    event: String,
    /// The output tails of the task's latest process (kept after it exits, for
    /// `rabble alloc logs`).
    output: Option<process::Output>,
    /// A changed template's restart or signal, after its splay.
    restart_at: Option<Instant>,
    signal_at: Option<(Instant, String)>,
    /// Stopping to start again at once (a template changed, an operator asked), not
    /// counted as a restart: why, for its event.
    restart_why: Option<String>,
}

impl TaskRt {
    fn running(&self) -> bool {
        matches!(self.phase, Phase::Running { .. })
    }
    fn dead(&self) -> bool {
        matches!(self.phase, Phase::Dead { .. })
    }
    fn dead_ok(&self) -> bool {
        matches!(self.phase, Phase::Dead { ok: true })
    }
    fn hook(&self) -> Option<Hook> {
        self.spec.lifecycle.map(|l| l.hook)
    }
    fn sidecar(&self) -> bool {
        self.spec.lifecycle.is_some_and(|l| l.sidecar)
    }
}

#[derive(Debug)]
struct AllocRt {
    a: Assignment,
    tasks: BTreeMap<String, TaskRt>,
    /// No longer assigned: stopping.
    leaving: bool,
    /// Why it failed, once it has.
    failure: Option<String>,
    reported: Option<AllocState>,
}

impl AllocRt {
    fn main(&self) -> impl Iterator<Item = &TaskRt> {
        self.tasks.values().filter(|t| t.hook().is_none())
    }

    fn state(&self) -> AllocState {
        let main_dead_ok = self.main().all(|t| t.dead_ok());
        let (status, reason) = if let Some(f) = &self.failure {
            (ClientStatus::Failed, f.clone())
        } else if self.leaving && self.tasks.values().all(|t| t.dead()) {
            (ClientStatus::Complete, "stopped".to_owned())
        } else if main_dead_ok && self.main().count() > 0 {
            (ClientStatus::Complete, String::new())
        } else if self.main().any(|t| t.running()) {
            (ClientStatus::Running, String::new())
        } else {
            (ClientStatus::Pending, String::new())
        };
        let tasks = self
            .tasks
            .iter()
            .map(|(n, t)| {
                let state = match t.phase {
                    Phase::Running { .. } | Phase::Stopping { .. } => "running",
                    Phase::Dead { .. } => "dead",
                    Phase::Pending | Phase::Waiting { .. } => "pending",
                };
                let ts = TaskState {
                    state: state.into(),
                    failed: t.failed,
                    restarts: t.restarts_total,
                    exit_code: t.exit_code,
                    event: t.event.clone(),
                };
                (n.clone(), ts)
            })
            .collect();
        AllocState { id: self.a.alloc.clone(), status, reason, tasks }
    }
}

/// Everything the runtime needs from the agent's config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub node: NodeId,
    pub alloc_dir: PathBuf,
    /// Whether exec tasks can get their cgroup.
    pub cgroups: bool,
    pub host_volumes: BTreeMap<String, PathBuf>,
}

pub struct Allocs {
    cfg: Settings,
    exits: mpsc::Sender<TaskExit>,
    /// The seq of the assignment set in force.
    pub seq: Option<u64>,
    allocs: BTreeMap<AllocId, AllocRt>,
    generation: u64,
    docker: DockerEngine,
    /// Containers from an earlier run of the agent, (alloc, task) → their driver: adopted
    /// when the first assignment set still wants them, removed otherwise.
    adoptable: Option<BTreeMap<(String, String), String>>,
    /// Rendered templates by allocation (those of allocations not assigned yet too).
    templates: BTreeMap<AllocId, rabble_shared::rendered::AllocTemplates>,
    /// The output of allocations that ended, for `rabble alloc logs` (bounded).
    ended: ended::Ended,
    /// Named volumes mounted for the allocations.
    volumes: volumes::Volumes,
}

impl Allocs {
    pub fn new(cfg: Settings, exits: mpsc::Sender<TaskExit>) -> Allocs {
        Allocs {
            volumes: volumes::Volumes::new(&cfg.alloc_dir),
            cfg,
            exits,
            seq: None,
            allocs: BTreeMap::new(),
            generation: 0,
            docker: Engines::default(),
            adoptable: None,
            templates: BTreeMap::new(),
            ended: ended::Ended::default(),
        }
    }

    /// Runs docker tasks on `docker`; `found` are this node's containers from before.
    pub fn with_docker(mut self, docker: DockerEngine, found: BTreeMap<(String, String), String>) -> Allocs {
        self.docker = docker;
        self.adoptable = Some(found);
        self
    }

    pub fn len(&self) -> usize {
        self.allocs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.allocs.is_empty()
    }

    /// A new assignment set: start what is new, stop what is gone.
    pub fn assign(&mut self, set: Assignments, facts: &NodeFacts, now: Instant) {
        self.seq = Some(set.seq);
        let wanted: BTreeMap<AllocId, Assignment> = set.allocs.into_iter().map(|a| (a.alloc.clone(), a)).collect();
        for (id, rt) in self.allocs.iter_mut() {
            if !wanted.contains_key(id) && !rt.leaving {
                tracing::info!(alloc = %id, name = %rt.a.name, "no longer assigned; stopping");
                rt.leaving = true;
                for t in rt.tasks.values_mut() {
                    stop_task(t, now, &self.docker);
                }
            }
        }
        for (id, a) in wanted {
            match self.allocs.get_mut(&id) {
                Some(rt) => {
                    rt.a.job_version = a.job_version; // an in-place update
                    if a.restart != rt.a.restart {
                        tracing::info!(alloc = %id, name = %a.name, "restart asked for");
                        rt.a.restart = a.restart;
                        for t in rt.tasks.values_mut().filter(|t| matches!(t.phase, Phase::Running { .. })) {
                            // Numbered: each restart's event differs from the one before.
                            t.restart_why = Some(format!("asked by an operator (restart {})", a.restart));
                            stop_task(t, now, &self.docker);
                        }
                    }
                }
                None => {
                    tracing::info!(alloc = %id, name = %a.name, "assigned");
                    let tasks = a
                        .tasks
                        .iter()
                        .map(|t| {
                            let rt = TaskRt {
                                spec: t.clone(),
                                phase: Phase::Pending,
                                restarts: VecDeque::new(),
                                restarts_total: 0,
                                exit_code: None,
                                failed: false,
                                event: "received".into(),
                                output: None,
                                restart_at: None,
                                signal_at: None,
                                restart_why: None,
                            };
                            (t.name.clone(), rt)
                        })
                        .collect();
                    self.volumes.claim(&a, now);
                    self.allocs.insert(id, AllocRt { a, tasks, leaving: false, failure: None, reported: None });
                }
            }
        }
        self.remove_ghosts();
        self.advance(facts, now);
    }

    /// After the first assignment set: containers from an earlier run that no
    /// allocation wants any more are stopped and removed (the rest are adopted as their
    /// tasks start).
    fn remove_ghosts(&mut self) {
        #[cfg(feature = "docker")]
        if let Some(found) = self.adoptable.as_mut() {
            let allocs = &self.allocs;
            let ghosts: Vec<(String, String)> = found
                .keys()
                .filter(|(a, t)| {
                    !AllocId::new(a.as_str())
                        .ok()
                        .and_then(|id| allocs.get(&id))
                        .is_some_and(|rt| rt.tasks.contains_key(t))
                })
                .cloned()
                .collect();
            for key in ghosts {
                let driver = found.remove(&key).unwrap_or_default();
                tracing::info!(alloc = %key.0, task = %key.1, driver, "removing a container no allocation wants");
                if let Some(d) = self.docker.get(&driver) {
                    docker::stop(d.clone(), &driver, docker::name(&key.0, &key.1), None, 5, None);
                }
                let _ = std::fs::remove_dir_all(self.cfg.alloc_dir.join(&key.0));
            }
        }
    }

    /// Starts whatever may start now, in lifecycle order: prestart tasks, then the main
    /// tasks once the non-sidecar prestart ones succeeded, poststart once the main ones
    /// run, poststop once they are done.
    fn advance(&mut self, facts: &NodeFacts, now: Instant) {
        let ids: Vec<AllocId> = self.allocs.keys().cloned().collect();
        for id in ids {
            let Some(rt) = self.allocs.get_mut(&id) else { continue };
            if rt.leaving || rt.failure.is_some() {
                continue;
            }
            let prestart_done =
                rt.tasks.values().filter(|t| t.hook() == Some(Hook::Prestart) && !t.sidecar()).all(|t| t.dead_ok());
            let main_running = rt.main().count() > 0 && rt.main().all(|t| t.running() || t.dead());
            let main_done = rt.main().all(|t| t.dead());
            let ready: Vec<String> = rt
                .tasks
                .iter()
                .filter(|(_, t)| {
                    matches!(t.phase, Phase::Pending) || matches!(t.phase, Phase::Waiting { until } if until <= now)
                })
                .filter(|(_, t)| templates::ready(&self.templates, &id, &t.spec))
                .filter(|(_, t)| match t.hook() {
                    Some(Hook::Prestart) => true,
                    None => prestart_done,
                    Some(Hook::Poststart) => main_running,
                    Some(Hook::Poststop) => main_done,
                })
                .map(|(n, _)| n.clone())
                .collect();
            // Its volumes are looked at only when a task would start (not on every tick).
            if ready.is_empty() {
                continue;
            }
            match self.volumes.ready(&rt.a, now) {
                volumes::Ready::Yes => {}
                volumes::Ready::NotYet => continue,
                volumes::Ready::Failed(why) => {
                    tracing::warn!(alloc = %id, error = %why, "allocation failed: its volume");
                    for t in rt.tasks.values_mut() {
                        (t.phase, t.failed, t.event) = (Phase::Dead { ok: false }, true, why.clone());
                    }
                    rt.failure = Some(why);
                    continue;
                }
            }
            for name in ready {
                self.start(&id, &name, facts);
            }
        }
    }

    fn start(&mut self, id: &AllocId, task: &str, facts: &NodeFacts) {
        self.generation += 1;
        let generation = self.generation;
        let Some(rt) = self.allocs.get_mut(id) else { return };
        let Some(t) = rt.tasks.get(task) else { return };
        let key = TaskKey { alloc: id.clone(), task: task.to_owned(), generation };
        let spec = templates::prepare(&self.cfg, &self.templates, id, &t.spec);
        let paths = self.volumes.paths(&rt.a, &self.cfg.host_volumes);
        let result = match (spec, t.spec.driver.as_str()) {
            (Err(e), _) => Err(format!("template: {e}")),
            (Ok(spec), "docker" | "podman") => {
                let (docker, exits) = (&self.docker, &self.exits);
                start_container(&self.cfg, docker, &mut self.adoptable, &rt.a, &spec, facts, key, exits, &paths)
            }
            (Ok(spec), _) => launch(&self.cfg, &rt.a, &spec, facts, &paths)
                .and_then(|l| process::spawn(l, key, self.exits.clone()))
                .map(Handle::Proc),
        };
        let Some(t) = rt.tasks.get_mut(task) else { return };
        match result {
            Ok(run) => {
                tracing::info!(alloc = %id, task, "task started");
                t.event = match t.restart_why.take() {
                    Some(why) => format!("restarted: {why}"),
                    None if t.restarts_total > 0 => "restarted".into(),
                    None => "started".into(),
                };
                // A container's output is the engine's until it is removed (then kept here).
                t.output = match &run {
                    Handle::Proc(p) => Some(process::Output { stdout: p.stdout.clone(), stderr: p.stderr.clone() }),
                    #[cfg(feature = "docker")]
                    Handle::Container(_) => None,
                };
                t.phase = Phase::Running { generation, run };
            }
            Err(e) => {
                tracing::warn!(alloc = %id, task, error = %e, "task could not start");
                t.phase = Phase::Dead { ok: false };
                t.failed = true;
                t.event = e.clone();
                rt.failure = Some(format!("task {task:?}: {e}"));
                for other in rt.tasks.values_mut() {
                    stop_task(other, Instant::now(), &self.docker);
                }
            }
        }
    }

    /// A task's process ended.
    pub fn on_exit(&mut self, e: TaskExit, facts: &NodeFacts, now: Instant) {
        let Some(rt) = self.allocs.get_mut(&e.key.alloc) else { return };
        let kind = rt.a.kind;
        let Some(t) = rt.tasks.get_mut(&e.key.task) else { return };
        let (generation, run) = match std::mem::replace(&mut t.phase, Phase::Dead { ok: false }) {
            Phase::Running { generation, run } | Phase::Stopping { generation, run, .. } => (generation, run),
            other => {
                t.phase = other;
                return;
            }
        };
        if generation != e.key.generation {
            return; // an older instance
        }
        let (oom, last_line) = match &run {
            Handle::Proc(p) => {
                (p.cgroup.as_ref().is_some_and(|g| g.oom_killed()), p.stderr.lock().ok().and_then(|s| s.last_line()))
            }
            #[cfg(feature = "docker")]
            Handle::Container(_) => (e.code == Some(137) && e.reason.is_none(), None),
        };
        let ok = e.code == Some(0);
        t.exit_code = e.code;
        let mut why = match (e.code, e.signal, &e.reason) {
            (None, _, Some(r)) => r.clone(),
            (_, _, _) if oom => "killed: out of memory (memory limit)".to_owned(),
            (Some(c), _, _) => format!("exited with code {c}"),
            (None, Some(s), _) => format!("killed by signal {s}"),
            _ => "exited".to_owned(),
        };
        if !ok && let Some(line) = last_line.or(e.reason.filter(|_| e.code.is_some())) {
            why.push_str(&format!(": {line}"));
        }
        if rt.leaving || rt.failure.is_some() {
            t.phase = Phase::Dead { ok: true };
            t.event = "stopped".into();
            return;
        }
        if let Some(why) = &t.restart_why {
            t.phase = Phase::Pending;
            t.event = format!("restarting: {why}");
            self.advance(facts, now);
            return;
        }
        let finishes = policy::finishes(kind, t.hook(), t.sidecar());
        match policy::after_exit(finishes, &t.spec.restart, ok, &mut t.restarts, now) {
            AfterExit::Restart(delay) => {
                tracing::info!(alloc = %e.key.alloc, task = %e.key.task, %why, ?delay, "restarting");
                t.restarts_total += 1;
                t.event = format!("{why}; restarting in {delay:?}");
                t.phase = Phase::Waiting { until: now + delay };
            }
            AfterExit::Done => {
                t.event = why;
                t.phase = Phase::Dead { ok: true };
            }
            AfterExit::Fail => {
                tracing::warn!(alloc = %e.key.alloc, task = %e.key.task, %why, "task failed; out of restarts");
                t.failed = true;
                t.event = format!("{why}; out of restarts");
                rt.failure = Some(format!("task {:?} {why}", e.key.task));
                for other in rt.tasks.values_mut() {
                    stop_task(other, now, &self.docker);
                }
            }
        }
        self.advance(facts, now);
    }

    /// Restart delays and kill deadlines.
    pub fn tick(&mut self, facts: &NodeFacts, now: Instant) {
        self.template_actions(now);
        for rt in self.allocs.values_mut() {
            for t in rt.tasks.values_mut() {
                if let Phase::Stopping { run: Handle::Proc(p), kill_at, .. } = &mut t.phase
                    && *kill_at <= now
                {
                    process::signal(p.pid, process::Signal::KILL);
                    *kill_at = now + Duration::from_secs(3600);
                }
            }
        }
        self.advance(facts, now);
    }

    /// Which tasks run, by allocation: for the services of the job.
    fn running(&self) -> impl Iterator<Item = (&Assignment, Vec<&str>)> {
        self.allocs.values().filter(|rt| !rt.leaving && rt.failure.is_none()).map(|rt| {
            let running = rt.tasks.iter().filter(|(_, t)| t.running()).map(|(n, _)| n.as_str()).collect();
            (&rt.a, running)
        })
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
