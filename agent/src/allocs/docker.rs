//! Docker tasks (bollard, over the engine's Unix socket): pull the image when it is
//! missing (or `force_pull`), create the container with the task's ports, env, binds,
//! limits and Rabble's labels (`rabble.alloc`, `rabble.task`, `rabble.node`), start it,
//! and watch it; stop with `kill_timeout`, keep its last output, then remove. The engine
//! keeps the logs while the container exists.
//! Each task's container is recorded on the tmpfs alloc dir, so an agent that restarts
//! adopts the ones it still has work for and removes the rest: restarting the agent
//! restarts no workload.

use super::process::{Output, TaskExit, TaskKey};
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, LogsOptions, RemoveContainerOptions, StopContainerOptions,
    WaitContainerOptions,
};
use futures_util::StreamExt;
use rabble_shared::alloc::AllocPort;
use rabble_shared::job::{Task, Volume};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use tokio::sync::mpsc;

pub const LABEL_ALLOC: &str = "rabble.alloc";
pub const LABEL_TASK: &str = "rabble.task";
pub const LABEL_NODE: &str = "rabble.node";

/// A container the runtime owns, by name.
#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
}

/// What a container needs beyond its task: where it runs and what it was given.
pub struct Context<'a> {
    pub node: &'a str,
    pub alloc: &'a str,
    pub ports: &'a [AllocPort],
    pub env: &'a BTreeMap<String, String>,
    /// The task's config with `${...}` filled in.
    pub config: &'a serde_json::Map<String, Value>,
    /// Group volumes by name, and where each is on this node.
    pub volumes: &'a BTreeMap<String, Volume>,
    pub paths: &'a BTreeMap<String, std::path::PathBuf>,
}

pub fn name(alloc: &str, task: &str) -> String {
    format!("rabble-{alloc}-{task}")
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string())).collect())
}

fn truthy(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true))) || v.and_then(Value::as_str) == Some("true")
}

/// The container's create body, pure.
pub fn body(t: &Task, cx: &Context<'_>) -> Result<ContainerCreateBody, String> {
    let c = cx.config;
    let image = c.get("image").and_then(Value::as_str).ok_or("config.image is missing")?.to_owned();
    // `ports = ["http"]`: publish each label's `to` (or its host port) on the host port.
    let mut port_bindings = HashMap::new();
    let mut exposed = Vec::new();
    for label in strings(c.get("ports")).unwrap_or_default() {
        let p = cx.ports.iter().find(|p| p.label == label).ok_or_else(|| format!("config.ports: no port {label:?}"))?;
        for proto in ["tcp", "udp"] {
            let key = format!("{}/{proto}", p.to.unwrap_or(p.value));
            exposed.push(key.clone());
            let binding = PortBinding { host_ip: None, host_port: Some(p.value.to_string()) };
            port_bindings.insert(key, Some(vec![binding]));
        }
    }
    let mut binds = strings(c.get("volumes")).unwrap_or_default();
    // `mount { type = "bind" source = ... target = ... readonly = true }` blocks.
    for m in c.get("mount").and_then(Value::as_array).into_iter().flatten() {
        let field = |k: &str| m.get(k).and_then(Value::as_str);
        match (field("type").unwrap_or("bind"), field("source"), field("target")) {
            ("bind" | "volume", Some(src), Some(dst)) => {
                let ro = if truthy(m.get("readonly")) { ":ro" } else { "" };
                binds.push(format!("{src}:{dst}{ro}"));
            }
            (kind, _, _) => {
                return Err(format!("config.mount: type {kind:?} needs source and target (bind or volume)"));
            }
        }
    }
    for m in &t.volume_mounts {
        let v = cx.volumes.get(&m.volume).ok_or_else(|| format!("volume_mount: no volume {:?}", m.volume))?;
        let path =
            cx.paths.get(&m.volume).ok_or_else(|| format!("no {} volume {:?} on this node", v.kind, v.source))?;
        let ro = if m.read_only || v.read_only { ":ro" } else { "" };
        binds.push(format!("{}:{}{ro}", path.display(), m.destination));
    }
    // Nomad's docker driver: `memory_hard_limit` in the config is the hard limit too.
    let hard = c.get("memory_hard_limit").and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
    let memory_mb = hard.map(|h| h as u32).or(t.resources.memory_max_mb).unwrap_or(t.resources.memory_mb);
    let devices = strings(c.get("devices")).map(|ds| {
        ds.into_iter()
            .map(|d| bollard::models::DeviceMapping {
                path_on_host: Some(d.clone()),
                path_in_container: Some(d),
                cgroup_permissions: Some("rwm".into()),
            })
            .collect()
    });
    let host_config = HostConfig {
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        binds: (!binds.is_empty()).then_some(binds),
        network_mode: c.get("network_mode").and_then(Value::as_str).map(str::to_owned),
        privileged: Some(truthy(c.get("privileged"))),
        cap_add: strings(c.get("cap_add")),
        cap_drop: strings(c.get("cap_drop")),
        devices,
        memory: Some(i64::from(memory_mb) * 1024 * 1024),
        memory_reservation: (t.resources.memory_max_mb.is_some() || hard.is_some())
            .then(|| i64::from(t.resources.memory_mb) * 1024 * 1024),
        // Nomad maps MHz to shares the same way: one share per MHz.
        cpu_shares: Some(i64::from(t.resources.cpu_mhz.max(2))),
        dns: strings(c.get("dns_servers")),
        extra_hosts: strings(c.get("extra_hosts")),
        init: c.get("init").map(|v| truthy(Some(v))),
        security_opt: strings(c.get("security_opt")),
        group_add: strings(c.get("group_add")),
        ipc_mode: c.get("ipc_mode").and_then(Value::as_str).map(str::to_owned),
        pid_mode: c.get("pid_mode").and_then(Value::as_str).map(str::to_owned),
        userns_mode: c.get("userns_mode").and_then(Value::as_str).map(str::to_owned),
        shm_size: c.get("shm_size").and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok())),
        sysctls: c.get("sysctl").and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_object).map(
            |m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
                    .collect()
            },
        ),
        ..Default::default()
    };
    let mut labels: HashMap<String, String> = c
        .get("labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))).collect()
        })
        .unwrap_or_default();
    labels.insert(LABEL_ALLOC.into(), cx.alloc.into());
    labels.insert(LABEL_TASK.into(), t.name.clone());
    labels.insert(LABEL_NODE.into(), cx.node.into());
    let entrypoint = match c.get("entrypoint") {
        Some(Value::String(s)) => Some(vec![s.clone()]),
        other => strings(other),
    };
    let mut cmd = match c.get("command").and_then(Value::as_str) {
        Some(command) => vec![command.to_owned()],
        None => vec![],
    };
    cmd.extend(strings(c.get("args")).unwrap_or_default());
    Ok(ContainerCreateBody {
        image: Some(image),
        cmd: (!cmd.is_empty()).then_some(cmd),
        entrypoint,
        env: Some(cx.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        hostname: c.get("hostname").and_then(Value::as_str).map(str::to_owned),
        working_dir: c.get("work_dir").and_then(Value::as_str).map(str::to_owned),
        user: t.user.clone(),
        tty: Some(truthy(c.get("tty"))),
        host_config: Some(host_config),
        ..Default::default()
    })
}

fn engine_error(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, message } => {
            format!("docker ({status_code}): {message}")
        }
        other => format!("docker: {other}"),
    }
}

/// Pulls (when needed), creates and starts the container, then waits for it; every
/// outcome comes back as a `TaskExit` (a start that failed has no code and a reason).
pub fn spawn(
    docker: Docker,
    key: TaskKey,
    body: ContainerCreateBody,
    force_pull: bool,
    exits: mpsc::Sender<TaskExit>,
) -> Container {
    let name = name(key.alloc.as_str(), &key.task);
    let c = Container { name: name.clone() };
    tokio::spawn(async move {
        let started = start(&docker, &name, body, force_pull).await;
        let exit = match started {
            Ok(()) => wait(&docker, &name, key).await,
            Err(reason) => TaskExit { key, code: None, signal: None, reason: Some(reason) },
        };
        let _ = exits.send(exit).await;
    });
    c
}

async fn start(docker: &Docker, name: &str, body: ContainerCreateBody, force_pull: bool) -> Result<(), String> {
    let image = body.image.clone().unwrap_or_default();
    if force_pull {
        pull(docker, &image).await?;
    }
    // A leftover with our name (a crash between create and start) is replaced.
    let _ = docker.remove_container(name, Some(RemoveContainerOptions { force: true, ..Default::default() })).await;
    let create = |body| {
        docker
            .create_container(Some(CreateContainerOptions { name: Some(name.to_owned()), ..Default::default() }), body)
    };
    match create(body.clone()).await {
        Ok(_) => {}
        // No such image: pull it, then create. (Asking the engine first would cost the
        // agent bollard's image-inspect model, ~100 KB on the SD card.)
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
            pull(docker, &image).await?;
            create(body).await.map_err(engine_error)?;
        }
        Err(e) => return Err(engine_error(e)),
    }
    docker.start_container(name, None).await.map_err(engine_error)
}

async fn pull(docker: &Docker, image: &str) -> Result<(), String> {
    let opts = CreateImageOptions { from_image: Some(image.to_owned()), ..Default::default() };
    let mut stream = docker.create_image(Some(opts), None, None);
    while let Some(step) = stream.next().await {
        step.map_err(|e| format!("pulling {image}: {}", engine_error(e)))?;
    }
    Ok(())
}

/// Waits for a container (also one adopted after an agent restart) to exit.
pub async fn wait(docker: &Docker, name: &str, key: TaskKey) -> TaskExit {
    let mut w = docker.wait_container(name, None::<WaitContainerOptions>);
    match w.next().await {
        Some(Ok(r)) => TaskExit { key, code: Some(r.status_code as i32), signal: None, reason: None },
        // bollard reports a non-zero exit as an error carrying the code.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, error })) => {
            TaskExit { key, code: Some(code as i32), signal: None, reason: (!error.is_empty()).then_some(error) }
        }
        Some(Err(e)) => TaskExit { key, code: None, signal: None, reason: Some(engine_error(e)) },
        None => TaskExit { key, code: None, signal: None, reason: Some("the engine stopped answering".into()) },
    }
}

/// Stops (SIGTERM, then SIGKILL after `timeout_s`) and removes a container; its last
/// output goes to `keep` first (read while the container still exists), so `rabble alloc
/// logs` still shows it once the allocation has ended.
pub fn stop(docker: Docker, driver: &str, name: String, signal: Option<String>, timeout_s: u64, keep: Option<Output>) {
    let podman = driver == "podman";
    tokio::spawn(async move {
        // Podman's compatible `stop` ignores the signal asked for: send it first.
        if let Some(sig) = signal.clone().filter(|_| podman) {
            let _ = docker
                .kill_container(&name, Some(bollard::query_parameters::KillContainerOptions { signal: sig }))
                .await;
        }
        let opts = StopContainerOptions { signal, t: Some(timeout_s.min(i32::MAX as u64) as i32) };
        let _ = docker.stop_container(&name, Some(opts)).await;
        if let Some(out) = keep {
            for (stdout, tail) in [(true, &out.stdout), (false, &out.stderr)] {
                let opts = LogsOptions { stdout, stderr: !stdout, tail: KEEP_LINES.into(), ..Default::default() };
                let mut logs = docker.logs(&name, Some(opts));
                while let Some(Ok(chunk)) = logs.next().await {
                    if let Ok(mut t) = tail.lock() {
                        t.push(chunk.as_ref());
                    }
                }
            }
        }
        let _ =
            docker.remove_container(&name, Some(RemoveContainerOptions { force: true, ..Default::default() })).await;
    });
}

/// The lines of a removed container's streams kept (then cut to the tail's bytes).
const KEEP_LINES: &str = "500";

/// Sends `signal` to a task's container (a template's `change_signal`).
pub fn signal(docker: Docker, name: String, signal: String) {
    tokio::spawn(async move {
        let opts = bollard::query_parameters::KillContainerOptions { signal };
        let _ = docker.kill_container(&name, Some(opts)).await;
    });
}

/// The file (on the tmpfs alloc dir) that remembers a task's container across agent
/// restarts: listing containers would cost the agent bollard's container-summary model
/// (~30 KB on the SD card).
pub fn record(alloc_dir: &std::path::Path, alloc: &str, task: &str) -> std::path::PathBuf {
    alloc_dir.join(alloc).join(task).join("container")
}

/// Containers an earlier run of the agent started, from their records (`<driver> <name>`;
/// a record of only the name is docker's): (alloc, task) → driver.
pub fn recorded(alloc_dir: &std::path::Path) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for a in std::fs::read_dir(alloc_dir).into_iter().flatten().flatten() {
        for t in std::fs::read_dir(a.path()).into_iter().flatten().flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("container")) {
                let driver = text.split_once(' ').map_or("docker", |(d, _)| d).to_owned();
                let key = (a.file_name().to_string_lossy().into_owned(), t.file_name().to_string_lossy().into_owned());
                out.insert(key, driver);
            }
        }
    }
    out
}

/// nomad-driver-podman's config keys as the docker driver's body reads them.
pub fn podman_config(c: &mut serde_json::Map<String, Value>) {
    for (podman, docker) in [("working_dir", "work_dir"), ("userns", "userns_mode"), ("dns", "dns_servers")] {
        if let Some(v) = c.remove(podman) {
            c.insert(docker.to_owned(), v);
        }
    }
}

/// Adopts a container if it is still running: its exit watcher, started now, has not
/// returned within a moment. Returns false (and reports nothing) if it is not running.
pub async fn adopt(docker: Docker, name: String, key: TaskKey, exits: mpsc::Sender<TaskExit>) -> bool {
    let mut w = Box::pin(async move { wait(&docker, &name, key).await });
    match tokio::time::timeout(std::time::Duration::from_millis(300), &mut w).await {
        Ok(_) => false,
        Err(_) => {
            tokio::spawn(async move {
                let exit = w.await;
                let _ = exits.send(exit).await;
            });
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rabble_shared::job::{Resources, RestartPolicy};

    fn task(config: serde_json::Value) -> Task {
        Task {
            name: "web".into(),
            driver: "docker".into(),
            config: config.as_object().unwrap().clone(),
            env: Default::default(),
            user: Some("1000".into()),
            resources: Resources { cpu_mhz: 500, memory_mb: 128, memory_max_mb: Some(256) },
            kill_timeout_ms: 5_000,
            kill_signal: None,
            lifecycle: None,
            services: vec![],
            constraints: vec![],
            volume_mounts: vec![],
            restart: RestartPolicy::default_for(rabble_shared::job::JobType::Service),
            meta: Default::default(),
            templates: vec![],
            dispatch_payload: None,
            secret_paths: vec![],
        }
    }

    #[test]
    fn the_task_becomes_the_container_nomad_would_create() {
        let config = serde_json::json!({
            "image": "plex:1", "ports": ["http"], "args": ["--verbose"], "labels": {"owner": "me"},
            "volumes": ["/srv/a:/a"], "mount": [{"type": "bind", "source": "/srv/b", "target": "/b", "readonly": true}],
            "sysctl": [{"net.core.somaxconn": "1024"}], "shm_size": 67108864, "ipc_mode": "host", "cap_add": ["NET_ADMIN"],
        });
        let t = task(config.clone());
        let ports = [AllocPort { label: "http".into(), value: 21000, to: Some(32400) }];
        let env = BTreeMap::from([("TZ".to_owned(), "UTC".to_owned())]);
        let none = BTreeMap::new();
        let cx = Context {
            node: "pi4",
            alloc: "abc",
            ports: &ports,
            env: &env,
            config: config.as_object().unwrap(),
            volumes: &none,
            paths: &BTreeMap::new(),
        };
        let b = body(&t, &cx).unwrap();
        let hc = b.host_config.as_ref().unwrap();
        assert_eq!(b.image.as_deref(), Some("plex:1"));
        assert_eq!(b.cmd, Some(vec!["--verbose".to_owned()]));
        assert_eq!(b.env, Some(vec!["TZ=UTC".to_owned()]));
        assert_eq!(b.user.as_deref(), Some("1000"));
        let labels = b.labels.as_ref().unwrap();
        assert_eq!(
            (labels["owner"].as_str(), labels[LABEL_ALLOC].as_str(), labels[LABEL_NODE].as_str()),
            ("me", "abc", "pi4")
        );
        let binding = hc.port_bindings.as_ref().unwrap()["32400/tcp"].as_ref().unwrap()[0].host_port.clone();
        assert_eq!(binding.as_deref(), Some("21000"), "the host port maps to `to` inside");
        assert_eq!(hc.binds, Some(vec!["/srv/a:/a".to_owned(), "/srv/b:/b:ro".to_owned()]));
        assert_eq!((hc.memory, hc.memory_reservation), (Some(256 << 20), Some(128 << 20)));
        assert_eq!(hc.cpu_shares, Some(500));
        assert_eq!(hc.sysctls.as_ref().unwrap()["net.core.somaxconn"], "1024");
        assert_eq!((hc.shm_size, hc.ipc_mode.as_deref()), (Some(67108864), Some("host")));
        assert_eq!(hc.cap_add, Some(vec!["NET_ADMIN".to_owned()]));
        let bad = serde_json::json!({"image": "x", "mount": [{"type": "tmpfs", "target": "/t"}]});
        let cx = Context { config: bad.as_object().unwrap(), ..cx };
        assert!(body(&task(bad.clone()), &cx).unwrap_err().contains("config.mount"));
    }
}
