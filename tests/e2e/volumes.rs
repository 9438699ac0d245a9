//! Named volumes from the operator's side: `rabble volume create|list|show|delete` against
//! a real hub — NFS, host and local backings, a name taken by another spec refused, bad
//! input named, and the volumes kept across a hub restart — and jobs using them through
//! Nomad's `csi` volumes, on two real agents on this machine. (NFS mounts themselves need
//! a kernel with an NFS client: tests/e2e/nfs.rs runs them in VM guests.)

use rabble_shared::api::{JobView, NodeStatus};
use rabble_tests::{Agent, Hub, wait_for};
use std::time::Duration;

#[test]
fn volumes_are_created_listed_kept_across_a_restart_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut hub = Hub::start(d, &[]);
    let ok = |hub: &Hub, args: &[&str]| {
        let (ok, out, err) = hub.cli(args);
        assert!(ok, "rabble {args:?}: {out}{err}");
        out
    };
    let out = ok(&hub, &["volume", "create", "media", "--nfs", "192.168.1.10:/tank/media", "-o", "vers=4.2,soft"]);
    assert!(out.contains("Volume \"media\" created: nfs 192.168.1.10:/tank/media (vers=4.2,soft)"), "{out}");
    ok(&hub, &["volume", "create", "photos", "--host-path", "/mnt/photos", "--node", "pi1", "--node", "pi2"]);
    ok(&hub, &["volume", "create", "db", "--local-node", "pi3", "--path", "/srv/db"]);
    // The same again is no change; another spec under the name is refused.
    ok(&hub, &["volume", "create", "db", "--local-node", "pi3", "--path", "/srv/db"]);
    let (good, _, err) = hub.cli(&["volume", "create", "db", "--local-node", "pi4", "--path", "/srv/db"]);
    assert!(!good && err.contains("exists as local /srv/db on pi3"), "{err}");
    let (good, _, err) = hub.cli(&["volume", "create", "x", "--nfs", "nas:/a/../etc"]);
    assert!(!good && err.contains("path \"/a/../etc\""), "{err}");
    let (good, _, err) = hub.cli(&["volume", "create", "x", "--nfs", "nas:/a", "--host-path", "/b"]);
    assert!(!good && err.contains("one of --nfs, --host-path or --local-node"), "{err}");

    let list = ok(&hub, &["volume", "list"]);
    for want in ["db", "local /srv/db on pi3", "media", "photos", "host /mnt/photos on pi1, pi2"] {
        assert!(list.contains(want), "{list}");
    }
    // Kept across a restart (redb, through the writer).
    hub.restart("TERM");
    let show = ok(&hub, &["volume", "show", "media"]);
    assert!(
        show.contains("Backing = nfs 192.168.1.10:/tank/media (vers=4.2,soft)") && show.contains("Users   = none"),
        "{show}"
    );
    let out = ok(&hub, &["volume", "delete", "photos"]);
    assert!(out.contains("Volume \"photos\" deleted"), "{out}");
    let (good, _, err) = hub.cli(&["volume", "show", "photos"]);
    assert!(!good && err.contains("no volume \"photos\""), "{err}");
    let v: Vec<rabble_shared::volume::VolumeView> = hub.get("/api/v1/volumes").unwrap();
    assert_eq!(v.iter().map(|v| v.spec.name.as_str()).collect::<Vec<_>>(), ["db", "media"]);
}

fn csi_job(id: &str, source: &str, access: &str) -> String {
    format!(
        r#"job "{id}" {{
  group "g" {{
    volume "data" {{
      type            = "csi"
      source          = "{source}"
      attachment_mode = "file-system"
      access_mode     = "{access}"
    }}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sh"
        args    = ["-c", "echo $NOMAD_ALLOC_ID on $node >> data/log; exec sleep 600"]
      }}
      env {{ node = "${{node.unique.name}}" }}
      volume_mount {{
        volume      = "data"
        destination = "/data"
      }}
      resources {{ memory = 16 }}
    }}
  }}
}}
"#
    )
}

#[test]
fn csi_volumes_put_their_users_where_the_data_is() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let _pi1 = Agent::worker(d, &hub, "pi1");
    let _pi2 = Agent::worker(d, &hub, "pi2");
    for n in ["pi1", "pi2"] {
        hub.wait_node(n, NodeStatus::Up, Duration::from_secs(20));
    }
    let ok = |args: &[&str]| {
        let (ok, out, err) = hub.cli(args);
        assert!(ok, "rabble {args:?}: {out}{err}");
        out
    };
    // A directory on pi2: the job goes there and writes through its volume_mount.
    let data = d.join("pi2-db");
    std::fs::create_dir_all(&data).unwrap();
    ok(&["volume", "create", "db", "--local-node", "pi2", "--path", &data.display().to_string()]);
    hub.run_job(&d.join("db.nomad.hcl"), &csi_job("db", "db", "single-node-writer"));
    wait_for("db running on pi2", Duration::from_secs(20), || match hub.running_on("db").as_slice() {
        [n] if n == "pi2" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let log = wait_for("the task's line in the volume", Duration::from_secs(10), || {
        std::fs::read_to_string(data.join("log")).map_err(|e| e.to_string())
    });
    assert!(log.ends_with(" on pi2\n"), "{log:?}");
    let show = ok(&["volume", "show", "db"]);
    let user = show.lines().find(|l| l.contains("db/g")).unwrap_or_default();
    assert_eq!(user.split_whitespace().skip(1).collect::<Vec<_>>(), ["db/g", "pi2", "rw"], "{show}");
    let (good, _, err) = hub.cli(&["volume", "delete", "db"]);
    assert!(!good && err.contains("in use by db/g on pi2"), "{err}");

    // An NFS export: only nodes with an NFS client may take its users.
    ok(&["volume", "create", "media", "--nfs", "127.0.0.1:/tank/media", "-o", "port=1"]);
    hub.run_job(&d.join("media.nomad.hcl"), &csi_job("media", "media", "multi-node-multi-writer"));
    let nfs = |n: &str| {
        hub.nodes()
            .into_iter()
            .find(|v| v.id.as_str() == n)
            .and_then(|v| v.facts)
            .is_some_and(|f| f.storage.contains(&"nfs".to_owned()))
    };
    let job = |id: &str| -> JobView { hub.get(&format!("/api/v1/jobs/{id}")).unwrap() };
    if !nfs("pi1") && !nfs("pi2") {
        let why = wait_for("media unplaceable", Duration::from_secs(20), || {
            job("media").groups[0].unplaced.clone().ok_or_else(|| "placed".to_owned())
        });
        assert_eq!(why, "no NFS client for volume media filtered 2 nodes");
    } else {
        // This kernel has a client: the mount fails (nothing on port 1) and says so.
        let why = wait_for("media failed", Duration::from_secs(90), || {
            let a = job("media").allocations.into_iter().find(|a| a.client_status.is_terminal());
            a.map(|a| a.client_reason).ok_or_else(|| "not failed yet".to_owned())
        });
        assert!(why.contains("volume \"media\": mount 127.0.0.1:/tank/media: "), "{why}");
    }
    // A job naming no volume of Rabble's is unplaceable until one is created.
    hub.run_job(&d.join("late.nomad.hcl"), &csi_job("late", "late", ""));
    let why = wait_for("late unplaceable", Duration::from_secs(20), || {
        job("late").groups[0].unplaced.clone().ok_or_else(|| "placed".to_owned())
    });
    assert_eq!(why, "missing volume late filtered 2 nodes");
    let late = d.join("late");
    std::fs::create_dir_all(&late).unwrap();
    ok(&["volume", "create", "late", "--host-path", &late.display().to_string(), "--node", "pi1"]);
    wait_for("late running on pi1", Duration::from_secs(20), || match hub.running_on("late").as_slice() {
        [n] if n == "pi1" => Ok(()),
        other => Err(format!("{other:?}")),
    });
}
