//! The overview: problems first (nodes down, checks failing, groups that cannot be
//! placed, certificates failing or expiring), the alerts firing (sent, silenced or
//! inhibited; silence one for 2 h) and the silences, then nodes with their bars, jobs by
//! status, services by health, lanes and their routers.

use super::super::layout::{Nav, badge, bar, page};
use super::{may, node_badge, node_views, pct};
use crate::api::AppState;
use crate::api::door::may_read;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use rabble_core::acl::{Cap, Resource};
use rabble_shared::Status;
use rabble_shared::alerts::{GettableAlert, GettableSilence};
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
    /// Alerts firing and silences not ended (for a caller with operator read).
    pub alerts: Vec<GettableAlert>,
    pub silences: Vec<GettableSilence>,
    /// Whether the caller may silence.
    pub may_silence: bool,
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
    let (mut alerts, mut silences) = (Vec::new(), Vec::new());
    if may_read(Resource::Operator, "") {
        let now = rabble_shared::support::clock::now_ms();
        alerts = rabble_core::alert::book::alert_views(&c.alerts, &s.alerting.receivers, &s.alerting.ui_url, now);
        silences = c.alerts.live_silences(now).iter().map(|x| rabble_core::alert::book::silence_view(x, now)).collect();
    }
    let may_silence = may(Resource::Operator, Cap::Write, "");
    Overview { nodes: node_views(s), services, jobs, lanes, problems, alerts, silences, may_silence }
}

/// The alerts firing (each with its state, and a 2-hour silence for an operator) and the
/// silences in force.
fn alerts(o: &Overview) -> Markup {
    html! {
        @if !o.alerts.is_empty() || !o.silences.is_empty() {
            section aria-labelledby="alerts" {
                h2 #alerts { "Alerts" }
                div.scroll { table {
                    thead { tr { th { "alert" } th { "about" } th { "since" } th { "state" } th { "summary" } @if o.may_silence { th {} } } }
                    tbody {
                        @for a in &o.alerts {
                            @let about: Vec<String> = a.labels.iter().filter(|(k, _)| !matches!(k.as_str(), "alertname" | "severity")).map(|(k, v)| format!("{k}={v}")).collect();
                            tr {
                                td { (a.labels.get("alertname").map_or("", String::as_str)) }
                                td { (about.join(" ")) }
                                td.dim { (a.starts_at.get(..16).unwrap_or("").replace('T', " ")) }
                                td {
                                    @if !a.status.silenced_by.is_empty() { (badge("warn", "silenced")) }
                                    @else if !a.status.inhibited_by.is_empty() { (badge("warn", "inhibited")) }
                                    @else if a.labels.get("severity").is_some_and(|s| s == "critical") { (badge("bad", "critical")) }
                                    @else { (badge("warn", "warning")) }
                                }
                                td { (a.annotations.get("summary").map_or("", String::as_str)) }
                                @if o.may_silence {
                                    td { @if a.status.state == "active" {
                                        form data-api="/api/v2/silences" data-body="json" {
                                            input type="hidden" name="matchers" data-type="json" value=(serde_json::to_string(&matchers(a)).unwrap_or_default());
                                            input type="hidden" name="startsAt" data-type="in-ms" value="0";
                                            input type="hidden" name="endsAt" data-type="in-ms" value="7200000";
                                            input type="hidden" name="createdBy" value="web UI";
                                            input type="hidden" name="comment" value="silenced from the overview";
                                            button type="submit" { "Silence 2 h" }
                                        }
                                    } }
                                }
                            }
                        }
                    }
                } }
                @for x in &o.silences {
                    p.dim {
                        "Silenced until " (x.ends_at.get(..16).unwrap_or("").replace('T', " ")) " UTC: "
                        (x.matchers.iter().filter_map(|m| rabble_core::alert::group::Matcher::from_api(m).ok()).map(|m| m.to_string()).collect::<Vec<_>>().join(", "))
                        " — " (x.created_by)
                        @if o.may_silence {
                            " "
                            form.inline data-api={ "/api/v2/silence/" (x.id) } data-method="DELETE" { button type="submit" { "End" } }
                        }
                    }
                }
            }
        }
    }
}

/// The matchers that silence exactly this alert: its labels, each equal.
fn matchers(a: &GettableAlert) -> Vec<rabble_shared::alerts::ApiMatcher> {
    a.labels
        .iter()
        .map(|(k, v)| rabble_shared::alerts::ApiMatcher {
            name: k.clone(),
            value: v.clone(),
            is_regex: false,
            is_equal: true,
        })
        .collect()
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
        (alerts(o))
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
