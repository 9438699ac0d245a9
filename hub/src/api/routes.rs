//! The lanes' routing tables: `GET /api/v1/routes[?lane=L]` (what `rabble routes`
//! shows, problems included) and `GET /v1/traefik/{lane}` (or `/v1/traefik`: every
//! lane, names prefixed with it), the lane as Traefik's HTTP provider reads it (`{"http": {"routers", "services", "middlewares"}}`, sorted, so
//! the bytes change only when the lane does). `GET /api/v1/certs`: the ACME certificates
//! the lanes want, when each expires or why it failed (never a key).

use super::{AppState, not_found};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

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

/// A lane as Traefik's dynamic configuration; `prefix` (`<lane>-`) keeps several lanes
/// apart in one configuration (references are renamed with their targets).
fn dynamic(t: &rabble_shared::routes::LaneTable, prefix: &str) -> serde_json::Value {
    use rabble_shared::routes::Middleware;
    let name = |n: &String| format!("{prefix}{n}");
    let routers: BTreeMap<String, serde_json::Value> = t
        .routers
        .iter()
        .map(|(n, r)| {
            let mut r = r.clone();
            r.service = name(&r.service);
            r.middlewares = r.middlewares.iter().map(name).collect();
            (name(n), serde_json::to_value(r).unwrap_or_default())
        })
        .collect();
    let services: BTreeMap<String, serde_json::Value> =
        t.services.iter().map(|(n, v)| (name(n), serde_json::json!({ "loadBalancer": v }))).collect();
    let middlewares: BTreeMap<String, serde_json::Value> = t
        .middlewares
        .iter()
        .map(|(n, m)| {
            let mut m = m.clone();
            if let Middleware::Chain(c) = &mut m {
                c.middlewares = c.middlewares.iter().map(name).collect();
            }
            (name(n), serde_json::to_value(m).unwrap_or_default())
        })
        .collect();
    // Traefik refuses an empty section ("cannot be a standalone element"): leave them out.
    let mut out = serde_json::Map::new();
    for (k, v) in [("routers", routers), ("services", services), ("middlewares", middlewares)] {
        if !v.is_empty() {
            out.insert(k.to_owned(), serde_json::to_value(v).unwrap_or_default());
        }
    }
    serde_json::Value::Object(out)
}

/// `{"http": ...}`, or `{}` when there is nothing (Traefik refuses an empty `http`).
fn with_http(http: serde_json::Value) -> serde_json::Value {
    if http.as_object().is_some_and(|m| m.is_empty()) {
        serde_json::json!({})
    } else {
        serde_json::json!({ "http": http })
    }
}

/// `GET /v1/traefik`: every lane in one configuration, names prefixed `<lane>-`, so one
/// Traefik serves them all (each router keeps its lane's entrypoints).
pub async fn traefik_all(State(s): State<AppState>) -> Response {
    let tables = s.routes.borrow().clone();
    let mut http = serde_json::Map::new();
    for part in ["routers", "services", "middlewares"] {
        let mut all = serde_json::Map::new();
        for t in tables.iter() {
            if let Some(serde_json::Value::Object(m)) = dynamic(t, &format!("{}-", t.lane)).get(part) {
                all.extend(m.clone());
            }
        }
        if !all.is_empty() {
            http.insert(part.to_owned(), serde_json::Value::Object(all));
        }
    }
    Json(with_http(serde_json::Value::Object(http))).into_response()
}

pub async fn traefik(State(s): State<AppState>, Path(lane): Path<String>) -> Response {
    let tables = s.routes.borrow().clone();
    let Some(t) = tables.iter().find(|t| t.lane == lane) else {
        return not_found(&format!("no lane {lane:?} (lanes: {})", names(&tables)));
    };
    Json(with_http(dynamic(t, ""))).into_response()
}

pub async fn certs(State(s): State<AppState>) -> Response {
    Json(s.certs.borrow().clone()).into_response()
}
