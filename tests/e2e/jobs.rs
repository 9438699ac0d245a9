//! Jobs from the operator's side: `rabble job ...` on real job files.

use rabble_shared::Status;
use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, Hub, bin, dig, kill_processes_under, wait_for};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn job_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/jobs").join(name)
}

#[test]
fn job_validate_accepts_real_files_and_places_every_mistake() {
    for f in ["plex.nomad.hcl", "traefik.nomad.hcl", "cleanup.nomad.hcl", "backup.nomad.hcl"] {
        let out = Command::new(bin("rabble")).args(["job", "validate"]).arg(job_file(f)).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.starts_with("Job validation successful"), "{f}: {stdout}");
    }
    // Nomad's single-dash flags, and the job as JSON.
    let out = Command::new(bin("rabble"))
        .args(["job", "validate", "-var", "image=plex:beta", "-json"])
        .arg(job_file("plex.nomad.hcl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["groups"][0]["tasks"][0]["config"]["image"], "plex:beta");
    // A template block: read and checked (no longer an unsupported block).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = job_file("grafana-template.nomad.hcl");
    let out = Command::new(bin("rabble")).args(["job", "validate"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let hub = Hub::start(d, &[]);
    let rabble = |args: &[&str]| {
        Command::new(bin("rabble")).args(args).arg(&file).env("RABBLE_ADDR", &hub.http).output().unwrap()
    };
    let out = rabble(&["job", "plan"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The plan renders each template against the catalog as it is: waiting for the key,
    // then rendering once it is there (never showing the text).
    assert!(text.contains("template secrets/env (grafana/grafana): waiting for key \"grafana/admin\""), "{text}");
    let put = Command::new(bin("rabble"))
        .args(["kv", "put", "grafana/admin", "s3cret"])
        .env("RABBLE_ADDR", &hub.http)
        .output()
        .unwrap();
    assert!(put.status.success());
    let out = rabble(&["job", "plan"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("template secrets/env (grafana/grafana): renders 33 bytes") && !text.contains("s3cret"),
        "{text}"
    );
    // A `vault` block is accepted, with a note saying what stands in for Vault.
    let vault = d.join("vault.nomad.hcl");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("      template {", "      vault {\n        policies = [\"x\"]\n      }\n      template {");
    std::fs::write(&vault, text).unwrap();
    let out = Command::new(bin("rabble")).args(["job", "validate"]).arg(&vault).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    assert!(said.contains("vault.nomad.hcl:13:7:") && said.contains("vault: Rabble has no Vault"), "{said}");
    // An unsupported block is still refused with its place, unless -ignore-unsupported.
    let affinity = d.join("affinity.nomad.hcl");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "      template {",
        "      affinity {\n        attribute = \"${node.class}\"\n        value = \"big\"\n      }\n      template {",
    );
    std::fs::write(&affinity, text).unwrap();
    let out = Command::new(bin("rabble")).args(["job", "validate"]).arg(&affinity).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("affinity.nomad.hcl:13:7:") && stderr.contains("> affinity"), "{stderr}");
    let out =
        Command::new(bin("rabble")).args(["job", "validate", "-ignore-unsupported"]).arg(&affinity).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ignored:"));
}

/// A raw_exec service job running the tiny HTTP server with a dynamic port.
fn web_job(count: u32) -> String {
    format!(
        r#"job "web" {{
  group "web" {{
    count = {count}
    network {{
      port "http" {{}}
    }}
    service {{
      name = "web"
      port = "http"
      tags = ["routing.enable=true"]
      check {{
        type     = "http"
        path     = "/health"
        interval = "1s"
        timeout  = "1s"
      }}
    }}
    task "server" {{
      driver = "raw_exec"
      config {{
        command = "{}"
      }}
      kill_timeout = "2s"
    }}
  }}
}}
"#,
        bin("tiny-http").display()
    )
}

fn job(hub: &Hub, id: &str) -> rabble_shared::api::JobView {
    hub.get(&format!("/api/v1/jobs/{id}")).unwrap()
}

#[test]
fn a_raw_exec_service_job_runs_registers_resolves_and_moves_when_its_node_dies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let mut agents = [Agent::worker(d, &hub, "pi1"), Agent::worker(d, &hub, "pi2")];
    let file = d.join("web.nomad.hcl");
    std::fs::write(&file, web_job(1)).unwrap();
    let (ok, out, err) = hub.cli(&["job", "run", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("submitted: version 0"), "{out}");
    wait_for("the allocation to run", Duration::from_secs(20), || {
        let on = hub.running_on("web");
        if on.len() == 1 { Ok(()) } else { Err(format!("running on {on:?}")) }
    });
    hub.wait_check_named("web", Status::Passing, Duration::from_secs(20));
    // DNS answers with the dynamic port the scheduler gave it.
    let j = job(&hub, "web");
    let port = j.allocations[0].ports[0].value;
    assert!((20_000..32_000).contains(&port), "{port}");
    let srv = dig(hub.dns_port, "web.service.rabble", "SRV", &[]);
    assert!(srv.data().iter().any(|r| r.contains(&format!(" {port} "))), "{:?}", srv.data());
    let body = ureq::get(&format!("http://127.0.0.1:{port}/")).call().unwrap().into_body().read_to_string().unwrap();
    assert_eq!(body.trim(), "web.web[0]", "NOMAD_ALLOC_NAME reached the task");
    // Kill -9 the node running it, and its task, as a power cut would.
    let first = hub.running_on("web")[0].clone();
    let (i, _) = agents.iter().enumerate().find(|(_, a)| a.name == first).unwrap();
    // (The task first: on this one host its port must be free for the replacement.)
    assert_eq!(kill_processes_under(&d.join(format!("{first}-alloc"))), 1, "the task dies with its node");
    let started = std::time::Instant::now();
    agents[i].proc.stop("KILL");
    wait_for("the allocation to run on the other node", Duration::from_secs(40), || {
        let on = hub.running_on("web");
        if on.len() == 1 && on[0] != first { Ok(()) } else { Err(format!("running on {on:?}")) }
    });
    println!("BENCH replaced after kill -9 of its node in {:.1} s", started.elapsed().as_secs_f64());
    let j = job(&hub, "web");
    assert!(
        j.allocations.iter().any(|a| a.client_status == rabble_shared::alloc::ClientStatus::Lost),
        "the old one is lost"
    );
    // Stop: the process, the service and the DNS answer go.
    let (ok, _, err) = hub.cli(&["job", "stop", "web"]);
    assert!(ok, "{err}");
    wait_for("the service to be deregistered", Duration::from_secs(15), || {
        if hub.instances("web").is_empty() { Ok(()) } else { Err(format!("{:?}", hub.instances("web"))) }
    });
    wait_for("NXDOMAIN", Duration::from_secs(5), || {
        let r = dig(hub.dns_port, "web.service.rabble", "A", &[]);
        if r.status == "NXDOMAIN" { Ok(()) } else { Err(r.status) }
    });
}

#[test]
fn forged_replayed_and_misaddressed_assignments_run_nothing_and_are_counted() {
    use rabble_hub::dispatch::{self, sign::SigningKey};
    use rabble_shared::{NodeId, msg};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let a = Agent::worker(d, &hub, "pi1");
    let alloc_dir = d.join("pi1-alloc");
    let file = d.join("web.nomad.hcl");
    hub.run_job(&file, &web_job(1));
    wait_for("the job to run", Duration::from_secs(20), || {
        if hub.running_on("web").len() == 1 { Ok(()) } else { Err("not yet".into()) }
    });
    // The hub's real message while the job runs: replayed after the job is stopped.
    let topic = rabble_shared::topic::assignments(&NodeId::new("pi1").unwrap());
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &hub.mqtt_port.to_string(), "-t", &topic, "-C", "1", "-W", "5"])
        .output()
        .unwrap();
    let old = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(old.contains("\"sig\""), "{old}");
    assert!(hub.cli(&["job", "stop", "web"]).0);
    wait_for("the task to stop", Duration::from_secs(15), || {
        if rabble_tests::processes_under(&alloc_dir) == 0 { Ok(()) } else { Err("still running".into()) }
    });
    // What an attacker with broker access can send: none of it may start anything.
    let job = job(&hub, "web");
    let one = rabble_shared::assign::Assignment {
        alloc: rabble_shared::AllocId::new("f0f0f0f0f0f0f0f0").unwrap(),
        name: "web.web[0]".into(),
        job_id: "web".into(),
        job_version: 0,
        kind: job.kind,
        group: "web".into(),
        index: 0,
        ports: job.allocations[0].ports.clone(),
        network_mode: "host".into(),
        services: vec![],
        // A real task: were any of these accepted, tiny-http would start.
        tasks: rabble_hub::jobspec::parse("web.hcl", &web_job(1), &Default::default()).unwrap().job.groups[0]
            .tasks
            .clone(),
        volumes: Default::default(),
        csi_volumes: Default::default(),
        restart: 0,
    };
    let other_key = SigningKey::load_or_create(&d.join("attacker")).unwrap();
    let pi1 = NodeId::new("pi1").unwrap();
    let wrong_key = msg::encode(&dispatch::signed(&other_key, &pi1, u64::MAX, vec![one.clone()]));
    let mut unsigned: serde_json::Value = serde_json::from_slice(&wrong_key).unwrap();
    unsigned["sig"] = "".into();
    let real_key = SigningKey::load_or_create(&hub.data_dir).unwrap();
    let for_pi2 = msg::encode(&dispatch::signed(&real_key, &NodeId::new("pi2").unwrap(), u64::MAX, vec![one]));
    let before = refused(&hub);
    for payload in [wrong_key, serde_json::to_vec(&unsigned).unwrap(), for_pi2, old.into_bytes()] {
        rabble_tests::mosquitto_pub(hub.mqtt_port, &topic, &payload).unwrap();
    }
    wait_for("four refusals counted in the heartbeat", Duration::from_secs(10), || {
        let n = refused(&hub);
        if n >= before + 4 { Ok(()) } else { Err(format!("{n}")) }
    });
    // Counted as refused is decided: the agent starts a task only from an assignment it
    // accepted, so four refusals mean none of the four can start anything later.
    assert_eq!(rabble_tests::processes_under(&alloc_dir), 0, "a forged or replayed assignment started something");
    let log = a.proc.log();
    for why in ["does not match the hub's key", "addressed to node pi2", "a replay"] {
        assert!(log.contains(why), "no {why:?} in the agent's log");
    }
}

fn refused(hub: &Hub) -> u64 {
    hub.nodes()
        .iter()
        .find(|n| n.id.as_str() == "pi1")
        .and_then(|n| n.heartbeat.as_ref())
        .map_or(0, |h| h.assignments_refused)
}

#[test]
fn a_hub_restart_loses_no_job_and_restarts_no_task() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut hub = Hub::start(d, &[]);
    let _a = Agent::worker(d, &hub, "pi1");
    let alloc_dir = d.join("pi1-alloc");
    let file = d.join("web.nomad.hcl");
    hub.run_job(&file, &web_job(2));
    wait_for("two allocations to run", Duration::from_secs(20), || {
        if hub.running_on("web").len() == 2 { Ok(()) } else { Err("not yet".into()) }
    });
    let pids = rabble_tests::pids_under(&alloc_dir);
    let before: Vec<String> = job(&hub, "web").allocations.iter().map(|a| a.id.to_string()).collect();
    assert_eq!(pids.len(), 2);
    hub.restart("KILL");
    hub.wait_node("pi1", NodeStatus::Up, Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(3));
    let after = job(&hub, "web");
    let ids: Vec<String> = after.allocations.iter().map(|a| a.id.to_string()).collect();
    assert_eq!(ids, before, "the same allocations, from redb");
    assert_eq!(hub.running_on("web").len(), 2);
    assert_eq!(rabble_tests::pids_under(&alloc_dir), pids, "no task was restarted");
    // And an unchanged file run again changes nothing.
    let (ok, out, _) = hub.cli(&["job", "run", "-detach", file.to_str().unwrap()]);
    assert!(ok && out.contains("nothing to do"), "{out}");
}

#[test]
fn exec_enforces_the_memory_limit_where_cgroup_v2_allows_and_says_so_where_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let _a = Agent::worker(d, &hub, "pi1");
    let exec = hub.wait_driver("pi1", "exec", Duration::from_secs(10));
    let hog = r#"job "hog" {
  type = "batch"
  group "g" {
    task "t" {
      driver = "exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo $${#x}"]
      }
      resources {
        memory     = 16
        memory_max = 32
      }
    }
  }
}
"#;
    let file = d.join("hog.nomad.hcl");
    std::fs::write(&file, hog).unwrap();
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"));
    if !v2 {
        // No cgroup v2 memory controller here: exec is reported unavailable, with why,
        // and the scheduler does not place exec work on the node.
        assert!(!exec.healthy && exec.detail.contains("cgroup"), "{exec:?}");
        let (_, out, err) = hub.cli(&["job", "plan", file.to_str().unwrap()]);
        assert!(out.contains("driver exec unhealthy filtered 1 node"), "{out}{err}");
        return;
    }
    assert!(exec.healthy, "{exec:?}");
    assert!(hub.cli(&["job", "run", "-detach", file.to_str().unwrap()]).0);
    wait_for("the hog to be killed for memory", Duration::from_secs(60), || {
        let j = job(&hub, "hog");
        let a = j.allocations.first().ok_or("no allocation")?;
        if a.client_reason.contains("out of memory") {
            Ok(())
        } else {
            Err(format!("{:?} {}", a.client_status, a.client_reason))
        }
    });
}

/// Two instances of tiny-http, rolled one at a time; `release` marks the version and
/// `broken` makes the task exit at once.
fn rolling_job(release: &str, broken: bool) -> String {
    let config = if broken {
        "command = \"/bin/sh\"\n        args = [\"-c\", \"exit 1\"]".to_owned()
    } else {
        format!("command = \"{}\"", bin("tiny-http").display())
    };
    format!(
        r#"job "roll" {{
  group "web" {{
    count = 2
    update {{
      max_parallel     = 1
      min_healthy_time = "2s"
      healthy_deadline = "20s"
      auto_revert      = true
    }}
    reschedule {{
      delay          = "1s"
      delay_function = "constant"
      unlimited      = true
    }}
    network {{
      port "http" {{}}
    }}
    service {{
      name = "roll"
      port = "http"
      check {{
        type     = "http"
        path     = "/health"
        interval = "1s"
        timeout  = "1s"
      }}
    }}
    task "server" {{
      driver = "raw_exec"
      config {{
        {config}
      }}
      env {{
        RELEASE = "{release}"
      }}
      restart {{
        attempts = 0
        mode     = "fail"
      }}
    }}
  }}
}}
"#
    )
}

#[test]
fn a_rolling_update_keeps_an_instance_healthy_and_a_failing_version_reverts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let _agents = [Agent::worker(d, &hub, "pi1"), Agent::worker(d, &hub, "pi2")];
    let file = d.join("roll.nomad.hcl");
    let run = |text: String| hub.run_job(&file, &text);
    let passing_ids = || -> Vec<String> {
        hub.services()
            .into_iter()
            .filter(|s| s.name == "roll")
            .flat_map(|s| s.instances)
            .filter(|i| i.status == Status::Passing)
            .map(|i| i.id)
            .collect()
    };
    let passing = || passing_ids().len();
    let settled = |version: u64| {
        let j = job(&hub, "roll");
        let live: Vec<_> = j
            .allocations
            .iter()
            .filter(|a| a.desired == rabble_shared::alloc::DesiredStatus::Run && !a.client_status.is_terminal())
            .collect();
        // Settled means every live instance of this version passes its check; an outgoing
        // instance that still passes does not count.
        let passing = passing_ids();
        j.version == version
            && live.len() == 2
            && live.iter().all(|a| a.job_version == version && passing.iter().any(|id| id.contains(&a.id.to_string())))
    };
    run(rolling_job("1", false));
    wait_for("version 0 healthy", Duration::from_secs(30), || {
        if settled(0) { Ok(()) } else { Err(format!("{} passing", passing())) }
    });

    // The plan says what changes, field by field, before it runs.
    let next = d.join("roll-2.nomad.hcl");
    std::fs::write(&next, rolling_job("2", false)).unwrap();
    let (_, plan, err) = hub.cli(&["job", "plan", next.to_str().unwrap()]);
    assert!(plan.contains(r#"~ groups[web].tasks[server].env.RELEASE: "1" => "2""#), "{plan}{err}");
    // A new release, rolled one instance at a time: never zero healthy.
    run(rolling_job("2", false));
    // Its history: dated versions, each with what it changed (Nomad's `job history -p`).
    let (ok, history, err) = hub.cli(&["job", "history", "-p", "roll"]);
    assert!(ok && history.starts_with("Version     = 1\nSubmit Date = 20"), "{history}{err}");
    assert!(history.contains(r#"~ groups[web].tasks[server].env.RELEASE: "1" => "2""#), "{history}");
    let mut lowest = 2;
    let start = std::time::Instant::now();
    while !settled(1) {
        lowest = lowest.min(passing());
        assert!(start.elapsed() < Duration::from_secs(60), "the update did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("BENCH rolling update of 2 instances (min_healthy_time 2 s) in {:.1} s", start.elapsed().as_secs_f64());
    assert!(lowest >= 1, "an instance was healthy throughout the update");

    // A release that cannot run: its first instance fails, the job goes back to the last
    // good version (a new version with its spec), and one instance kept serving.
    run(rolling_job("3", true));
    let start = std::time::Instant::now();
    let mut lowest = 2;
    loop {
        lowest = lowest.min(passing());
        let j = job(&hub, "roll");
        if j.version == 3 && settled(3) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no revert: version {}", j.version);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(lowest >= 1, "an instance served throughout the failed release");
    let versions: Vec<serde_json::Value> = hub.get("/api/v1/jobs/roll/versions").unwrap();
    let env = |v: &serde_json::Value| v["job"]["groups"][0]["tasks"][0]["env"]["RELEASE"].clone();
    assert_eq!(env(&versions[0]), "2", "version 3 is release 2 again");
    assert!(hub.proc.log().contains("reverting (auto_revert)"));
}
