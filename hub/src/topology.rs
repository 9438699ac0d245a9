//! The hub's tasks, by name: every long-running task is spawned here with a name and
//! a stage, supervised, and stopped in one place, in stage order.
//!
//! A task that ends before shutdown (returns, fails or panics) is a dead task: it is
//! logged by name and the whole hub stops with an error (systemd restarts it), rather
//! than leaving DNS and the API serving a catalog nobody updates. Stopping cancels
//! each stage's token in turn (front doors, then the writer's inputs, then the core) and waits for
//! its tasks; what is still running after a deadline is named and aborted.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tokio::task::{AbortHandle, Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// How long a stage's tasks get to finish once told to stop.
const STOP_DEADLINE: Duration = Duration::from_secs(3);

/// When a task is told to stop. Earlier stages stop first, so what a later stage
/// does last (ingest says `offline`; the writer commits what ingest handed it) still
/// happens with its inputs quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Listeners and watchers: HTTP API, DNS, the TLS front, revocation, the broker.
    Doors,
    /// The writer's inputs: the hub's MQTT session and the scheduler.
    Inputs,
    /// The catalog writer: it stops when every input is gone.
    Core,
}

impl Stage {
    const ALL: [Stage; 3] = [Stage::Doors, Stage::Inputs, Stage::Core];
}

/// Why a task ended.
pub type TaskError = Box<dyn std::error::Error + Send + Sync>;

/// What a task returns: nothing, or a result whose error says why it ended.
pub trait TaskResult {
    fn into_result(self) -> Result<(), TaskError>;
}

impl TaskResult for () {
    fn into_result(self) -> Result<(), TaskError> {
        Ok(())
    }
}

impl<E: Into<TaskError>> TaskResult for Result<(), E> {
    fn into_result(self) -> Result<(), TaskError> {
        self.map_err(Into::into)
    }
}

/// A task that ended before the hub was told to stop.
#[derive(Debug, thiserror::Error)]
#[error("the {name} task {why}")]
pub struct TaskDied {
    pub name: &'static str,
    pub why: String,
}

struct Entry {
    name: &'static str,
    stage: Stage,
    abort: AbortHandle,
}

/// The running tasks.
pub struct Topology {
    tasks: JoinSet<Result<(), TaskError>>,
    entries: HashMap<Id, Entry>,
    tokens: HashMap<Stage, CancellationToken>,
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            tasks: JoinSet::new(),
            entries: HashMap::new(),
            tokens: Stage::ALL.iter().map(|s| (*s, CancellationToken::new())).collect(),
        }
    }
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.entries.values().map(|e| e.name).collect();
        f.debug_struct("Topology").field("tasks", &names).finish()
    }
}

impl Topology {
    /// The token that tells `stage` to stop.
    pub fn token(&self, stage: Stage) -> CancellationToken {
        self.tokens[&stage].clone()
    }

    /// Spawns a named task; `make` gets its stage's token.
    pub fn spawn<F>(&mut self, name: &'static str, stage: Stage, make: impl FnOnce(CancellationToken) -> F)
    where
        F: Future + Send + 'static,
        F::Output: TaskResult,
    {
        let fut = make(self.token(stage));
        let abort = self.tasks.spawn(async move { fut.await.into_result() });
        tracing::debug!(task = name, ?stage, "started");
        self.entries.insert(abort.id(), Entry { name, stage, abort });
    }

    /// Runs until `shutdown` resolves or a task dies, then stops everything in stage
    /// order. Returns the dead task, if one ended the hub.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), TaskDied> {
        let died = tokio::select! {
            _ = shutdown => None,
            Some(ended) = self.tasks.join_next_with_id() => Some(self.ended(ended)),
        };
        if let Some(d) = &died {
            tracing::error!(task = d.name, "{}; stopping the hub", d.why);
        }
        self.stop().await;
        died.map_or(Ok(()), Err)
    }

    fn ended(&mut self, ended: Result<(Id, Result<(), TaskError>), JoinError>) -> TaskDied {
        let (id, why) = match ended {
            Ok((id, Ok(()))) => (id, "ended".to_owned()),
            Ok((id, Err(e))) => (id, format!("failed: {e}")),
            Err(e) if e.is_panic() => (e.id(), format!("panicked: {}", panic_message(e))),
            Err(e) => (e.id(), "was cancelled".to_owned()),
        };
        let name = self.entries.remove(&id).map_or("unknown", |e| e.name);
        TaskDied { name, why }
    }

    async fn stop(&mut self) {
        for stage in Stage::ALL {
            self.tokens[&stage].cancel();
            let deadline = tokio::time::Instant::now() + STOP_DEADLINE;
            while self.entries.values().any(|e| e.stage <= stage) {
                match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                    Ok(Some(ended)) => {
                        let TaskDied { name, why } = self.ended(ended);
                        if why == "ended" {
                            tracing::debug!(task = name, "stopped");
                        } else {
                            tracing::warn!(task = name, "while stopping: {why}");
                        }
                    }
                    Ok(None) => return,
                    Err(_) => {
                        let late: Vec<&str> =
                            self.entries.values().filter(|e| e.stage <= stage).map(|e| e.name).collect();
                        tracing::warn!(tasks = ?late, "still running {STOP_DEADLINE:?} after being told to stop; aborting");
                        self.entries.values().filter(|e| e.stage <= stage).for_each(|e| e.abort.abort());
                        // Aborted tasks come back through join_next as cancelled.
                        while let Some(ended) = self.tasks.try_join_next_with_id() {
                            self.ended(ended);
                        }
                        self.entries.retain(|_, e| e.stage > stage);
                    }
                }
            }
        }
    }
}

fn panic_message(e: JoinError) -> String {
    let p = e.into_panic();
    p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test(start_paused = true)]
    async fn stages_stop_in_order() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut t = Topology::default();
        for (name, stage) in [("core", Stage::Core), ("doors", Stage::Doors), ("ingest", Stage::Inputs)] {
            let order = order.clone();
            t.spawn(name, stage, move |token| async move {
                token.cancelled().await;
                order.lock().unwrap().push(name);
            });
        }
        t.run_until(std::future::ready(())).await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["doors", "ingest", "core"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_stops_the_rest_and_is_named() {
        let stopped = Arc::new(Mutex::new(false));
        let mut t = Topology::default();
        let s = stopped.clone();
        t.spawn("dns", Stage::Doors, move |token| async move {
            token.cancelled().await;
            *s.lock().unwrap() = true;
        });
        t.spawn("writer", Stage::Core, |_| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if Stage::ALL.len() == 3 {
                panic!("disk on fire");
            }
        });
        let died = t.run_until(std::future::pending()).await.unwrap_err();
        assert_eq!(died.name, "writer");
        assert!(died.why.contains("disk on fire"), "{}", died.why);
        assert!(*stopped.lock().unwrap(), "DNS was stopped, not left serving");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_ignores_its_token_is_aborted_after_the_deadline() {
        let mut t = Topology::default();
        t.spawn("stubborn", Stage::Doors, |_| std::future::pending::<()>());
        t.spawn("failing", Stage::Core, |_| async { Err::<(), TaskError>("closed".into()) });
        let started = tokio::time::Instant::now();
        let died = t.run_until(std::future::pending()).await.unwrap_err();
        assert_eq!((died.name, died.why.as_str()), ("failing", "failed: closed"));
        assert!(started.elapsed() >= STOP_DEADLINE, "the stubborn task was given its deadline, then aborted");
    }
}
