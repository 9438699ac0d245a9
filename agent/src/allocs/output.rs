//! Where a task's output is read from for `rabble alloc logs`: the in-memory tails of
//! its latest process (raw_exec, exec), the Docker engine's log of its container, or —
//! the allocation having ended — the tails kept after it ([`super::ended`]).

use super::Allocs;
use super::process::Tail;
use rabble_shared::AllocId;
use rabble_shared::logs::LogStream;
use std::sync::{Arc, Mutex};

/// One task stream's output.
pub enum Source {
    Tail(Arc<Mutex<Tail>>),
    /// What an ended task wrote: sent once, nothing more comes.
    Ended(Arc<Mutex<Tail>>),
    #[cfg(feature = "docker")]
    Docker {
        docker: bollard::Docker,
        container: String,
    },
}

impl Allocs {
    /// Where `task`'s `stream` of `alloc` can be read, or why it cannot.
    pub fn log_source(&self, alloc: &AllocId, task: &str, stream: LogStream) -> Result<Source, String> {
        let Some(rt) = self.allocs.get(alloc) else {
            return match self.ended.get(alloc, task, stream, tokio::time::Instant::now()) {
                Some(found) => found.map(Source::Ended),
                None => Err(format!(
                    "allocation {alloc} is not running on this node (an ended one's output is kept for the last {} \
                     allocations, up to {} minutes)",
                    super::ended::KEEP,
                    super::ended::KEEP_FOR.as_secs() / 60
                )),
            };
        };
        let Some(t) = rt.tasks.get(task) else {
            let names: Vec<&str> = rt.tasks.keys().map(String::as_str).collect();
            return Err(format!("allocation {alloc} has no task {task:?} (its tasks: {})", names.join(", ")));
        };
        if super::is_container(&t.spec.driver) {
            #[cfg(feature = "docker")]
            if let Some(docker) = self.docker.get(&t.spec.driver) {
                return Ok(Source::Docker {
                    docker: docker.clone(),
                    container: super::docker::name(alloc.as_str(), task),
                });
            }
            return Err(format!("this node has no {} engine", t.spec.driver));
        }
        let out = t.output.as_ref().ok_or_else(|| format!("task {task:?} has not started yet"))?;
        Ok(Source::Tail(match stream {
            LogStream::Stdout => out.stdout.clone(),
            LogStream::Stderr => out.stderr.clone(),
        }))
    }
}
