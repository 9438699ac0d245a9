//! A Nomad JSON task (`api.Task`) as its `task` block (driver, config, resources,
//! templates, lifecycle, mounts, restart policy), and services with their checks (a
//! group's or a task's).

use super::hcl::{Obj, Writer, constraints, expr, restart};
use serde_json::Value;

pub(super) fn task(w: &mut Writer, mut t: Obj<'_>) {
    let name = t.take("Name").and_then(Value::as_str).unwrap_or_default().to_owned();
    w.open("task", Some(&name));
    for (field, key) in [("Driver", "driver"), ("User", "user"), ("KillSignal", "kill_signal"), ("Env", "env")] {
        w.copy(&mut t, field, key);
    }
    w.copy(&mut t, "Meta", "meta");
    w.duration(&mut t, "KillTimeout", "kill_timeout");
    if let Some(config) = t.take("Config") {
        match config {
            Value::Object(m) => {
                w.open("config", None);
                for (k, v) in m {
                    if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') && !k.is_empty() {
                        w.line(&format!("{k} = {}", expr(v)));
                    } else {
                        w.problems.push((t.at("Config"), format!("{k:?} is not a config key")));
                    }
                }
                w.close();
            }
            other => w.problems.push((t.at("Config"), format!("expected an object, got {other}"))),
        }
    }
    w.object(&mut t, "Resources", |w, mut r| {
        w.open("resources", None);
        w.copy(&mut r, "CPU", "cpu");
        w.copy(&mut r, "MemoryMB", "memory");
        if let Some(m) = r.take("MemoryMaxMB").filter(|m| m.as_u64().is_some_and(|m| m > 0)) {
            w.line(&format!("memory_max = {m}"));
        }
        if let Some(c) = r.take("Cores").filter(|c| c.as_u64().is_some_and(|c| c > 0)) {
            w.line(&format!("cores = {c}"));
        }
        w.close();
        r.finish(&["diskmb", "iops", "networks", "numa", "secrets"], &mut w.problems);
    });
    w.object(&mut t, "Lifecycle", |w, mut l| {
        if let Some(hook) = l.take("Hook").filter(|h| h.as_str().is_some_and(|h| !h.is_empty())) {
            w.open("lifecycle", None);
            w.line(&format!("hook = {}", expr(hook)));
            w.copy(&mut l, "Sidecar", "sidecar");
            w.close();
        }
        l.take("Sidecar");
        l.finish(&[], &mut w.problems);
    });
    constraints(w, &mut t);
    w.object(&mut t, "RestartPolicy", restart);
    w.each(&mut t, "VolumeMounts", |w, mut m| {
        w.open("volume_mount", None);
        for (field, key) in [("Volume", "volume"), ("Destination", "destination"), ("ReadOnly", "read_only")] {
            w.copy(&mut m, field, key);
        }
        w.close();
        m.finish(&["propagationmode", "selinuxlabel"], &mut w.problems);
    });
    w.each(&mut t, "Templates", template);
    w.each(&mut t, "Services", service);
    w.object(&mut t, "DispatchPayload", |w, mut d| {
        w.open("dispatch_payload", None);
        w.copy(&mut d, "File", "file");
        w.close();
        d.finish(&[], &mut w.problems);
    });
    for (field, block) in [
        ("Artifacts", "artifact"),
        ("Vault", "vault"),
        ("Identity", "identity"),
        ("Identities", "identity"),
        ("CSIPluginConfig", "csi_plugin"),
        ("Affinities", "affinity"),
        ("Consul", "consul"),
    ] {
        w.refused(&mut t, field, block);
    }
    w.close();
    const PASSED: &[&str] = &["logconfig", "leader", "shutdowndelay", "kind", "scalingpolicies", "schedule", "actions"];
    t.finish(PASSED, &mut w.problems);
}

fn template(w: &mut Writer, mut t: Obj<'_>) {
    w.open("template", None);
    let fields = [
        ("EmbeddedTmpl", "data"),
        ("SourcePath", "source"),
        ("DestPath", "destination"),
        ("Envvars", "env"),
        ("ChangeMode", "change_mode"),
        ("ChangeSignal", "change_signal"),
        ("Perms", "perms"),
        ("LeftDelim", "left_delimiter"),
        ("RightDelim", "right_delimiter"),
        ("ErrMissingKey", "error_on_missing_key"),
    ];
    for (field, key) in fields {
        w.copy(&mut t, field, key);
    }
    // Nomad's "not set" for the owner is -1.
    for (field, key) in [("Uid", "uid"), ("Gid", "gid")] {
        if let Some(id) = t.take(field).and_then(Value::as_i64).filter(|id| *id >= 0) {
            w.line(&format!("{key} = {id}"));
        }
    }
    w.duration(&mut t, "Splay", "splay");
    w.object(&mut t, "Wait", |w, mut x| {
        w.open("wait", None);
        w.duration(&mut x, "Min", "min");
        w.duration(&mut x, "Max", "max");
        w.close();
        x.finish(&[], &mut w.problems);
    });
    w.close();
    t.finish(&["changescript", "vaultgrace", "once"], &mut w.problems);
}

pub(super) fn service(w: &mut Writer, mut s: Obj<'_>) {
    w.open("service", None);
    let fields = [
        ("Name", "name"),
        ("PortLabel", "port"),
        ("Tags", "tags"),
        ("Meta", "meta"),
        ("AddressMode", "address_mode"),
        ("Address", "address"),
        ("TaskName", "task"),
        ("Provider", "provider"),
    ];
    for (field, key) in fields {
        w.copy(&mut s, field, key);
    }
    w.refused(&mut s, "Connect", "connect");
    w.each(&mut s, "Checks", check);
    w.close();
    const PASSED: &[&str] = &[
        "canarytags",
        "canarymeta",
        "enabletagoverride",
        "onupdate",
        "taggedaddresses",
        "weights",
        "namespace",
        "cluster",
        "kind",
        "identity",
    ];
    s.finish(PASSED, &mut w.problems);
}

fn check(w: &mut Writer, mut c: Obj<'_>) {
    w.open("check", None);
    let fields = [
        ("Type", "type"),
        ("Name", "name"),
        ("Path", "path"),
        ("PortLabel", "port"),
        ("Protocol", "protocol"),
        ("Method", "method"),
        ("Body", "body"),
        ("Command", "command"),
        ("Args", "args"),
        ("TLSSkipVerify", "tls_skip_verify"),
        ("InitialStatus", "initial_status"),
        ("SuccessBeforePassing", "success_before_passing"),
        ("FailuresBeforeCritical", "failures_before_critical"),
    ];
    for (field, key) in fields {
        w.copy(&mut c, field, key);
    }
    w.duration(&mut c, "Interval", "interval");
    w.duration(&mut c, "Timeout", "timeout");
    if let Some(Value::Object(h)) = c.take("Header")
        && !h.is_empty()
    {
        w.open("header", None);
        for (k, v) in h {
            if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') && !k.is_empty() {
                w.line(&format!("{k} = {}", expr(v)));
            } else {
                w.problems.push((c.at("Header"), format!("{k:?} is not a header name")));
            }
        }
        w.close();
    }
    w.object(&mut c, "CheckRestart", |w, mut r| {
        w.open("check_restart", None);
        w.copy(&mut r, "Limit", "limit");
        w.duration(&mut r, "Grace", "grace");
        w.copy(&mut r, "IgnoreWarnings", "ignore_warnings");
        w.close();
        r.finish(&[], &mut w.problems);
    });
    w.close();
    const PASSED: &[&str] = &[
        "expose",
        "onupdate",
        "taskname",
        "grpcservice",
        "grpcusetls",
        "notes",
        "addressmode",
        "status",
        "id",
        "interval_ms",
    ];
    c.finish(PASSED, &mut w.problems);
}
