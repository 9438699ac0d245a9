//! What a member answers other members, on `cluster_listen`, over the cluster's mutual
//! TLS only: Raft's RPCs (`/raft/...`), and the cluster's own calls — `hello` (who are
//! you, are you in a cluster), `write` (a follower's forwarded write, committed by the
//! leader), `join`, `leave`, `secrets`. A call for another member id is refused (421).

use super::net::{Hello, TO};
use super::secrets::{self, Secrets};
use super::{Cluster, Member, MemberId, TypeConfig};
use crate::catalog::log::{EntryResult, LogEntry};
use crate::topology::{Stage, Topology};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use openraft::Snapshot;
use openraft::alias::{SnapshotMetaOf, VoteOf};
use openraft::async_runtime::WatchReceiver as _;
use openraft::errors::RaftError;
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

/// The largest call a member takes (a snapshot of a big catalog).
const MAX_BODY: usize = 256 * 1024 * 1024;

#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) cluster: Cluster,
    data_dir: Arc<PathBuf>,
}

/// A hub asking to join: who it is.
#[derive(Debug, Serialize, Deserialize)]
pub struct Join {
    pub id: MemberId,
    pub member: Member,
}

/// The leader's answer to a join: the cluster's secrets (the joiner adopts them).
#[derive(Debug, Serialize, Deserialize)]
pub enum JoinAnswer {
    Joined(Secrets),
    /// Not the leader: ask this one.
    Leader(Option<(MemberId, Member)>),
    Refused(String),
}

pub fn spawn(
    tcp: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    cluster: Cluster,
    data_dir: PathBuf,
    topo: &mut Topology,
) {
    let ctx = Ctx { cluster, data_dir: Arc::new(data_dir) };
    let app = Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/pre-vote", post(pre_vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/transfer-leader", post(transfer_leader))
        .route("/cluster/hello", post(hello))
        .route("/cluster/write", post(write))
        .route("/cluster/join", post(join))
        .route("/cluster/leave", post(leave))
        .route("/cluster/secrets", post(get_secrets))
        .route("/cluster/logs", post(super::logs::serve))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), for_me))
        .with_state(ctx);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let stop = topo.token(Stage::Doors);
    let (listener, accepting) = crate::api::https::listen_with(tcp, move || acceptor.clone(), stop);
    topo.spawn("cluster-accept", Stage::Doors, |_| accepting);
    topo.spawn("cluster-server", Stage::Doors, |stop| crate::api::serve::serve(listener, app, stop));
}

/// Refuses a call addressed to another member (its address changed hands).
async fn for_me(State(ctx): State<Ctx>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let to = req.headers().get(TO).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !to.is_empty() && to != ctx.cluster.id.to_string() {
        let why = format!("this is member {}, not {to}", ctx.cluster.id);
        return (StatusCode::MISDIRECTED_REQUEST, why).into_response();
    }
    next.run(req).await
}

async fn append(State(ctx): State<Ctx>, Json(req): Json<AppendEntriesRequest<TypeConfig>>) -> Response {
    let answer = ctx.cluster.raft.append_entries(req).await;
    if matches!(&answer, Ok(r) if r.is_success()) {
        ctx.cluster.heard_from_leader();
    }
    Json(answer).into_response()
}

async fn vote(State(ctx): State<Ctx>, Json(req): Json<VoteRequest<TypeConfig>>) -> Response {
    Json(ctx.cluster.raft.vote(req).await).into_response()
}

async fn pre_vote(State(ctx): State<Ctx>, Json(req): Json<VoteRequest<TypeConfig>>) -> Response {
    Json(ctx.cluster.raft.pre_vote(req).await).into_response()
}

async fn snapshot(
    State(ctx): State<Ctx>,
    Json((vote, meta, data)): Json<(VoteOf<TypeConfig>, SnapshotMetaOf<TypeConfig>, Bytes)>,
) -> Response {
    tracing::info!(bytes = data.len(), last = ?meta.last_log_id, "received a catalog snapshot, installing it");
    let snap = Snapshot { meta, snapshot: Cursor::new(data.to_vec()) };
    let r = ctx.cluster.raft.install_full_snapshot(vote, snap).await.map_err(RaftError::<TypeConfig>::Fatal);
    Json(r).into_response()
}

async fn transfer_leader(State(ctx): State<Ctx>, Json(req): Json<TransferLeaderRequest<TypeConfig>>) -> Response {
    Json(ctx.cluster.raft.handle_transfer_leader(req).await).into_response()
}

pub fn hello_of(cluster: &Cluster) -> Hello {
    Hello {
        id: cluster.id,
        member: cluster.me.clone(),
        member_of_cluster: super::form::in_cluster(cluster),
        leader: cluster.leader(),
        index: cluster.snapshot.borrow().index,
    }
}

async fn hello(State(ctx): State<Ctx>, Json(_from): Json<Hello>) -> Json<Hello> {
    Json(hello_of(&ctx.cluster))
}

async fn write(State(ctx): State<Ctx>, Json(entry): Json<LogEntry>) -> Json<Result<EntryResult, String>> {
    Json(ctx.cluster.raft.client_write(entry).await.map(|r| r.data).map_err(|e| e.to_string()))
}

async fn join(State(ctx): State<Ctx>, Json(j): Json<Join>) -> Json<JoinAnswer> {
    let c = &ctx.cluster;
    if !c.gate().leading() {
        return Json(JoinAnswer::Leader(c.leader()));
    }
    let m = c.raft.metrics().borrow_watched().clone();
    let known = m.membership_config.membership().voter_ids().any(|v| v == j.id);
    if !known {
        tracing::info!(id = j.id, name = %j.member.name, addr = %j.member.addr, "a hub joins the cluster");
        if let Err(e) = c.raft.add_learner(j.id, j.member.clone(), true).await {
            return Json(JoinAnswer::Refused(format!("adding {} as a learner: {e}", j.member.name)));
        }
        // Another member's change may be in progress: a few tries before giving up.
        let mut tries = 0;
        while let Err(e) =
            c.raft.change_membership(openraft::ChangeMembers::AddVoterIds(BTreeSet::from([j.id])), false).await
        {
            tries += 1;
            if tries == 10 {
                return Json(JoinAnswer::Refused(format!("making {} a voter: {e}", j.member.name)));
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
    match secrets::read(&ctx.data_dir) {
        Ok(s) => Json(JoinAnswer::Joined(s)),
        Err(e) => Json(JoinAnswer::Refused(format!("the leader cannot read its secrets: {e}"))),
    }
}

async fn leave(State(ctx): State<Ctx>, Json(id): Json<MemberId>) -> Json<Result<(), String>> {
    Json(remove(&ctx.cluster, id).await)
}

/// On the leader: `id` stops voting, then leaves the membership.
pub async fn remove(c: &Cluster, id: MemberId) -> Result<(), String> {
    if !c.gate().leading() {
        return Err("not the leader".into());
    }
    let gone = BTreeSet::from([id]);
    let voters = c.raft.metrics().borrow_watched().membership_config.membership().voter_ids().any(|v| v == id);
    if voters {
        c.raft
            .change_membership(openraft::ChangeMembers::RemoveVoters(gone.clone()), false)
            .await
            .map_err(|e| e.to_string())?;
    }
    c.raft.change_membership(openraft::ChangeMembers::RemoveNodes(gone), false).await.map_err(|e| e.to_string())?;
    tracing::info!(id, "member removed from the cluster");
    Ok(())
}

/// The secrets, unless the caller already has them (`have`: its digest; `None` then).
async fn get_secrets(State(ctx): State<Ctx>, Json(have): Json<Option<String>>) -> Response {
    if !ctx.cluster.gate().leading() {
        return (StatusCode::CONFLICT, "not the leader").into_response();
    }
    match secrets::read(&ctx.data_dir) {
        Ok(s) if have.is_some_and(|d| d == s.digest()) => Json(None::<secrets::Secrets>).into_response(),
        Ok(s) => Json(Some(s)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
