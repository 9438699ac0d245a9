//! A [`JobSpec`] in Nomad's JSON job form (`/v1/jobs/parse` answers it, `/v1/job/<id>`
//! shows it): PascalCase fields, durations in nanoseconds, as Nomad's `api.Job`.

use rabble_shared::job::{
    Check, Constraint, Group, JobSpec, Periodic, ReschedulePolicy, RestartMode, RestartPolicy, Service, Task,
    TemplateSpec, UpdateStrategy,
};
use serde_json::{Map, Value, json};

/// Nanoseconds, as Nomad's JSON has every duration.
fn ns(ms: u64) -> Value {
    Value::from(ms.saturating_mul(1_000_000))
}

/// The job, as Nomad's `api.Job` (what tools read back and register again unchanged).
pub fn job(j: &JobSpec) -> Value {
    let mut o = json!({
        "ID": j.id,
        "Name": j.name,
        "Namespace": "default",
        "Type": j.kind.as_str(),
        "Priority": j.priority,
        "Region": j.region,
        "Datacenters": j.datacenters,
        "Meta": j.meta,
        "Constraints": constraints(&j.constraints),
        "TaskGroups": j.groups.iter().map(group).collect::<Vec<_>>(),
    });
    if let Some(p) = &j.periodic {
        o["Periodic"] = periodic(p);
    }
    if let Some(p) = &j.parameterized {
        o["ParameterizedJob"] =
            json!({"Payload": p.payload, "MetaRequired": p.meta_required, "MetaOptional": p.meta_optional});
    }
    if let Some((parent, _)) = j.id.split_once("/dispatch-") {
        o["ParentID"] = json!(parent);
        o["Dispatched"] = json!(true);
    }
    o
}

fn constraints(cs: &[Constraint]) -> Value {
    cs.iter().map(|c| json!({"LTarget": c.attribute, "RTarget": c.value, "Operand": c.operator.as_str()})).collect()
}

fn periodic(p: &Periodic) -> Value {
    let mut o = json!({
        "Enabled": p.enabled,
        "SpecType": "cron",
        "Spec": p.crons.first().cloned().unwrap_or_default(),
        "ProhibitOverlap": p.prohibit_overlap,
        "TimeZone": p.time_zone,
    });
    if p.crons.len() > 1 {
        o["Specs"] = json!(p.crons);
    }
    o
}

fn group(g: &Group) -> Value {
    let (dynamic, reserved): (Vec<_>, Vec<_>) = g.network.ports.iter().partition(|p| p.static_port.is_none());
    let port = |p: &&rabble_shared::job::Port| {
        let mut o = json!({"Label": p.label, "Value": p.static_port.unwrap_or(0), "To": p.to.unwrap_or(0)});
        if let Some(h) = &p.host_network {
            o["HostNetwork"] = json!(h);
        }
        o
    };
    let volumes: Map<String, Value> = g
        .volumes
        .iter()
        .map(|(name, v)| {
            (name.clone(), json!({"Name": name, "Type": "host", "Source": v.source, "ReadOnly": v.read_only}))
        })
        .collect();
    let mut o = json!({
        "Name": g.name,
        "Count": g.count,
        "Constraints": constraints(&g.constraints),
        "Networks": [{
            "Mode": g.network.mode,
            "DynamicPorts": dynamic.iter().map(port).collect::<Vec<_>>(),
            "ReservedPorts": reserved.iter().map(port).collect::<Vec<_>>(),
        }],
        "Services": g.services.iter().map(service).collect::<Vec<_>>(),
        "Tasks": g.tasks.iter().map(task).collect::<Vec<_>>(),
        "ReschedulePolicy": reschedule(&g.reschedule),
        "Volumes": volumes,
        "Meta": g.meta,
    });
    // Nomad keeps the group's policy; Rabble keeps each task's (a task's own overrides it).
    if let Some(t) = g.tasks.first() {
        o["RestartPolicy"] = restart(&t.restart);
    }
    if let Some(u) = &g.update {
        o["Update"] = update(u);
    }
    o
}

fn restart(r: &RestartPolicy) -> Value {
    let mode = match r.mode {
        RestartMode::Fail => "fail",
        RestartMode::Delay => "delay",
    };
    json!({"Attempts": r.attempts, "Interval": ns(r.interval_ms), "Delay": ns(r.delay_ms), "Mode": mode})
}

fn reschedule(r: &ReschedulePolicy) -> Value {
    json!({
        "Attempts": r.attempts,
        "Interval": ns(r.interval_ms),
        "Delay": ns(r.delay_ms),
        "DelayFunction": r.delay_function,
        "MaxDelay": ns(r.max_delay_ms),
        "Unlimited": r.unlimited,
    })
}

fn update(u: &UpdateStrategy) -> Value {
    json!({
        "MaxParallel": u.max_parallel,
        "HealthCheck": u.health_check,
        "MinHealthyTime": ns(u.min_healthy_time_ms),
        "HealthyDeadline": ns(u.healthy_deadline_ms),
        "ProgressDeadline": ns(u.progress_deadline_ms),
        "AutoRevert": u.auto_revert,
        "Canary": u.canary,
        "Stagger": ns(u.stagger_ms),
    })
}

fn task(t: &Task) -> Value {
    let mut resources = json!({"CPU": t.resources.cpu_mhz, "MemoryMB": t.resources.memory_mb});
    if let Some(m) = t.resources.memory_max_mb {
        resources["MemoryMaxMB"] = json!(m);
    }
    let mut o = json!({
        "Name": t.name,
        "Driver": t.driver,
        "Config": t.config,
        "Env": t.env,
        "Resources": resources,
        "KillTimeout": ns(t.kill_timeout_ms),
        "Services": t.services.iter().map(service).collect::<Vec<_>>(),
        "Constraints": constraints(&t.constraints),
        "VolumeMounts": t.volume_mounts.iter()
            .map(|m| json!({"Volume": m.volume, "Destination": m.destination, "ReadOnly": m.read_only}))
            .collect::<Vec<_>>(),
        "RestartPolicy": restart(&t.restart),
        "Meta": t.meta,
        "Templates": t.templates.iter().map(template).collect::<Vec<_>>(),
    });
    if let Some(u) = &t.user {
        o["User"] = json!(u);
    }
    if let Some(s) = &t.kill_signal {
        o["KillSignal"] = json!(s);
    }
    if let Some(d) = &t.dispatch_payload {
        o["DispatchPayload"] = json!({"File": d.file});
    }
    if let Some(l) = &t.lifecycle {
        let hook = serde_json::to_value(l.hook).unwrap_or(Value::Null);
        o["Lifecycle"] = json!({"Hook": hook, "Sidecar": l.sidecar});
    }
    o
}

fn template(t: &TemplateSpec) -> Value {
    let mut o = json!({
        "EmbeddedTmpl": t.data,
        "DestPath": t.destination,
        "Envvars": t.env,
        "ChangeMode": serde_json::to_value(t.change_mode).unwrap_or(Value::Null),
        "Perms": t.perms,
        "LeftDelim": t.left_delimiter,
        "RightDelim": t.right_delimiter,
        "Splay": ns(t.splay_ms),
        "ErrMissingKey": t.error_on_missing_key,
    });
    if let Some(s) = &t.change_signal {
        o["ChangeSignal"] = json!(s);
    }
    if let Some(u) = t.uid {
        o["Uid"] = json!(u);
    }
    if let Some(g) = t.gid {
        o["Gid"] = json!(g);
    }
    if let Some((min, max)) = t.wait_ms {
        o["Wait"] = json!({"Min": ns(min), "Max": ns(max)});
    }
    o
}

fn service(s: &Service) -> Value {
    let mut o = json!({
        "Name": s.name,
        "Tags": s.tags,
        "Meta": s.meta,
        "AddressMode": s.address_mode,
        "Provider": "consul",
        "Checks": s.checks.iter().map(check).collect::<Vec<_>>(),
    });
    for (k, v) in [("PortLabel", &s.port), ("Address", &s.address), ("TaskName", &s.task)] {
        if let Some(v) = v {
            o[k] = json!(v);
        }
    }
    o
}

fn check(c: &Check) -> Value {
    let mut o = json!({
        "Type": serde_json::to_value(c.kind).unwrap_or(Value::Null),
        "Name": c.name,
        "Interval": ns(c.interval_ms),
        "Timeout": ns(c.timeout_ms),
        "Header": c.header,
        "Args": c.args,
        "TLSSkipVerify": c.tls_skip_verify,
        "SuccessBeforePassing": c.success_before_passing,
        "FailuresBeforeCritical": c.failures_before_critical,
    });
    let strings = [
        ("Path", &c.path),
        ("PortLabel", &c.port),
        ("Protocol", &c.protocol),
        ("Method", &c.method),
        ("Body", &c.body),
        ("Command", &c.command),
        ("InitialStatus", &c.initial_status),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            o[k] = json!(v);
        }
    }
    if let Some(r) = &c.check_restart {
        o["CheckRestart"] = json!({"Limit": r.limit, "Grace": ns(r.grace_ms), "IgnoreWarnings": r.ignore_warnings});
    }
    o
}
