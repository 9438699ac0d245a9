//! Storage records: each kind round-trips, refuses a version it does not know, and its
//! exact encoding is pinned in hub/core/tests/golden/ (regenerate with
//! `RABBLE_UPDATE_GOLDEN=1` only together with a FORMAT bump and a migration).

use super::*;
use crate::catalog::node::EXTERNAL;
use rabble_shared::Status;
use rabble_shared::msg::CheckKind;

fn golden(name: &str, encoded: &[u8]) {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("RABBLE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, encoded).unwrap();
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(String::from_utf8_lossy(encoded), String::from_utf8_lossy(&want), "the stored form of {name} changed");
}

fn round_trip<R: Record + PartialEq + std::fmt::Debug>(name: &str, r: R) {
    let bytes = encode(&r);
    golden(name, &bytes);
    assert_eq!(decode::<R>(&bytes).unwrap(), r);
}

/// `node.v1.json` as 0.2 wrote it.
const OLD_NODE: &str = r#"{"v":1,"kind":"external","status":"up","reason":"online","eligible":false,"drain_deadline_ms":99,"facts":{"name":"nas","hostname":"nas","arch":"","os":{"name":"Debian","version":"12","kernel":"6.6"},"cpus":0,"memory_bytes":0,"disks":[],"addresses":[],"advertise":"192.168.1.5","agent_version":"external (catalog/register)","node_class":"","datacenter":"dc1","meta":{"rack":"shelf"}}}"#;

fn external_node() -> Node {
    let facts = NodeFacts {
        name: "nas".into(),
        agent_version: EXTERNAL.into(),
        advertise: "192.168.1.5".into(),
        meta: [("rack".to_owned(), "shelf".to_owned())].into(),
        ..crate::scheduler::fixture::facts("nas", "", 0, 0, &[])
    };
    Node {
        facts: Some(facts),
        eligible: false,
        drain_deadline_ms: Some(99),
        status_since_ms: 1_700_000_000_000,
        ..Node::new()
    }
}

#[test]
fn every_kind_round_trips_in_its_pinned_form() {
    let node = external_node();
    let rec = NodeRecord::of(&node);
    assert_eq!(rec.kind, NodeKind::External, "the kind is said, not guessed from a version string");
    round_trip("node.v1.json", rec.clone());
    let back = rec.into_node().unwrap();
    assert_eq!((back.facts, back.eligible, back.drain_deadline_ms), (node.facts, false, Some(99)));
    assert_eq!(back.status_since_ms, 1_700_000_000_000, "kept: every replica counts the lost grace alike");
    // A record written before `status_since_ms` was kept still reads (as 0): an added field
    // with a default, so no FORMAT change.
    let before = decode::<NodeRecord>(OLD_NODE.as_bytes()).unwrap();
    assert_eq!(before.status_since_ms, 0);

    let reg = ServiceRegistration {
        id: "nfs".into(),
        name: "nfs".into(),
        tags: vec!["storage".into()],
        address: None,
        port: Some(2049),
        meta: Default::default(),
        source: String::new(),
    };
    round_trip("service.v1.json", ServiceRecord::of(&reg));
    let check = CheckState {
        id: "nfs-tcp".into(),
        name: "nfs".into(),
        service_id: Some("nfs".into()),
        kind: CheckKind::Tcp,
        status: Status::Passing,
        output: "ok".into(),
        since_ms: 5,
    };
    round_trip("check.v1.json", CheckRecord::of(&check));
    let spec = crate::jobspec::parse(
        "j.hcl",
        "job \"j\" {\n group \"g\" {\n task \"t\" {\n driver = \"raw_exec\"\n config { command = \"x\" }\n }\n }\n}\n",
        &Default::default(),
    )
    .unwrap()
    .job;
    let job = JobRecord {
        spec: spec.clone().into(),
        version: 2,
        stopped: true,
        submit_ms: 7,
        group_hashes: [("g".into(), 9)].into(),
    };
    round_trip("job.v1.json", JobRow::of(&job));
    assert_eq!(JobRow::of(&job).into_job(), job);
    round_trip("job_version.v1.json", JobVersionRow::of(&spec, 0));
    let dated = JobVersionRow::of(&spec, 1_796_000_000_000);
    let back: JobVersionRow = serde_json::from_slice(&serde_json::to_vec(&dated).unwrap()).unwrap();
    assert_eq!(back.submit_ms, 1_796_000_000_000, "a version's date is kept");

    let entry = Entry { value: b"bin\0ary".to_vec(), flags: 42, create_index: 3, modify_index: 5 };
    round_trip("kv.v1.json", KvRecord::of(&entry));
    assert_eq!(KvRecord::of(&entry).into_entry().unwrap(), entry, "any bytes");
    let var =
        SealedVar { sealed: vec![0, 1, 2, 255], create_index: 4, modify_index: 6, create_time: 10, modify_time: 12 };
    round_trip("var.v1.json", VarRecord::of(&var));
    assert_eq!(VarRecord::of(&var).into_var().unwrap(), var);
}

#[test]
fn a_newer_or_broken_record_is_refused_by_name() {
    let mut r = KvRecord::of(&Entry { value: vec![], flags: 0, create_index: 1, modify_index: 1 });
    r.v = 2;
    assert_eq!(decode::<KvRecord>(&encode(&r)), Err(RecordError::Version(2)));
    assert!(matches!(decode::<KvRecord>(b"{\"v\":1}"), Err(RecordError::Json(_))));
    r.v = 1;
    r.value = "not base64!".into();
    assert!(decode::<KvRecord>(&encode(&r)).unwrap().into_entry().unwrap_err().to_string().contains("value"));
    let mut n = NodeRecord::of(&Node::new());
    n.kind = NodeKind::External;
    assert!(n.into_node().is_err(), "an external node needs its registered facts");
}
