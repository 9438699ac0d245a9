//! Named volumes: `GET /api/v1/volumes`, `POST /api/v1/volumes` (a [`VolumeSpec`]),
//! `GET|DELETE /api/v1/volumes/<name>`. A name already taken by another spec is a 409, and
//! so is deleting a volume an allocation still uses. Writes go through the catalog writer.

use super::AppState;
use super::error::{bad_request, error, not_found};
use crate::catalog::{Catalog, Update};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rabble_core::catalog::volumes::VolumeUpdate;
use rabble_shared::support::clock::now_ms;
use rabble_shared::volume::{VolumeSpec, VolumeUser, VolumeView};

/// A volume with the allocations placed with it (wanted and not finished).
pub fn view(c: &Catalog, name: &str) -> Option<VolumeView> {
    let v = c.volumes.entries.get(name)?;
    let mut users = Vec::new();
    for a in c.work.allocs.values().filter(|a| a.holds_resources()) {
        let Some(job) = c.work.jobs.get(&a.job_id) else { continue };
        let Some(g) = job.spec.groups.iter().find(|g| g.name == a.group) else { continue };
        for vol in rabble_core::scheduler::volumes::csi(g).filter(|vol| vol.source == name) {
            users.push(VolumeUser {
                alloc: a.id.to_string(),
                job: format!("{}/{}", a.job_id, a.group),
                node: a.node.to_string(),
                read_only: vol.read_only,
            });
        }
    }
    Some(VolumeView { spec: v.spec.clone(), create_ms: v.create_ms, users })
}

pub async fn list(State(s): State<AppState>) -> Response {
    let c = s.catalog();
    let views: Vec<VolumeView> = c.volumes.entries.keys().filter_map(|n| view(&c, n)).collect();
    Json(views).into_response()
}

pub async fn show(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match view(&s.catalog(), &name) {
        Some(v) => Json(v).into_response(),
        None => not_found(&format!("no volume {name:?}")),
    }
}

pub async fn create(State(s): State<AppState>, body: Bytes) -> Response {
    let spec: VolumeSpec = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("volume: {e}")),
    };
    if let Err(e) = spec.validate() {
        return bad_request(&format!("volume: {e}"));
    }
    if let Some(v) = s.catalog().volumes.entries.get(&spec.name).filter(|v| v.spec != spec) {
        let msg = format!("volume {:?} exists as {}: delete it first", spec.name, v.spec.describe());
        return error(StatusCode::CONFLICT, msg);
    }
    let name = spec.name.clone();
    match s.commit(Update::Volume(VolumeUpdate::Create { spec, at_ms: now_ms() })).await {
        Ok(_) => match view(&s.catalog(), &name) {
            Some(v) => Json(v).into_response(),
            None => not_found(&format!("no volume {name:?}")),
        },
        Err(e) => e.into_response(),
    }
}

pub async fn delete(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    let Some(v) = view(&s.catalog(), &name) else { return not_found(&format!("no volume {name:?}")) };
    if !v.users.is_empty() {
        let users: Vec<String> = v.users.iter().map(|u| format!("{} on {}", u.job, u.node)).collect();
        return error(StatusCode::CONFLICT, format!("volume {name:?} is in use by {}", users.join(", ")));
    }
    match s.commit(Update::Volume(VolumeUpdate::Delete { name })).await {
        Ok(_) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}
