//! An operator's hands on running work, through the real CLI against a real hub and
//! agents: `rabble alloc status` (task states, events, checks), `rabble alloc restart`
//! (the task restarts in place: a new process, same allocation, not counted against the
//! restart policy), `rabble job restart` (rolling: one allocation at a time, each back
//! before the next) and `rabble job revert`; Nomad's restart endpoint too.

use rabble_shared::Status;
use rabble_shared::alloc::ClientStatus;
use rabble_shared::api::{AllocationView, JobView};
use rabble_tests::{Agent, Hub, bin, pids_under, wait_for};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn web_job(count: u32, owner: &str) -> String {
    format!(
        r#"job "web" {{
  meta {{
    owner = "{owner}"
  }}
  group "web" {{
    count = {count}
    constraint {{
      distinct_hosts = true
    }}
    network {{
      port "http" {{}}
    }}
    service {{
      name = "web"
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

fn job(hub: &Hub) -> JobView {
    hub.get("/api/v1/jobs/web").unwrap()
}

fn alloc(hub: &Hub, id: &str) -> AllocationView {
    hub.get(&format!("/api/v1/allocations/{id}")).unwrap()
}

/// Waits until every allocation of the job runs with its check passing.
fn all_running(hub: &Hub, n: usize) -> Vec<String> {
    wait_for("the allocations to run", T, || {
        let j = job(hub);
        let live: Vec<_> = j.allocations.iter().filter(|a| a.client_status == ClientStatus::Running).collect();
        if live.len() == n { Ok(live.iter().map(|a| a.id.to_string()).collect()) } else { Err(format!("{live:?}")) }
    })
}

#[test]
fn alloc_status_restart_job_restart_and_revert() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let _pi1 = Agent::worker(d, &hub, "pi1");
    let _pi2 = Agent::worker(d, &hub, "pi2");
    hub.run_job(&d.join("web.nomad.hcl"), &web_job(2, "ops"));
    let ids = all_running(&hub, 2);
    hub.wait_check_named("web", Status::Passing, T);
    let first = alloc(&hub, &ids[0]);
    let dir_of = |a: &AllocationView| d.join(format!("{}-alloc", a.alloc.node));
    // Status: the task, its events, the service's check.
    let (ok, out, err) = hub.cli(&["alloc", "status", &ids[0]]);
    assert!(ok, "{err}");
    for want in ["Task \"server\" is \"running\"", "Total Restarts = 0", "Recent Events:", "started", "Service Checks:"]
    {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    wait_for("the check to show in alloc status", T, || {
        let (_, out, _) = hub.cli(&["alloc", "status", &ids[0]]);
        if out.lines().any(|l| l.starts_with("web") && l.contains("passing")) { Ok(()) } else { Err(out) }
    });
    // Restart in place: a new process, the same allocation on the same node.
    let before = pids_under(&dir_of(&first));
    assert_eq!(before.len(), 1, "{before:?}");
    let (ok, out, err) = hub.cli(&["alloc", "restart", &ids[0]]);
    assert!(ok && out.contains("restarting"), "{out}{err}");
    wait_for("a new process", T, || {
        let now = pids_under(&dir_of(&first));
        if now.len() == 1 && now != before { Ok(()) } else { Err(format!("{before:?} → {now:?}")) }
    });
    let after = wait_for("the restart event", T, || {
        let a = alloc(&hub, &ids[0]);
        let t = &a.alloc.tasks["server"];
        if t.events.iter().any(|e| e.text == "restarted: asked by an operator (restart 1)") && t.state == "running" {
            Ok(a)
        } else {
            Err(format!("{t:?}"))
        }
    });
    assert_eq!((after.alloc.node.clone(), after.alloc.tasks["server"].restarts), (first.alloc.node.clone(), 0));
    assert_eq!(job(&hub).allocations.len(), 2, "no new allocation");
    // Rolling restart of the job: both, one after the other.
    let (ok, out, err) = hub.cli(&["job", "restart", "web", "-batch-size", "1"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.matches("running again").count(), 2, "{out}");
    for id in &ids {
        let a = alloc(&hub, id);
        let n = a.alloc.tasks["server"].events.iter().filter(|e| e.text.starts_with("restarted")).count();
        assert!(n >= 1, "{id}: {:?}", a.alloc.tasks);
    }
    // Nomad's endpoint restarts too.
    let url = format!("{}/v1/client/allocation/{}/restart", hub.http, ids[1]);
    assert_eq!(ureq::post(&url).send_empty().unwrap().status().as_u16(), 200);
    wait_for("restart 2 of the second", T, || {
        let a = alloc(&hub, &ids[1]);
        if a.alloc.restart_asked == 2 { Ok(()) } else { Err(a.alloc.restart_asked.to_string()) }
    });
    // Revert: version 1 changed the owner; reverting to 0 brings it back as version 2.
    hub.run_job(&d.join("web.nomad.hcl"), &web_job(2, "dev"));
    wait_for("version 1", T, || if job(&hub).version == 1 { Ok(()) } else { Err("v0".into()) });
    let (ok, out, err) = hub.cli(&["job", "revert", "web", "0"]);
    assert!(ok && out.contains("now version 2"), "{out}{err}");
    let versions: Vec<rabble_shared::api::JobVersion> = hub.get("/api/v1/jobs/web/versions").unwrap();
    assert_eq!(versions[0].job.meta["owner"], "ops", "version 2 is version 0's job");
    let (ok, _, err) = hub.cli(&["job", "revert", "web", "9"]);
    assert!(!ok && err.contains("no version 9"), "{err}");
    // A stopped allocation cannot restart.
    let (ok, _, err) = hub.cli(&["job", "stop", "web"]);
    assert!(ok, "{err}");
    wait_for("stopped", T, || {
        let a = alloc(&hub, &ids[0]);
        if a.alloc.client_status.is_terminal() { Ok(()) } else { Err(format!("{:?}", a.alloc.client_status)) }
    });
    let (ok, _, err) = hub.cli(&["alloc", "restart", &ids[0]]);
    assert!(!ok && err.contains("only a live allocation restarts"), "{err}");
}
