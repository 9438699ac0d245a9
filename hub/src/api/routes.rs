//! The lanes' routing tables: `GET /api/v1/routes[?lane=L]` (what `rabble routes`
//! shows, problems included) and `GET /v1/traefik/{lane}`, the lane as Traefik's HTTP
//! provider reads it (`{"http": {"routers", "services", "middlewares"}}`, sorted, so
//! the bytes change only when the lane does).

use super::{AppState, not_found};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

#[derive(Debug, serde::Deserialize)]
pub struct RoutesQuery {
    lane: Option<String>,
}

pub async fn list(State(s): State<AppState>, Query(q): Query<RoutesQuery>) -> Response {
    let tables = s.routes.borrow().clone();
    match q.lane {
        None => Json(tables.as_ref()).into_response(),
        Some(l) => match tables.iter().find(|t| t.lane == l) {
            Some(t) => Json(vec![t]).into_response(),
            None => not_found(&format!("no lane {l:?} (lanes: {})", names(&tables))),
        },
    }
}

fn names(tables: &[rabble_shared::routes::LaneTable]) -> String {
    tables.iter().map(|t| t.lane.as_str()).collect::<Vec<_>>().join(", ")
}

pub async fn traefik(State(s): State<AppState>, Path(lane): Path<String>) -> Response {
    let tables = s.routes.borrow().clone();
    let Some(t) = tables.iter().find(|t| t.lane == lane) else {
        return not_found(&format!("no lane {lane:?} (lanes: {})", names(&tables)));
    };
    Json(serde_json::json!({
        "http": { "routers": t.routers, "services": t.services.iter().map(|(k, v)| (k, serde_json::json!({ "loadBalancer": v }))).collect::<std::collections::BTreeMap<_, _>>(), "middlewares": t.middlewares }
    }))
    .into_response()
}
