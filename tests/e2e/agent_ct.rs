//! The agent's shipped unit (images/rabble-agent.service) in an unprivileged systemd
//! container beside a hub installed there (see hub_ct.rs for the containers and the
//! stand-in for "no nesting"): with nesting it runs as shipped, its token handed over by
//! systemd's credentials (LoadCredential, as on a Pi); without nesting the shipped unit
//! fails with 226/NAMESPACE (DynamicUser=), and with images/rabble-agent.service.d/
//! 50-no-namespaces.conf (a static user, the token file read directly) the node comes up
//! and its service is in the hub's DNS.

use rabble_tests::ct::Container;
use rabble_tests::{bin, images, wait_for};
use std::time::Duration;

#[test]
fn the_agents_unit_runs_in_a_container_with_and_without_nesting() {
    for nesting in [true, false] {
        let ct = Container::boot("bookworm", nesting);
        agent_in(&ct, nesting);
    }
}

fn agent_in(ct: &Container, nesting: bool) {
    ct.put("/root/rabble-hub", &bin("rabble-hub"));
    ct.install_hub();
    ct.hub_health();
    let token = ct.sh("rabble-hub node add ct-node 2>/dev/null");
    ct.put("/usr/local/bin/rabble-agent", &bin("rabble-agent"));
    let unit = std::fs::read(images("rabble-agent.service")).unwrap();
    ct.write("/etc/systemd/system/rabble-agent.service", &unit, 0o644);
    let token_file = if nesting { "/run/credentials/rabble-agent.service/token" } else { "/etc/rabble/token" };
    let config = format!(
        "hub = \"mqtts://localhost:8883\"\nname = \"ct-node\"\nca = \"/etc/rabble/ca.pem\"\n\
         token_file = \"{token_file}\"\nservices_dir = \"/etc/rabble/services.d\"\ndocker = false\n"
    );
    ct.write("/etc/rabble/agent.toml", config.as_bytes(), 0o644);
    ct.write("/etc/rabble/services.d/web.toml", b"[[service]]\nname = \"web\"\nport = 80\n", 0o644);
    ct.sh(&format!(
        "set -e; install -m 0644 /etc/rabble/tls/ca.pem /etc/rabble/ca.pem
         (umask 077; echo '{}' > /etc/rabble/token)",
        token.trim()
    ));
    if nesting {
        // As `rabble image` sets it up on a Pi: the root-only token through credentials.
        let drop_in = b"[Service]\nLoadCredential=token:/etc/rabble/token\n";
        ct.write("/etc/systemd/system/rabble-agent.service.d/10-token.conf", drop_in, 0o644);
    } else {
        // The start job succeeds (the process is forked); its setup then fails, again and
        // again (Restart=always).
        ct.sh("systemctl daemon-reload && systemctl start rabble-agent");
        wait_for("the shipped unit failing with 226/NAMESPACE", Duration::from_secs(20), || {
            let status = ct.sh("systemctl show -p ExecMainStatus --value rabble-agent");
            if status.trim() == "226" { Ok(()) } else { Err(format!("{status}\n{}", ct.journal("rabble-agent"))) }
        });
        ct.sh("systemctl stop rabble-agent; systemctl reset-failed rabble-agent || true");
        let drop_in = std::fs::read(images("rabble-agent.service.d/50-no-namespaces.conf")).unwrap();
        ct.write("/etc/systemd/system/rabble-agent.service.d/50-no-namespaces.conf", &drop_in, 0o644);
        // The drop-in's own instructions.
        ct.sh("useradd --system --no-create-home --shell /usr/sbin/nologin rabble-agent
               chown rabble-agent: /etc/rabble/token && chmod 0600 /etc/rabble/token");
    }
    ct.sh("systemctl daemon-reload && systemctl enable --now rabble-agent");
    let nodes = wait_for("the agent's node up at the hub", Duration::from_secs(30), || {
        let n = ct.api(&["http://127.0.0.1:8500/api/v1/nodes"]).map_err(|e| e.to_string())?;
        if n.contains("\"ct-node\"") && n.contains("\"up\"") {
            Ok(n)
        } else {
            Err(format!("{n}\n{}", ct.journal("rabble-agent")))
        }
    });
    assert!(nodes.contains("ct-node"), "{nodes}");
    let user = ct.sh(&format!("stat -c %U /proc/{}", ct.main_pid("rabble-agent")));
    assert_eq!(user.trim() == "rabble-agent", !nesting, "the agent's user: {user}");
    wait_for("web.service in the hub's DNS", Duration::from_secs(20), || {
        let a = ct.dig("web.service.rabble", "SRV");
        if a.contains(" 80 ") { Ok(a) } else { Err(format!("{a:?}\n{}", ct.journal("rabble-agent"))) }
    });
}
