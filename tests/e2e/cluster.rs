//! Hub plus three agents: services from files (the seed's Consul HCL among them), HTTP
//! checks following the service, TTL checks following `rabble-agent check`, broken files.

use rabble_shared::Status;
use rabble_shared::api::NodeStatus;
use rabble_tests::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

#[test]
fn three_agents_register_services_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);

    // pve: the seed's proxmox and postgres files, exactly as written.
    let pve = Agent::start(d, "pve", hub.mqtt_port, &["--enable-script-checks"]);
    for f in ["proxmox.hcl", "postgres.hcl"] {
        std::fs::copy(crate::seed(f), pve.services_dir.join(f)).unwrap();
    }
    // pi1: a web service with an HTTP check the test flips.
    let web = FlipServer::start();
    let pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    pi1.write_service(
        "web.json",
        &format!(
            r#"{{"service": {{"name": "web", "port": 8080, "tags": ["routing.enable=true"],
            "check": {{"id": "web-http", "http": "{}", "interval": "1s", "timeout": "1s"}}}}}}"#,
            web.url
        ),
    );
    // pi2: a batch job reporting through a TTL check.
    let pi2 = Agent::start(d, "pi2", hub.mqtt_port, &[]);
    pi2.write_service(
        "backup.toml",
        "[[service]]\nname = \"backup\"\n[[service.checks]]\nid = \"backup-ttl\"\nttl = \"60s\"\n",
    );

    for n in ["pve", "pi1", "pi2"] {
        hub.wait_node(n, NodeStatus::Up, T);
    }
    // The agents were started before their files were written: the directory watch
    // picked them up.
    wait_for("all four services", T, || {
        let names: Vec<String> = hub.services().into_iter().map(|s| s.name).collect();
        if names == ["backup", "postgres", "proxmox", "web"] { Ok(()) } else { Err(format!("{names:?}")) }
    });
    let proxmox = hub.services().into_iter().find(|s| s.name == "proxmox").unwrap();
    let inst = &proxmox.instances[0];
    assert_eq!((inst.node.as_str(), inst.port, inst.address.as_str()), ("pve", Some(8006), "127.0.0.1"));
    assert_eq!(inst.tags.len(), 3);
    assert_eq!(inst.checks[0].id, "service:proxmox");
    // Nothing listens on 8006 here: the seed's HTTPS check runs and fails, with a reason.
    wait_for("the proxmox check to report", T, || match hub.check_status("service:proxmox") {
        Some((Status::Critical, out)) if out.contains("https://localhost:8006") => Ok(()),
        other => Err(format!("{other:?}")),
    });
    wait_for("the postgres script check to report", T, || match hub.check_status("service:postgres") {
        Some((Status::Critical, out)) if !out.is_empty() => Ok(()),
        other => Err(format!("{other:?}")),
    });

    // HTTP check follows the service, within its 1 s interval (bounds are generous).
    hub.wait_check("web-http", Status::Passing, T);
    web.set(500);
    hub.wait_check("web-http", Status::Critical, Duration::from_secs(5));
    web.set(429);
    hub.wait_check("web-http", Status::Warning, Duration::from_secs(5));
    web.set(200);
    hub.wait_check("web-http", Status::Passing, Duration::from_secs(5));

    // TTL check follows `rabble-agent check`.
    assert_eq!(hub.check_status("backup-ttl").map(|c| c.0), Some(Status::Critical), "TTL checks start critical");
    let (ok, err) = pi2.ctl(&["check", "pass", "backup-ttl", "--note", "nightly backup done"]);
    assert!(ok, "{err}");
    hub.wait_check("backup-ttl", Status::Passing, Duration::from_secs(5));
    assert_eq!(hub.check_status("backup-ttl").unwrap().1, "nightly backup done");
    let (ok, _) = pi2.ctl(&["check", "fail", "backup-ttl"]);
    assert!(ok);
    hub.wait_check("backup-ttl", Status::Critical, Duration::from_secs(5));
    let (ok, err) = pi2.ctl(&["check", "pass", "no-such-check"]);
    assert!(!ok && err.contains("no-such-check"), "{err}");

    // A broken file names itself and its line; everything else keeps working.
    pi1.write_service("broken.hcl", "service {\n  name = \"oops\"\n  port = \n}\n");
    let (ok, err) = pi1.ctl(&["reload"]);
    assert!(!ok, "reload must report the broken file");
    assert!(err.contains("broken.hcl") && err.contains('3'), "{err}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hub.instances("web"), ["pi1/web"]);
    hub.wait_check("web-http", Status::Passing, Duration::from_secs(5));

    // Editing a file changes the registration; removing it deregisters.
    pi1.write_service(
        "web.json",
        &format!(
            r#"{{"service": {{"name": "web", "port": 9090,
            "check": {{"id": "web-http", "http": "{}", "interval": "1s"}}}}}}"#,
            web.url
        ),
    );
    wait_for("the new port", T, || {
        let s = hub.services().into_iter().find(|s| s.name == "web").ok_or("no web")?;
        if s.instances[0].port == Some(9090) { Ok(()) } else { Err(format!("{:?}", s.instances[0].port)) }
    });
    std::fs::remove_file(pi1.services_dir.join("web.json")).unwrap();
    wait_for("web to be deregistered", T, || {
        if hub.instances("web").is_empty() { Ok(()) } else { Err("still there".into()) }
    });
    drop((pve, pi1, pi2));
}
