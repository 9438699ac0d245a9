//! Services (every instance with its checks and their output), routing (per lane: routers,
//! rules, middlewares, backends, certificates), the KV browser and editor (saved with
//! check-and-set on the index it was read at), and the ACL tokens and policies.

use super::super::layout::{Nav, badge, date, page};
use super::{Cap, may, status_badge};
use crate::api::AppState;
use crate::api::door::may_read;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use rabble_core::acl::Resource;
use rabble_shared::api::{CertsView, ServiceView};
use rabble_shared::routes::LaneTable;

pub async fn services(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let mut v = s.catalog().service_views();
    v.retain(|v| may_read(Resource::Service, &v.name));
    let body = html! {
        h1 { "Services" }
        div.toolbar { input type="search" placeholder="filter (/)" aria-label="Filter services" data-filter="#service-list"; }
        (service_table(&v))
    };
    page(&headers, "Services", Nav::Services, body)
}

/// Every instance of `services` with its checks (status and output).
pub fn service_table(services: &[ServiceView]) -> Markup {
    html! {
        div.scroll { table #service-list {
            thead { tr { th { "service" } th { "node" } th { "address" } th.hide-small { "tags" } th { "status" } th { "checks" } } }
            tbody {
                @for s in services { @for i in &s.instances {
                    tr id=(s.name) {
                        td { (s.name) }
                        td { a href={ "/ui/nodes/" (i.node) } { (i.node) } }
                        td.mono { (i.address) @if let Some(p) = i.port { ":" (p) } }
                        td.hide-small.dim { (i.tags.join(", ")) }
                        td { (status_badge(i.status)) }
                        td { @for c in &i.checks {
                            div { (status_badge(c.status)) " " (c.name) @if !c.output.is_empty() { " " span.dim.mono { (c.output) } } }
                        } }
                    }
                } }
            }
        } }
    }
}

pub async fn routing(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let tables = if may_read(Resource::Service, "") { s.routes.borrow().clone() } else { Default::default() };
    let certs = if may_read(Resource::Operator, "") { Some(s.certs.borrow().clone()) } else { None };
    page(&headers, "Routing", Nav::Routing, render_routing(&tables, certs.as_ref()))
}

pub fn render_routing(tables: &[LaneTable], certs: Option<&CertsView>) -> Markup {
    html! {
        h1 { "Routing" }
        @if tables.is_empty() { p.dim { "No lanes, or this token may not read services." } }
        @for t in tables {
            h2 { "Lane " (t.lane) " " span.dim { "(tags " (t.prefix) ".*)" } }
            div.scroll { table {
                thead { tr { th { "router" } th { "rule" } th { "service → servers" } th.hide-small { "middlewares" } th { "TLS" } } }
                tbody { @for (name, r) in &t.routers {
                    tr {
                        td { (name) }
                        td.mono { (r.rule) }
                        td { (r.service) " → " span.mono { @if let Some(svc) = t.services.get(&r.service) {
                            (svc.servers.iter().map(|s| s.url.as_str()).collect::<Vec<_>>().join(" "))
                        } } }
                        td.hide-small { (r.middlewares.join(", ")) }
                        td { @if r.tls.is_some() { "yes" } }
                    }
                } }
            } }
            @if !t.problems.is_empty() {
                ul.problems { @for p in &t.problems { li { (badge("warn", "tag ignored")) " " (p.instance) " " code { (p.tag) } ": " (p.reason) } } }
            }
        }
        @if let Some(c) = certs {
            h2 { "Certificates" }
            @if c.certs.is_empty() { p.dim { "No certificates wanted (no router asks for a certResolver)." } }
            @else {
                table {
                    thead { tr { th { "domains" } th { "resolver" } th { "expires" } th { "status" } } }
                    tbody { @for x in &c.certs {
                        tr {
                            td { (x.domains.join(", ")) }
                            td { (x.resolver) }
                            td { @if let Some(na) = x.not_after { (date(na * 1000)) } }
                            td { @if let Some(e) = &x.error { (badge("bad", "failing")) " " (e) } @else if x.not_after.is_some() { (badge("ok", "issued")) } @else { (badge("warn", "pending")) } }
                        }
                    } }
                }
            }
            @for p in &c.problems { p { (badge("warn", "problem")) " " (p) } }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct KvQuery {
    #[serde(default)]
    prefix: String,
    key: Option<String>,
}

pub async fn kv(State(s): State<AppState>, Query(q): Query<KvQuery>, headers: HeaderMap) -> Response {
    let c = s.catalog();
    let mut listing: Vec<(String, bool)> = Vec::new();
    for k in c.kv.keys(&q.prefix, Some("/")) {
        let folder = k.ends_with('/');
        // A key (or folder) this token may not read is not listed.
        if may_read(Resource::Kv, &k) || folder {
            listing.push((k, folder));
        }
    }
    let open = q.key.as_deref().filter(|k| may_read(Resource::Kv, k)).map(|k| {
        let e = c.kv.entries.get(k);
        (k.to_owned(), e.map(|e| String::from_utf8_lossy(&e.value).into_owned()), e.map_or(0, |e| e.modify_index))
    });
    let write = may(Resource::Kv, Cap::Write, q.key.as_deref().unwrap_or(&q.prefix));
    page(&headers, "KV", Nav::Kv, render_kv(&q.prefix, &listing, open.as_ref(), write))
}

/// `open`: the key being edited, its value (none: a new key) and the index it was read at.
pub fn render_kv(
    prefix: &str,
    listing: &[(String, bool)],
    open: Option<&(String, Option<String>, u64)>,
    write: bool,
) -> Markup {
    let up = prefix.trim_end_matches('/').rsplit_once('/').map(|(p, _)| format!("{p}/")).unwrap_or_default();
    html! {
        h1 { "KV " span.mono { "/" (prefix) } }
        @if !prefix.is_empty() { p { a href={ "/ui/kv?prefix=" (up) } { "↑ up" } } }
        ul { @for (k, folder) in listing {
            li.mono { @if *folder { a href={ "/ui/kv?prefix=" (k) } { (k) } } @else { a href={ "/ui/kv?prefix=" (prefix) "&key=" (k) } { (k) } } }
        } }
        @if listing.is_empty() { p.dim { "No keys under this prefix (or none this token may read)." } }
        @if let Some((key, value, index)) = open {
            h2 { "Key " span.mono { (key) } }
            @if write {
                form #kv-editor data-api={ "/v1/kv/" (key) "?cas=" (index) } data-method="PUT" data-body="value" data-live="off" {
                    textarea #value name="value" spellcheck="false" { (value.as_deref().unwrap_or("")) }
                    div.toolbar {
                        button.primary type="submit" { "Save" }
                        span.dim { "saved only if nobody changed it since it was read (index " (index) ")" }
                    }
                    output.result {}
                }
            } @else {
                pre { (value.as_deref().unwrap_or("(no such key)")) }
            }
        } @else if write {
            form data-api="/v1/kv/" data-method="PUT" data-body="value" data-new-key="1" data-live="off" {
                h2 { "New key" }
                input name="path" placeholder={ (prefix) "name" } aria-label="Key" required;
                textarea name="value" style="min-height:5rem" {}
                div.toolbar { button type="submit" { "Create" } output.result {} }
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct VarQuery {
    path: Option<String>,
}

/// Variables: every path this token may read with its keys' count and dates; one opened
/// (unsealed here, for this request only) shows its keys, each value behind a click.
pub async fn vars(State(s): State<AppState>, Query(q): Query<VarQuery>, headers: HeaderMap) -> Response {
    let c = s.catalog();
    let listed: Vec<(String, u64)> = c
        .vars
        .entries
        .iter()
        .filter(|(p, _)| may_read(Resource::Var, p))
        .map(|(p, v)| (p.clone(), v.modify_time / 1_000_000))
        .collect();
    let open = q.path.as_deref().filter(|p| may_read(Resource::Var, p)).and_then(|p| {
        let v = c.vars.entries.get(p)?;
        Some((p.to_owned(), v.open(&s.seal, p).map_err(|e| e.to_string())))
    });
    page(&headers, "Variables", Nav::Vars, render_vars(&listed, open.as_ref()))
}

/// `listed`: (path, modified ms); `open`: a path with its items (or why they cannot be read).
#[allow(clippy::type_complexity)]
pub fn render_vars(
    listed: &[(String, u64)],
    open: Option<&(String, Result<std::collections::BTreeMap<String, String>, String>)>,
) -> Markup {
    html! {
        h1 { "Variables" }
        p.dim { "Sealed at rest; a value is opened only for a token that may read its path. " code { "rabble var put <path> key=value" } " writes them." }
        @if listed.is_empty() { p.dim { "No variables (or none this token may read)." } }
        @else {
            table {
                thead { tr { th { "path" } th { "modified" } } }
                tbody { @for (p, at) in listed {
                    tr { td.mono { a href={ "/ui/vars?path=" (p) } { (p) } } td { (date(*at)) } }
                } }
            }
        }
        @if let Some((path, items)) = open {
            h2 { "Variable " span.mono { (path) } }
            @match items {
                Ok(items) => {
                    table {
                        thead { tr { th { "key" } th { "value" } } }
                        tbody { @for (k, v) in items {
                            tr { td.mono { (k) } td { details { summary { "show" } pre { (v) } } } }
                        } }
                    }
                }
                Err(e) => p.result.err { (e) },
            }
        }
    }
}
