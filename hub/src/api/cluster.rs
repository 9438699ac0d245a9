//! `GET /api/v1/cluster` (the hub cluster as this hub sees it) and
//! `POST /api/v1/cluster/remove` (`{"member": id|name|null}`: a member leaves; null is this
//! hub), and the leader and peers in Consul's words (`/v1/status/leader`, `/peers`).

use super::AppState;
use super::error::error;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rabble_shared::api::ClusterStatus;
use serde::Deserialize;

pub async fn status(State(s): State<AppState>) -> Json<ClusterStatus> {
    Json(match &s.cluster {
        Some(c) => crate::cluster::status::of(c),
        None => ClusterStatus { catalog_index: s.catalog().index, ..Default::default() },
    })
}

#[derive(Debug, Deserialize)]
pub struct Remove {
    member: Option<String>,
}

pub async fn remove(State(s): State<AppState>, Json(r): Json<Remove>) -> Response {
    let Some(c) = &s.cluster else {
        return error(StatusCode::CONFLICT, "this hub is not in a cluster");
    };
    let status = crate::cluster::status::of(c);
    let id = match r.member.as_deref() {
        None => c.id,
        Some(m) => match status.members.iter().find(|x| x.name == m || x.id.to_string() == m) {
            Some(x) => x.id,
            None => return error(StatusCode::NOT_FOUND, format!("no member {m:?}")),
        },
    };
    match c.remove(id).await {
        Ok(()) => Json(format!("member {id} removed from the cluster")).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// Consul's `/v1/status/leader`: the leader's cluster address, `""` when there is none.
pub fn leader(s: &AppState) -> String {
    match &s.cluster {
        Some(c) => c.leader().map(|(_, m)| m.addr).unwrap_or_default(),
        None => "127.0.0.1:8300".into(),
    }
}

/// Consul's `/v1/status/peers`: every voter's cluster address.
pub fn peers(s: &AppState) -> Vec<String> {
    match &s.cluster {
        Some(c) => crate::cluster::status::of(c).members.into_iter().filter(|m| m.voter).map(|m| m.addr).collect(),
        None => vec!["127.0.0.1:8300".into()],
    }
}
