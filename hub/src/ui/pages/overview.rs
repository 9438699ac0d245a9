//! The overview: problems first (nodes down, checks failing, groups that cannot be
//! placed, certificates failing or expiring), then nodes with their bars, jobs by
//! status, services by health, lanes and their routers.

use super::super::layout::{Nav, badge, bar, page};
use super::{node_badge, node_views, pct};
use crate::api::AppState;
use crate::api::door::may_read;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use rabble_core::acl::Resource;
use rabble_shared::Status;
use rabble_shared::api::{JobView, NodeStatus, NodeView, ServiceView};

/// What the overview shows, gathered from the hub's views.
pub struct Overview {
    pub nodes: Vec<NodeView>,
    pub services: Vec<ServiceView>,
    pub jobs: Vec<JobView>,
    /// (lane, routers) per lane.
    pub lanes: Vec<(String, usize)>,
    /// Problems the scheduler and ACME report, in words.
    pub problems: Vec<String>,
}

pub fn gather(s: &AppState) -> Overview {
    let c = s.catalog();
    let mut services = c.service_views();
    services.retain(|v| may_read(Resource::Service, &v.name));
    let jobs = super::job_views(s);
    let mut problems = Vec::new();
    for j in &jobs {
        for g in &j.groups {
            if let Some(why) = &g.unplaced {
                problems.push(format!("job {} group {}: cannot place: {why}", j.id, g.name));
            }
        }
    }
    let certs = s.certs.borrow().clone();
    if may_read(Resource::Operator, "") {
        for c in &certs.certs {
            if let Some(e) = &c.error {
                problems.push(format!("certificate for {}: {e}", c.domains.join(", ")));
            } else if let Some(na) = c.not_after {
                let days = (na as i64 - (rabble_shared::support::clock::now_ms() / 1000) as i64) / 86_400;
                if days < 14 {
                    problems.push(format!("certificate for {} expires in {days} days", c.domains.join(", ")));
                }
            }
        }
    }
    let lanes = s.routes.borrow().iter().map(|t| (t.lane.clone(), t.routers.len())).collect();
    Overview { nodes: node_views(s), services, jobs, lanes, problems }
}

pub async fn show(State(s): State<AppState>, headers: HeaderMap) -> Response {
    page(&headers, "Overview", Nav::Overview, render(&gather(&s)))
}

pub fn render(o: &Overview) -> Markup {
    let down: Vec<&NodeView> = o.nodes.iter().filter(|n| n.status == NodeStatus::Down).collect();
    let draining = o.nodes.iter().filter(|n| n.drain_deadline_ms.is_some()).count();
    let up = o.nodes.iter().filter(|n| n.status == NodeStatus::Up).count();
    let mut failing = Vec::new();
    let (mut passing, mut warning, mut critical) = (0, 0, 0);
    for s in &o.services {
        for i in &s.instances {
            match i.status {
                Status::Passing | Status::Maintenance => passing += 1,
                Status::Warning => warning += 1,
                Status::Critical => critical += 1,
            }
            if i.status == Status::Critical && i.node_status != NodeStatus::Down {
                failing.push(i);
            }
        }
    }
    let count = |st: &str| o.jobs.iter().filter(|j| j.status == st).count();
    let any_problem = !down.is_empty() || !failing.is_empty() || !o.problems.is_empty();
    html! {
        h1 { "Overview" }
        section aria-labelledby="problems" {
            h2 #problems { "Problems" }
            @if any_problem {
                ul.problems {
                    @for n in &down {
                        li { (badge("bad", "down")) " node " a href={ "/ui/nodes/" (n.id) } { (n.id) } " " span.dim { "(" (n.reason) ")" } }
                    }
                    @for i in &failing {
                        li {
                            (badge("bad", "critical")) " service " a href={ "/ui/services#" (i.name) } { (i.name) }
                            " on " (i.node) " "
                            span.dim { (i.checks.iter().find(|c| c.status == Status::Critical).map(|c| c.output.as_str()).unwrap_or("")) }
                        }
                    }
                    @for p in &o.problems { li { (badge("warn", "problem")) " " (p) } }
                }
            } @else {
                p { (badge("ok", "all good")) " Nothing is down, failing or unplaceable." }
            }
        }
        div.cards {
            div.card { div.n { (up) " / " (o.nodes.len()) } div { "nodes up" } div.dim { (down.len()) " down, " (draining) " draining" } }
            div.card { div.n { (count("running")) } div { "jobs running" } div.dim { (count("pending")) " pending, " (count("dead")) " dead" } }
            div.card { div.n { (passing) } div { "instances passing" } div.dim { (warning) " warning, " (critical) " critical" } }
            div.card { div.n { (o.lanes.iter().map(|l| l.1).sum::<usize>()) } div { "routers" } div.dim { (o.lanes.len()) " lanes" } }
        }
        h2 { "Nodes" }
        div.scroll { table #nodes {
            thead { tr { th { "node" } th { "status" } th { "CPU" } th { "memory" } th.hide-small { "disk" } th.hide-small { "temp" } th { "services" } } }
            tbody {
                @for n in &o.nodes {
                    @let hb = n.heartbeat.as_ref().filter(|_| n.status != NodeStatus::Down);
                    tr {
                        td { a href={ "/ui/nodes/" (n.id) } { (n.id) } }
                        td { (node_badge(n)) }
                        td { @if let Some(h) = hb { (bar(f64::from(h.cpu_percent), "CPU")) } }
                        td { @if let Some(h) = hb { (bar(pct(h.memory_used_bytes, h.memory_total_bytes), "memory")) } }
                        td.hide-small { @if let Some(d) = hb.and_then(|h| h.disks.first()) { (bar(pct(d.used_bytes, d.total_bytes), "disk")) } }
                        td.hide-small { @if let Some(t) = hb.and_then(|h| h.temperature_c) { (format!("{t:.0} °C")) } }
                        td { (n.services) }
                    }
                }
            }
        } }
        h2 { "Jobs" }
        div.scroll { table {
            thead { tr { th { "job" } th { "type" } th { "status" } th { "groups" } } }
            tbody {
                @for j in &o.jobs {
                    tr {
                        td { a href={ "/ui/jobs/" (j.id) } { (j.id) } }
                        td { (format!("{:?}", j.kind).to_lowercase()) }
                        td { (job_badge(j)) }
                        td { @for g in &j.groups { (g.name) " " span.dim { (g.running) "/" (g.desired) } " " } }
                    }
                }
            }
        } }
        @if !o.lanes.is_empty() {
            h2 { "Lanes" }
            ul { @for (lane, routers) in &o.lanes { li { a href="/ui/routing" { (lane) } " — " (routers) " routers" } } }
        }
    }
}

/// A job's status as a badge.
pub fn job_badge(j: &JobView) -> Markup {
    match j.status.as_str() {
        "running" => badge("ok", "running"),
        "pending" => badge("warn", "pending"),
        other => badge("off", other),
    }
}
