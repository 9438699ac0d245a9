//! What each API endpoint needs, in one table: a pure function of the method, the path
//! and the query, so the hub's door asks it for every request and a test walks the
//! whole router (an endpoint without a line here is refused, never let through).

use super::{Cap, Need, Resource};

/// What a request needs before its handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Anyone: liveness and the Consul agent's identity (`/api/v1/health`, `/v1/status/*`,
    /// `/v1/agent/self`, `/v1/catalog/datacenters`), which clients probe before anything.
    Open,
    /// A capability on a name the path (or query) gives.
    Need(Need),
    /// A capability on an allocation's job: the allocation (id or unique prefix) is looked
    /// up in the catalog by the caller.
    Alloc(Cap, String),
    /// A list: the door asks for read on some name of the resource; the handler leaves out
    /// what the caller may not read (as Consul filters its lists).
    List(Resource),
    /// A capability on names the body carries (a job file's id, a transaction's keys): the
    /// door asks for it on some name; the handler checks each name it reads.
    InBody(Resource, Cap),
}

/// The gate of `method path?query`; `None`: no such endpoint (refused as such).
pub fn gate(method: &str, path: &str, query: Option<&str>) -> Option<Gate> {
    use Resource::*;
    let need = |r: Resource, c: Cap, name: &str| Some(Gate::Need(Need::new(r, c, name)));
    let whole = |r: Resource, c: Cap| Some(Gate::Need(Need::new(r, c, "")));
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let read = method == "GET" || method == "HEAD";
    match (method, seg.as_slice()) {
        // Probed by every client first; says nothing a port scan does not.
        ("GET" | "HEAD", ["api", "v1", "health"] | ["v1", "status", _] | ["v1", "agent", "self"]) => Some(Gate::Open),
        ("GET" | "HEAD", ["v1", "catalog", "datacenters"]) => Some(Gate::Open),
        // The service catalog, as DNS tells it, and what derives from it.
        (_, ["api", "v1", "services"]) if read => Some(Gate::List(Service)),
        (_, ["api", "v1", "services", name]) if read => need(Service, Cap::Read, name),
        (_, ["v1", "catalog", "services"] | ["v1", "health", "state", _]) if read => Some(Gate::List(Service)),
        (_, ["v1", "catalog" | "health", "service" | "checks", name]) if read => need(Service, Cap::Read, name),
        (_, ["metrics"] | ["api", "v1", "prometheus", "targets"] | ["api", "v1", "routes"]) if read => {
            whole(Service, Cap::Read)
        }
        (_, ["v1", "traefik"] | ["v1", "traefik", _]) if read => whole(Service, Cap::Read),
        // A service's name needs service:register; the external node alone, node:write.
        ("PUT", ["v1", "catalog", "register" | "deregister"]) => Some(Gate::InBody(Service, Cap::Register)),
        // Nodes.
        (_, ["api", "v1", "nodes"] | ["v1", "catalog", "nodes"]) if read => Some(Gate::List(Node)),
        (_, ["api", "v1", "nodes", id] | ["v1", "catalog" | "health", "node", id]) if read => need(Node, Cap::Read, id),
        ("POST", ["api", "v1", "nodes", id, "drain" | "eligibility" | "join" | "forget"]) => need(Node, Cap::Write, id),
        // Jobs and allocations.
        (_, ["api", "v1", "jobs"]) if read => Some(Gate::List(Job)),
        ("POST", ["api", "v1", "jobs"] | ["api", "v1", "jobs", "plan"]) => Some(Gate::InBody(Job, Cap::Submit)),
        (_, ["api", "v1", "jobs", id] | ["api", "v1", "jobs", id, "versions"]) if read => need(Job, Cap::Read, id),
        ("DELETE", ["api", "v1", "jobs", id]) => need(Job, Cap::Stop, id),
        ("POST", ["api", "v1", "jobs", id, "revert"] | ["v1", "job", id, "revert"]) => need(Job, Cap::Submit, id),
        ("POST", ["api", "v1", "jobs", id, "dispatch"]) | ("POST" | "PUT", ["v1", "job", id, "dispatch"]) => {
            need(Job, Cap::Dispatch, id)
        }
        // Restarting disrupts like stopping: stop on the allocation's job (checked by the handler).
        ("POST" | "PUT", ["api", "v1", "allocations", _, "restart"] | ["v1", "client", "allocation", _, "restart"]) => {
            Some(Gate::InBody(Job, Cap::Stop))
        }
        (_, ["api", "v1", "allocations"]) if read => Some(Gate::List(Alloc)),
        (_, ["api", "v1", "allocations", id]) if read => Some(Gate::Alloc(Cap::Read, (*id).to_owned())),
        (_, ["api", "v1", "allocations", id, "logs"]) if read => Some(Gate::Alloc(Cap::Logs, (*id).to_owned())),
        // Nomad's API: the same capabilities as the hub's own job, node and allocation endpoints.
        (_, ["v1", "jobs"] | ["v1", "allocations"]) if read => {
            Some(Gate::List(if seg[1] == "jobs" { Job } else { Alloc }))
        }
        ("POST" | "PUT", ["v1", "jobs"] | ["v1", "job", _] | ["v1", "job", _, "plan"]) => {
            Some(Gate::InBody(Job, Cap::Submit))
        }
        ("POST" | "PUT", ["v1", "jobs", "parse"] | ["v1", "validate", "job"]) => Some(Gate::InBody(Job, Cap::Submit)),
        (_, ["v1", "job", id] | ["v1", "job", id, "allocations" | "versions" | "evaluations"]) if read => {
            need(Job, Cap::Read, id)
        }
        ("DELETE", ["v1", "job", id]) => need(Job, Cap::Stop, id),
        (_, ["v1", "nodes"]) if read => Some(Gate::List(Node)),
        (_, ["v1", "node", id]) if read => need(Node, Cap::Read, id),
        (_, ["v1", "allocation", id]) if read => Some(Gate::Alloc(Cap::Read, (*id).to_owned())),
        // An evaluation names its job only once decoded: the handler asks for read on it.
        (_, ["v1", "evaluation", _]) if read => Some(Gate::List(Job)),
        // KV: the key (a recursive read or delete needs its whole subtree).
        (_, ["v1", "kv", ..]) => {
            let key = path.trim_start_matches("/v1/kv").trim_start_matches('/');
            let key = percent_decode(key);
            let recurse = query.is_some_and(|q| q.split('&').any(|p| p == "recurse" || p.starts_with("recurse=")));
            let cap = match method {
                "GET" | "HEAD" => Cap::Read,
                "PUT" | "DELETE" => Cap::Write,
                _ => return None,
            };
            let mut n = Need::new(Kv, cap, key);
            n.subtree = recurse || (read && query.is_some_and(|q| q.split('&').any(|p| p == "keys")));
            Some(Gate::Need(n))
        }
        // Each operation is checked by the handler (`txn_need`): reads need read, writes write.
        ("PUT", ["v1", "txn"]) => Some(Gate::InBody(Kv, Cap::Read)),
        // Variables: the path, or the listed prefix (metadata of a whole subtree).
        (_, ["v1", "vars"]) if read => {
            let prefix = query
                .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("prefix=")))
                .map(percent_decode)
                .unwrap_or_default();
            let mut n = Need::new(Var, Cap::Read, prefix);
            n.subtree = true;
            Some(Gate::Need(n))
        }
        (_, ["v1", "var", ..]) => {
            let p = percent_decode(path.trim_start_matches("/v1/var/"));
            match method {
                "GET" | "HEAD" => need(Var, Cap::Read, &p),
                "PUT" | "DELETE" => need(Var, Cap::Write, &p),
                _ => None,
            }
        }
        // The hub's own state.
        (_, ["api", "v1", "events"] | ["api", "v1", "certs"] | ["api", "v1", "cluster"]) if read => {
            whole(Operator, Cap::Read)
        }
        ("POST", ["api", "v1", "cluster", "remove"]) => whole(Operator, Cap::Write),
        // Named volumes: the operator's (they name storage servers and paths).
        (_, ["api", "v1", "volumes"] | ["api", "v1", "volumes", _]) if read => whole(Operator, Cap::Read),
        ("POST", ["api", "v1", "volumes"]) | ("DELETE", ["api", "v1", "volumes", _]) => whole(Operator, Cap::Write),
        // Alerts and silences (Alertmanager's v2 API, and the same under v1).
        (
            _,
            ["api", "v1" | "v2", "alerts" | "silences"] | ["api", "v2", "silence", _] | ["api", "v1", "silences", _],
        ) if read => whole(Operator, Cap::Read),
        ("POST", ["api", "v1" | "v2", "silences"]) => whole(Operator, Cap::Write),
        ("DELETE", ["api", "v2", "silence", _] | ["api", "v1", "silences", _]) => whole(Operator, Cap::Write),
        // The web UI: its pages show only what the caller may read (each list filtered, as
        // the API's are); what it does goes through `/ui/api/<API path>`, an API request
        // again, decided by this table on its own path.
        ("GET" | "HEAD", [""] | ["ui", ..]) => Some(Gate::Open),
        ("POST", ["ui", "login" | "logout"]) => Some(Gate::Open),
        (_, ["ui", "api", ..]) => Some(Gate::Open),
        (_, ["api", "v1", "acl", "bootstrap"]) if method == "POST" => Some(Gate::Open),
        (_, ["api", "v1", "acl", "token", "self"]) if read => Some(Gate::Open),
        (_, ["api", "v1", "acl", ..]) if read => whole(Acl, Cap::Read),
        ("POST" | "PUT" | "DELETE", ["api", "v1", "acl", ..]) => whole(Acl, Cap::Write),
        _ => None,
    }
}

fn percent_decode(s: &str) -> String {
    rabble_shared::routes::rule::percent_decode(s)
}

/// What one KV transaction operation needs.
pub fn txn_need(op: &crate::catalog::kv_txn::TxnOp) -> Need {
    use crate::catalog::kv_txn::TxnOp::*;
    let (cap, key, subtree) = match op {
        Get { key } | CheckIndex { key, .. } | CheckNotExists { key } => (Cap::Read, key, false),
        GetTree { key } => (Cap::Read, key, true),
        Set { key, .. } | Cas { key, .. } | Delete { key } | DeleteCas { key, .. } => (Cap::Write, key, false),
        DeleteTree { key } => (Cap::Write, key, true),
    };
    let mut n = Need::new(Resource::Kv, cap, key.clone());
    n.subtree = subtree;
    n
}
