//! The jobs API: submit (a `JobSpec` as JSON, or a job file as HCL), plan, list, show,
//! stop and purge jobs; list and show allocations; drain nodes and set eligibility.
//! Writes go through the catalog writer like everything else and answer once durable.

// Helpers return the error response itself; it is built once per failed request.
#![allow(clippy::result_large_err)]

use super::AppState;
use super::error::{bad_request, not_found};
use crate::catalog::{Catalog, JobUpdate, NodeUpdate, Update};
use crate::jobspec;
use crate::scheduler::{eval, preview};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use rabble_core::acl::{Cap, Need, Resource};
use rabble_shared::alloc::{Allocation, ClientStatus, DesiredStatus};
use rabble_shared::api::{
    AllocationView, DrainRequest, EligibilityRequest, GroupSummary, JobStopped, JobSubmitted, JobVersion, JobView,
    NodeDrained, NodeEligibility, NodeForgotten, NodeStatus,
};
use rabble_shared::job::{JobSpec, JobType};
use rabble_shared::support::clock::now_ms;
use rabble_shared::{AllocId, NodeId};
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
pub struct SubmitQuery {
    #[serde(default)]
    ignore_unsupported: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct StopQuery {
    #[serde(default)]
    purge: bool,
}

/// A job from a request body: JSON (`JobSpec`, as `rabble job run` sends it) or a job
/// file (HCL). Errors are the job file's diagnostics, one per line.
fn read_job(headers: &HeaderMap, body: &[u8], q: &SubmitQuery) -> Result<(JobSpec, Vec<String>), Response> {
    let json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
    if json {
        let spec: JobSpec = serde_json::from_slice(body).map_err(|e| bad_request(&format!("job JSON: {e}")))?;
        jobspec::check_spec(&spec).map_err(|e| bad_request(&format!("job {:?}: {e}", spec.id)))?;
        return Ok((spec, vec![]));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad_request("the job file is not UTF-8"))?;
    let opts = jobspec::Options { ignore_unsupported: q.ignore_unsupported, ..Default::default() };
    let parsed = jobspec::parse("job.hcl", text, &opts).map_err(|e| bad_request(&e.to_string()))?;
    Ok((parsed.job, parsed.warnings.iter().map(|w| w.to_string()).collect()))
}

/// Sends one update to the writer and waits until it is durable.
/// [`read_job`] on a blocking thread: a job file is parsed and evaluated (HCL, functions,
/// variables), which is CPU work the async workers must not wait on.
async fn read_job_off_thread(
    headers: HeaderMap,
    body: Bytes,
    q: SubmitQuery,
) -> Result<(JobSpec, Vec<String>), Response> {
    tokio::task::spawn_blocking(move || read_job(&headers, &body, &q))
        .await
        .unwrap_or_else(|e| Err(super::error::error(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())))
}

async fn write(s: &AppState, update: Update) -> Result<crate::catalog::writer::Committed, Response> {
    s.commit(update).await.map_err(IntoResponse::into_response)
}

pub async fn submit(
    State(s): State<AppState>,
    Query(q): Query<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (spec, warnings) = match read_job_off_thread(headers, body, q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let id = spec.id.clone();
    if let Err(denied) = super::door::check(&Need::new(Resource::Job, Cap::Submit, id.as_str())) {
        return denied;
    }
    match write(&s, eval::register(spec, now_ms())).await {
        Ok(c) => {
            let version = s.catalog().work.jobs.get(&id).map_or(0, |j| j.version);
            Json(JobSubmitted { id, version, changed: c.changed, index: c.index, warnings }).into_response()
        }
        Err(r) => r,
    }
}

pub async fn plan(
    State(s): State<AppState>,
    Query(q): Query<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match read_job_off_thread(headers, body, q).await {
        Ok((spec, warnings)) => {
            if let Err(denied) = super::door::check(&Need::new(Resource::Job, Cap::Submit, spec.id.as_str())) {
                return denied;
            }
            let catalog = s.catalog();
            let templates = crate::template::source::preview(&catalog, &s.seal, &spec)
                .into_iter()
                .map(|(group, task, destination, outcome)| {
                    let (status, detail) = match outcome {
                        Ok(n) => ("renders", format!("{n} bytes")),
                        Err(crate::template::RenderError::Missing(what)) => ("waiting", format!("for {what}")),
                        Err(crate::template::RenderError::Failed(e)) => ("fails", e.to_string()),
                    };
                    rabble_shared::api::TemplatePreview { group, task, destination, status: status.into(), detail }
                })
                .collect();
            let mut view = preview::plan(&catalog, spec, now_ms());
            view.warnings = warnings;
            view.templates = templates;
            Json(view).into_response()
        }
        Err(r) => r,
    }
}

/// The job's status and per-group counts for its current version.
pub fn job_view(c: &Catalog, s: &crate::scheduler::task::SchedStatus, id: &str, with_allocs: bool) -> Option<JobView> {
    let j = c.work.jobs.get(id)?;
    let allocs: Vec<&Allocation> = c.work.allocs.values().map(AsRef::as_ref).filter(|a| a.job_id == id).collect();
    let groups: Vec<GroupSummary> = j
        .spec
        .groups
        .iter()
        .map(|g| {
            let mut sum = GroupSummary { name: g.name.clone(), desired: g.count, ..Default::default() };
            if matches!(j.spec.kind, JobType::System | JobType::Sysbatch) {
                sum.desired =
                    allocs.iter().filter(|a| a.group == g.name && a.desired == DesiredStatus::Run).count() as u32;
            }
            for a in allocs.iter().filter(|a| a.group == g.name && a.job_version == j.version) {
                let n = match a.client_status {
                    ClientStatus::Pending => &mut sum.pending,
                    ClientStatus::Running => &mut sum.running,
                    ClientStatus::Complete => &mut sum.complete,
                    ClientStatus::Failed => &mut sum.failed,
                    ClientStatus::Lost => &mut sum.lost,
                };
                *n += 1;
            }
            sum.unplaced = s.unplaced.get(&(id.to_owned(), g.name.clone())).map(|u| u.to_string());
            sum
        })
        .collect();
    let active = allocs.iter().any(|a| a.desired == DesiredStatus::Run && !a.client_status.is_terminal());
    let status = match (j.stopped, active, allocs.is_empty()) {
        (_, true, _) => "running",
        (true, false, _) => "dead",
        (false, false, true) if j.spec.periodic.is_some() || j.spec.parameterized.is_some() => "running",
        (false, false, true) => "pending",
        (false, false, false) if matches!(j.spec.kind, JobType::Batch | JobType::Sysbatch) => "dead",
        (false, false, false) => "pending",
    };
    let mut list: Vec<Allocation> = if with_allocs { allocs.into_iter().cloned().collect() } else { vec![] };
    list.sort_by_key(|a| (a.index, a.create_ms));
    Some(JobView {
        id: id.to_owned(),
        kind: j.spec.kind,
        priority: j.spec.priority,
        version: j.version,
        status: status.into(),
        stopped: j.stopped,
        submit_ms: j.submit_ms,
        next_launch_s: s.next_launch.get(id).copied(),
        queue: j.spec.parameterized.as_ref().map(|_| rabble_core::scheduler::dispatch::queue(c, id)),
        groups,
        ignored: j.spec.ignored.clone(),
        allocations: list,
    })
}

pub async fn list(State(s): State<AppState>) -> Response {
    let (c, st) = (s.catalog(), s.sched.borrow().clone());
    let views: Vec<JobView> = c
        .work
        .jobs
        .keys()
        .filter(|id| super::door::may_read(Resource::Job, id))
        .filter_map(|id| job_view(&c, &st, id, false))
        .collect();
    Json(views).into_response()
}

pub async fn show(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let (c, st) = (s.catalog(), s.sched.borrow().clone());
    match job_view(&c, &st, &id, true) {
        Some(v) => Json(v).into_response(),
        None => not_found(&format!("no job {id:?}")),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct VersionsQuery {
    #[serde(default)]
    diffs: bool,
}

/// `GET /api/v1/jobs/{id}/versions[?diffs=true]`: the kept versions, newest first, with
/// their dates and (asked for, as Nomad's `?diffs=true`) each one's changes from the one
/// before it.
pub async fn versions(State(s): State<AppState>, Path(id): Path<String>, Query(q): Query<VersionsQuery>) -> Response {
    let versions = job_versions(&s.catalog(), &id, q.diffs);
    if versions.is_empty() {
        return not_found(&format!("no job {id:?}"));
    }
    Json(versions).into_response()
}

/// The kept versions of job `id`, newest first, with their dates and (`diffs`) each one's
/// changes from the one before it (the oldest kept has none).
pub fn job_versions(c: &Catalog, id: &str, diffs: bool) -> Vec<JobVersion> {
    let kept: Vec<(u64, &JobSpec)> =
        c.work.history.iter().filter(|((j, _), _)| j == id).map(|((_, v), spec)| (*v, spec.as_ref())).collect();
    let mut versions = Vec::with_capacity(kept.len());
    for (i, (version, spec)) in kept.iter().enumerate() {
        let diff = match (diffs, i.checked_sub(1).map(|p| kept[p].1)) {
            (true, Some(before)) => rabble_core::jobspec::diff::diff(before, spec),
            _ => Vec::new(),
        };
        let submit_ms = c.work.history_ms.get(&(id.to_owned(), *version)).copied();
        versions.push(JobVersion { version: *version, job: (*spec).clone(), submit_ms, diff });
    }
    versions.reverse();
    versions
}

pub async fn stop(State(s): State<AppState>, Path(id): Path<String>, Query(q): Query<StopQuery>) -> Response {
    if !s.catalog().work.jobs.contains_key(&id) {
        return not_found(&format!("no job {id:?}"));
    }
    let update = if q.purge { JobUpdate::Purge } else { JobUpdate::Stop };
    match write(&s, Update::Job(id.clone(), update)).await {
        Ok(c) => Json(JobStopped { id, index: c.index, changed: c.changed }).into_response(),
        Err(r) => r,
    }
}

pub async fn allocations(State(s): State<AppState>) -> Response {
    let c = s.catalog();
    let readable = c.work.allocs.values().filter(|a| super::door::may_read(Resource::Alloc, &a.job_id));
    Json(readable.cloned().collect::<Vec<_>>()).into_response()
}

/// One allocation by id or unique id prefix (as Nomad's CLI takes them).
pub fn find_alloc<'c>(c: &'c Catalog, prefix: &str) -> Result<&'c Allocation, String> {
    if let Ok(id) = AllocId::new(prefix)
        && let Some(a) = c.work.allocs.get(&id)
    {
        return Ok(a);
    }
    let found: Vec<&Allocation> =
        c.work.allocs.values().map(AsRef::as_ref).filter(|a| a.id.as_str().starts_with(prefix)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("no allocation {prefix:?}")),
        many => Err(format!("{prefix:?} matches {} allocations; give more of the id", many.len())),
    }
}

pub async fn allocation(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let c = s.catalog();
    match find_alloc(&c, &id) {
        Ok(a) => {
            let template_wait = s.template_waits.borrow().get(&a.id).cloned();
            let services = alloc_services(&c, a);
            Json(AllocationView { alloc: a.clone(), template_wait, services }).into_response()
        }
        Err(e) => not_found(&e),
    }
}

/// `POST /api/v1/allocations/{id}/restart` (Nomad's `alloc restart`): the allocation's
/// node restarts its running tasks in place (not counted against the restart policy).
/// Only an allocation that is wanted and not finished can restart.
pub async fn restart(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let c = s.catalog();
    let a = match find_alloc(&c, &id) {
        Ok(a) => a.clone(),
        Err(e) => return not_found(&e),
    };
    drop(c);
    if let Err(denied) = super::door::check(&Need::new(Resource::Job, Cap::Stop, a.job_id.as_str())) {
        return denied;
    }
    if a.desired != DesiredStatus::Run || a.client_status.is_terminal() {
        let msg = format!(
            "allocation {} is {} (desired {:?}): only a live allocation restarts",
            a.id,
            a.client_status.as_str(),
            a.desired
        );
        return super::error::error(axum::http::StatusCode::CONFLICT, msg);
    }
    let update = Update::Alloc(a.id.clone(), crate::catalog::AllocUpdate::Restart { at_ms: now_ms() });
    match write(&s, update).await {
        Ok(c) => {
            let restart = s.catalog().work.allocs.get(&a.id).map_or(0, |x| x.restart_asked);
            Json(rabble_shared::api::AllocRestarted { id: a.id, restart, index: c.index }).into_response()
        }
        Err(r) => r,
    }
}

/// `POST /api/v1/jobs/{id}/revert` `{"version": N}` (Nomad's `job revert`): version N's
/// spec, kept in the job's history, registered again (as a new version).
pub async fn revert(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(r): Json<rabble_shared::api::RevertRequest>,
) -> Response {
    let c = s.catalog();
    let Some(cur) = c.work.jobs.get(&id) else { return not_found(&format!("no job {id:?}")) };
    let Some(spec) = c.work.history.get(&(id.clone(), r.version)).cloned() else {
        let kept: Vec<String> = c.work.history.keys().filter(|(j, _)| *j == id).map(|(_, v)| v.to_string()).collect();
        return not_found(&format!("job {id:?} has no version {} kept (kept: {})", r.version, kept.join(", ")));
    };
    if cur.version == r.version && !cur.stopped {
        let msg = format!("job {id:?} already runs version {}", r.version);
        return super::error::error(axum::http::StatusCode::CONFLICT, msg);
    }
    drop(c);
    match write(&s, eval::register((*spec).clone(), now_ms())).await {
        Ok(c) => {
            let version = s.catalog().work.jobs.get(&id).map_or(0, |j| j.version);
            Json(JobSubmitted { id, version, changed: c.changed, index: c.index, warnings: vec![] }).into_response()
        }
        Err(r) => r,
    }
}

/// The service instances allocation `a` registered (their `alloc_id` meta), with checks.
pub fn alloc_services(c: &Catalog, a: &Allocation) -> Vec<rabble_shared::api::InstanceView> {
    let mine = |i: &rabble_shared::api::InstanceView| i.meta.get("alloc_id").is_some_and(|x| x == a.id.as_str());
    c.service_views().into_iter().flat_map(|s| s.instances).filter(mine).collect()
}

fn node_id(c: &Catalog, id: &str) -> Result<NodeId, Response> {
    match NodeId::new(id) {
        Ok(n) if c.nodes.contains_key(&n) => Ok(n),
        _ => Err(not_found(&format!("no node {id:?}"))),
    }
}

pub async fn drain(State(s): State<AppState>, Path(id): Path<String>, Json(r): Json<DrainRequest>) -> Response {
    let node = match node_id(&s.catalog(), &id) {
        Ok(n) => n,
        Err(r) => return r,
    };
    // Nomad's default deadline: one hour.
    let deadline = r.enable.then(|| now_ms() + r.deadline_s.unwrap_or(3600) * 1000);
    match write(&s, Update::Node(node.clone(), NodeUpdate::Drain(deadline))).await {
        Ok(c) => Json(NodeDrained { node, drain_deadline_ms: deadline, index: c.index }).into_response(),
        Err(r) => r,
    }
}

pub async fn eligibility(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(r): Json<EligibilityRequest>,
) -> Response {
    let n = match node_id(&s.catalog(), &id) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match write(&s, Update::Node(n.clone(), NodeUpdate::Eligibility(r.eligible))).await {
        Ok(c) => Json(NodeEligibility { node: n, eligible: r.eligible, index: c.index }).into_response(),
        Err(r) => r,
    }
}

/// `POST /api/v1/nodes/{id}/forget` (Nomad's `node gc` for one node): a node that is down
/// leaves the catalog with its services and checks; its retained topics are cleared by the
/// leader (`crate::forget`). A node that is up is refused: it would join again at once.
pub async fn forget(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let c = s.catalog();
    let node = match node_id(&c, &id) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if c.nodes.get(&node).is_some_and(|n| n.status == NodeStatus::Up) {
        let msg = format!(
            "node {node} is up: stop its agent (or `rabble-hub node revoke` it) first; a running agent joins again"
        );
        return super::error::error(axum::http::StatusCode::CONFLICT, msg);
    }
    drop(c);
    match write(&s, Update::Node(node.clone(), NodeUpdate::Forget)).await {
        Ok(c) => Json(NodeForgotten { node, index: c.index }).into_response(),
        Err(r) => r,
    }
}
