//! The output of allocations that ended, kept so `rabble alloc logs` on a failed or
//! completed allocation shows why: the tails its raw_exec and exec tasks already had in
//! memory (at most 8 KB per stream), for the last [`KEEP`] allocations, at most
//! [`KEEP_FOR`], at most [`KEEP_BYTES`] in all — memory only, nothing on the SD card.
//! A Docker task's output is the engine's while its container exists; the last of it is read
//! into the same tails when the container is removed.

use super::process::{Output, Tail};
use rabble_shared::AllocId;
use rabble_shared::logs::LogStream;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Ended allocations whose output is kept.
pub const KEEP: usize = 16;
/// How long an ended allocation's output is kept.
pub const KEEP_FOR: Duration = Duration::from_secs(3600);
/// The most kept in all (the oldest go first).
pub const KEEP_BYTES: usize = 256 * 1024;

struct Kept {
    id: AllocId,
    at: Instant,
    tasks: BTreeMap<String, Output>,
}

impl Kept {
    fn bytes(&self) -> usize {
        let len = |t: &Arc<Mutex<Tail>>| t.lock().map_or(0, |t| t.bytes.len());
        self.tasks.values().map(|o| len(&o.stdout) + len(&o.stderr)).sum()
    }
}

#[derive(Default)]
pub struct Ended {
    kept: VecDeque<Kept>,
}

impl Ended {
    /// Keeps `tasks`' output of the allocation `id`, which ended at `now`.
    pub fn keep(&mut self, id: AllocId, tasks: BTreeMap<String, Output>, now: Instant) {
        self.kept.retain(|k| k.id != id);
        if !tasks.is_empty() {
            self.kept.push_back(Kept { id, at: now, tasks });
        }
        self.trim(now);
    }

    fn trim(&mut self, now: Instant) {
        while self.kept.front().is_some_and(|k| now.duration_since(k.at) > KEEP_FOR) || self.kept.len() > KEEP {
            self.kept.pop_front();
        }
        while self.kept.len() > 1 && self.kept.iter().map(Kept::bytes).sum::<usize>() > KEEP_BYTES {
            self.kept.pop_front();
        }
    }

    /// `task`'s `stream` of an ended allocation: `None` when its output is not kept (or
    /// never was), `Err` naming the tasks it had when there is no such task.
    pub fn get(
        &self,
        id: &AllocId,
        task: &str,
        stream: LogStream,
        now: Instant,
    ) -> Option<Result<Arc<Mutex<Tail>>, String>> {
        let k = self.kept.iter().find(|k| &k.id == id && now.duration_since(k.at) <= KEEP_FOR)?;
        Some(match k.tasks.get(task) {
            Some(o) => Ok(match stream {
                LogStream::Stdout => o.stdout.clone(),
                LogStream::Stderr => o.stderr.clone(),
            }),
            None => {
                let names: Vec<&str> = k.tasks.keys().map(String::as_str).collect();
                Err(format!("allocation {id} had no task {task:?} (its tasks: {})", names.join(", ")))
            }
        })
    }

    /// How many ended allocations' output is kept, and its bytes.
    #[cfg(test)]
    pub fn held(&self) -> (usize, usize) {
        (self.kept.len(), self.kept.iter().map(Kept::bytes).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(text: &[u8]) -> Output {
        let out = Output { stdout: Default::default(), stderr: Default::default() };
        out.stdout.lock().unwrap().push(text);
        out
    }

    fn id(n: usize) -> AllocId {
        AllocId::new(format!("{n:016x}")).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn an_ended_allocations_output_is_kept_within_its_bounds() {
        let mut e = Ended::default();
        let now = Instant::now();
        e.keep(id(1), [("t".to_owned(), output(b"exit 3: disk full"))].into(), now);
        let tail = e.get(&id(1), "t", LogStream::Stdout, now).unwrap().unwrap();
        assert_eq!(tail.lock().unwrap().bytes.iter().copied().collect::<Vec<u8>>(), b"exit 3: disk full");
        assert!(e.get(&id(1), "nope", LogStream::Stdout, now).unwrap().unwrap_err().contains("its tasks: t"));
        assert!(e.get(&id(2), "t", LogStream::Stdout, now).is_none());
        // At most KEEP allocations, the oldest go first.
        for n in 2..=KEEP + 1 {
            e.keep(id(n), [("t".to_owned(), output(b"x"))].into(), now);
        }
        assert_eq!(e.held().0, KEEP);
        assert!(e.get(&id(1), "t", LogStream::Stdout, now).is_none());
        // At most KEEP_FOR.
        let later = now + KEEP_FOR + Duration::from_secs(1);
        assert!(e.get(&id(5), "t", LogStream::Stdout, later).is_none());
        e.keep(id(99), BTreeMap::new(), later);
        assert_eq!(e.held().0, 0);
        // At most KEEP_BYTES in all.
        let big = vec![b'y'; super::super::process::TAIL_BYTES];
        for n in 0..KEEP {
            e.keep(id(n), [("t".to_owned(), output(&big))].into(), now);
        }
        assert!(e.held().1 <= KEEP_BYTES, "{:?}", e.held());
    }
}
