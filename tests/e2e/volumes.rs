//! Named volumes from the operator's side: `rabble volume create|list|show|delete` against
//! a real hub — NFS, host and local backings, a name taken by another spec refused, bad
//! input named, and the volumes kept across a hub restart.

use rabble_tests::Hub;

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
