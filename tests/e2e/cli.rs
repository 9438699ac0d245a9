//! The README's first command, `rabble dev`, and the CLI against it: `rabble nodes`,
//! `rabble services`, `rabble watch`, `rabble routes`, `rabble job status` on the demo
//! job, the demo served through the routing lane, the web UI, and a docker job run in dev.

use rabble_tests::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn rabble_dev_serves_a_passing_demo_service_and_the_cli_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mqtt, http, dns, lane) = (free_port(), free_port(), free_port(), free_port());
    let mut dev = Proc::spawn(
        "rabble-dev",
        Command::new(bin("rabble")).args([
            "dev",
            "--mqtt-listen",
            &format!("127.0.0.1:{mqtt}"),
            "--http-listen",
            &format!("127.0.0.1:{http}"),
            "--dns-listen",
            &format!("127.0.0.1:{dns}"),
            "--lane-listen",
            &format!("127.0.0.1:{lane}"),
        ]),
        dir.path(),
    );
    let addr = format!("http://127.0.0.1:{http}");
    let try_rabble = |args: &[&str]| {
        let out = Command::new(bin("rabble")).args(args).env("RABBLE_ADDR", &addr).output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8(out.stdout).unwrap())
        } else {
            Err(format!("rabble {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    };
    let rabble = |args: &[&str]| try_rabble(args).unwrap();
    wait_for("the demo service to pass", Duration::from_secs(20), || {
        let out = try_rabble(&["services"])?;
        // SERVICE NODE ADDRESS STATUS CHECKS TAGS
        let passing = out.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.first() == Some(&"demo") && cols.get(3) == Some(&"passing")
        });
        if passing { Ok(()) } else { Err(out) }
    });
    // The demo runs as a job, placed by the scheduler on the in-process agent.
    let status = rabble(&["job", "status", "demo"]);
    assert!(status.contains("Status        = running"), "{status}");
    assert!(status.lines().any(|l| l.contains(" web ") || l.contains("demo  ") && l.contains("running")), "{status}");
    let log = dev.log();
    // The demo service resolves over DNS, as README promises.
    let dns_port: u16 = log
        .lines()
        .find_map(|l| l.trim().strip_prefix("DNS"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.rsplit(':').next()?.parse().ok())
        .expect("rabble dev prints its DNS address");
    assert_eq!(dns_port, dns);
    assert_eq!(dig(dns_port, "demo.service.rabble", "A", &[]).data(), ["127.0.0.1"]);
    assert!(log.contains(&format!("mosquitto_sub -h 127.0.0.1 -p {mqtt} -t 'rabble/#' -v")), "{log}");
    // ... and is served by the routing lane, on the name DNS answers.
    assert!(log.contains(&format!("curl -H 'Host: demo.service.rabble' http://127.0.0.1:{lane}/")), "{log}");
    let body = wait_for("the demo through the routing lane", Duration::from_secs(10), || {
        let out = Command::new("curl")
            .args(["-s", "-H", "Host: demo.service.rabble", &format!("http://127.0.0.1:{lane}/")])
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        if body.starts_with("hello from rabble dev") { Ok(body) } else { Err(body) }
    });
    assert!(body.contains("demo.demo[0]"), "{body}");
    // The web UI, as the banner says: the demo job on its overview.
    assert!(log.contains(&format!("{addr}/ui/")), "{log}");
    let ui = Command::new("curl").args(["-s", &format!("{addr}/ui/")]).output().unwrap();
    let ui = String::from_utf8_lossy(&ui.stdout);
    assert!(ui.contains("<h1>Overview</h1>") && ui.contains(r#"href="/ui/jobs/demo""#), "{ui}");
    assert!(rabble(&["routes"]).contains("Host(`demo.service.rabble`)"));
    let nodes = rabble(&["nodes"]);
    assert!(nodes.starts_with("NODE ") && nodes.lines().nth(1).is_some_and(|l| l.contains(" up ")), "{nodes}");
    let json: serde_json::Value = serde_json::from_str(&rabble(&["services", "--json"])).unwrap();
    assert_eq!(json[0]["name"], "demo");
    assert_eq!(json[0]["instances"][0]["checks"][0]["status"], "passing");

    // `rabble watch` streams the change when the demo's service file is edited.
    let services_dir = log
        .lines()
        .find_map(|l| l.trim().strip_prefix("Services"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("rabble dev prints its services directory")
        .to_owned();
    let mut watch = Command::new(bin("rabble"))
        .args(["watch", "--json"])
        .env("RABBLE_ADDR", &addr)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(std::path::Path::new(&services_dir).join("extra.toml"), "[[service]]\nname = \"extra\"\nport = 1\n")
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(10)).expect("an event from rabble watch");
    let ev: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(ev["summary"].as_str().unwrap().contains("extra"), "{line}");
    assert!(ev["topic"].as_str().unwrap().starts_with("rabble/node/"), "{line}");
    let _ = watch.kill();
    let _ = watch.wait();

    // Docker, found as an agent finds it: a docker job runs in dev.
    rabble_tests::docker::image();
    assert!(log.contains("Drivers   raw_exec, exec, Docker "), "{log}");
    let job = dir.path().join("whoami.nomad.hcl");
    std::fs::write(
        &job,
        format!(
            "job \"whoami\" {{\n group \"g\" {{\n network {{\n port \"http\" {{}}\n }}\n task \"t\" {{\n driver = \"docker\"\n \
             config {{\n image = \"{}\"\n network_mode = \"host\"\n ports = [\"http\"]\n }}\n }}\n }}\n}}\n",
            rabble_tests::docker::IMAGE
        ),
    )
    .unwrap();
    rabble(&["job", "run", "-detach", job.to_str().unwrap()]);
    let j: rabble_shared::api::JobView = wait_for("the docker job running in dev", Duration::from_secs(30), || {
        let j: rabble_shared::api::JobView =
            serde_json::from_str(&try_rabble(&["job", "status", "whoami", "--json"])?).map_err(|e| e.to_string())?;
        let running = j.allocations.iter().any(|a| a.client_status == rabble_shared::alloc::ClientStatus::Running);
        if running { Ok(j) } else { Err(format!("{:?}", j.allocations)) }
    });
    // (The agent reports running once the engine has started the container.)
    let _cleanup = rabble_tests::docker::RemoveOnDrop(j.allocations[0].id.to_string());

    // Ctrl-C (SIGINT) stops it cleanly and removes its scratch directory.
    dev.stop("INT");
    assert!(!std::path::Path::new(&services_dir).exists(), "rabble dev left {services_dir} behind");
}
