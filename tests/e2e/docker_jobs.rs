//! Docker jobs against the real engine: a `FROM scratch` image of the tests' static
//! tiny-http (no image can be pulled here), run, registered, adopted across an agent
//! restart without being restarted (its templates re-delivered without a restart), restarted
//! with a new environment when a template's KV key changes, and removed when the job stops
//! — its output still readable after; a failed task's container is removed too (none left
//! behind on the Pi), its output kept.

use rabble_shared::Status;
use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, Hub, bin, wait_for};
use std::process::Command;
use std::time::Duration;

use rabble_tests::docker::{IMAGE, containers, image, started_at};

#[test]
fn a_docker_job_runs_is_adopted_across_an_agent_restart_and_is_removed_on_stop() {
    image();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let key = hub.key();
    let alloc_dir = d.join("pi1-alloc").display().to_string();
    let args = ["--hub-key", key.as_str(), "--alloc-dir", alloc_dir.as_str()];
    let mut agent = Agent::start(d, "pi1", hub.mqtt_port, &args);
    hub.wait_node("pi1", NodeStatus::Up, Duration::from_secs(10));
    let job = format!(
        r#"job "whoami" {{
  group "web" {{
    network {{
      port "http" {{}}
    }}
    service {{
      name = "whoami"
      port = "http"
      check {{
        type     = "http"
        path     = "/health"
        interval = "1s"
        timeout  = "1s"
      }}
    }}
    task "server" {{
      driver = "docker"
      config {{
        image        = "{IMAGE}"
        network_mode = "host"
        ports        = ["http"]
        labels       = {{ owner = "tests" }}
      }}
      resources {{
        memory = 64
      }}
      template {{
        data        = "GREETING={{{{ key \"app/greeting\" }}}}\n"
        destination = "secrets/env"
        env         = true
        splay       = "0s"
      }}
      template {{
        data        = "page for {{{{ env \"NOMAD_ALLOC_NAME\" }}}}: {{{{ key \"app/greeting\" }}}}"
        destination = "local/page.txt"
        change_mode = "noop"
      }}
    }}
  }}
}}
"#
    );
    assert!(hub.cli(&["kv", "put", "app/greeting", "hello"]).0);
    hub.run_job(&d.join("whoami.nomad.hcl"), &job);
    hub.wait_check_named("whoami", Status::Passing, Duration::from_secs(30));
    let view: rabble_shared::api::JobView = hub.get("/api/v1/jobs/whoami").unwrap();
    let alloc = view.allocations[0].clone();
    let ids = containers(alloc.id.as_str());
    assert_eq!(ids.len(), 1, "one container, labelled with its allocation");
    let body = ureq::get(&format!("http://127.0.0.1:{}/", alloc.ports[0].value))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert_eq!(body.trim(), "whoami.web[0] hello", "the template's env file is the container's environment");
    let get = |path: &str| {
        let url = format!("http://127.0.0.1:{}{path}", alloc.ports[0].value);
        ureq::get(&url).call().map(|r| r.into_body().read_to_string().unwrap()).map_err(|e| e.to_string())
    };
    assert_eq!(get("/file/local/page.txt").unwrap(), "page for whoami.web[0]: hello", "mounted at /local");
    let first_start = started_at(&ids[0]);

    // The agent is restarted (an upgrade: SIGTERM, then a new process): the container
    // keeps running and is adopted, not restarted; the allocation is the same one.
    agent.alloc_dir = None; // the harness must not kill the container's process here
    agent.proc.stop("TERM");
    drop(agent);
    let agent = Agent::start(d, "pi1", hub.mqtt_port, &args);
    hub.wait_node("pi1", NodeStatus::Up, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(4)); // past the hub's 3 s grace for a down node
    let after: rabble_shared::api::JobView = hub.get("/api/v1/jobs/whoami").unwrap();
    assert_eq!(after.allocations.len(), 1, "no replacement: {:?}", after.allocations);
    assert_eq!(after.allocations[0].client_status, rabble_shared::alloc::ClientStatus::Running);
    assert_eq!(containers(alloc.id.as_str()), ids, "the same container");
    assert_eq!(started_at(&ids[0]), first_start, "not restarted");
    assert!(agent.proc.log().contains("adopted the running container"), "{}", agent.proc.log());
    // Its output comes from the Docker engine's log, through the (new) agent.
    let (ok, err_out, e) = hub.cli(&["alloc", "logs", "-stderr", alloc.id.as_str()]);
    assert!(ok && err_out.contains("tiny-http: whoami.web[0] hello listening on"), "{err_out}{e}");
    let (ok, out, e) = hub.cli(&["alloc", "logs", alloc.id.as_str()]);
    assert!(ok && out.is_empty(), "stdout is empty: {out:?}{e}");

    // A KV change re-renders both templates: the env file restarts the container with the
    // new environment (the page alone would not: `noop`).
    assert!(hub.cli(&["kv", "put", "app/greeting", "bonjour"]).0);
    wait_for("the container restarted with the new environment", Duration::from_secs(30), || {
        let b = get("/").unwrap_or_default();
        if b.trim() == "whoami.web[0] bonjour" { Ok(()) } else { Err(b) }
    });
    assert_eq!(get("/file/local/page.txt").unwrap(), "page for whoami.web[0]: bonjour");
    let now = containers(alloc.id.as_str());
    assert_eq!(now.len(), 1, "{now:?}");

    // Stopping the job removes the container.
    let out =
        Command::new(bin("rabble")).args(["job", "stop", "whoami"]).env("RABBLE_ADDR", &hub.http).output().unwrap();
    assert!(out.status.success());
    wait_for("the container to be removed", Duration::from_secs(20), || {
        let all = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("label=rabble.alloc={}", alloc.id)])
            .output()
            .unwrap();
        if all.stdout.is_empty() { Ok(()) } else { Err(String::from_utf8_lossy(&all.stdout).into_owned()) }
    });
    // Its output was kept when the container went.
    wait_for("the removed container's output", Duration::from_secs(10), || {
        let (ok, err_out, e) = hub.cli(&["alloc", "logs", "-stderr", alloc.id.as_str()]);
        if ok && err_out.contains("tiny-http: whoami.web[0] bonjour listening on") {
            Ok(())
        } else {
            Err(format!("{err_out}{e}"))
        }
    });
}

fn docker_ps(alloc: &str) -> String {
    let all = Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=rabble.alloc={alloc}")]).output();
    String::from_utf8_lossy(&all.unwrap().stdout).trim().to_owned()
}

#[test]
fn a_failed_docker_tasks_container_is_removed_and_its_output_kept() {
    image();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let key = hub.key();
    let alloc_dir = d.join("pi1-alloc").display().to_string();
    let _agent = Agent::start(d, "pi1", hub.mqtt_port, &["--hub-key", key.as_str(), "--alloc-dir", alloc_dir.as_str()]);
    hub.wait_node("pi1", NodeStatus::Up, Duration::from_secs(10));
    let job = format!(
        r#"job "broken" {{
  type = "batch"
  group "g" {{
    restart {{
      attempts = 0
      mode     = "fail"
    }}
    reschedule {{
      attempts  = 0
      unlimited = false
    }}
    task "server" {{
      driver = "docker"
      config {{
        image        = "{IMAGE}"
        network_mode = "host"
        args         = ["not-a-port"]
      }}
    }}
  }}
}}
"#
    );
    hub.run_job(&d.join("broken.nomad.hcl"), &job);
    let alloc = wait_for("the allocation to fail", Duration::from_secs(30), || {
        let j: rabble_shared::api::JobView = hub.get("/api/v1/jobs/broken")?;
        match j.allocations.first() {
            Some(a) if a.client_status == rabble_shared::alloc::ClientStatus::Failed => Ok(a.clone()),
            other => Err(format!("{other:?}")),
        }
    });
    wait_for("no container left behind", Duration::from_secs(20), || {
        let left = docker_ps(alloc.id.as_str());
        if left.is_empty() { Ok(()) } else { Err(left) }
    });
    let (ok, err_out, e) = hub.cli(&["alloc", "logs", "-stderr", alloc.id.as_str()]);
    assert!(ok && err_out.contains("tiny-http: cannot listen on port not-a-port"), "{err_out}{e}");
    let (ok, status, _) = hub.cli(&["alloc", "status", alloc.id.as_str()]);
    assert!(ok && status.contains("exited with code 1"), "{status}");
}
