//! Nomad's read endpoints for nodes (`/v1/nodes`, `/v1/node/<id>`), allocations
//! (`/v1/allocations`, `/v1/allocation/<id>`) and evaluations (`/v1/evaluation/<id>`),
//! in Nomad's JSON shapes, from the catalog.

use super::super::AppState;
use super::super::door;
use super::{Query, Trigger, answer, error, eval_id, job_digest, nanos, parse_eval_id};
use crate::catalog::Catalog;
use crate::scheduler::task::SchedStatus;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use rabble_core::acl::Resource;
use rabble_shared::alloc::Allocation;
use rabble_shared::api::{NodeStatus, NodeView};
use rabble_shared::attr::{NodeRef, attribute};
use serde_json::{Value, json};

/// The attributes a node shows (what constraints can name).
const ATTRIBUTES: &[&str] = &[
    "attr.cpu.arch",
    "attr.cpu.numcores",
    "attr.cpu.totalcompute",
    "attr.memory.totalbytes",
    "attr.kernel.name",
    "attr.kernel.version",
    "attr.kernel.arch",
    "attr.os.name",
    "attr.os.version",
    "attr.unique.hostname",
    "attr.unique.network.ip-address",
    "attr.nomad.version",
];

fn status(v: &NodeView) -> &'static str {
    match v.status {
        NodeStatus::Up => "ready",
        NodeStatus::Down => "down",
        NodeStatus::Unknown => "initializing",
    }
}

/// A node as Nomad's list shows it; `full`: as `/v1/node/<id>` does.
fn node_json(c: &Catalog, v: &NodeView, full: bool) -> Value {
    let eligibility = if v.eligible { "eligible" } else { "ineligible" };
    let Some(f) = v.facts.as_ref() else {
        // Registered without an agent (Consul's catalog/register): what is known.
        return json!({"ID": v.id, "Name": v.id, "NodePool": "default", "Drain": v.drain_deadline_ms.is_some(),
            "SchedulingEligibility": eligibility, "Status": status(v), "StatusDescription": v.reason,
            "Drivers": {}, "CreateIndex": 1, "ModifyIndex": c.index});
    };
    let drivers: serde_json::Map<String, Value> = f
        .drivers
        .iter()
        .map(|(name, d)| {
            let health = if d.healthy { "Healthy" } else { d.detail.as_str() };
            (name.clone(), json!({"Detected": true, "Healthy": d.healthy, "HealthDescription": health}))
        })
        .collect();
    let mut o = json!({
        "ID": v.id, "Name": f.name, "Address": f.advertise, "Datacenter": f.datacenter, "NodeClass": f.node_class,
        "NodePool": "default", "Version": f.agent_version, "Drain": v.drain_deadline_ms.is_some(),
        "SchedulingEligibility": eligibility,
        "Status": status(v), "StatusDescription": v.reason, "Drivers": drivers,
        "CreateIndex": 1, "ModifyIndex": c.index,
    });
    if full {
        let node = NodeRef { id: &v.id, facts: f };
        let attributes: serde_json::Map<String, Value> = ATTRIBUTES
            .iter()
            .filter_map(|a| Some((a.trim_start_matches("attr.").to_owned(), json!(attribute(node, a)?))))
            .collect();
        o["Attributes"] = json!(attributes);
        o["Meta"] = json!(f.meta);
        o["HTTPAddr"] = json!(f.advertise);
        o["NodeResources"] = json!({
            "Cpu": {"CpuShares": rabble_shared::attr::capacity_mhz(f), "TotalCpuCores": f.cpus},
            "Memory": {"MemoryMB": f.memory_bytes / (1024 * 1024)},
            "Disk": {"DiskMB": f.disks.first().map_or(0, |d| d.total_bytes / (1024 * 1024))},
        });
        o["DrainStrategy"] = match v.drain_deadline_ms {
            Some(ms) => json!({"Deadline": nanos(ms.saturating_sub(rabble_shared::support::clock::now_ms())),
                               "ForceDeadline": rabble_shared::support::clock::rfc3339(ms)}),
            None => Value::Null,
        };
    }
    o
}

pub async fn nodes(State(s): State<AppState>, q: Query) -> Response {
    let prefix = q.get("prefix").unwrap_or_default();
    let c = super::super::consul::snapshot(&s, &q.block).await;
    let views = s.with_live(c.node_views());
    let list: Vec<Value> = views
        .iter()
        .filter(|v| v.id.as_str().starts_with(prefix) && door::may_read(Resource::Node, v.id.as_str()))
        .map(|v| node_json(&c, v, false))
        .collect();
    answer(c.index, &list)
}

pub async fn node(State(s): State<AppState>, Path(id): Path<String>, q: Query) -> Response {
    let c = super::super::consul::snapshot(&s, &q.block).await;
    let views = s.with_live(c.node_views());
    match views.iter().find(|v| v.id.as_str() == id) {
        Some(v) => answer(c.index, &node_json(&c, v, true)),
        None => error(StatusCode::NOT_FOUND, &format!("node not found: {id}")),
    }
}

/// An allocation as Nomad's lists show it; `full`: with its job, as `/v1/allocation/<id>`.
pub fn alloc_json(c: &Catalog, a: &Allocation, full: bool) -> Value {
    let node_name = c.nodes.get(&a.node).and_then(|n| n.facts.as_ref()).map_or("", |f| f.name.as_str());
    let mut o = json!({
        "ID": a.id, "EvalID": eval_id(1, Trigger::Register, &a.job_id), "Name": a.name, "Namespace": "default",
        "NodeID": a.node, "NodeName": node_name, "JobID": a.job_id, "JobVersion": a.job_version,
        "TaskGroup": a.group, "DesiredStatus": text(&a.desired), "DesiredDescription": a.desired_reason,
        "ClientStatus": text(&a.client_status), "ClientDescription": a.client_reason,
        "TaskStates": task_states(a),
        "CreateIndex": 1, "ModifyIndex": c.index,
        "CreateTime": nanos(a.create_ms), "ModifyTime": nanos(a.modify_ms),
        "PreviousAllocation": a.previous.as_ref().map(|p| p.to_string()).unwrap_or_default(),
    });
    if full {
        let spec = c.work.history.get(&(a.job_id.clone(), a.job_version));
        o["Job"] = spec.map_or(Value::Null, |s| rabble_core::nomad::to_json(s));
        o["Resources"] = json!({"CPU": a.resources.cpu_mhz, "MemoryMB": a.resources.memory_mb});
        let ports: Vec<Value> = a
            .ports
            .iter()
            .map(|p| json!({"Label": p.label, "Value": p.value, "To": p.to.unwrap_or(0), "HostIP": ""}))
            .collect();
        o["AllocatedResources"] = json!({"Shared": {"Ports": ports}});
    }
    o
}

/// Each task's state and events, as Nomad's `TaskState`.
fn task_states(a: &Allocation) -> Value {
    use rabble_shared::support::clock::rfc3339;
    let zero = "0001-01-01T00:00:00Z".to_owned();
    let states: serde_json::Map<String, Value> = a
        .tasks
        .iter()
        .map(|(name, t)| {
            let events: Vec<Value> = t
                .events
                .iter()
                .map(|e| {
                    json!({"Type": event_type(&e.text), "Time": nanos(e.at_ms), "DisplayMessage": e.text,
                           "Details": {}, "ExitCode": 0})
                })
                .collect();
            let restarted = t.events.iter().rev().find(|e| event_type(&e.text) == "Restarting");
            let state = json!({
                "State": t.state, "Failed": t.failed, "Restarts": t.restarts,
                "LastRestart": restarted.map_or(zero.clone(), |e| rfc3339(e.at_ms)),
                "StartedAt": t.started_ms.map_or(zero.clone(), rfc3339),
                "FinishedAt": t.finished_ms.map_or(zero.clone(), rfc3339),
                "Events": events,
            });
            (name.clone(), state)
        })
        .collect();
    Value::Object(states)
}

/// Nomad's event type for the agent's words.
pub fn event_type(text: &str) -> &'static str {
    match text {
        "not started" => "Received",
        "started" => "Started",
        "stopping" => "Killing",
        "stopped" => "Killed",
        t if t.starts_with("restarted") => "Restarted",
        t if t.contains("restarting") => "Restarting",
        t if t.contains("out of restarts") => "Not Restarting",
        t if t.contains("OOM") || t.contains("out of memory") => "OOM Killed",
        t if t.starts_with("exited") || t.starts_with("killed") => "Terminated",
        t if t.starts_with("template") => "Template",
        _ => "Task Event",
    }
}

/// A status enum as its JSON text (`running`).
fn text(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

pub async fn allocations(State(s): State<AppState>, q: Query) -> Response {
    let prefix = q.get("prefix").unwrap_or_default();
    let c = super::super::consul::snapshot(&s, &q.block).await;
    let list: Vec<Value> = c
        .work
        .allocs
        .values()
        .filter(|a| a.id.as_str().starts_with(prefix) && door::may_read(Resource::Alloc, &a.job_id))
        .map(|a| alloc_json(&c, a, false))
        .collect();
    answer(c.index, &list)
}

pub async fn allocation(State(s): State<AppState>, Path(id): Path<String>, q: Query) -> Response {
    let c = super::super::consul::snapshot(&s, &q.block).await;
    match super::super::jobs::find_alloc(&c, &id) {
        Ok(a) => answer(c.index, &alloc_json(&c, a, true)),
        Err(e) => error(StatusCode::NOT_FOUND, &e),
    }
}

/// An evaluation as Nomad shows it: complete once the catalog has the change (the
/// scheduler acts on every change at once), with the groups it could not place.
pub fn eval_json(c: &Catalog, st: &SchedStatus, id: &str, index: u64, trigger: Trigger, job: &str) -> Value {
    let rec = c.work.jobs.get(job);
    let failed: serde_json::Map<String, Value> = st
        .unplaced
        .iter()
        .filter(|((j, _), _)| j == job && trigger == Trigger::Register)
        .map(|((_, g), why)| {
            (g.clone(), json!({"NodesEvaluated": c.nodes.len(), "ConstraintFiltered": {why.to_string(): 1}}))
        })
        .collect();
    json!({
        "ID": id, "Namespace": "default", "Priority": rec.map_or(50, |r| r.spec.priority),
        "Type": rec.map_or("service", |r| r.spec.kind.as_str()),
        "TriggeredBy": match trigger { Trigger::Register => "job-register", Trigger::Deregister => "job-deregister" },
        "JobID": job, "JobModifyIndex": index,
        "Status": if c.index >= index { "complete" } else { "pending" }, "StatusDescription": "",
        "FailedTGAllocs": if failed.is_empty() { Value::Null } else { Value::Object(failed) },
        "BlockedEval": "", "CreateIndex": index, "ModifyIndex": index,
    })
}

pub async fn evaluation(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let c = s.catalog();
    let found = parse_eval_id(&id).and_then(|(index, trigger, digest)| {
        let job = c.work.jobs.keys().chain(c.work.history.keys().map(|(j, _)| j)).find(|j| job_digest(j) == digest)?;
        Some((index, trigger, job.clone()))
    });
    match found {
        Some((index, trigger, job)) if door::may_read(Resource::Job, &job) => {
            answer(c.index, &eval_json(&c, &s.sched.borrow(), &id, index, trigger, &job))
        }
        _ => error(StatusCode::NOT_FOUND, &format!("eval not found: {id}")),
    }
}
