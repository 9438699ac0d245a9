//! The hub cluster: hubs that replicate the catalog and take over from each other.
//!
//! Consensus is openraft's (`TypeConfig`): the writer's commits are the log
//! (`rabble_core::catalog::log::LogEntry`), every member applies them to its own redb
//! through the catalog's `Applier` (`machine`), and the log itself lives in `raft.redb`
//! (`logstore`). Members talk over mutual TLS made from the cluster key (`tls`): Raft's
//! RPCs, writes forwarded by followers, joins, and the secrets a leader needs (`server`,
//! `net`). `form` starts a cluster (`bootstrap_expect`) or joins one (`retry_join`).
//!
//! Only the leader acts (the broker nodes connect to, ingest, the scheduler, dispatch,
//! the publishers: `lib.rs` starts them when [`Gate`] says so); every member serves DNS
//! and reads from its replica, and forwards writes ([`Proposer`]).
//!
//! **Invariant:** a hub leads only from a fresh process — one that loses the leadership
//! stops (and is restarted as a follower), so the broker it leads with never holds
//! another term's retained state, and no leader-only task outlives its term.

pub mod config;
mod form;
pub mod logs;
mod logstore;
mod machine;
mod net;
mod secrets;
mod server;
pub mod status;
pub mod tls;

pub use form::{Formed, follow, form, reset};
pub use machine::Machine;

use crate::catalog::Catalog;
use crate::catalog::log::{EntryResult, LogEntry};
use crate::catalog::writer::CommitFailed;
use openraft::async_runtime::WatchReceiver as _;
use openraft::errors::{ClientWriteError, RaftError};
use openraft::{Config as RaftConfig, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A member's id: random at its first start, kept in `raft.redb`, never reused.
pub type MemberId = u64;

/// What the cluster knows of a member (replicated in the membership).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The hub's name (its host name unless configured).
    pub name: String,
    /// Where members reach it (`cluster_listen`, as others should dial it).
    pub addr: String,
    /// Its HTTP API, for `/v1/status/leader` and for operators.
    pub api: String,
    /// A witness votes and keeps the log, and runs nothing else.
    #[serde(default)]
    pub witness: bool,
}

openraft::declare_raft_types!(
    /// The hub cluster's Raft: the writer's entries, their results, members by id.
    pub TypeConfig:
        D = LogEntry,
        R = EntryResult,
        NodeId = MemberId,
        Node = Member,
);

pub type Raft = openraft::Raft<TypeConfig, Machine>;

/// How the cluster is set up (`[cluster]` in hub.toml).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub key: tls::ClusterKey,
    /// Where this hub listens for other members.
    pub listen: std::net::SocketAddr,
    /// How other members reach this hub (`listen` unless it is a wildcard address).
    pub advertise: String,
    /// Members (or would-be members) to find the cluster through.
    pub retry_join: Vec<String>,
    /// How many hubs a new cluster waits for before one of them starts it.
    pub bootstrap_expect: usize,
    pub name: String,
    pub witness: bool,
    /// Entries applied since the last snapshot before another is taken (Consul's
    /// `raft_snapshot_threshold`).
    pub snapshot_threshold: u64,
    /// Entries kept in the log behind a snapshot, so a member that was briefly away
    /// catches up from the log rather than a whole snapshot (Consul's `raft_trailing_logs`).
    pub trailing_logs: u64,
    pub data_dir: PathBuf,
    /// This hub's HTTP API, as members and operators should reach it.
    pub api: String,
}

/// Raft's timing for a LAN of small machines: a leader's heartbeat every 150 ms; a
/// follower that hears nothing for the leader's lease (the longest election timeout,
/// 1.2 s) and then its own election timeout (0.6–1.2 s) calls an election — a dead leader
/// is replaced in about 2 s (Consul's production advice is ~1 s timeouts). Pre-vote: a
/// member back from a partition does not depose a healthy leader.
pub fn raft_config(cfg: &ClusterConfig) -> RaftConfig {
    RaftConfig {
        cluster_name: "rabble".into(),
        heartbeat_interval: 150,
        election_timeout_min: 600,
        election_timeout_max: 1_200,
        install_snapshot_timeout: 10_000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_threshold),
        max_in_snapshot_log_to_keep: cfg.trailing_logs,
        enable_pre_vote: Some(true),
        ..RaftConfig::default()
    }
}

/// Whether this hub leads, as the tasks that act only on a leader see it.
#[derive(Debug, Clone)]
pub struct Gate(Option<watch::Receiver<bool>>);

impl Gate {
    /// A single hub: it always acts.
    pub fn always() -> Gate {
        Gate(None)
    }

    pub fn leading(&self) -> bool {
        self.0.as_ref().is_none_or(|l| *l.borrow())
    }

    /// Resolves once this hub leads.
    pub async fn until_leading(&mut self) {
        if let Some(l) = &mut self.0 {
            let _ = l.wait_for(|leading| *leading).await;
        }
    }

    /// Resolves once this hub, which led, no longer does (or its Raft stopped).
    pub async fn until_not_leading(&mut self) {
        match &mut self.0 {
            None => std::future::pending().await,
            Some(l) => drop(l.wait_for(|leading| !*leading).await),
        }
    }
}

/// Follows Raft's metrics into the leading flag the gates read.
async fn track_leading(raft: Raft, tx: watch::Sender<bool>, stop: tokio_util::sync::CancellationToken) {
    let mut metrics = raft.metrics();
    loop {
        let leading = metrics.borrow_watched().state == ServerState::Leader;
        tx.send_if_modified(|l| std::mem::replace(l, leading) != leading);
        tokio::select! {
            () = stop.cancelled() => return,
            changed = metrics.changed() => if changed.is_err() {
                tx.send_replace(false);
                return;
            },
        }
    }
}

/// A member of the cluster, running.
#[derive(Clone)]
pub struct Cluster {
    pub raft: Raft,
    pub id: MemberId,
    pub me: Member,
    peers: net::Peers,
    snapshot: watch::Receiver<Arc<Catalog>>,
    leading: watch::Receiver<bool>,
    /// When the leader was last heard from (its appends and heartbeats), on a follower.
    contact: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
    /// The log sessions with nodes, for followers' `alloc logs` (set once the hub has them).
    pub logs: logs::Slot,
}

/// A follower that has not heard from its leader for this long no longer counts on it
/// (with pre-vote, an isolated member never stops naming the leader it last knew).
pub const LEADER_SILENT: Duration = Duration::from_millis(3 * 1_200);

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("id", &self.id).field("me", &self.me).finish()
    }
}

impl Cluster {
    pub fn gate(&self) -> Gate {
        Gate(Some(self.leading.clone()))
    }

    pub fn proposer(&self) -> Proposer {
        Proposer { cluster: self.clone(), to_leader: None }
    }

    /// Whether this member leads, confirmed by a quorum now (ReadIndex): a member that
    /// restarts believing it led (its stored vote) is not taken at its word.
    pub async fn confirm_leading(&self) -> bool {
        let confirm = self.raft.ensure_linearizable(openraft::ReadPolicy::ReadIndex);
        matches!(tokio::time::timeout(Duration::from_secs(3), confirm).await, Ok(Ok(_)))
    }

    /// The leader, as this member knows it: itself, or one it heard from lately.
    pub fn leader(&self) -> Option<(MemberId, Member)> {
        let m = self.raft.metrics().borrow_watched().clone();
        let id = m.current_leader?;
        if id != self.id && self.last_contact().is_none_or(|ago| ago > LEADER_SILENT) {
            return None;
        }
        let member = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, member))
    }

    /// How long ago the leader was last heard from (none yet: `None`); zero on the leader.
    pub fn last_contact(&self) -> Option<Duration> {
        if self.gate().leading() {
            return Some(Duration::ZERO);
        }
        let at = *self.contact.lock().unwrap_or_else(|e| e.into_inner());
        at.map(|t| t.elapsed())
    }

    /// On the leader: how long since a quorum last acknowledged it (`None` before the first).
    pub fn quorum_silence(&self) -> Option<Duration> {
        use openraft::Instant as _;
        let m = self.raft.metrics().borrow_watched().clone();
        m.last_quorum_acked.map(|at| at.elapsed())
    }

    /// How many voters the cluster has.
    pub fn voters(&self) -> usize {
        self.raft.metrics().borrow_watched().membership_config.membership().voter_ids().count()
    }

    fn heard_from_leader(&self) {
        *self.contact.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokio::time::Instant::now());
    }
}

impl Cluster {
    /// Takes a member out of the cluster (through the leader).
    pub async fn remove(&self, id: MemberId) -> Result<(), String> {
        let Some((leader, m)) = self.leader() else { return Err("the cluster has no leader".into()) };
        if leader == self.id {
            return server::remove(self, id).await;
        }
        let answer: Result<(), String> = self
            .peers
            .client(Some(leader), &m.addr)
            .call("/cluster/leave", &id, Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        answer
    }
}

/// How long a write waits for a leader (an election) before it is refused.
const NO_LEADER_WAIT: Duration = Duration::from_secs(5);
/// How long a write waits to be committed (a leader cut off from the others never commits).
const COMMIT_WAIT: Duration = Duration::from_secs(5);

/// The writer's way into the cluster: propose on the leader, forward from a follower.
pub struct Proposer {
    cluster: Cluster,
    /// The connection forwarded writes go over, kept while the leader stays.
    to_leader: Option<(MemberId, net::Client)>,
}

impl Proposer {
    pub fn leading(&self) -> bool {
        self.cluster.gate().leading()
    }

    /// Commits `entry` through the cluster (here, or forwarded to the leader) and returns its
    /// result; this member's own copy may show it a moment later (the writer's replies wait).
    pub async fn propose(&mut self, entry: LogEntry) -> Result<EntryResult, CommitFailed> {
        let give_up = tokio::time::Instant::now() + NO_LEADER_WAIT;
        loop {
            let write = tokio::time::timeout(COMMIT_WAIT, self.cluster.raft.client_write(entry.clone()));
            let Ok(written) = write.await else {
                return Err(CommitFailed(format!(
                    "not confirmed by a majority of the hub cluster within {}s (is this hub cut off?); it may \
                     or may not be applied",
                    COMMIT_WAIT.as_secs()
                )));
            };
            let leader = match written {
                Ok(r) => return Ok(r.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => f.leader_node.zip(f.leader_id),
                Err(e) => return Err(CommitFailed(format!("the hub cluster: {e}"))),
            };
            match leader {
                Some((leader, id)) if id != self.cluster.id => {
                    if self.to_leader.as_ref().is_none_or(|(to, _)| *to != id) {
                        self.to_leader = Some((id, self.cluster.peers.client(Some(id), &leader.addr)));
                    }
                    let (_, client) = self.to_leader.as_mut().expect("set above");
                    return net::write(client, &leader, &entry).await;
                }
                _ if tokio::time::Instant::now() >= give_up => {
                    return Err(CommitFailed(format!(
                        "the hub cluster has no leader (no quorum for {}s: {})",
                        NO_LEADER_WAIT.as_secs(),
                        status::quorum_summary(&self.cluster.raft.metrics().borrow_watched())
                    )));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Tls(#[from] tls::ClusterTlsError),
    #[error("raft log {path}: {error}")]
    Log { path: PathBuf, error: String },
    #[error("cluster listen address {addr}: {error}")]
    Bind { addr: std::net::SocketAddr, error: std::io::Error },
    #[error("raft: {0}")]
    Raft(String),
    #[error("joining the cluster: {0}")]
    Join(String),
    #[error("secrets from the leader: {0}")]
    Secrets(String),
}

/// Starts this member: its log, its state machine over `applier`, Raft, and the server
/// other members talk to (spawned into `topo`). Forming or joining is `form`'s.
pub async fn start(
    cfg: &ClusterConfig,
    applier: crate::catalog::apply::Applier,
    topo: &mut crate::topology::Topology,
) -> Result<Cluster, ClusterError> {
    let tls = tls::ClusterTls::new(&cfg.key)?;
    let (log, id) = logstore::LogStore::open(&cfg.data_dir)?;
    let snapshot = applier.snapshot.subscribe();
    let machine = Machine::new(applier, cfg.data_dir.join(form::RESET).exists()).await?;
    let peers = net::Peers::new(&tls, Some(cfg.listen.ip()).filter(|ip| !ip.is_unspecified()))?;
    let config = Arc::new(raft_config(cfg).validate().map_err(|e| ClusterError::Raft(e.to_string()))?);
    let raft = openraft::Raft::new(id, config, peers.clone(), log, machine)
        .await
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
    let me = Member { name: cfg.name.clone(), addr: cfg.advertise.clone(), api: cfg.api.clone(), witness: cfg.witness };
    let (leading_tx, leading) = watch::channel(false);
    let cluster = Cluster {
        raft: raft.clone(),
        id,
        me,
        peers,
        snapshot,
        leading,
        contact: Default::default(),
        logs: Default::default(),
    };
    topo.spawn("cluster-role", crate::topology::Stage::Doors, |stop| track_leading(raft, leading_tx, stop));
    let tcp = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|error| ClusterError::Bind { addr: cfg.listen, error })?;
    server::spawn(tcp, tls.server()?, cluster.clone(), cfg.data_dir.clone(), topo);
    tracing::info!(id, listen = %cfg.listen, advertise = %cfg.advertise, "hub cluster member started");
    Ok(cluster)
}

/// A witness's task: whenever it leads, it transfers the leadership to the hub that is
/// furthest along (a witness may win an election — it may hold entries a surviving hub
/// lacks — but runs nothing a leader must).
pub async fn hand_on_leadership(c: Cluster, stop: tokio_util::sync::CancellationToken) {
    let mut gate = c.gate();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = gate.until_leading() => {}
        }
        let m = c.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let to = membership
            .voter_ids()
            .filter(|id| *id != c.id && membership.get_node(id).is_some_and(|n| !n.witness))
            .max_by_key(|id| m.replication.as_ref().and_then(|r| r.get(id).cloned().flatten()).map(|l| l.index));
        if let Some(to) = to {
            tracing::info!(to, "the witness leads: handing the leadership to a hub");
            if let Err(e) = c.raft.trigger().transfer_leader(to).await {
                tracing::warn!(error = %e, "handing on the leadership");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
