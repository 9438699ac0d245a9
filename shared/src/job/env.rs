//! A task's environment as Nomad sets it (`NOMAD_ALLOC_ID`, `NOMAD_PORT_<label>`,
//! `NOMAD_ADDR_<label>`, `NOMAD_TASK_DIR`, ...) and the interpolation of `${...}` in
//! its config, env and args: `NOMAD_*` from that environment, `attr.*`, `node.*` and
//! `meta.*` from the node's facts. Pure.

use crate::NodeId;
use crate::assign::Assignment;
use crate::attr::{self, NodeRef};
use crate::job::Task;
use crate::msg::NodeFacts;
use std::collections::BTreeMap;
use std::path::Path;

/// The task's directories (on a tmpfs): `alloc/` shared by the group's tasks, and the
/// task's `local/`, `secrets/` and `tmp/`.
#[derive(Debug, Clone)]
pub struct Dirs<'a> {
    pub alloc: &'a Path,
    pub task: &'a Path,
}

/// `NOMAD_*` for `t` of `a` on this node; the task's own `env` (interpolated) wins.
pub fn build(a: &Assignment, t: &Task, node: &NodeId, facts: &NodeFacts, dirs: &Dirs<'_>) -> BTreeMap<String, String> {
    let mut e = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        e.insert(k.to_owned(), v);
    };
    set("NOMAD_ALLOC_ID", a.alloc.to_string());
    set("NOMAD_SHORT_ALLOC_ID", a.alloc.as_str().chars().take(8).collect());
    set("NOMAD_ALLOC_NAME", a.name.clone());
    set("NOMAD_ALLOC_INDEX", a.index.to_string());
    set("NOMAD_JOB_ID", a.job_id.clone());
    set("NOMAD_JOB_NAME", a.job_id.clone());
    set("NOMAD_GROUP_NAME", a.group.clone());
    set("NOMAD_TASK_NAME", t.name.clone());
    set("NOMAD_DC", facts.datacenter.clone());
    set("NOMAD_REGION", "global".into());
    set("NOMAD_NAMESPACE", "default".into());
    set("NOMAD_CPU_LIMIT", t.resources.cpu_mhz.to_string());
    set("NOMAD_MEMORY_LIMIT", t.resources.memory_mb.to_string());
    if let Some(m) = t.resources.memory_max_mb {
        set("NOMAD_MEMORY_MAX_LIMIT", m.to_string());
    }
    let container = matches!(t.driver.as_str(), "docker" | "podman");
    if container {
        // Mounted into the container where Nomad mounts them.
        set("NOMAD_ALLOC_DIR", "/alloc".into());
        set("NOMAD_TASK_DIR", "/local".into());
        set("NOMAD_SECRETS_DIR", "/secrets".into());
    } else {
        set("NOMAD_ALLOC_DIR", dirs.alloc.display().to_string());
        set("NOMAD_TASK_DIR", dirs.task.join("local").display().to_string());
        set("NOMAD_SECRETS_DIR", dirs.task.join("secrets").display().to_string());
        set("TMPDIR", dirs.task.join("tmp").display().to_string());
    }
    let ip = &facts.advertise;
    for p in &a.ports {
        let label = env_name(&p.label);
        // Inside a container the task binds `to`; on the host it binds the host port.
        let inner = if container { p.to.unwrap_or(p.value) } else { p.value };
        set(&format!("NOMAD_PORT_{label}"), inner.to_string());
        set(&format!("NOMAD_HOST_PORT_{label}"), p.value.to_string());
        set(&format!("NOMAD_IP_{label}"), ip.clone());
        set(&format!("NOMAD_HOST_IP_{label}"), ip.clone());
        set(&format!("NOMAD_ADDR_{label}"), join_addr(ip, inner));
        set(&format!("NOMAD_HOST_ADDR_{label}"), join_addr(ip, p.value));
    }
    for (k, v) in &t.meta {
        set(&format!("NOMAD_META_{}", env_name(k)), v.clone());
    }
    let base = e.clone();
    let here = NodeRef { id: node, facts };
    for (k, v) in &t.env {
        e.insert(k.clone(), interpolate(v, &base, here));
    }
    e
}

fn join_addr(ip: &str, port: u16) -> String {
    if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
}

/// Nomad's mangling of a label into an environment variable name.
fn env_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// Replaces `${NAME}` from `env` and `${attr.*}`, `${node.*}`, `${meta.*}` from the
/// node; anything unknown is left as written (as Nomad does).
pub fn interpolate(s: &str, env: &BTreeMap<String, String>, node: NodeRef<'_>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = rest[start + 2..start + len].trim();
        let value = env
            .get(name)
            .cloned()
            .or_else(|| name.strip_prefix("env.").and_then(|k| env.get(k).cloned()))
            .or_else(|| attr::attribute(node, name));
        match value {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + len + 1]),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// Interpolates every string in a driver config value.
pub fn interpolate_json(v: &serde_json::Value, env: &BTreeMap<String, String>, node: NodeRef<'_>) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(interpolate(s, env, node)),
        Value::Array(a) => Value::Array(a.iter().map(|x| interpolate_json(x, env, node)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), interpolate_json(x, env, node))).collect()),
        other => other.clone(),
    }
}
