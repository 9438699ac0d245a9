//! Nodes: the list (class, arch, drivers, allocations, resources, status, eligibility,
//! drain) and a node's page (facts, charts kept in the browser, allocations, services and
//! checks, and the drain and eligibility buttons for a token that may write the node).

use super::super::layout::{Nav, ago, bar, page};
use super::{Cap, alloc_badge, may, node_badge, node_views, pct};
use crate::api::AppState;
use crate::api::door::may_read;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rabble_core::acl::Resource;
use rabble_shared::alloc::Allocation;
use rabble_shared::api::{NodeStatus, NodeView, ServiceView};

pub async fn list(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let c = s.catalog();
    let nodes = node_views(&s);
    let allocs = |n: &NodeView| c.work.allocs.values().filter(|a| a.node == n.id && a.holds_resources()).count();
    let counted: Vec<(NodeView, usize)> = nodes
        .into_iter()
        .map(|n| {
            let k = allocs(&n);
            (n, k)
        })
        .collect();
    page(&headers, "Nodes", Nav::Nodes, render_list(&counted))
}

pub fn render_list(nodes: &[(NodeView, usize)]) -> Markup {
    html! {
        h1 { "Nodes" }
        div.toolbar { input type="search" placeholder="filter (/)" aria-label="Filter nodes" data-filter="#node-list"; }
        div.scroll { table #node-list {
            thead { tr {
                th { "node" } th { "status" } th { "eligible" } th.hide-small { "class" } th.hide-small { "arch" }
                th.hide-small { "drivers" } th { "allocs" } th { "CPU" } th { "memory" } th.hide-small { "last seen" }
            } }
            tbody {
                @for (n, allocs) in nodes {
                    @let f = n.facts.as_ref();
                    @let hb = n.heartbeat.as_ref().filter(|_| n.status != NodeStatus::Down);
                    tr {
                        td { a href={ "/ui/nodes/" (n.id) } { (n.id) } }
                        td { (node_badge(n)) }
                        td { @if n.eligible { "yes" } @else { "no" } }
                        td.hide-small { (f.map(|f| f.node_class.as_str()).unwrap_or("")) }
                        td.hide-small { (f.map(|f| f.arch.as_str()).unwrap_or("")) }
                        td.hide-small { (f.map(|f| f.drivers.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                        td { (allocs) }
                        td { @if let Some(h) = hb { (bar(f64::from(h.cpu_percent), "CPU")) } }
                        td { @if let Some(h) = hb { (bar(pct(h.memory_used_bytes, h.memory_total_bytes), "memory")) } }
                        td.hide-small { @if let Some(ms) = n.last_seen_ago_ms { (ago(ms)) " ago" } }
                    }
                }
            }
        } }
    }
}

pub async fn detail(State(s): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !may_read(Resource::Node, &id) {
        return (StatusCode::FORBIDDEN, "this token may not read that node").into_response();
    }
    let Some(n) = node_views(&s).into_iter().find(|n| n.id.as_str() == id) else {
        return (StatusCode::NOT_FOUND, format!("no node {id}")).into_response();
    };
    let c = s.catalog();
    let mut allocs: Vec<Allocation> = c
        .work
        .allocs
        .values()
        .filter(|a| a.node == n.id && may_read(Resource::Alloc, &a.job_id))
        .map(|a| (**a).clone())
        .collect();
    allocs.sort_by_key(|a| std::cmp::Reverse(a.modify_ms));
    let mut services = c.service_views();
    services.retain(|v| may_read(Resource::Service, &v.name));
    for v in &mut services {
        v.instances.retain(|i| i.node == n.id);
    }
    services.retain(|v| !v.instances.is_empty());
    let write = may(Resource::Node, Cap::Write, &id);
    page(&headers, &id, Nav::Nodes, render_detail(&n, &allocs, &services, write))
}

pub fn render_detail(n: &NodeView, allocs: &[Allocation], services: &[ServiceView], write: bool) -> Markup {
    let api = format!("/api/v1/nodes/{}", n.id);
    html! {
        h1 { "Node " (n.id) " " (node_badge(n)) }
        @if write {
            div.toolbar {
                @if n.drain_deadline_ms.is_some() {
                    form data-api={ (api) "/drain" } data-body="json" { input type="hidden" name="enable" value="false" data-type="bool"; button type="submit" { "Cancel drain" } }
                } @else {
                    form data-api={ (api) "/drain" } data-body="json" data-confirm="Drain this node? Its allocations move elsewhere." {
                        input type="hidden" name="enable" value="true" data-type="bool";
                        button.danger type="submit" { "Drain" }
                    }
                }
                form data-api={ (api) "/eligibility" } data-body="json" {
                    input type="hidden" name="eligible" data-type="bool" value=(if n.eligible { "false" } else { "true" });
                    button type="submit" { @if n.eligible { "Mark ineligible" } @else { "Mark eligible" } }
                }
                @if n.status == NodeStatus::Down {
                    form data-api={ (api) "/forget" } data-then="/ui/nodes" data-confirm="Forget this node and its services? Its agent, started again, joins again." {
                        button.danger type="submit" { "Forget" }
                    }
                }
                output.result {}
            }
        }
        @if let Some(h) = &n.heartbeat {
            div.cards {
                div.card { div { "CPU " (format!("{:.0}%", h.cpu_percent)) } svg.chart data-key={ "cpu:" (n.id) } data-value=(h.cpu_percent) role="img" aria-label="CPU history" {} }
                @let mem = pct(h.memory_used_bytes, h.memory_total_bytes);
                div.card { div { "memory " (format!("{mem:.0}%")) } svg.chart data-key={ "mem:" (n.id) } data-value=(mem) role="img" aria-label="memory history" {} }
                div.card { div { "load " (format!("{:.2} {:.2} {:.2}", h.load[0], h.load[1], h.load[2])) } div.dim { "up " (ago(h.uptime_s * 1000)) } }
                @if let Some(t) = h.temperature_c { div.card { div.n { (format!("{t:.0} °C")) } div { "temperature" } } }
            }
            @for d in &h.disks { div.toolbar { span.mono { (d.mount) } (bar(pct(d.used_bytes, d.total_bytes), &d.mount)) } }
        }
        h2 { "Facts" }
        dl.facts {
            dt { "status" } dd { (format!("{:?}", n.status).to_lowercase()) " (" (n.reason) ")" }
            dt { "eligible" } dd { (n.eligible) }
            @if let Some(ms) = n.last_seen_ago_ms { dt { "last seen" } dd { (ago(ms)) " ago" } }
            @if let Some(f) = &n.facts {
                dt { "hostname" } dd { (f.hostname) }
                dt { "address" } dd.mono { (f.advertise) }
                dt { "arch / OS" } dd { (f.arch) " / " (f.os.name) " " (f.os.version) }
                dt { "CPUs / memory" } dd { (f.cpus) " / " (f.memory_bytes / (1024 * 1024)) " MB" }
                dt { "class / datacenter" } dd { (f.node_class) " / " (f.datacenter) }
                dt { "drivers" } dd { (f.drivers.keys().cloned().collect::<Vec<_>>().join(", ")) }
                dt { "agent" } dd { (f.agent_version) }
                @for (k, v) in &f.meta { dt { "meta." (k) } dd { (v) } }
            }
        }
        h2 { "Allocations" }
        (alloc_table(allocs, false))
        h2 { "Services" }
        (super::stores::service_table(services))
    }
}

/// Allocations as a table; `with_node`: a column for the node.
pub fn alloc_table(allocs: &[Allocation], with_node: bool) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "allocation" } th { "name" } @if with_node { th { "node" } } th { "status" } th { "desired" } th.hide-small { "version" } th.hide-small { "modified" } } }
            tbody {
                @for a in allocs {
                    tr {
                        td.mono { a href={ "/ui/allocations/" (a.id) } { (&a.id.as_str()[..8.min(a.id.as_str().len())]) } }
                        td { (a.name) }
                        @if with_node { td { a href={ "/ui/nodes/" (a.node) } { (a.node) } } }
                        td { (alloc_badge(a)) " " span.dim { (a.client_reason) } }
                        td { (format!("{:?}", a.desired).to_lowercase()) " " span.dim { (a.desired_reason) } }
                        td.hide-small { (a.job_version) }
                        td.hide-small { (super::super::layout::date(a.modify_ms)) }
                    }
                }
            }
        } }
    }
}
