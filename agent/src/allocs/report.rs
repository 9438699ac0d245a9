//! What the engine publishes and asks of the allocations: the states that changed (and
//! the allocations gone, whose output is then kept a while: [`super::ended`]), every state
//! after a reconnect, and stopping the agent's child processes when it stops.

use super::driver::stop_task;
use super::{Allocs, Handle, Phase};
use rabble_shared::AllocId;
use rabble_shared::assign::AllocState;
use tokio::time::Instant;

impl Allocs {
    /// Allocation states that changed since the last call, and allocations that are
    /// gone (stopped and reported): `None` clears their retained topic.
    pub fn reports(&mut self) -> Vec<(AllocId, Option<AllocState>)> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (id, rt) in self.allocs.iter_mut() {
            let st = rt.state();
            if rt.reported.as_ref() != Some(&st) {
                out.push((id.clone(), Some(st.clone())));
                rt.reported = Some(st.clone());
            }
            if rt.leaving && rt.tasks.values().all(|t| t.dead()) {
                gone.push(id.clone());
            }
        }
        for id in gone {
            // Containers that ended on their own are removed now, their output kept.
            #[cfg(feature = "docker")]
            if let Some(rt) = self.allocs.get_mut(&id) {
                for (name, t) in rt.tasks.iter_mut().filter(|(_, t)| t.output.is_none()) {
                    let Some(d) = self.docker.get(&t.spec.driver) else { continue };
                    let keep = t.output.insert(Default::default()).clone();
                    let name = super::docker::name(id.as_str(), name);
                    super::docker::stop(d.clone(), &t.spec.driver, name, None, 0, Some(keep));
                }
            }
            if let Some(rt) = self.allocs.remove(&id) {
                // Its tasks' output tails stay readable a while (`rabble alloc logs`).
                let outputs = rt.tasks.iter().filter_map(|(n, t)| t.output.clone().map(|o| (n.clone(), o))).collect();
                self.ended.keep(id.clone(), outputs, Instant::now());
            }
            let _ = std::fs::remove_dir_all(self.cfg.alloc_dir.join(id.as_str()));
            self.volumes.release(&id);
            out.push((id, None));
        }
        out
    }

    /// The agent is stopping: its child processes (raw_exec, exec) are stopped; containers
    /// keep running, to be adopted when the agent is back.
    pub fn stop_processes(&mut self, now: Instant) {
        for rt in self.allocs.values_mut() {
            for t in rt.tasks.values_mut() {
                if matches!(t.phase, Phase::Running { run: Handle::Proc(_), .. }) {
                    stop_task(t, now, &self.docker);
                }
            }
        }
    }

    /// Whether any child process is still running or stopping.
    pub fn processes_alive(&self) -> bool {
        self.allocs.values().flat_map(|rt| rt.tasks.values()).any(|t| {
            matches!(
                t.phase,
                Phase::Running { run: Handle::Proc(_), .. } | Phase::Stopping { run: Handle::Proc(_), .. }
            )
        })
    }

    /// Every allocation's state (after a reconnect).
    pub fn all_states(&self) -> Vec<AllocState> {
        self.allocs.values().map(|rt| rt.state()).collect()
    }
}
