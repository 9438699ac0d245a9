//! The UI's pages: each reads the catalog snapshot (and the live heartbeats) through the
//! API's own views, keeps what the caller may read, and renders with maud. Rendering is a
//! pure function of views and permissions (`render` fns), so tests and the benchmark call
//! it without a server.

pub mod acl;
pub mod alloc;
pub mod jobs;
pub mod login;
pub mod nodes;
pub mod overview;
pub mod stores;
#[cfg(test)]
mod tests;

use crate::api::AppState;
use crate::api::door::{caller, may_read};
use axum::Router;
use axum::routing::get;
use rabble_core::acl::{Cap, Need, Resource};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/", get(overview::show))
        .route("/ui/nodes", get(nodes::list))
        .route("/ui/nodes/{id}", get(nodes::detail))
        .route("/ui/jobs", get(jobs::list))
        .route("/ui/jobs/run", get(jobs::editor))
        .route("/ui/jobs/{id}", get(jobs::detail))
        .route("/ui/allocations/{id}", get(jobs::allocation))
        .route("/ui/services", get(stores::services))
        .route("/ui/routing", get(stores::routing))
        .route("/ui/kv", get(stores::kv))
        .route("/ui/vars", get(stores::vars))
        .route("/ui/acl", get(acl::show))
}

/// Whether the caller may `cap` on `name` of `resource` (a button is offered only then).
pub fn may(resource: Resource, cap: Cap, name: &str) -> bool {
    caller().authorizer.allows(&Need::new(resource, cap, name))
}

/// The catalog's node views with their live heartbeats, those the caller may read.
pub fn node_views(s: &AppState) -> Vec<rabble_shared::api::NodeView> {
    let mut v = s.catalog().node_views();
    v.retain(|n| may_read(Resource::Node, n.id.as_str()));
    s.with_live(v)
}

/// Every job the caller may read, as the API shows it (without allocations), by id.
pub fn job_views(s: &AppState) -> Vec<rabble_shared::api::JobView> {
    let c = s.catalog();
    let sched = s.sched.borrow().clone();
    c.work
        .jobs
        .keys()
        .filter(|id| may_read(Resource::Job, id))
        .filter_map(|id| crate::api::jobs::job_view(&c, &sched, id, false))
        .collect()
}

/// Percent of `used` in `total` (0 when the total is unknown).
pub fn pct(used: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { used as f64 * 100.0 / total as f64 }
}

/// A node's status as a badge: up, down, unknown, draining.
pub fn node_badge(n: &rabble_shared::api::NodeView) -> maud::Markup {
    use rabble_shared::api::NodeStatus::*;
    match n.status {
        Up if n.drain_deadline_ms.is_some() => super::layout::badge("warn", "draining"),
        Up if !n.eligible => super::layout::badge("warn", "ineligible"),
        Up => super::layout::badge("ok", "up"),
        Down => super::layout::badge("bad", "down"),
        Unknown => super::layout::badge("off", "unknown"),
    }
}

/// A health status as a badge.
pub fn status_badge(s: rabble_shared::Status) -> maud::Markup {
    use rabble_shared::Status::*;
    match s {
        Passing => super::layout::badge("ok", "passing"),
        Warning => super::layout::badge("warn", "warning"),
        Critical => super::layout::badge("bad", "critical"),
        Maintenance => super::layout::badge("off", "maintenance"),
    }
}

/// An allocation's client status as a badge.
pub fn alloc_badge(a: &rabble_shared::alloc::Allocation) -> maud::Markup {
    use rabble_shared::alloc::ClientStatus::*;
    let kind = match a.client_status {
        Running => "ok",
        Pending => "warn",
        Complete => "off",
        Failed | Lost => "bad",
    };
    super::layout::badge(kind, a.client_status.as_str())
}
