//! Becoming a member, at start: a hub that is one already goes on; otherwise it asks the
//! hubs in `retry_join` about themselves, joins the cluster one of them belongs to (through
//! its leader, adopting the cluster's secrets), or — when `bootstrap_expect` hubs (itself
//! included) answer and none belongs to a cluster — the one with the most data (then the
//! lowest id) starts the cluster alone and the others join it. So a single hub with data
//! becomes the first member in place, as k3s's `--cluster-init`.
//!
//! After that, `follow` keeps a follower's copy of the secrets in step with the leader's.

use super::net::Hello;
use super::server::{Join, JoinAnswer, hello_of};
use super::{Cluster, ClusterConfig, ClusterError, secrets};
use openraft::async_runtime::WatchReceiver as _;
use std::collections::BTreeMap;
use std::time::Duration;

/// Written once this member holds the cluster's secrets (it started the cluster, or
/// adopted the leader's when it joined).
const ADOPTED: &str = "cluster.secrets";
/// Written by `rabble-hub cluster reset`: the next start makes this hub a cluster of one
/// with its catalog, whatever its config says (`reset`).
pub const RESET: &str = "cluster.reset";
const RETRY: Duration = Duration::from_secs(1);

/// How this hub became a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Formed {
    /// It already was one (a restart).
    Member,
    /// It started the cluster.
    Started,
    /// It joined a running cluster.
    Joined,
}

fn is_voter(c: &Cluster) -> bool {
    c.raft.metrics().borrow_watched().membership_config.membership().voter_ids().any(|v| v == c.id)
}

/// Whether this member belongs to a cluster (has a membership at all).
pub(super) fn in_cluster(c: &Cluster) -> bool {
    c.raft.metrics().borrow_watched().membership_config.membership().nodes().next().is_some()
}

/// Returns once this hub is a member holding the cluster's secrets.
pub async fn form(c: &Cluster, cfg: &ClusterConfig) -> Result<Formed, ClusterError> {
    let adopted = cfg.data_dir.join(ADOPTED);
    let mut waiting_logged = false;
    let reset = cfg.data_dir.join(RESET);
    if reset.exists() {
        if !in_cluster(c) {
            tracing::warn!(id = c.id, "cluster reset: starting a new cluster of one with this hub's catalog");
            let members = BTreeMap::from([(c.id, c.me.clone())]);
            c.raft.initialize(members).await.map_err(|e| ClusterError::Raft(e.to_string()))?;
        }
        mark(cfg)?;
        std::fs::remove_file(&reset).map_err(|e| ClusterError::Secrets(format!("{}: {e}", reset.display())))?;
        return Ok(Formed::Started);
    }
    loop {
        if in_cluster(c) && !is_voter(c) {
            // Added as a learner, not yet made a voter (the leader was busy with another
            // change): ask again.
            if let Some((id, leader)) = c.leader().filter(|(id, _)| *id != c.id) {
                match join(c, id, &leader.addr, cfg).await {
                    Ok(()) => return Ok(Formed::Joined),
                    Err(e) => tracing::warn!(leader = %leader.name, error = %e, "becoming a voter failed; retrying"),
                }
            }
        } else if in_cluster(c) {
            if adopted.exists() {
                return Ok(Formed::Member);
            }
            // A member without the secrets (it stopped between being added and adopting
            // them): take them from the leader.
            if let Some((id, leader)) = c.leader().filter(|(id, _)| *id != c.id)
                && fetch_secrets(c, id, &leader.addr, cfg).await.is_ok()
            {
                return Ok(Formed::Joined);
            }
            if c.gate().leading() {
                mark(cfg)?;
                return Ok(Formed::Member);
            }
        } else {
            let me = hello_of(c);
            let mut answers: Vec<Hello> = Vec::new();
            for addr in cfg.retry_join.iter().filter(|a| **a != cfg.advertise) {
                match c.peers.hello(addr, &me).await {
                    Ok(h) if h.id != c.id => answers.push(h),
                    Ok(_) => {}
                    Err(e) => tracing::debug!(%addr, error = %e, "no answer from a would-be member"),
                }
            }
            if let Some((id, leader)) = answers.iter().find_map(|h| h.leader.clone().filter(|_| h.member_of_cluster)) {
                match join(c, id, &leader.addr, cfg).await {
                    Ok(()) => return Ok(Formed::Joined),
                    Err(e) => tracing::warn!(leader = %leader.name, error = %e, "joining the cluster failed; retrying"),
                }
            } else if answers.iter().all(|h| !h.member_of_cluster) && answers.len() + 1 >= cfg.bootstrap_expect {
                let best =
                    answers.iter().chain(std::iter::once(&me)).max_by_key(|h| (h.index, std::cmp::Reverse(h.id)));
                if best.is_some_and(|b| b.id == c.id) {
                    tracing::info!(
                        id = c.id,
                        index = me.index,
                        others = answers.len(),
                        "starting the hub cluster with this hub as its first member"
                    );
                    let members = BTreeMap::from([(c.id, c.me.clone())]);
                    c.raft.initialize(members).await.map_err(|e| ClusterError::Raft(e.to_string()))?;
                    mark(cfg)?;
                    return Ok(Formed::Started);
                }
            } else if !waiting_logged {
                waiting_logged = true;
                tracing::info!(
                    found = answers.len() + 1,
                    expect = cfg.bootstrap_expect,
                    retry_join = ?cfg.retry_join,
                    "waiting for hubs to form the cluster with"
                );
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

fn mark(cfg: &ClusterConfig) -> Result<(), ClusterError> {
    std::fs::write(cfg.data_dir.join(ADOPTED), b"")
        .map_err(|e| ClusterError::Secrets(format!("{}: {e}", cfg.data_dir.join(ADOPTED).display())))
}

async fn join(c: &Cluster, mut id: super::MemberId, addr: &str, cfg: &ClusterConfig) -> Result<(), ClusterError> {
    let mut addr = addr.to_owned();
    // At most a few redirections (a leader that just changed).
    for _ in 0..3 {
        let req = Join { id: c.id, member: c.me.clone() };
        let answer: JoinAnswer = c
            .peers
            .client(Some(id), &addr)
            .call("/cluster/join", &req, Duration::from_secs(60))
            .await
            .map_err(|e| ClusterError::Join(e.to_string()))?;
        match answer {
            JoinAnswer::Joined(s) => {
                adopt(cfg, &s)?;
                tracing::info!(leader = %addr, secrets = ?s, "joined the hub cluster");
                return Ok(());
            }
            JoinAnswer::Leader(Some((leader, m))) => (id, addr) = (leader, m.addr),
            JoinAnswer::Leader(None) => return Err(ClusterError::Join("the cluster has no leader yet".into())),
            JoinAnswer::Refused(why) => return Err(ClusterError::Join(why)),
        }
    }
    Err(ClusterError::Join("the leader kept changing".into()))
}

fn adopt(cfg: &ClusterConfig, s: &secrets::Secrets) -> Result<(), ClusterError> {
    secrets::write(&cfg.data_dir, s).map_err(|e| ClusterError::Secrets(e.to_string()))?;
    mark(cfg)
}

/// Asks the leader for the cluster's secrets, sending the digest of those this hub holds
/// (the leader answers with the files only when they differ); writes what changed.
async fn fetch_secrets(
    c: &Cluster,
    id: super::MemberId,
    addr: &str,
    cfg: &ClusterConfig,
) -> Result<Vec<String>, ClusterError> {
    let have = secrets::read(&cfg.data_dir).ok().filter(|_| cfg.data_dir.join(ADOPTED).exists()).map(|s| s.digest());
    let s: Option<secrets::Secrets> = c
        .peers
        .client(Some(id), addr)
        .call("/cluster/secrets", &have, Duration::from_secs(10))
        .await
        .map_err(|e| ClusterError::Secrets(e.to_string()))?;
    let Some(s) = s else { return Ok(Vec::new()) };
    let written = secrets::write(&cfg.data_dir, &s).map_err(|e| ClusterError::Secrets(e.to_string()))?;
    mark(cfg)?;
    Ok(written)
}

/// How often a follower asks the leader for secrets that changed (a node joined).
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// A follower's task: keeps its copy of the secrets in step with the leader's.
pub async fn follow(c: Cluster, cfg: ClusterConfig, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some((id, leader)) = c.leader().filter(|(id, _)| *id != c.id) else { continue };
        match fetch_secrets(&c, id, &leader.addr, &cfg).await {
            Ok(w) if !w.is_empty() => tracing::info!(files = ?w, "secrets updated from the leader"),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "secrets from the leader"),
        }
    }
}

/// `rabble-hub cluster reset`, with the hub stopped: sets the old Raft log aside and marks
/// the data dir so the next start makes this hub a cluster of one with its catalog — the
/// way back for a cluster that lost its quorum for good. Returns where the old log went.
pub fn reset(data_dir: &std::path::Path) -> Result<std::path::PathBuf, ClusterError> {
    let log = data_dir.join("raft.redb");
    let err = |e: &dyn std::fmt::Display| ClusterError::Log { path: log.clone(), error: e.to_string() };
    // Opening it takes redb's lock: a running hub holds it.
    match redb::Database::open(&log) {
        Ok(db) => drop(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(ClusterError::Log {
                path: log.clone(),
                error: "in use: stop the hub first (systemctl stop rabble-hub)".into(),
            });
        }
        Err(e) => return Err(err(&e)),
    }
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let aside = data_dir.join(format!("raft.redb.{secs}.old"));
    std::fs::rename(&log, &aside).map_err(|e| err(&e))?;
    std::fs::write(data_dir.join(RESET), b"").map_err(|e| err(&e))?;
    Ok(aside)
}
