//! The task restart policy on the node (Nomad's `restart`), pure: after an exit, run
//! again (after a delay) or give up. Tasks meant to run (service and system jobs'
//! main tasks, sidecars) are restarted whatever their exit code; tasks meant to finish
//! (batch work, lifecycle hooks that are not sidecars) are done when they exit 0.

use rabble_shared::job::{JobType, RestartMode, RestartPolicy};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExit {
    Restart(Duration),
    /// Out of attempts (mode `fail`): the task, and so its allocation, failed.
    Fail,
    /// A batch task that succeeded.
    Done,
}

/// Whether a task is meant to finish (rather than run until stopped).
pub fn finishes(kind: JobType, hook: Option<rabble_shared::job::Hook>, sidecar: bool) -> bool {
    !sidecar && (matches!(kind, JobType::Batch | JobType::Sysbatch) || hook.is_some())
}

/// Decides after an exit; `restarts` holds earlier restart times and is updated.
pub fn after_exit(
    finishes: bool,
    p: &RestartPolicy,
    success: bool,
    restarts: &mut VecDeque<Instant>,
    now: Instant,
) -> AfterExit {
    if success && finishes {
        return AfterExit::Done;
    }
    let interval = Duration::from_millis(p.interval_ms);
    while restarts.front().is_some_and(|t| now.duration_since(*t) >= interval) {
        restarts.pop_front();
    }
    let delay = Duration::from_millis(p.delay_ms);
    if (restarts.len() as u32) < p.attempts {
        restarts.push_back(now + delay);
        return AfterExit::Restart(delay);
    }
    match p.mode {
        RestartMode::Fail => AfterExit::Fail,
        // Wait for the oldest restart to leave the interval, then start counting anew.
        RestartMode::Delay => {
            let wait = restarts.front().map_or(delay, |t| (*t + interval).saturating_duration_since(now)).max(delay);
            restarts.clear();
            restarts.push_back(now + wait);
            AfterExit::Restart(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: u32, mode: RestartMode) -> RestartPolicy {
        RestartPolicy { attempts, interval_ms: 60_000, delay_ms: 1_000, mode }
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_per_interval_then_fail_or_delay() {
        let mut r = VecDeque::new();
        let p = policy(2, RestartMode::Fail);
        let t0 = Instant::now();
        assert_eq!(after_exit(false, &p, true, &mut r, t0), AfterExit::Restart(Duration::from_secs(1)));
        assert_eq!(after_exit(false, &p, false, &mut r, t0), AfterExit::Restart(Duration::from_secs(1)));
        assert_eq!(after_exit(false, &p, false, &mut r, t0), AfterExit::Fail);
        // After the interval, the count starts again.
        let later = t0 + Duration::from_secs(62);
        assert!(matches!(after_exit(false, &p, false, &mut r, later), AfterExit::Restart(_)));
        let mut r = VecDeque::new();
        let d = policy(1, RestartMode::Delay);
        after_exit(false, &d, false, &mut r, t0);
        let AfterExit::Restart(wait) = after_exit(false, &d, false, &mut r, t0 + Duration::from_secs(10)) else {
            panic!()
        };
        assert_eq!(wait, Duration::from_secs(51), "waits out the interval");
        assert_eq!(after_exit(true, &p, true, &mut VecDeque::new(), t0), AfterExit::Done);
        use rabble_shared::job::Hook;
        assert!(finishes(JobType::Service, Some(Hook::Prestart), false), "a prestart hook runs to completion");
        assert!(!finishes(JobType::Service, Some(Hook::Prestart), true), "a sidecar is meant to run");
        assert!(!finishes(JobType::Service, None, false) && finishes(JobType::Batch, None, false));
    }
}
