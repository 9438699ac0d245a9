//! `task`, `service` and `check` blocks, and the checks across a group that a block
//! alone cannot make (port labels, volume names, service tasks).

use super::body::{Child, Reader};
use super::decode::constraints;
use rabble_shared::job::{
    Check, CheckRestart, CheckType, DEFAULT_KILL_TIMEOUT_MS, Group, Hook, Lifecycle, Resources, RestartPolicy, Service,
    Task, VolumeMount,
};

/// The drivers Rabble runs, and the `config` keys each understands. Keys Nomad's
/// driver has that Rabble does not act on are accepted with a warning (`IGNORED_KEYS`).
pub const DRIVERS: &[(&str, &[&str])] = &[
    (
        "docker",
        &[
            "image",
            "command",
            "args",
            "entrypoint",
            "ports",
            "volumes",
            "mount",
            "network_mode",
            "privileged",
            "cap_add",
            "cap_drop",
            "devices",
            "labels",
            "force_pull",
            "hostname",
            "dns_servers",
            "extra_hosts",
            "work_dir",
            "init",
            "tty",
            "interactive",
            "shm_size",
            "sysctl",
            "ulimit",
            "security_opt",
            "ipc_mode",
            "pid_mode",
            "userns_mode",
            "group_add",
            "memory_hard_limit",
            "cpu_hard_limit",
        ],
    ),
    ("raw_exec", &["command", "args"]),
    ("exec", &["command", "args"]),
    // nomad-driver-podman's config, on Podman's Docker-compatible API.
    (
        "podman",
        &[
            "image",
            "command",
            "args",
            "entrypoint",
            "working_dir",
            "ports",
            "volumes",
            "hostname",
            "labels",
            "devices",
            "cap_add",
            "cap_drop",
            "privileged",
            "network_mode",
            "force_pull",
            "sysctl",
            "userns",
            "shm_size",
            "tty",
            "init",
            "extra_hosts",
            "dns",
            "memory_reservation",
            "pids_limit",
            "tmpfs",
            "socket",
        ],
    ),
    ("java", &["jar_path", "class", "class_path", "jvm_options", "args"]),
    (
        "qemu",
        &[
            "image_path",
            "emulator",
            "machine_type",
            "accelerator",
            "drive_interface",
            "graceful_shutdown",
            "guest_agent",
            "args",
            "port_map",
        ],
    ),
];

/// What `driver = ...` accepts, for messages.
const DRIVER_NAMES: &str = "docker, podman, exec, raw_exec, java, qemu";

const IGNORED_KEYS: &[&str] = &[
    "logging",
    "auth",
    "auth_soft_fail",
    "image_pull_timeout",
    "load",
    "cpuset_cpus",
    "readonly_rootfs",
    "healthchecks",
    // podman's, with no effect here.
    "memory_reservation",
    "pids_limit",
    "tmpfs",
    "socket",
];

pub fn task(mut b: Child<'_, '_>, group_restart: RestartPolicy) -> Option<Task> {
    let name = b.label("the task's name, as in task \"server\"")?;
    let r = &mut b.reader;
    let driver = r.string("driver").unwrap_or_default();
    let config = r.block("config").map(|mut c| c.reader.take_object()).unwrap_or_default();
    match DRIVERS.iter().find(|(d, _)| *d == driver) {
        None if driver.is_empty() => r.error(None, format!("a task needs a `driver` ({DRIVER_NAMES})")),
        None => r.error(None, format!("driver {driver:?} is not available in Rabble ({DRIVER_NAMES})")),
        Some((_, keys)) => {
            for k in config.keys() {
                if IGNORED_KEYS.contains(&k.as_str()) {
                    r.ctx.warn(r.span.clone(), &r.path, format!("config.{k} is accepted but has no effect in Rabble"));
                } else if !keys.contains(&k.as_str()) {
                    r.error(None, format!("config: unknown key `{k}` for the {driver} driver"));
                }
            }
            let needs: &[&str] = match driver.as_str() {
                "docker" | "podman" => &["image"],
                "java" => &["jar_path", "class"],
                "qemu" => &["image_path"],
                _ => &["command"],
            };
            if !needs.iter().any(|k| config.contains_key(*k)) {
                r.error(None, format!("config: the {driver} driver needs `{}`", needs.join("` or `")));
            }
        }
    }
    let resources = r.block("resources").map(resources).unwrap_or(Resources::DEFAULT);
    let lifecycle = r.block("lifecycle").and_then(lifecycle);
    // A task's own `restart` starts from its group's (Nomad merges them the same way).
    let restart = r.block("restart").map_or(group_restart, |x| super::decode::restart(x, group_restart));
    let mut volume_mounts = Vec::new();
    for mut v in r.blocks("volume_mount") {
        let vr = &mut v.reader;
        let (volume, destination) = (vr.string("volume"), vr.string("destination"));
        let read_only = vr.bool("read_only").unwrap_or(false);
        vr.value("propagation_mode");
        match (volume, destination) {
            (Some(volume), Some(destination)) => volume_mounts.push(VolumeMount { volume, destination, read_only }),
            _ => vr.error(None, "a volume_mount needs `volume` and `destination`"),
        }
        v.reader.finish();
    }
    let templates = super::template::templates(r);
    let dispatch_payload = r.block("dispatch_payload").and_then(super::extra::dispatch_payload);
    let vault = super::extra::vault(r);
    let mut t = Task {
        templates,
        dispatch_payload,
        secret_paths: vec![],
        driver,
        config,
        env: r.string_map("env"),
        user: r.string("user"),
        resources,
        kill_timeout_ms: r.duration_ms("kill_timeout").unwrap_or(DEFAULT_KILL_TIMEOUT_MS),
        kill_signal: r.string("kill_signal"),
        lifecycle,
        services: r.blocks("service").into_iter().filter_map(|s| service(s, Some(&name))).collect(),
        constraints: constraints(r),
        volume_mounts,
        restart,
        meta: r.string_map("meta"),
        name,
    };
    if let Some(v) = vault {
        super::extra::grant(r, v, [&mut t]);
    }
    b.reader.finish();
    Some(t)
}

fn resources(mut b: Child<'_, '_>) -> Resources {
    let r = &mut b.reader;
    let res = Resources {
        cpu_mhz: r.u32("cpu").unwrap_or(Resources::DEFAULT.cpu_mhz),
        memory_mb: r.u32("memory").unwrap_or(Resources::DEFAULT.memory_mb),
        memory_max_mb: r.u32("memory_max"),
    };
    if let Some(m) = res.memory_max_mb
        && m < res.memory_mb
    {
        r.error(None, format!("memory_max ({m} MB) is below memory ({} MB)", res.memory_mb));
    }
    r.u32("cores").inspect(|_| r.ctx.warn(r.span.clone(), &r.path, "cores is read as cpu shares only"));
    b.reader.finish();
    res
}

fn lifecycle(mut b: Child<'_, '_>) -> Option<Lifecycle> {
    let r = &mut b.reader;
    let hook = match r.string("hook").as_deref() {
        Some("prestart") => Hook::Prestart,
        Some("poststart") => Hook::Poststart,
        Some("poststop") => Hook::Poststop,
        other => {
            r.error(None, format!("hook: {other:?} is not one of prestart, poststart, poststop"));
            return None;
        }
    };
    let sidecar = r.bool("sidecar").unwrap_or(false);
    b.reader.finish();
    Some(Lifecycle { hook, sidecar })
}

/// A `service` block; `task` is the task it belongs to (None for a group service).
pub fn service(mut b: Child<'_, '_>, task: Option<&str>) -> Option<Service> {
    let r = &mut b.reader;
    let name = r.string("name");
    let port = r.string("port");
    if let Some(p) = r.string("provider")
        && p != "consul"
        && p != "nomad"
    {
        r.error(None, format!("provider: {p:?} is not one of consul, nomad (both register in Rabble's catalog)"));
    }
    let address_mode = r.string("address_mode").unwrap_or_else(|| "auto".into());
    if !["auto", "host", "driver", "alloc"].contains(&address_mode.as_str()) {
        r.error(None, format!("address_mode: {address_mode:?} is not one of auto, host, driver, alloc"));
    }
    let mut checks = Vec::new();
    for c in r.blocks("check") {
        checks.extend(check(c));
    }
    let svc = Service {
        // Nomad's default name: <job>-<group>[-<task>]; filled in by `check_references`.
        name: name.unwrap_or_default(),
        port,
        tags: r.strings("tags").unwrap_or_default(),
        meta: r.string_map("meta"),
        address_mode,
        address: r.string("address"),
        task: r.string("task").or(task.map(str::to_owned)),
        checks,
    };
    b.reader.finish();
    Some(svc)
}

fn check(mut b: Child<'_, '_>) -> Option<Check> {
    let r = &mut b.reader;
    let kind = match r.string("type").as_deref() {
        Some("http") => CheckType::Http,
        Some("tcp") => CheckType::Tcp,
        Some("script") => CheckType::Script,
        other => {
            r.error(None, format!("type: {other:?} is not a check type Rabble runs (http, tcp, script)"));
            return None;
        }
    };
    let interval_ms = r.duration_ms("interval");
    let timeout_ms = r.duration_ms("timeout");
    if interval_ms.is_none() || timeout_ms.is_none() {
        r.error(None, "a check needs `interval` and `timeout` (as in Nomad)");
    }
    let check_restart = r.block("check_restart").map(|mut cr| {
        let x = &mut cr.reader;
        let out = CheckRestart {
            limit: x.u32("limit").unwrap_or(0),
            grace_ms: x.duration_ms("grace").unwrap_or(1_000),
            ignore_warnings: x.bool("ignore_warnings").unwrap_or(false),
        };
        cr.reader.finish();
        out
    });
    let mut header = std::collections::BTreeMap::new();
    for mut h in r.blocks("header") {
        for (k, v, span) in h.reader.take_all_values() {
            match v {
                serde_json::Value::Array(a) => {
                    header.insert(k, a.iter().filter_map(super::eval::as_string).collect());
                }
                other => h.reader.error(span, format!("header.{k}: expected a list of strings, got {other}")),
            }
        }
    }
    let c = Check {
        kind,
        name: r.string("name").unwrap_or_default(),
        path: r.string("path"),
        port: r.string("port"),
        protocol: r.string("protocol"),
        method: r.string("method"),
        header,
        body: r.string("body"),
        interval_ms: interval_ms.unwrap_or(10_000),
        timeout_ms: timeout_ms.unwrap_or(2_000),
        command: r.string("command"),
        args: r.strings("args").unwrap_or_default(),
        tls_skip_verify: r.bool("tls_skip_verify").unwrap_or(false),
        initial_status: r.string("initial_status"),
        success_before_passing: r.u32("success_before_passing").unwrap_or(0),
        failures_before_critical: r.u32("failures_before_critical").unwrap_or(0),
        check_restart,
    };
    if c.kind == CheckType::Http && c.path.is_none() {
        r.error(None, "an http check needs a `path`");
    }
    if c.kind == CheckType::Script && c.command.is_none() {
        r.error(None, "a script check needs a `command`");
    }
    r.string("task");
    r.bool("expose");
    b.reader.finish();
    Some(c)
}

/// Checks across the group: every port label a service, check or docker `ports` names
/// exists; every volume_mount names a group volume; a service's task exists. Fills in
/// Nomad's default service names.
pub fn check_references(r: &Reader<'_, '_>, g: &Group) {
    let labels: Vec<&str> = g.network.ports.iter().map(|p| p.label.as_str()).collect();
    let port_ok = |p: &str| p.parse::<u16>().is_ok() || labels.contains(&p) || p.starts_with("${");
    let services = g.services.iter().chain(g.tasks.iter().flat_map(|t| t.services.iter()));
    for s in services {
        for p in s.port.iter().chain(s.checks.iter().filter_map(|c| c.port.as_ref())) {
            if !port_ok(p) {
                r.error(None, format!("service {:?}: port {p:?} is not a label of the group's network", s.name));
            }
        }
        if let Some(t) = &s.task
            && !g.tasks.iter().any(|x| &x.name == t)
        {
            r.error(None, format!("service {:?}: task {t:?} is not in the group", s.name));
        }
    }
    for t in &g.tasks {
        if let Some(serde_json::Value::Array(ports)) = t.config.get("ports") {
            for p in ports.iter().filter_map(|p| p.as_str()) {
                if !labels.contains(&p) {
                    r.error(
                        None,
                        format!("task {:?}: config.ports names {p:?}, which is not a port of the group", t.name),
                    );
                }
            }
        }
        for m in &t.volume_mounts {
            if !g.volumes.contains_key(&m.volume) {
                r.error(
                    None,
                    format!("task {:?}: volume_mount names {:?}, which is not a volume of the group", t.name, m.volume),
                );
            }
        }
    }
}

/// Nomad's default service names: `<job>-<group>` for a group service,
/// `<job>-<group>-<task>` for a task's.
pub fn default_service_names(job: &mut rabble_shared::job::JobSpec) {
    let id = job.id.clone();
    for g in &mut job.groups {
        for s in &mut g.services {
            if s.name.is_empty() {
                s.name = format!("{id}-{}", g.name);
            }
        }
        for t in &mut g.tasks {
            for s in &mut t.services {
                if s.name.is_empty() {
                    s.name = format!("{id}-{}-{}", g.name, t.name);
                }
            }
        }
    }
}
