//! The web UI in a real browser: a hub, two agents, the ACLs bootstrapped (a management
//! and a read-only token), a demo job and a KV key; then `tests/ui/ui.mjs` drives Debian's
//! chromium through playwright-core (login, a node killed turning red on the open page,
//! plan with its diff and run, live logs, a stale KV save refused, a read-only token
//! offered no stop and refused a forged one) and saves screenshots in `docs/ui/`.

use rabble_shared::api::NodeStatus;
use rabble_tests::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

const DEMO: &str = r#"job "demo" {
  group "web" {
    count = 1
    constraint {
      attribute = "${node.unique.name}"
      value     = "pi1"
    }
    task "say" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "while true; do echo demo-says hello; sleep 1; done"]
      }
      kill_timeout = "1s"
    }
  }
}
"#;

#[test]
fn the_ui_in_a_browser_logs_in_goes_live_runs_a_job_and_offers_only_what_a_token_may_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let _pi1 = Agent::worker(d, &hub, "pi1");
    let pi2 = Agent::worker(d, &hub, "pi2");
    pi2.write_service("web.toml", "[[service]]\nname = \"web\"\nport = 80\n");
    hub.run_job(&d.join("demo.nomad.hcl"), DEMO);
    wait_for(
        "the demo job running",
        T,
        || {
            if hub.running_on("demo").len() == 1 { Ok(()) } else { Err("not yet".into()) }
        },
    );
    hub.wait_node("pi2", NodeStatus::Up, T);
    let root = hub.bootstrap_acl();
    let read = hub.token_with(
        &root,
        "viewer",
        "node \"\" {\n  policy = \"read\"\n}\njob \"\" {\n  policy = \"read\"\n}\nservice \"\" {\n  policy = \"read\"\n}\n",
    );
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let r = agent.put(&format!("{}/v1/kv/app/greeting", hub.http)).header("x-consul-token", &root).send("hello");
    assert_eq!(r.unwrap().status(), 200);
    let r = agent
        .put(&format!("{}/v1/var/app/db", hub.http))
        .header("x-nomad-token", &root)
        .send_json(serde_json::json!({"Items": {"password": "s3cret-in-the-ui"}}));
    assert_eq!(r.unwrap().status(), 200);

    let ui = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui");
    assert!(ui.join("node_modules/playwright-core").exists(), "tests/ui needs `npm ci` (bash .ci/test runs it)");
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/ui");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(ui.join("ui.mjs"))
        .current_dir(&ui)
        .env("HUB", &hub.http)
        .env("ROOT", &root)
        .env("READ", &read)
        .env("KILL_PID", pi2.proc.pid().to_string())
        .env("KILL_NODE", "pi2")
        .env("JOB", DEMO)
        .env("SHOTS", &shots)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{stdout}");
    assert!(out.status.success(), "the browser test failed:\n{stdout}\n{stderr}\nhub log:\n{}", hub.proc.log());
    assert!(stdout.contains("ui: all passed"), "{stdout}");
}
