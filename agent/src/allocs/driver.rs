//! One task on its driver: making its directories, environment and config, launching
//! it (a process for raw_exec/exec, a container for docker, adopted when still
//! running) and stopping it with its kill signal and timeout.

#[cfg(feature = "docker")]
use super::docker;
use super::process::{self, Launch, TaskExit, TaskKey};
use super::{DockerEngine, Handle, Phase, Settings, TaskRt, env};
use rabble_shared::assign::Assignment;
use rabble_shared::attr::NodeRef;
use rabble_shared::job::Task;
use rabble_shared::msg::NodeFacts;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub(super) fn stop_task(t: &mut TaskRt, now: Instant, docker: &DockerEngine) {
    let _ = docker;
    match std::mem::replace(&mut t.phase, Phase::Dead { ok: true }) {
        Phase::Running { generation, run } => {
            let kill_at = now + Duration::from_millis(t.spec.kill_timeout_ms);
            match &run {
                Handle::Proc(p) => {
                    // A VM is asked to power down (ACPI), as Nomad's graceful_shutdown; killed at kill_at.
                    #[cfg(feature = "qemu")]
                    let asked = p.monitor.as_deref().is_some_and(|m| process::powerdown(m, p.pid));
                    #[cfg(not(feature = "qemu"))]
                    let asked = false;
                    if !asked {
                        let sig = process::parse_signal(t.spec.kill_signal.as_deref()).unwrap_or(process::Signal::TERM);
                        process::signal(p.pid, sig);
                    }
                }
                #[cfg(feature = "docker")]
                Handle::Container(c) => {
                    if let Some(d) = docker.get(&t.spec.driver) {
                        // The engine sends the signal and kills after the timeout; the
                        // watcher reports the exit. Its last output is kept before removal.
                        let keep = t.output.get_or_insert_with(Default::default).clone();
                        docker::stop(
                            d.clone(),
                            &t.spec.driver,
                            c.name.clone(),
                            t.spec.kill_signal.clone(),
                            t.spec.kill_timeout_ms.div_ceil(1000),
                            Some(keep),
                        );
                    }
                }
            }
            t.event = "stopping".into();
            t.phase = Phase::Stopping { generation, run, kill_at };
        }
        stopping @ Phase::Stopping { .. } => t.phase = stopping,
        dead @ Phase::Dead { .. } => t.phase = dead,
        Phase::Pending | Phase::Waiting { .. } => t.event = "not started".into(),
    }
}

/// A docker task: adopted when a container from an earlier run of the agent is still
/// running for it, else created and started (asynchronously; the outcome comes back as
/// a `TaskExit`).
#[allow(clippy::too_many_arguments)]
pub(super) fn start_container(
    cfg: &Settings,
    docker: &DockerEngine,
    adoptable: &mut Option<BTreeMap<(String, String), String>>,
    a: &Assignment,
    t: &Task,
    facts: &NodeFacts,
    key: TaskKey,
    exits: &mpsc::Sender<TaskExit>,
    paths: &BTreeMap<String, PathBuf>,
) -> Result<Handle, String> {
    #[cfg(feature = "docker")]
    {
        let d = docker.get(&t.driver).ok_or_else(|| format!("no {} engine on this node", t.driver))?;
        let name = docker::name(a.alloc.as_str(), &t.name);
        let adoptable = adoptable.as_mut().and_then(|f| f.remove(&(a.alloc.to_string(), t.name.clone()))).is_some();
        let (vars, mut config, task_dir) = prepare(cfg, a, t, facts)?;
        if t.driver == "podman" {
            docker::podman_config(&mut config);
        }
        let cx = docker::Context {
            node: cfg.node.as_str(),
            alloc: a.alloc.as_str(),
            ports: &a.ports,
            env: &vars,
            config: &config,
            volumes: &a.volumes,
            paths,
        };
        let mut body = docker::body(t, &cx)?;
        let alloc_dir = task_dir.parent().map(|p| p.join("alloc")).unwrap_or_default();
        let mounts =
            [(alloc_dir, "/alloc"), (task_dir.join("local"), "/local"), (task_dir.join("secrets"), "/secrets")];
        if let Some(hc) = body.host_config.as_mut() {
            let binds = hc.binds.get_or_insert_with(Vec::new);
            binds.extend(mounts.iter().map(|(h, c)| format!("{}:{c}", h.display())));
        }
        let force = config.get("force_pull").is_some_and(|v| v == &serde_json::Value::Bool(true) || v == "true");
        let _ =
            std::fs::write(docker::record(&cfg.alloc_dir, a.alloc.as_str(), &t.name), format!("{} {name}", t.driver));
        if adoptable {
            // Still running from before the agent restarted? Then watch it; else start anew.
            let (d, exits, n) = (d.clone(), exits.clone(), name.clone());
            let (alloc, task) = (a.alloc.clone(), t.name.clone());
            tokio::spawn(async move {
                if docker::adopt(d.clone(), n.clone(), key.clone(), exits.clone()).await {
                    tracing::info!(alloc = %alloc, task = %task, "adopted the running container");
                } else {
                    docker::spawn(d, key, body, force, exits);
                }
            });
            return Ok(Handle::Container(docker::Container { name }));
        }
        Ok(Handle::Container(docker::spawn(d.clone(), key, body, force, exits.clone())))
    }
    #[cfg(not(feature = "docker"))]
    {
        let _ = (cfg, docker, adoptable, a, t, facts, key, exits, paths);
        Err("this agent was built without the Docker driver".into())
    }
}

/// A task ready to start: its environment, its interpolated config, its directory.
type Prepared = (BTreeMap<String, String>, serde_json::Map<String, serde_json::Value>, PathBuf);

/// A task's directories (made), environment and interpolated config.
fn prepare(cfg: &Settings, a: &Assignment, t: &Task, facts: &NodeFacts) -> Result<Prepared, String> {
    let alloc_dir = cfg.alloc_dir.join(a.alloc.as_str());
    let task_dir = alloc_dir.join(&t.name);
    for d in [alloc_dir.join("alloc"), task_dir.join("local"), task_dir.join("secrets"), task_dir.join("tmp")] {
        std::fs::create_dir_all(&d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    if let Some(d) = &t.dispatch_payload {
        write_payload(&task_dir.join("local"), d)?;
    }
    let dirs = env::Dirs { alloc: &alloc_dir.join("alloc"), task: &task_dir };
    let vars = env::build(a, t, &cfg.node, facts, &dirs);
    let here = NodeRef { id: &cfg.node, facts };
    let config = match env::interpolate_json(&serde_json::Value::Object(t.config.clone()), &vars, here) {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    Ok((vars, config, task_dir))
}

/// A dispatched job's payload, into `local/<file>` (the hub checked the name; so does this).
fn write_payload(local: &std::path::Path, d: &rabble_shared::job::DispatchPayload) -> Result<(), String> {
    use base64::Engine as _;
    let rel = std::path::Path::new(&d.file);
    if !rel.components().all(|c| matches!(c, std::path::Component::Normal(_))) {
        return Err(format!("dispatch_payload: {:?} is not a path under local/", d.file));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&d.data)
        .map_err(|e| format!("dispatch_payload: the payload is not base64: {e}"))?;
    let path = local.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// What to run for a raw_exec or exec task.
pub(super) fn launch(
    cfg: &Settings,
    a: &Assignment,
    t: &Task,
    facts: &NodeFacts,
    paths: &BTreeMap<String, PathBuf>,
) -> Result<Launch, String> {
    let (vars, config, task_dir) = prepare(cfg, a, t, facts)?;
    super::volumes::link(&task_dir, t, paths)?;
    let limits = || {
        let mem = t.resources.memory_max_mb.unwrap_or(t.resources.memory_mb);
        (format!("{}-{}", a.alloc, t.name), mem, t.resources.cpu_mhz)
    };
    #[cfg_attr(not(feature = "qemu"), allow(unused_mut))]
    let mut monitor = None;
    let (command, args, cgroup) = match t.driver.as_str() {
        "raw_exec" | "exec" => {
            let cgroup = match t.driver.as_str() {
                "exec" if cfg.cgroups => Some(limits()),
                "exec" => return Err("exec needs cgroup v2 with the memory controller on this node".into()),
                _ => None,
            };
            let command = config.get("command").and_then(|c| c.as_str()).ok_or("config.command is missing")?;
            let args = match config.get("args") {
                None => vec![],
                Some(serde_json::Value::Array(a)) => {
                    a.iter().map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string())).collect()
                }
                Some(other) => return Err(format!("config.args must be a list, not {other}")),
            };
            (command.to_owned(), args, cgroup)
        }
        // Like exec: in the task's cgroup where this node has one, else as raw_exec does.
        #[cfg(feature = "java")]
        "java" => ("java".to_owned(), super::programs::java(&config)?, cfg.cgroups.then(limits)),
        #[cfg(feature = "qemu")]
        "qemu" => {
            let kvm = crate::programs::kvm_usable();
            let q = super::programs::qemu(&config, &t.name, &task_dir, t.resources.memory_mb, &a.ports, kvm)?;
            monitor = q.monitor;
            (q.command, q.args, None)
        }
        other => return Err(format!("the {other} driver is not available on this agent")),
    };
    Ok(Launch { command, args, env: vars, cwd: task_dir, user: t.user.clone(), cgroup, monitor })
}
