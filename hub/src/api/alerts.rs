//! Alerts and silences, as Alertmanager's v2 API serves them (so `amtool` and Grafana's
//! Alertmanager data source read and silence Rabble's alerts unchanged), under
//! `/api/v2/...` and again under `/api/v1/...`: `GET alerts` (what fires, and whether it
//! is sent or held back), `GET|POST silences`, `GET|DELETE silence/{id}`. Silences are
//! written through the writer; every hub of a cluster answers from its catalog.

use super::AppState;
use super::error::{bad_request, error, not_found};
use crate::catalog::Update;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rabble_core::alert::book::{AlertUpdate, alert_views, silence_from, silence_view};
use rabble_core::alert::group::Matcher;
use rabble_shared::alerts::{PostableSilence, SilenceCreated};
use rabble_shared::support::clock::now_ms;

/// `filter=<matcher>` (repeated) and the `active` / `silenced` / `inhibited` switches.
struct Filter {
    matchers: Vec<Matcher>,
    active: bool,
    silenced: bool,
    inhibited: bool,
}

fn filter(q: Option<&str>) -> Result<Filter, String> {
    let mut f = Filter { matchers: Vec::new(), active: true, silenced: true, inhibited: true };
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = rabble_shared::routes::rule::percent_decode(&v.replace('+', " "));
        let on = || v != "false";
        match k {
            "filter" => f.matchers.push(Matcher::parse(v.trim_matches(['{', '}']))?),
            "active" => f.active = on(),
            "silenced" => f.silenced = on(),
            "inhibited" => f.inhibited = on(),
            _ => {}
        }
    }
    Ok(f)
}

pub async fn alerts(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let f = match filter(q.as_deref()) {
        Ok(f) => f,
        Err(e) => return bad_request(&e),
    };
    let mut views = alert_views(&s.catalog().alerts, &s.alerting.receivers, &s.alerting.ui_url, now_ms());
    views.retain(|a| {
        let silenced = !a.status.silenced_by.is_empty();
        let inhibited = !a.status.inhibited_by.is_empty();
        f.matchers.iter().all(|m| m.matches(&a.labels))
            && (f.silenced || !silenced)
            && (f.inhibited || !inhibited)
            && (f.active || silenced || inhibited)
    });
    Json(views).into_response()
}

pub async fn silences(State(s): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let f = match filter(q.as_deref()) {
        Ok(f) => f,
        Err(e) => return bad_request(&e),
    };
    let now = now_ms();
    let catalog = s.catalog();
    // Matched as Alertmanager does: a filter matches a silence that has that exact matcher.
    let mut out: Vec<_> = catalog
        .alerts
        .silences
        .values()
        .filter(|x| f.matchers.iter().all(|m| x.matchers.contains(m)))
        .map(|x| silence_view(x, now))
        .collect();
    // Active first, then pending, then expired; newest end first within each.
    let rank = |st: &str| match st {
        "active" => 0,
        "pending" => 1,
        _ => 2,
    };
    out.sort_by(|a, b| rank(&a.status.state).cmp(&rank(&b.status.state)).then(b.ends_at.cmp(&a.ends_at)));
    Json(out).into_response()
}

pub async fn silence(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.catalog().alerts.silences.get(&id) {
        Some(x) => Json(silence_view(x, now_ms())).into_response(),
        None => not_found(&format!("no silence {id}")),
    }
}

pub async fn add_silence(State(s): State<AppState>, Json(p): Json<PostableSilence>) -> Response {
    let now = now_ms();
    let id = match p.id.clone().filter(|i| !i.is_empty()) {
        // Alertmanager: updating a silence that is not there is an error.
        Some(id) if !s.catalog().alerts.silences.contains_key(&id) => return not_found(&format!("no silence {id}")),
        Some(id) => id,
        None => match rabble_shared::support::join::new_token() {
            Ok(a) => format!("{}-{}-{}-{}-{}", &a[0..8], &a[8..12], &a[12..16], &a[16..20], &a[20..32]),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
    };
    let silence = match silence_from(p, id.clone(), now) {
        Ok(x) => x,
        Err(e) => return bad_request(&e),
    };
    match s.commit(Update::Alert(AlertUpdate::Silence(silence))).await {
        Ok(_) => Json(SilenceCreated { silence_id: id }).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn expire_silence(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    if !s.catalog().alerts.silences.contains_key(&id) {
        return not_found(&format!("no silence {id}"));
    }
    match s.commit(Update::Alert(AlertUpdate::Expire { id, at_ms: now_ms() })).await {
        Ok(_) => Json(serde_json::json!({})).into_response(),
        Err(e) => e.into_response(),
    }
}
