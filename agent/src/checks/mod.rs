//! Running health checks: each check is its own task on its own schedule, so a slow
//! check never delays another; results flow to the agent's core over a bounded channel.

mod http;
pub(crate) mod script;

use crate::services::{CheckDef, Probe};
use rabble_shared::msg::{MAX_CHECK_OUTPUT, truncate_utf8};
use rabble_shared::{Status, TopicId};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// One check run's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub output: String,
}

impl Outcome {
    pub fn new(status: Status, output: impl Into<String>) -> Outcome {
        let mut output = output.into();
        truncate_utf8(&mut output, MAX_CHECK_OUTPUT);
        Outcome { status, output }
    }
}

/// A result as sent to the core; `generation` lets the core drop results of checks
/// that were replaced by a reload.
#[derive(Debug)]
pub struct CheckResult {
    pub key: TopicId,
    pub generation: u64,
    pub outcome: Outcome,
}

/// Runs `probe` once, within `timeout`.
pub async fn run_once(probe: &Probe, timeout: Duration, allow_scripts: bool) -> Outcome {
    match probe {
        Probe::Http { url, method, headers, body, tls_skip_verify } => {
            http::check(url, method, headers, body, *tls_skip_verify, timeout).await
        }
        Probe::Tcp { addr } => tcp(addr, timeout).await,
        Probe::Script { args } if allow_scripts => script::check(args, timeout).await,
        Probe::Script { .. } => Outcome::new(
            Status::Critical,
            "script checks are disabled on this agent (enable with --enable-script-checks)",
        ),
        Probe::Ttl { .. } => Outcome::new(Status::Critical, "TTL checks are not run"),
    }
}

async fn tcp(addr: &str, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Outcome::new(Status::Passing, format!("TCP connect {addr}: Success")),
        Ok(Err(e)) => Outcome::new(Status::Critical, format!("dial tcp {addr}: {e}")),
        Err(_) => Outcome::new(Status::Critical, format!("dial tcp {addr}: timed out after {timeout:?}")),
    }
}

/// Starts a check's task; it runs first after a short stagger, then every interval on
/// a fixed schedule (no drift; a run longer than the interval skips ticks rather than
/// bunching them). TTL checks have no task and return `None`.
pub fn spawn(
    def: &CheckDef,
    generation: u64,
    allow_scripts: bool,
    tx: mpsc::Sender<CheckResult>,
) -> Option<JoinHandle<()>> {
    if matches!(def.probe, Probe::Ttl { .. }) {
        return None;
    }
    let (key, probe, interval, timeout) = (def.key.clone(), def.probe.clone(), def.interval, def.timeout);
    let stagger = Duration::from_millis(fastrand::u64(0..=interval.as_millis().min(500) as u64));
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(Instant::now() + stagger, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            let outcome = run_once(&probe, timeout, allow_scripts).await;
            if tx.send(CheckResult { key: key.clone(), generation, outcome }).await.is_err() {
                return; // the core is gone
            }
        }
    }))
}

#[cfg(test)]
mod tests;
