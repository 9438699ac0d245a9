//! The HTTP API (JSON), served from the catalog's latest durable snapshot.
//!
//! `GET /api/v1/health`, `/api/v1/nodes`, `/api/v1/nodes/{id}`, `/api/v1/services`,
//! `/api/v1/services/{name}`, and `/api/v1/events` (newline-delimited JSON, live);
//! jobs and allocations in `jobs.rs`; a task's output in `alloc_logs.rs`; the routing
//! tables (and Traefik's HTTP provider) in `routes.rs`; Consul's API in `consul/`,
//! Nomad's in `nomad/`.

mod acl;
mod alerts;
pub(crate) mod alloc_logs;
mod cluster;
pub(crate) mod consul;
pub(crate) mod dispatch;
pub mod door;
mod error;
pub mod https;
pub(crate) mod jobs;
mod join;
mod nomad;
mod revoke;
mod routes;
pub mod serve;
pub mod vars;
mod volumes;

pub use error::WriteFailed;
use error::not_found;

use crate::catalog::Catalog;
use crate::catalog::writer::LiveMap;
use crate::scheduler::task::SchedStatus;
use crate::stats::Stats;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rabble_core::acl::Resource;
use rabble_shared::NodeId;
use rabble_shared::api::{Event, HubHealth, NodeStatus, NodeView};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AppState {
    /// Node credentials (the embedded broker requiring them): join tokens are minted here.
    pub auth: Option<Arc<crate::auth::Authenticator>>,
    /// The assignment key's public half (`hub_key`), for `rabble image --join`.
    pub hub_key: String,
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub live: LiveMap,
    pub events: broadcast::Sender<Event>,
    pub stats: Arc<Stats>,
    pub broker: String,
    pub mqtt_connected: Arc<AtomicBool>,
    /// Cancelled when the hub stops: live streams end so the server can close.
    pub stop: CancellationToken,
    /// The catalog writer's input (job submissions, drains).
    pub writer: crate::WriterTx,
    /// What the scheduler last concluded (unplaced groups, periodic launches).
    pub sched: watch::Receiver<Arc<SchedStatus>>,
    /// Task output sessions with the nodes.
    pub logs: Arc<crate::alloc_logs::LogHub>,
    /// The lanes' routing tables.
    pub routes: watch::Receiver<crate::routes::Tables>,
    /// What waiting allocations' templates wait for.
    pub template_waits: watch::Receiver<crate::render::Waits>,
    /// The data dir's sealing key (variables).
    pub seal: Arc<rabble_shared::support::seal::SealKey>,
    /// ACME certificates: what is wanted, held, failing (never a key).
    pub certs: watch::Receiver<crate::acme::Status>,
    /// The DNS server (its counters, for `/metrics`).
    pub dns: Arc<crate::dns::DnsServer>,
    /// Each node's lane proxy counters.
    pub proxy: crate::ingest::ProxyMap,
    /// The hub cluster, when this hub is a member of one.
    pub cluster: Option<crate::cluster::Cluster>,
    /// The rules a request without a token gets (hub.toml `[acl] anonymous`; never secrets).
    pub anonymous: rabble_core::acl::Authorizer,
    /// The data dir (where the ACL bootstrap's reset file is looked for).
    pub data_dir: std::path::PathBuf,
    /// What the alert API says alerts go to.
    pub alerting: Arc<Alerting>,
}

/// The alert configuration the API shows: the receivers' names, the UI's address.
#[derive(Debug, Default)]
pub struct Alerting {
    pub receivers: Vec<String>,
    pub ui_url: String,
}

/// The largest request body the API reads.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let api = layered(api_routes(&state), &state);
    // The UI's `/ui/api/` calls go to the API's router (which does not hold the UI: no cycle
    // that would keep the hub's state alive after it stops).
    let ui = layered(crate::ui::routes(api.clone()), &state);
    api.merge(ui)
}

/// Every request's limits and door, and the one error shape.
fn layered(routes: Router<AppState>, state: &AppState) -> Router {
    routes
        // Any body at most 1 MiB (a job file; KV values stop at Consul's 512 KiB in their handler).
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(state.clone(), door::door))
        .layer(axum::middleware::from_fn(error::one_shape))
        .with_state(state.clone())
}

fn api_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/nodes", get(nodes))
        .route("/api/v1/nodes/{id}", get(node))
        .route("/api/v1/services", get(services))
        .route("/api/v1/services/{name}", get(service))
        .route("/api/v1/events", get(events))
        .route("/api/v1/jobs", get(jobs::list).post(jobs::submit))
        .route("/api/v1/jobs/plan", post(jobs::plan))
        .route("/api/v1/jobs/{id}", get(jobs::show).delete(jobs::stop))
        .route("/api/v1/jobs/{id}/versions", get(jobs::versions))
        .route("/api/v1/allocations", get(jobs::allocations))
        .route("/api/v1/allocations/{id}", get(jobs::allocation))
        .route("/api/v1/allocations/{id}/logs", get(alloc_logs::logs))
        .route("/api/v1/allocations/{id}/restart", post(jobs::restart))
        .route("/api/v1/jobs/{id}/revert", post(jobs::revert))
        .route("/api/v1/jobs/{id}/dispatch", post(dispatch::native))
        .route("/api/v1/volumes", get(volumes::list).post(volumes::create))
        .route("/api/v1/volumes/{name}", get(volumes::show).delete(volumes::delete))
        .route("/api/v1/routes", get(routes::list))
        .route("/api/v1/certs", get(routes::certs))
        .route("/api/v1/cluster", get(cluster::status))
        .route("/api/v1/cluster/remove", post(cluster::remove))
        .route("/v1/vars", get(vars::list))
        .route("/v1/var/{*path}", get(vars::get).put(vars::put).delete(vars::delete))
        .route("/api/v2/alerts", get(alerts::alerts))
        .route("/api/v1/alerts", get(alerts::alerts))
        .route("/api/v2/silences", get(alerts::silences).post(alerts::add_silence))
        .route("/api/v1/silences", get(alerts::silences).post(alerts::add_silence))
        .route("/api/v2/silence/{id}", get(alerts::silence).delete(alerts::expire_silence))
        .route("/api/v1/silences/{id}", get(alerts::silence).delete(alerts::expire_silence))
        .route("/metrics", get(metrics))
        .route("/api/v1/prometheus/targets", get(prometheus_targets))
        .route("/v1/traefik", get(routes::traefik_all))
        .route("/v1/traefik/{lane}", get(routes::traefik))
        .route("/api/v1/nodes/{id}/drain", post(jobs::drain))
        .route("/api/v1/nodes/{id}/join", post(join::mint))
        .route("/api/v1/nodes/{id}/eligibility", post(jobs::eligibility))
        .route("/api/v1/nodes/{id}/forget", post(jobs::forget))
        .route("/api/v1/acl/bootstrap", post(acl::bootstrap))
        .route("/api/v1/acl/token/self", get(acl::token_self))
        .route("/api/v1/acl/tokens", get(acl::tokens).post(acl::create_token))
        .route("/api/v1/acl/tokens/{accessor}", get(acl::token).delete(acl::delete_token))
        .route("/api/v1/acl/policies", get(acl::policies))
        .route("/api/v1/acl/policies/{name}", get(acl::policy).put(acl::put_policy).delete(acl::delete_policy))
        .merge(consul::router(state.clone()))
        .merge(nomad::router())
        .fallback(|uri: axum::http::Uri| async move {
            if uri.path().starts_with("/v1/") {
                let msg = format!(
                    "Rabble does not serve {}; of Consul's API it serves {}; of Nomad's {}",
                    uri.path(),
                    consul::SERVED,
                    nomad::SERVED
                );
                return consul::error(StatusCode::NOT_FOUND, &msg);
            }
            not_found(
                "no such endpoint; see /api/v1/health, /api/v1/nodes, /api/v1/services, /api/v1/jobs, \
                 /api/v1/allocations, /api/v1/routes, /api/v1/events, /api/v1/prometheus/targets, /metrics, \
                 /v1/traefik/<lane>",
            )
        })
}

impl AppState {
    /// Sends one update to the catalog writer and waits until it is durable.
    pub async fn commit(
        &self,
        update: crate::catalog::Update,
    ) -> Result<crate::catalog::writer::Committed, WriteFailed> {
        use crate::catalog::writer::{Done, Input};
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Events say who: the token's accessor (never its secret), anonymous or local.
        let source = format!("api ({})", door::caller().who);
        let input = Input { source, update: Some(update), done: Done::Reply(tx) };
        let stopping = || WriteFailed(StatusCode::SERVICE_UNAVAILABLE, "the hub is stopping".into());
        self.writer.send(input).await.map_err(|_| stopping())?;
        match rx.await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(WriteFailed(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
            Err(_) => Err(stopping()),
        }
    }

    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.snapshot.borrow().clone()
    }

    pub(crate) fn with_live(&self, mut views: Vec<NodeView>) -> Vec<NodeView> {
        let now = tokio::time::Instant::now();
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for v in &mut views {
            if let Some(l) = live.get(&v.id) {
                v.heartbeat = l.heartbeat.clone();
                v.last_seen_ago_ms = Some(now.duration_since(l.last_seen).as_millis() as u64);
                if !l.heard && v.status == NodeStatus::Up {
                    v.status = NodeStatus::Unknown;
                    v.reason = "hub-restarted".into();
                }
            }
        }
        views
    }
}

async fn health(State(s): State<AppState>) -> Json<HubHealth> {
    let c = s.catalog();
    let up = c.nodes.values().filter(|n| n.status == NodeStatus::Up).count();
    Json(HubHealth {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        broker: s.broker.clone(),
        mqtt_connected: s.mqtt_connected.load(Ordering::Relaxed),
        nodes_up: up,
        nodes_down: c.nodes.len() - up,
        services: c.service_count(),
        instances: c.instance_count(),
        index: c.index,
        ingest: s.stats.snapshot(),
    })
}

async fn nodes(State(s): State<AppState>) -> Json<Vec<NodeView>> {
    let mut views = s.catalog().node_views();
    views.retain(|v| door::may_read(Resource::Node, v.id.as_str()));
    Json(s.with_live(views))
}

async fn node(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = NodeId::new(id.clone()) else { return not_found(&format!("no node {id:?}")) };
    let views = s.with_live(s.catalog().node_views());
    match views.into_iter().find(|v| v.id == id) {
        Some(v) => Json(v).into_response(),
        None => not_found(&format!("no node {id:?}")),
    }
}

async fn services(State(s): State<AppState>) -> Response {
    let mut views = s.catalog().service_views();
    views.retain(|v| door::may_read(Resource::Service, &v.name));
    Json(views).into_response()
}

async fn service(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match s.catalog().service_views().into_iter().find(|v| v.name == name) {
        Some(v) => Json(v).into_response(),
        None => not_found(&format!("no service {name:?}")),
    }
}

/// Prometheus' text format: the hub's figures and every node's.
async fn metrics(State(s): State<AppState>) -> Response {
    let c = s.catalog();
    let heartbeats = crate::catalog::writer::heartbeats(&s.live);
    let lanes = s.routes.borrow().clone();
    let ingest = s.stats.snapshot();
    let proxy = s.proxy.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let text = crate::metrics::render(&crate::metrics::Sources {
        proxy: &proxy,
        catalog: &c,
        heartbeats: &heartbeats,
        ingest: &ingest,
        dns: &s.dns.stats,
        lanes: &lanes,
        now_ms: rabble_shared::support::clock::now_ms(),
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Prometheus' http_sd: the instances tagged `prometheus.scrape=true`.
async fn prometheus_targets(State(s): State<AppState>) -> Response {
    Json(crate::metrics::targets(&s.catalog())).into_response()
}

async fn events(State(s): State<AppState>) -> Response {
    let rx = s.events.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let line = match rx.recv().await {
            Ok(ev) => serde_json::to_string(&ev).unwrap_or_default(),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                let error = format!("{n} events dropped: this reader was too slow");
                serde_json::to_string(&rabble_shared::api::ApiError { error }).unwrap_or_default()
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(format!("{line}\n")), rx))
    });
    let stream = futures_util::StreamExt::take_until(stream, s.stop.cancelled_owned());
    ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response()
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod gate_tests;
