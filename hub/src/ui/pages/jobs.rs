//! Jobs: the list (filter, search), a job's page (groups, placement failures, allocations,
//! versions, stop), the editor (paste or edit a job file, plan — the field diff shown —
//! then run), and an allocation's page (status, ports, resources, live logs).

use super::super::layout::{Nav, date, page};
use super::nodes::alloc_table;
use super::overview::job_badge;
use super::{Cap, alloc_badge, may};
use crate::api::AppState;
use crate::api::door::may_read;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rabble_core::acl::Resource;
use rabble_shared::alloc::Allocation;
use rabble_shared::api::{FieldChange, InstanceView, JobVersion, JobView};

pub async fn list(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let jobs = super::job_views(&s);
    let submit = may(Resource::Job, Cap::Submit, "");
    page(&headers, "Jobs", Nav::Jobs, render_list(&jobs, submit))
}

pub fn render_list(jobs: &[JobView], submit: bool) -> Markup {
    html! {
        h1 { "Jobs" }
        div.toolbar {
            input type="search" placeholder="filter (/)" aria-label="Filter jobs" data-filter="#job-list";
            @if submit { a href="/ui/jobs/run" { button.primary type="button" { "Run a job" } } }
        }
        div.scroll { table #job-list {
            thead { tr { th { "job" } th { "type" } th { "status" } th { "version" } th { "groups (running / wanted)" } th.hide-small { "submitted" } } }
            tbody {
                @for j in jobs {
                    tr {
                        td { a href={ "/ui/jobs/" (j.id) } { (j.id) } }
                        td { (format!("{:?}", j.kind).to_lowercase()) }
                        td { (job_badge(j)) }
                        td { (j.version) }
                        td { @for g in &j.groups { (g.name) " " span.dim { (g.running) "/" (g.desired) } " " } }
                        td.hide-small { (date(j.submit_ms)) }
                    }
                }
            }
        } }
    }
}

pub async fn detail(State(s): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !may_read(Resource::Job, &id) {
        return (StatusCode::FORBIDDEN, "this token may not read that job").into_response();
    }
    let c = s.catalog();
    let sched = s.sched.borrow().clone();
    let Some(mut j) = crate::api::jobs::job_view(&c, &sched, &id, true) else {
        return (StatusCode::NOT_FOUND, format!("no job {id}")).into_response();
    };
    j.allocations.sort_by_key(|a| std::cmp::Reverse(a.modify_ms));
    let versions = crate::api::jobs::job_versions(&c, &id, true);
    let spec = c.work.jobs.get(&id).and_then(|r| serde_json::to_string_pretty(&r.spec).ok()).unwrap_or_default();
    let stop = may(Resource::Job, Cap::Stop, &id);
    page(&headers, &id, Nav::Jobs, render_detail(&j, &versions, &spec, stop))
}

/// `versions`: newest first, each with its changes from the one before (the last: the first kept).
pub fn render_detail(j: &JobView, versions: &[JobVersion], spec: &str, stop: bool) -> Markup {
    html! {
        h1 { "Job " (j.id) " " (job_badge(j)) }
        div.toolbar {
            span.dim { (format!("{:?}", j.kind).to_lowercase()) ", priority " (j.priority) ", version " (j.version) ", submitted " (date(j.submit_ms)) }
            @if stop && !j.stopped {
                form data-api={ "/api/v1/jobs/" (j.id) } data-method="DELETE" data-confirm="Stop this job and all its allocations?" {
                    button.danger type="submit" { "Stop" }
                }
            }
            @let live: Vec<&str> = j.allocations.iter()
                .filter(|a| a.desired == rabble_shared::alloc::DesiredStatus::Run && a.client_status == rabble_shared::alloc::ClientStatus::Running)
                .map(|a| a.id.as_str()).collect();
            @if stop && !live.is_empty() {
                button type="button" data-action="rolling-restart" data-allocs=(live.join(" "))
                    data-confirm={ "Restart the " (live.len()) " running allocation(s) in place, one at a time?" } { "Restart" }
            }
            @if stop { a href={ "/ui/jobs/run?from=" (j.id) } { button type="button" { "Edit and run again" } } }
            output.result #job-result data-keep="1" {}
        }
        @let held: Vec<&Allocation> = j.allocations.iter().filter(|a| a.holds_resources()).collect();
        p.dim {
            "Reserved now: " (held.len()) " allocation(s), "
            (held.iter().map(|a| u64::from(a.resources.cpu_mhz)).sum::<u64>()) " MHz, "
            (held.iter().map(|a| u64::from(a.resources.memory_mb)).sum::<u64>()) " MB"
        }
        h2 { "Groups" }
        div.scroll { table {
            thead { tr { th { "group" } th { "wanted" } th { "running" } th { "pending" } th { "complete" } th { "failed" } th { "lost" } th { "cannot place" } } }
            tbody { @for g in &j.groups {
                tr { td { (g.name) } td { (g.desired) } td { (g.running) } td { (g.pending) } td { (g.complete) } td { (g.failed) } td { (g.lost) }
                     td { @if let Some(u) = &g.unplaced { span.s.bad { "unplaced" } " " (u) } } }
            } }
        } }
        @if !j.ignored.is_empty() { p.dim { "Not run by Rabble: " (j.ignored.join(", ")) } }
        h2 { "Allocations" }
        (alloc_table(&j.allocations, true))
        h2 { "Versions" }
        div.scroll { table.diff {
            thead { tr { th { "version" } th { "submitted" } th { "changes from the version before" } @if stop { th { "" } } } }
            tbody { @for (i, v) in versions.iter().enumerate() {
                tr {
                    td.mono { "v" (v.version) }
                    td { (v.submit_ms.map(date).unwrap_or_default()) }
                    td.mono {
                        @if i + 1 == versions.len() { span.dim { "(first kept version)" } }
                        @else if v.diff.is_empty() { span.dim { "(no field changed: submitted again after a stop)" } }
                        @else { @for c in &v.diff { div { (change(c)) } } }
                    }
                    @if stop {
                        td { @if v.version != j.version || j.stopped {
                            form data-api={ "/api/v1/jobs/" (j.id) "/revert" } data-body="json"
                                data-confirm={ "Run version " (v.version) " again (as a new version)?" } {
                                input type="number" name="version" value=(v.version) hidden;
                                button type="submit" { "Revert to v" (v.version) }
                                output.result {}
                            }
                        } }
                    }
                }
            } }
        } }
        details { summary { "The job as the hub holds it (JSON)" } pre { (spec) } }
    }
}

/// One field change in words: `~ path: old → new`, `+ path: new`, `- path: old`.
fn change(c: &FieldChange) -> Markup {
    let show = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    match (&c.old, &c.new) {
        (None, _) => html! { span.add { "+ " (c.path) ": " (show(&c.new)) } },
        (_, None) => html! { span.del { "- " (c.path) ": " (show(&c.old)) } },
        _ => html! { "~ " (c.path) ": " (show(&c.old)) " → " (show(&c.new)) },
    }
}

pub async fn editor(State(s): State<AppState>, headers: HeaderMap, q: axum::extract::RawQuery) -> Response {
    // "Edit and run again": the current job as JSON, which `job run` takes as it takes HCL.
    let from = q.0.as_deref().and_then(|q| q.strip_prefix("from=")).map(rabble_shared::routes::rule::percent_decode);
    let text = from
        .filter(|id| may_read(Resource::Job, id))
        .and_then(|id| s.catalog().work.jobs.get(&id).and_then(|r| serde_json::to_string_pretty(&r.spec).ok()))
        .unwrap_or_default();
    page(&headers, "Run a job", Nav::Jobs, render_editor(&text))
}

pub fn render_editor(text: &str) -> Markup {
    html! {
        h1 { "Run a job" }
        p.dim { "Paste a Nomad job file (HCL) or its JSON. Plan shows what would change; Run submits it." }
        form #job-editor data-api="/api/v1/jobs/plan" data-body="job" data-stay="1" data-live="off" {
            label for="job" { "Job file" }
            textarea #job name="job" spellcheck="false" { (text) }
            div.toolbar {
                button type="submit" data-api="/api/v1/jobs/plan" { "Plan" }
                button.primary type="submit" data-api="/api/v1/jobs" data-then="/ui/jobs/{id}" { "Run" }
            }
            pre.result.diff aria-live="polite" {}
        }
    }
}

pub async fn allocation(State(s): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let c = s.catalog();
    let a = match crate::api::jobs::find_alloc(&c, &id) {
        Ok(a) if may_read(Resource::Alloc, &a.job_id) => a.clone(),
        Ok(_) => return (StatusCode::FORBIDDEN, "this token may not read that allocation").into_response(),
        Err(e) => return (StatusCode::NOT_FOUND, e).into_response(),
    };
    let tasks = crate::api::alloc_logs::tasks(&c, &a);
    let services = crate::api::jobs::alloc_services(&c, &a);
    let can =
        Can { logs: may(Resource::Alloc, Cap::Logs, &a.job_id), restart: may(Resource::Job, Cap::Stop, &a.job_id) };
    page(&headers, &a.name, Nav::Jobs, render_allocation(&a, &tasks, &services, can))
}

/// What the caller may do on an allocation's page.
#[derive(Debug, Clone, Copy)]
pub struct Can {
    pub logs: bool,
    pub restart: bool,
}

pub fn render_allocation(a: &Allocation, tasks: &[String], services: &[InstanceView], can: Can) -> Markup {
    let live = a.desired == rabble_shared::alloc::DesiredStatus::Run && !a.client_status.is_terminal();
    html! {
        h1 { "Allocation " span.mono { (&a.id.as_str()[..8.min(a.id.as_str().len())]) } " " (alloc_badge(a)) }
        @if can.restart && live {
            div.toolbar {
                form data-api={ "/api/v1/allocations/" (a.id) "/restart" } data-confirm="Restart this allocation's running tasks in place?" {
                    button type="submit" { "Restart" }
                    output.result {}
                }
            }
        }
        dl.facts {
            dt { "name" } dd { (a.name) }
            dt { "job" } dd { a href={ "/ui/jobs/" (a.job_id) } { (a.job_id) } " v" (a.job_version) }
            dt { "node" } dd { a href={ "/ui/nodes/" (a.node) } { (a.node) } }
            dt { "status" } dd { (a.client_status.as_str()) " " span.dim { (a.client_reason) } }
            dt { "desired" } dd { (format!("{:?}", a.desired).to_lowercase()) " " span.dim { (a.desired_reason) } }
            dt { "resources" } dd { (a.resources.cpu_mhz) " MHz, " (a.resources.memory_mb) " MB" }
            @if !a.ports.is_empty() { dt { "ports" } dd.mono { @for p in &a.ports { (p.label) "=" (p.value) " " } } }
            dt { "created / modified" } dd { (date(a.create_ms)) " / " (date(a.modify_ms)) }
            @if let Some(p) = &a.previous { dt { "replaces" } dd { a.mono href={ "/ui/allocations/" (p) } { (p) } } }
        }
        (super::alloc::tasks(a))
        (super::alloc::checks(services))
        @if can.logs {
            @for (i, t) in tasks.iter().enumerate() {
                h2 { "Logs: " (t) }
                @if i == 0 {
                    div.toolbar {
                        label { "stream " select #log-type { option value="stdout" { "stdout" } option value="stderr" { "stderr" } } }
                        button type="button" data-action="logs-follow" { "Follow again" }
                        button type="button" data-action="logs-download" { "Download" }
                    }
                    pre.logs #logs data-keep="1" data-name=(a.name) data-logs={ "/api/v1/allocations/" (a.id) "/logs?task=" (t) } aria-live="off" {}
                } @else {
                    p.dim { "(the first task's output is shown; " code { "rabble alloc logs " (a.id) " " (t) } ")" }
                }
            }
        }
    }
}
