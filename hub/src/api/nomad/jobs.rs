//! Nomad's job endpoints: `/v1/jobs/parse` (a job file to Nomad's JSON), `/v1/jobs` and
//! `/v1/job/<id>` (register, read, stop), `/v1/job/<id>/plan` (with Nomad's diff type,
//! which Ansible's `nomad_job` reads to decide whether anything changed),
//! `/v1/job/<id>/allocations|versions|evaluations`, and `/v1/validate/job`.

// Helpers return the error response itself; it is built once per failed request.
#![allow(clippy::result_large_err)]

use super::super::AppState;
use super::super::door;
use super::{Query, Trigger, answer, error, eval_id, nanos};
use crate::catalog::{Catalog, JobUpdate, Update};
use crate::scheduler::{eval, preview};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use rabble_core::acl::{Cap, Need, Resource};
use rabble_core::jobspec;
use rabble_core::nomad as nj;
use rabble_shared::job::JobSpec;
use rabble_shared::support::clock::now_ms;
use serde_json::{Value, json};

fn bad(msg: &str) -> Response {
    error(StatusCode::BAD_REQUEST, msg)
}

/// The request body as JSON.
fn body_json(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| bad(&format!("the body is not JSON: {e}")))
}

/// `{"Job": ...}` read as a job (on a blocking thread: it is parsed as a job file is).
async fn read_job(body: Bytes) -> Result<(JobSpec, Vec<String>), Response> {
    let v = body_json(&body)?;
    tokio::task::spawn_blocking(move || {
        let job = nj::job_field(&v).ok_or_else(|| bad("the body has no \"Job\""))?;
        let parsed = nj::from_json(job, &jobspec::Options::default()).map_err(|e| bad(&e.to_string()))?;
        Ok((parsed.job, parsed.warnings.iter().map(ToString::to_string).collect()))
    })
    .await
    .unwrap_or_else(|e| Err(error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())))
}

/// A job from JSON carries no template lines (it has no file); the stored version's are
/// kept where the template is the same, so the same job sent again is no change.
fn keep_lines(spec: &mut JobSpec, stored: Option<&JobSpec>) {
    let Some(stored) = stored else { return };
    for g in &mut spec.groups {
        for t in &mut g.tasks {
            let old =
                stored.groups.iter().filter(|x| x.name == g.name).flat_map(|x| &x.tasks).find(|x| x.name == t.name);
            for tpl in &mut t.templates {
                let same = old.and_then(|o| o.templates.iter().find(|x| x.destination == tpl.destination));
                if let Some(same) = same.filter(|s| TemplateSame::of(s) == TemplateSame::of(tpl)) {
                    tpl.line = same.line;
                }
            }
        }
    }
}

/// A template without its line, for [`keep_lines`].
#[derive(PartialEq)]
struct TemplateSame(rabble_shared::job::TemplateSpec);

impl TemplateSame {
    fn of(t: &rabble_shared::job::TemplateSpec) -> TemplateSame {
        TemplateSame(rabble_shared::job::TemplateSpec { line: 0, ..t.clone() })
    }
}

/// `POST /v1/jobs/parse` `{"JobHCL": ..., "Canonicalize": bool, "Variables": "k=v\n..."}`:
/// the job file as Nomad's JSON job (always with Nomad's defaults filled in).
pub async fn parse(body: Bytes) -> Response {
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let field = |name: &str| v.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    let Some(hcl) = field("JobHCL").and_then(Value::as_str).map(str::to_owned) else {
        return bad("the body has no \"JobHCL\"");
    };
    let mut opts = jobspec::Options::default();
    // Variables as `-var-file` holds them (`name = "value"` lines), as Nomad's API takes them.
    if let Some(vars) = field("Variables").and_then(Value::as_str) {
        opts.given.var_files.push(("Variables".into(), vars.to_owned()));
    }
    let parsed = tokio::task::spawn_blocking(move || jobspec::parse("job.hcl", &hcl, &opts)).await;
    match parsed {
        Ok(Ok(p)) => answer(0, &nj::to_json(&p.job)),
        Ok(Err(e)) => bad(&e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `POST /v1/jobs` and `POST /v1/job/<id>` `{"Job": ...}`: registers the job.
pub async fn register(State(s): State<AppState>, id: Option<Path<String>>, body: Bytes) -> Response {
    let (mut spec, warnings) = match read_job(body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(Path(id)) = id
        && id != spec.id
    {
        return bad(&format!("the path names job {id:?}, the body {:?}", spec.id));
    }
    if let Err(denied) = door::check(&Need::new(Resource::Job, Cap::Submit, spec.id.as_str())) {
        return denied;
    }
    let stored = s.catalog().work.jobs.get(&spec.id).map(|j| j.spec.clone());
    keep_lines(&mut spec, stored.as_deref());
    let id = spec.id.clone();
    match s.commit(eval::register(spec, now_ms())).await {
        Ok(c) => answer(
            c.index,
            &json!({
                "EvalID": eval_id(c.index, Trigger::Register, &id),
                "EvalCreateIndex": c.index,
                "JobModifyIndex": c.index,
                "Warnings": warnings.join("\n"),
                "Index": c.index,
                "LastContact": 0,
                "KnownLeader": true,
            }),
        ),
        Err(e) => error(e.0, &e.1),
    }
}

/// `POST /v1/validate/job` `{"Job": ...}`: what registering would refuse, without registering.
pub async fn validate(body: Bytes) -> Response {
    let (errors, warnings) = match read_job(body).await {
        Ok((_, w)) => (Vec::new(), w),
        Err(r) => {
            let text = axum::body::to_bytes(r.into_body(), 64 * 1024).await.unwrap_or_default();
            (vec![String::from_utf8_lossy(&text).trim().to_owned()], Vec::new())
        }
    };
    let body = json!({
        "DriverConfigValidated": errors.is_empty(),
        "ValidationErrors": errors,
        "Error": errors.join("\n"),
        "Warnings": warnings.join("\n"),
    });
    answer(0, &body)
}

/// Nomad's `Diff.Type` of registering `spec` over what the catalog holds.
fn diff_type(c: &Catalog, spec: &JobSpec) -> (&'static str, Vec<rabble_shared::api::FieldChange>) {
    match c.work.jobs.get(&spec.id) {
        None => ("Added", Vec::new()),
        Some(cur) => {
            let fields = rabble_core::jobspec::diff::diff(&cur.spec, spec);
            match (fields.is_empty(), cur.stopped) {
                (true, false) => ("None", fields),
                _ => ("Edited", fields),
            }
        }
    }
}

/// `POST /v1/job/<id>/plan` `{"Job": ..., "Diff": bool}`: what registering would do.
pub async fn plan(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let (mut spec, warnings) = match read_job(body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if id != spec.id {
        return bad(&format!("the path names job {id:?}, the body {:?}", spec.id));
    }
    if let Err(denied) = door::check(&Need::new(Resource::Job, Cap::Submit, spec.id.as_str())) {
        return denied;
    }
    let c = s.catalog();
    let stored = c.work.jobs.get(&spec.id).map(|j| j.spec.clone());
    keep_lines(&mut spec, stored.as_deref());
    let (kind, fields) = diff_type(&c, &spec);
    let view = preview::plan(&c, spec, now_ms());
    let mut updates = serde_json::Map::new();
    for p in &view.placements {
        let group = group_of(&p.name, &id);
        bump(&mut updates, group, "Place");
    }
    for p in &view.stops {
        let group = group_of(&p.name, &id);
        bump(&mut updates, group, "Stop");
    }
    let failed: serde_json::Map<String, Value> = view
        .unplaced
        .iter()
        .map(|(g, why)| (g.clone(), json!({"NodesEvaluated": c.nodes.len(), "ConstraintFiltered": {why: 1}})))
        .collect();
    let diff_fields: Vec<Value> = fields
        .iter()
        .map(|f| {
            let kind = match (&f.old, &f.new) {
                (None, _) => "Added",
                (_, None) => "Deleted",
                _ => "Edited",
            };
            let text = |v: &Option<Value>| match v {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            json!({"Type": kind, "Name": f.path, "Old": text(&f.old), "New": text(&f.new), "Annotations": null})
        })
        .collect();
    let body = json!({
        "Diff": {"Type": kind, "ID": id, "Fields": diff_fields, "Objects": null, "TaskGroups": null},
        "Annotations": {"DesiredTGUpdates": updates},
        "FailedTGAllocs": if failed.is_empty() { Value::Null } else { Value::Object(failed) },
        "JobModifyIndex": c.index,
        "Index": c.index,
        "Warnings": warnings.join("\n"),
        "CreatedEvals": null,
        "NextPeriodicLaunch": "0001-01-01T00:00:00Z",
    });
    answer(c.index, &body)
}

/// The group of an allocation name (`web.cache[2]` → `cache`).
fn group_of<'n>(name: &'n str, job: &str) -> &'n str {
    let rest = name.strip_prefix(job).and_then(|r| r.strip_prefix('.')).unwrap_or(name);
    rest.rsplit_once('[').map_or(rest, |(g, _)| g)
}

fn bump(updates: &mut serde_json::Map<String, Value>, group: &str, what: &str) {
    let entry = updates.entry(group.to_owned()).or_insert_with(|| {
        json!({"Ignore": 0, "Place": 0, "Migrate": 0, "Stop": 0, "InPlaceUpdate": 0, "DestructiveUpdate": 0,
               "Canary": 0, "Preemptions": 0})
    });
    if let Some(n) = entry.get_mut(what) {
        *n = json!(n.as_u64().unwrap_or(0) + 1);
    }
}

/// A job as `GET /v1/job/<id>` shows it: Nomad's JSON job and its state.
fn job_json(c: &Catalog, st: &crate::scheduler::task::SchedStatus, id: &str) -> Option<Value> {
    let rec = c.work.jobs.get(id)?;
    let view = super::super::jobs::job_view(c, st, id, false)?;
    let mut v = nj::to_json(&rec.spec);
    v["Status"] = json!(view.status);
    v["Stop"] = json!(rec.stopped);
    v["Stable"] = json!(true);
    v["Version"] = json!(rec.version);
    v["SubmitTime"] = json!(nanos(rec.submit_ms));
    v["ModifyIndex"] = json!(c.index);
    v["JobModifyIndex"] = json!(c.index);
    Some(v)
}

fn no_job(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("job not found: {id}"))
}

pub async fn show(State(s): State<AppState>, Path(id): Path<String>, q: Query) -> Response {
    let c = super::super::consul::snapshot(&s, &q.block).await;
    match job_json(&c, &s.sched.borrow().clone(), &id) {
        Some(v) => answer(c.index, &v),
        None => no_job(&id),
    }
}

/// `GET /v1/jobs[?prefix=]`: Nomad's job list stubs, with each group's summary.
pub async fn list(State(s): State<AppState>, q: Query) -> Response {
    let prefix = q.get("prefix").unwrap_or_default();
    let c = super::super::consul::snapshot(&s, &q.block).await;
    let st = s.sched.borrow().clone();
    let stubs: Vec<Value> = c
        .work
        .jobs
        .iter()
        .filter(|(id, _)| id.starts_with(prefix) && door::may_read(Resource::Job, id))
        .filter_map(|(id, rec)| {
            let view = super::super::jobs::job_view(&c, &st, id, false)?;
            let summary: serde_json::Map<String, Value> = view
                .groups
                .iter()
                .map(|g| {
                    let counts = json!({"Queued": g.pending, "Starting": 0, "Running": g.running,
                        "Complete": g.complete, "Failed": g.failed, "Lost": g.lost, "Unknown": 0});
                    (g.name.clone(), counts)
                })
                .collect();
            Some(json!({
                "ID": id, "ParentID": "", "Name": rec.spec.name, "Namespace": "default",
                "Datacenters": rec.spec.datacenters, "Type": rec.spec.kind.as_str(), "Priority": rec.spec.priority,
                "Periodic": rec.spec.periodic.is_some(), "ParameterizedJob": false, "Stop": rec.stopped,
                "Status": view.status, "StatusDescription": "", "Version": rec.version,
                "JobSummary": {"JobID": id, "Namespace": "default", "Summary": summary},
                "SubmitTime": nanos(rec.submit_ms), "ModifyIndex": c.index, "JobModifyIndex": c.index,
            }))
        })
        .collect();
    answer(c.index, &stubs)
}

/// `DELETE /v1/job/<id>[?purge=true]`: stops the job (purged: forgotten).
pub async fn deregister(State(s): State<AppState>, Path(id): Path<String>, q: Query) -> Response {
    if !s.catalog().work.jobs.contains_key(&id) {
        return no_job(&id);
    }
    let purge = q.get("purge").is_some_and(|v| v != "false");
    let update = if purge { JobUpdate::Purge } else { JobUpdate::Stop };
    match s.commit(Update::Job(id.clone(), update)).await {
        Ok(c) => answer(
            c.index,
            &json!({"EvalID": eval_id(c.index, Trigger::Deregister, &id), "EvalCreateIndex": c.index,
                    "JobModifyIndex": c.index, "Index": c.index, "LastContact": 0, "KnownLeader": true}),
        ),
        Err(e) => error(e.0, &e.1),
    }
}

/// `GET /v1/job/<id>/allocations`: the job's allocation stubs.
pub async fn allocations(State(s): State<AppState>, Path(id): Path<String>, q: Query) -> Response {
    let c = super::super::consul::snapshot(&s, &q.block).await;
    if !c.work.jobs.contains_key(&id) {
        return no_job(&id);
    }
    let stubs: Vec<Value> =
        c.work.allocs.values().filter(|a| a.job_id == id).map(|a| super::views::alloc_json(&c, a, false)).collect();
    answer(c.index, &stubs)
}

/// `GET /v1/job/<id>/versions`: the kept versions, newest first, as Nomad's JSON jobs.
pub async fn versions(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let c = s.catalog();
    let versions = super::super::jobs::job_versions(&c, &id, false);
    if versions.is_empty() {
        return no_job(&id);
    }
    let jobs: Vec<Value> = versions
        .iter()
        .map(|v| {
            let mut j = nj::to_json(&v.job);
            j["Version"] = json!(v.version);
            j["SubmitTime"] = json!(v.submit_ms.map_or(0, nanos));
            j["Stable"] = json!(true);
            j
        })
        .collect();
    answer(c.index, &json!({"Versions": jobs, "Diffs": null}))
}

/// `GET /v1/job/<id>/evaluations`: the evaluation of the job's last change.
pub async fn evaluations(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let c = s.catalog();
    let Some(rec) = c.work.jobs.get(&id) else { return no_job(&id) };
    let trigger = if rec.stopped { Trigger::Deregister } else { Trigger::Register };
    let eval = super::views::eval_json(&c, &s.sched.borrow(), &eval_id(c.index, trigger, &id), c.index, trigger, &id);
    answer(c.index, &vec![eval])
}

/// The hub's own answer in Nomad's terms: its JSON read by `ok`, its `{"error"}` as text.
async fn relay(resp: Response, ok: impl FnOnce(Value) -> Response) -> Response {
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1024 * 1024).await.unwrap_or_default();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status.is_success() {
        return ok(v);
    }
    error(status, v.get("error").and_then(Value::as_str).unwrap_or("failed"))
}

/// `POST /v1/job/<id>/revert` `{"JobID", "JobVersion"}`.
pub async fn revert(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let version = v.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("JobVersion")));
    let Some(version) = version.and_then(|(_, v)| v.as_u64()) else { return bad("the body has no \"JobVersion\"") };
    let req = rabble_shared::api::RevertRequest { version };
    let resp = super::super::jobs::revert(State(s), Path(id.clone()), axum::Json(req)).await;
    relay(resp, |v| {
        let index = v["index"].as_u64().unwrap_or(0);
        answer(
            index,
            &json!({"EvalID": eval_id(index, Trigger::Register, &id), "EvalCreateIndex": index,
            "JobModifyIndex": index, "Index": index}),
        )
    })
    .await
}

/// `POST /v1/client/allocation/<id>/restart`.
pub async fn restart_alloc(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let resp = super::super::jobs::restart(State(s), Path(id)).await;
    relay(resp, |v| answer(v["index"].as_u64().unwrap_or(0), &json!({}))).await
}
