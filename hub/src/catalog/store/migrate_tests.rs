//! A data dir written by Rabble 0.1.0 (storage format 0: tests/fixtures/datadir-0.1.0, made
//! by the real hub, an agent running a job, the Consul and KV APIs and `rabble var`) opens
//! in format 1 with nothing lost: every node, service, check, job and version, allocation,
//! KV entry (binary values and flags too), variable and credential.

use super::*;
use crate::auth::{Credentials, Sealing};
use rabble_shared::alloc::ClientStatus;

fn fixture() -> tempfile::TempDir {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/datadir-0.1.0");
    let dir = tempfile::tempdir().unwrap();
    for f in ["catalog.redb", "credentials.json", "assign.key", "secret.key"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    dir
}

#[test]
fn a_data_dir_written_by_0_1_0_opens_with_nothing_lost() {
    let dir = fixture();
    let (store, c) = Store::open(dir.path()).unwrap();
    drop(store);

    let ids: Vec<&str> = c.nodes.keys().map(NodeId::as_str).collect();
    assert_eq!(ids, ["nas", "pi-a"]);
    let pi = &c.nodes[&NodeId::new("pi-a").unwrap()];
    assert!(!pi.is_external() && !pi.eligible, "pi-a: an agent's node, made ineligible");
    assert_eq!(pi.facts.as_ref().unwrap().arch, "x86_64");
    let services: Vec<&str> = pi.services.values().map(|r| r.name.as_str()).collect();
    assert!(services.contains(&"ssh") && services.iter().filter(|s| **s == "web").count() == 3, "{services:?}");
    assert_eq!(pi.checks.len(), 1, "the ssh service's TTL check");
    let nas = &c.nodes[&NodeId::new("nas").unwrap()];
    assert!(nas.is_external(), "registered through the Consul API");
    assert_eq!(nas.services.values().next().unwrap().name, "nfs");

    let web = &c.work.jobs["web"];
    assert_eq!(web.version, 1);
    assert_eq!(web.spec.groups[0].count, 3);
    assert!(c.work.history.contains_key(&("web".to_owned(), 0)) && c.work.history.contains_key(&("web".to_owned(), 1)));
    let running = c.work.allocs.values().filter(|a| a.client_status == ClientStatus::Running).count();
    assert_eq!(running, 3, "{:?}", c.work.allocs.values().map(|a| (&a.name, a.client_status)).collect::<Vec<_>>());

    assert_eq!(c.kv.entries["app/greeting"].value, b"hello");
    assert_eq!(c.kv.entries["app/db"].value, b"postgres://db");
    let bin = &c.kv.entries["app/binary"];
    assert_eq!((bin.value.as_slice(), bin.flags), (&b"bin\0ary"[..], 42));

    let key = crate::secrets::key(dir.path()).unwrap();
    let items = c.vars.entries["nomad/jobs/web"].open(&key, "nomad/jobs/web").unwrap();
    assert_eq!((items["password"].as_str(), items["user"].as_str()), ("pw-fixture", "admin"));

    let creds = Credentials::load(&Credentials::path(dir.path())).unwrap();
    let sealing = |n: &str| creds.sealing(&NodeId::new(n).unwrap());
    assert!(matches!(sealing("pi-kitchen"), Sealing::Sealed(_)));
    assert!(matches!(sealing("watcher"), Sealing::Withheld(w) if w.contains("observer")));
    assert!(matches!(sealing("pi-garage"), Sealing::Withheld(w) if w.contains("not joined")));
    assert!(c.index > 0);

    // Format 1 now: the old tables are gone, and opening again reads the same catalog.
    let (store, again) = Store::open(dir.path()).unwrap();
    assert_eq!(again, c);
    assert!(!v0::present(&store.db).unwrap(), "format 0's tables were dropped");
    let tx = store.db.begin_read().unwrap();
    assert_eq!(tx.open_table(META).unwrap().get(FORMAT_KEY).unwrap().unwrap().value(), FORMAT);
}

#[test]
fn a_data_dir_from_a_newer_hub_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    {
        let db = Database::create(dir.path().join("catalog.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META).unwrap().insert(FORMAT_KEY, FORMAT + 1).unwrap();
        tx.commit().unwrap();
    }
    let e = Store::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("catalog.redb") && e.contains("newer hub"), "{e}");
}
