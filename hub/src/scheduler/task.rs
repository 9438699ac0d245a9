//! The scheduler task: after every catalog commit (and when a timer it asked for
//! fires) it runs one evaluation and sends the updates through the catalog writer,
//! waiting for them to be durable before it looks again. It launches periodic jobs and
//! forgets finished launches and dispatches.
//! It never writes redb itself, and it is not an observer: it reads snapshots.

use super::eval::{self, Outcome};
use super::plan::Unplaced;
use super::{gc, periodic};
use crate::catalog::Catalog;
use crate::catalog::writer::{Done, Input};
use rabble_shared::support::clock::now_ms;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// What the scheduler last concluded, for the API (`job status`, `job plan`).
#[derive(Debug, Clone, Default)]
pub struct SchedStatus {
    /// Per (job, group): why the last placement failed.
    pub unplaced: BTreeMap<(String, String), Unplaced>,
    /// Per periodic job: its next launch (Unix seconds).
    pub next_launch: BTreeMap<String, i64>,
    /// Jobs `auto_revert` rolled back: (the version that failed, when, ms).
    pub reverted: BTreeMap<String, (u64, u64)>,
}

/// Evaluations that keep producing updates this fast are a bug: the task slows down
/// rather than spin.
const RUNAWAY_ROUNDS: u32 = 50;

/// How often finished periodic launches and dispatches are looked at for forgetting.
const GC_EVERY_MS: u64 = 60_000;

enum Event {
    Catalog,
    Wake,
    Stop,
}

pub struct Scheduler<T> {
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub writer: mpsc::Sender<Input<T>>,
    pub status: watch::Sender<Arc<SchedStatus>>,
}

impl<T: Send + 'static> Scheduler<T> {
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), &'static str> {
        let mut seen: BTreeMap<String, (u64, bool)> = BTreeMap::new();
        // Versions whose deployment failed (auto_revert never goes back to them).
        let mut failed: BTreeSet<(String, u64)> = BTreeSet::new();
        let mut wake: Option<tokio::time::Instant> = None;
        let mut busy_rounds = 0u32;
        let mut next_gc_ms = 0u64;
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => Event::Stop,
                changed = self.snapshot.changed() => match changed {
                    Ok(()) => Event::Catalog,
                    Err(_) => Event::Stop,
                },
                _ = async { match wake { Some(w) => tokio::time::sleep_until(w).await, None => std::future::pending().await } } => Event::Wake,
            };
            match event {
                Event::Stop => return Ok(()),
                Event::Catalog | Event::Wake => {}
            }
            let catalog = self.snapshot.borrow_and_update().clone();
            let now = now_ms();
            let registered: BTreeSet<String> = catalog
                .work
                .jobs
                .iter()
                .filter(|(id, j)| seen.get(*id) != Some(&(j.version, j.stopped)))
                .map(|(id, _)| id.clone())
                .collect();
            let mut out = eval::evaluate(&catalog, &registered, None, now, &mut eval::random_alloc_id);
            let launches = self.periodic(&catalog, now, &mut out);
            if now >= next_gc_ms {
                next_gc_ms = now + GC_EVERY_MS;
                for id in gc::expired(&catalog, now, gc::JOB_GC_THRESHOLD_MS) {
                    tracing::debug!(job = %id, "finished launch forgotten (job_gc_threshold)");
                    out.updates.push(crate::catalog::Update::Job(id, crate::catalog::JobUpdate::Purge));
                }
            }
            let mut reverted = Vec::new();
            for (job, version, spec) in eval::reverts(&catalog, &failed, now) {
                reverted.push((job.clone(), (version, now)));
                failed.insert((job, version));
                out.updates.push(eval::register(spec, now));
            }
            for id in &registered {
                if let Some(j) = catalog.work.jobs.get(id) {
                    seen.insert(id.clone(), (j.version, j.stopped));
                }
            }
            seen.retain(|id, _| catalog.work.jobs.contains_key(id));
            wake = out.wake_at_ms.map(|at| tokio::time::Instant::now() + Duration::from_millis(at.saturating_sub(now)));
            self.status.send_modify(|s| {
                let st = Arc::make_mut(s);
                st.unplaced = out.unplaced.clone();
                st.next_launch = launches;
                st.reverted.extend(reverted);
                st.reverted.retain(|job, _| catalog.work.jobs.contains_key(job));
            });
            for ((job, group), why) in &out.unplaced {
                tracing::debug!(job, group, "cannot place: {why}");
            }
            if out.updates.is_empty() {
                busy_rounds = 0;
                continue;
            }
            busy_rounds += 1;
            if busy_rounds > RUNAWAY_ROUNDS {
                tracing::error!(rounds = busy_rounds, "the scheduler keeps changing the catalog; slowing down");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if !self.send(out).await {
                return Err("the catalog writer is gone");
            }
        }
    }

    /// Launches due periodic jobs (as updates in `out`); returns every next launch.
    fn periodic(&self, catalog: &Catalog, now: u64, out: &mut Outcome) -> BTreeMap<String, i64> {
        let now_s = (now / 1000) as i64;
        let mut next = BTreeMap::new();
        for (id, job) in catalog.work.jobs.iter().filter(|(_, j)| j.spec.periodic.is_some() && !j.stopped) {
            // The last launch is the newest child; the first one waits for the schedule.
            let prefix = format!("{id}/periodic-");
            let last = catalog
                .work
                .jobs
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix)?.parse::<i64>().ok())
                .max()
                .unwrap_or((job.submit_ms / 1000) as i64);
            // The newest scheduled time that has passed: launches missed while the hub
            // was down are not all run at once, only the latest (as Nomad does).
            let mut due = None;
            let mut t = last;
            for _ in 0..10_000 {
                match periodic::next_launch(&job.spec, t) {
                    Some(n) if n <= now_s => {
                        due = Some(n);
                        t = n;
                    }
                    _ => break,
                }
            }
            if let Some(due) = due {
                let overlap = job.spec.periodic.as_ref().is_some_and(|p| p.prohibit_overlap);
                if overlap && periodic::still_running(catalog, id) {
                    tracing::info!(job = %id, "periodic launch skipped: the last one still runs (prohibit_overlap)");
                } else {
                    out.updates.push(eval::register(periodic::child(&job.spec, due), now));
                }
            }
            let Some(upcoming) = periodic::next_launch(&job.spec, now_s) else { continue };
            next.insert(id.clone(), upcoming);
            let at = upcoming as u64 * 1000;
            out.wake_at_ms = Some(out.wake_at_ms.map_or(at, |w| w.min(at)));
        }
        next
    }

    /// Sends the updates and waits until the writer has committed them.
    async fn send(&self, out: Outcome) -> bool {
        let n = out.updates.len();
        let mut last = None;
        for (i, update) in out.updates.into_iter().enumerate() {
            let done = if i + 1 == n {
                let (tx, rx) = oneshot::channel();
                last = Some(rx);
                Done::Reply(tx)
            } else {
                Done::Nothing
            };
            if self.writer.send(Input { source: "scheduler".into(), update: Some(update), done }).await.is_err() {
                return false;
            }
        }
        match last {
            Some(rx) => match rx.await {
                Ok(Ok(_)) => true,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "the scheduler's updates were not committed; retrying later");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    true
                }
                Err(_) => false,
            },
            None => true,
        }
    }
}
