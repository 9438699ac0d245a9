//! `template` blocks end to end: rendered on the hub from the catalog, the KV store and
//! variables, delivered to the node with the assignment key's signature, written into
//! the task's directory before it starts; a catalog change re-renders and signals the
//! task (`change_mode = "signal"`), a KV change restarts it (`restart`, the file an
//! `env = true` environment), a missing key holds the task until it is put, and a
//! template that fails fails its allocation with the template and line.

use rabble_shared::alloc::ClientStatus;
use rabble_tests::{Agent, Hub, wait_for};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn register(hub: &Hub, node: &str, addr: &str) {
    let body = format!(r#"{{"Node": "{node}", "Address": "{addr}", "Service": {{"Service": "web", "Port": 8080}}}}"#);
    let r =
        ureq::put(&format!("{}/v1/catalog/register", hub.http)).content_type("application/json").send(body.as_str());
    assert!(r.is_ok(), "{r:?}");
}

fn job(hub: &Hub, id: &str) -> rabble_shared::api::JobView {
    hub.get(&format!("/api/v1/jobs/{id}")).unwrap()
}

const JOB: &str = r#"job "tpl" {
  group "g" {
    task "app" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo \"$GREETING $PASSWORD\" >> $NOMAD_ALLOC_DIR/starts; trap 'cp $NOMAD_TASK_DIR/upstreams.conf $NOMAD_ALLOC_DIR/hup.conf' HUP; while true; do sleep 0.1; done"]
      }
      template {
        data          = <<EOT
{{ range service "web" }}server {{ .Address }}:{{ .Port }};
{{ end -}}
EOT
        destination   = "local/upstreams.conf"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        splay         = "0s"
        wait {
          min = "1s"
          max = "4s"
        }
      }
      template {
        data        = "GREETING={{ key \"app/greeting\" }}\nPASSWORD={{ with nomadVar \"nomad/jobs/tpl\" }}{{ .password }}{{ end }}\n"
        destination = "secrets/app.env"
        env         = true
        splay       = "0s"
        perms       = "0600"
      }
      template {
        data        = "{{ env \"NOMAD_TASK_DIR\" }} {{ env \"NOMAD_ALLOC_ID\" }}"
        destination = "local/where"
      }
    }
  }
}
"#;

#[test]
fn templates_render_deliver_re_render_and_restart_or_signal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let _w = Agent::worker(d, &hub, "w1");
    register(&hub, "ext1", "10.1.1.1");
    assert!(hub.cli(&["kv", "put", "app/greeting", "hello"]).0);
    assert!(hub.cli(&["var", "put", "nomad/jobs/tpl", "password=pw-7f3a"]).0);
    hub.run_job(&d.join("tpl.hcl"), JOB);
    let alloc = wait_for("the task running", T, || {
        let j = job(&hub, "tpl");
        let a = j.allocations.first().ok_or("no allocation")?;
        if a.client_status == ClientStatus::Running {
            Ok(a.id.to_string())
        } else {
            Err(format!("{:?} {}", a.client_status, a.client_reason))
        }
    });
    let adir = d.join("w1-alloc").join(&alloc);
    let read = |p: &str| std::fs::read_to_string(adir.join(p)).unwrap_or_default();
    let starts = wait_for("the task's first start", T, || {
        let s = read("alloc/starts");
        if s.is_empty() { Err("none".to_owned()) } else { Ok(s) }
    });
    assert_eq!(starts, "hello pw-7f3a\n", "the env file became the environment");
    assert_eq!(read("app/local/upstreams.conf"), "server 10.1.1.1:8080;\n");
    // The task's environment as the node sets it, rendered on the hub.
    assert_eq!(read("app/local/where"), format!("{} {alloc}", adir.join("app/local").display()));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(adir.join("app/secrets/app.env")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A new instance re-renders the file (after the template's `wait`: at least its
    // `min` of quiet) and signals the task (no restart).
    let registered = std::time::Instant::now();
    register(&hub, "ext2", "10.1.1.2");
    let hup = wait_for("the SIGHUP after the re-render", T, || {
        let s = read("alloc/hup.conf");
        if s.contains("10.1.1.2") { Ok(s) } else { Err(s) }
    });
    assert_eq!(hup, "server 10.1.1.1:8080;\nserver 10.1.1.2:8080;\n");
    assert!(registered.elapsed() >= Duration::from_millis(1000), "re-rendered before the wait's min");
    assert_eq!(read("alloc/starts").lines().count(), 1, "signalled, not restarted");

    // A KV change restarts it with the new environment (not counted against its restarts).
    assert!(hub.cli(&["kv", "put", "app/greeting", "bonjour"]).0);
    wait_for("the restart with the new value", T, || {
        let s = read("alloc/starts");
        if s == "hello pw-7f3a\nbonjour pw-7f3a\n" { Ok(()) } else { Err(s) }
    });
    // Running again (the node reports it after the restart, asynchronously).
    wait_for("the allocation running after the restart", T, || {
        let a = job(&hub, "tpl").allocations.into_iter().next().ok_or("none")?;
        if a.client_status == ClientStatus::Running { Ok(()) } else { Err(format!("{:?}", a.client_status)) }
    });

    // The variable's value is not in clear in the hub's data dir.
    for e in std::fs::read_dir(&hub.data_dir).unwrap().flatten() {
        let b = std::fs::read(e.path()).unwrap_or_default();
        assert!(!b.windows(7).any(|w| w == b"pw-7f3a"), "{} holds the variable in clear", e.path().display());
    }
}

#[test]
fn a_missing_key_holds_the_task_and_a_failing_template_fails_the_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let _w = Agent::worker(d, &hub, "w1");
    let waits = r#"job "waits" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "cp $NOMAD_TASK_DIR/later $NOMAD_ALLOC_DIR/seen; while true; do sleep 0.1; done"]
      }
      template {
        data        = "{{ key \"app/later\" }}"
        destination = "local/later"
      }
    }
  }
}
"#;
    hub.run_job(&d.join("waits.hcl"), waits);
    std::thread::sleep(Duration::from_secs(2));
    let a = job(&hub, "waits").allocations.into_iter().next().expect("an allocation");
    assert_eq!(a.client_status, ClientStatus::Pending, "the task waits for its template");
    let (ok, out, err) = hub.cli(&["alloc", "status", a.id.as_str()]);
    assert!(ok && out.contains("Templates      = waiting for key \"app/later\""), "{out}{err}");
    assert!(hub.cli(&["kv", "put", "app/later", "now"]).0);
    wait_for("the task once the key exists", T, || {
        let j = job(&hub, "waits");
        let a = j.allocations.first().ok_or("none")?;
        let seen =
            std::fs::read_to_string(d.join("w1-alloc").join(a.id.as_str()).join("alloc/seen")).unwrap_or_default();
        if a.client_status == ClientStatus::Running && seen == "now" {
            Ok(())
        } else {
            Err(format!("{:?} {seen:?}", a.client_status))
        }
    });

    let fails = r#"job "fails" {
  type = "batch"
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/true"
      }
      template {
        data        = <<EOT
ok
{{ parseInt "not a number" }}
EOT
        destination = "local/x"
      }
    }
  }
}
"#;
    hub.run_job(&d.join("fails.hcl"), fails);
    let reason = wait_for("the allocation to fail", T, || {
        let j = job(&hub, "fails");
        let a = j.allocations.first().ok_or("none")?;
        if a.client_status == ClientStatus::Failed {
            Ok(a.client_reason.clone())
        } else {
            Err(format!("{:?}", a.client_status))
        }
    });
    assert!(reason.contains("\"local/x\", line 12") && reason.contains("parseInt"), "{reason}");
}

/// Rendered files hold secrets: for a node with credentials they leave the hub sealed,
/// even when credentials.json cannot be read at the moment a template re-renders (the
/// hub keeps the last good keys; it used to send such a render in clear).
#[test]
fn rendered_files_stay_sealed_when_the_credentials_file_breaks() {
    use rabble_tests::{node_token, tool};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("hub-data");
    let token = node_token(&data, "w1", &[]);
    let watcher = node_token(&data, "watcher", &["--observer"]);
    let (hub, tls) = Hub::start_tls(d, &[]);
    let (hub_key, alloc_dir, port, ca) = (hub.key(), d.join("w1-alloc"), tls.port, tls.ca.clone());
    let extra = ["--hub-key", &hub_key, "--alloc-dir", alloc_dir.to_str().unwrap(), "--no-docker"];
    let _a = Agent::start_tls(d, "w1", &tls, &token, &extra);
    hub.wait_node("w1", rabble_shared::api::NodeStatus::Up, T);
    assert!(hub.cli(&["kv", "put", "app/secret", "first-secret"]).0);
    let job = r#"job "sec" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "while true; do sleep 0.1; done"]
      }
      template {
        data        = "{{ key \"app/secret\" }}"
        destination = "secrets/value"
        change_mode = "noop"
        splay       = "0s"
      }
    }
  }
}
"#;
    hub.run_job(&d.join("sec.hcl"), job);
    let value = |alloc_dir: &std::path::Path| {
        let alloc = std::fs::read_dir(alloc_dir).ok()?.flatten().next()?.path();
        std::fs::read_to_string(alloc.join("t/secrets/value")).ok()
    };
    wait_for("the first render on the node", T, || {
        value(&alloc_dir).filter(|v| v == "first-secret").ok_or_else(|| "not yet".to_owned())
    });

    std::fs::write(data.join("credentials.json"), "{ not json").unwrap();
    assert!(hub.cli(&["kv", "put", "app/secret", "second-secret"]).0);
    wait_for("the re-render on the node", T, || {
        value(&alloc_dir).filter(|v| v == "second-secret").ok_or_else(|| "not yet".to_owned())
    });
    // What the broker holds for the node (as an observer sees it): sealed, never the value.
    let out = std::process::Command::new(tool("mosquitto_sub"))
        .args(["-h", "localhost", "-p", &port.to_string(), "--cafile", ca.to_str().unwrap()])
        .args([
            "-u",
            "watcher",
            "-P",
            &watcher,
            "-i",
            "watcher",
            "-t",
            "rabble/node/w1/templates/+",
            "-C",
            "1",
            "-W",
            "10",
        ])
        .output()
        .unwrap();
    let retained = String::from_utf8_lossy(&out.stdout);
    assert!(retained.contains("sealed"), "{retained}");
    assert!(!retained.contains("second-secret") && !retained.contains("\\\"plain\\\""), "sent in clear: {retained}");
}
