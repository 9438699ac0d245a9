//! Determinism: the catalog is a state machine. A stream of commits recorded from a busy
//! scenario (nodes joining with services and checks, a job placed, run, a node lost and
//! its work replaced, KV and variables, a drain, the job stopped) applied again to fresh
//! catalogs gives the same catalog every time — the property a replicated hub relies on
//! when every hub applies the same log.

use super::*;
use crate::catalog::{kv, kv_txn, vars};
use crate::scheduler::eval;
use rabble_shared::alloc::{ClientStatus, DesiredStatus};
use rabble_shared::msg::{CheckKind, CheckState, Heartbeat, ServiceRegistration};
use rabble_shared::{AllocId, NodeId, Status, TopicId};
use std::collections::BTreeSet;

const JOB: &str = r#"job "web" {
  group "web" {
    count = 3
    network {
      port "http" {}
    }
    service {
      name = "web"
      port = "http"
      tags = ["routing.enable=true"]
    }
    task "server" {
      driver = "raw_exec"
      config {
        command = "/usr/bin/true"
      }
    }
  }
}
"#;

/// Records each commit (its updates and the time the writer stamped it with) as a
/// scenario runs against a catalog.
struct Recorder {
    catalog: Catalog,
    log: Vec<(Vec<Option<Update>>, u64)>,
    now_ms: u64,
    ids: fastrand::Rng,
}

impl Recorder {
    fn commit(&mut self, updates: Vec<Update>) {
        self.now_ms += 1_000;
        let updates: Vec<Option<Update>> = updates.into_iter().map(Some).collect();
        self.log.push((updates.clone(), self.now_ms));
        self.catalog.apply_batch(updates, self.now_ms);
    }

    /// What the scheduler would decide now, committed.
    fn schedule(&mut self, registered: &[&str]) {
        let registered: BTreeSet<String> = registered.iter().map(|s| s.to_string()).collect();
        let ids = &mut self.ids;
        let mut new_id = || AllocId::new(format!("{:016x}", ids.u64(..))).unwrap();
        let out = eval::evaluate(&self.catalog, &registered, None, self.now_ms, &mut new_id);
        self.commit(out.updates);
    }

    /// Every allocation of `node` reports `status`.
    fn report(&mut self, node: &str, status: ClientStatus) {
        let updates = self
            .catalog
            .work
            .allocs
            .values()
            .filter(|a| a.node.as_str() == node && a.desired == DesiredStatus::Run && !a.client_status.is_terminal())
            .map(|a| {
                let reason = String::new();
                let node = Some(a.node.clone());
                Update::Alloc(
                    a.id.clone(),
                    AllocUpdate::Client { status, reason, at_ms: self.now_ms, node, tasks: Default::default() },
                )
            })
            .collect();
        self.commit(updates);
    }
}

fn n(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn joined(node: &str) -> Vec<Update> {
    let facts = crate::scheduler::fixture::facts(node, "aarch64", 4, 4, &["raw_exec"]);
    let reg = ServiceRegistration {
        id: "ssh".into(),
        name: "ssh".into(),
        tags: vec!["infra".into()],
        address: None,
        port: Some(22),
        meta: Default::default(),
        source: String::new(),
    };
    let check = CheckState {
        id: "ssh-tcp".into(),
        name: "ssh".into(),
        service_id: Some("ssh".into()),
        kind: CheckKind::Tcp,
        status: Status::Passing,
        output: "ok".into(),
        since_ms: 5,
    };
    let hb = Heartbeat {
        seq: 1,
        uptime_s: 10,
        cpu_percent: 3.0,
        load: [0.1; 3],
        memory_used_bytes: 1,
        memory_total_bytes: 2,
        disks: vec![],
        temperature_c: None,
        throttled: None,
        assignments_refused: 0,
        metrics: None,
    };
    vec![
        Update::Node(n(node), NodeUpdate::Online),
        Update::Node(n(node), NodeUpdate::Facts(Box::new(facts))),
        Update::Node(n(node), NodeUpdate::Service(TopicId::new("ssh").unwrap(), Some(reg))),
        Update::Node(n(node), NodeUpdate::Check(TopicId::new("ssh-tcp").unwrap(), Some(check))),
        Update::Node(n(node), NodeUpdate::Heartbeat(hb)),
    ]
}

fn record() -> Recorder {
    let mut r = Recorder {
        catalog: Catalog::default(),
        log: vec![],
        now_ms: 1_796_000_000_000,
        ids: fastrand::Rng::with_seed(7),
    };
    for node in ["pi1", "pi2", "pi3", "pi4"] {
        r.commit(joined(node));
    }
    let spec = crate::jobspec::parse("web.nomad.hcl", JOB, &Default::default()).unwrap().job;
    r.commit(vec![eval::register(spec, r.now_ms)]);
    r.schedule(&["web"]);
    for node in ["pi1", "pi2", "pi3", "pi4"] {
        r.report(node, ClientStatus::Running);
    }
    let set = |key: &str, value: &str| kv::KvUpdate::Set { key: key.into(), value: value.into(), flags: 0, cas: None };
    r.commit(vec![Update::Kv(set("app/greeting", "hello")), Update::Kv(set("app/colour", "blue"))]);
    r.commit(vec![Update::KvTxn(vec![
        kv_txn::TxnOp::Set { key: "app/a".into(), value: b"1".to_vec(), flags: 0 },
        kv_txn::TxnOp::CheckNotExists { key: "app/b".into() },
        kv_txn::TxnOp::Delete { key: "app/colour".into() },
    ])]);
    r.commit(vec![Update::Var(vars::VarUpdate::Put {
        path: "nomad/jobs/web".into(),
        sealed: vec![1, 2, 3, 4],
        cas: None,
        at_ns: 42,
    })]);
    // A node dies: its work is lost and placed again.
    r.commit(vec![Update::Node(n("pi1"), NodeUpdate::HeartbeatTimeout)]);
    r.now_ms += eval::LOST_GRACE_MS;
    r.schedule(&[]);
    r.schedule(&[]);
    for node in ["pi2", "pi3", "pi4"] {
        r.report(node, ClientStatus::Running);
    }
    r.commit(vec![Update::Node(n("pi2"), NodeUpdate::Drain(Some(r.now_ms + 60_000)))]);
    r.schedule(&[]);
    let policy = crate::acl::Policy::new("web", "the web team", "kv \"app/\" { policy = \"write\" }").unwrap();
    let token = crate::acl::Token {
        accessor: "a1".into(),
        secret_sha256: "00".repeat(32),
        description: "ci".into(),
        policies: vec!["web".into()],
        management: false,
        create_ms: r.now_ms,
        expires_ms: None,
    };
    r.commit(vec![
        Update::Acl(crate::acl::AclUpdate::PutPolicy(policy)),
        Update::Acl(crate::acl::AclUpdate::PutToken(token)),
    ]);
    r.commit(vec![Update::Kv(kv::KvUpdate::Delete { key: "app/".into(), recurse: true, cas: None })]);
    r.commit(vec![Update::Job("web".into(), JobUpdate::Stop)]);
    r.schedule(&[]);
    r
}

#[test]
fn the_same_commits_applied_again_give_the_same_catalog() {
    let r = record();
    assert!(r.log.len() > 15, "a long enough stream: {} commits", r.log.len());
    assert!(r.catalog.work.allocs.len() >= 4, "placements and replacements happened");
    assert!(r.catalog.work.allocs.values().any(|a| a.client_status == ClientStatus::Lost));
    for _ in 0..2 {
        let mut replay = Catalog::default();
        for (updates, at_ms) in &r.log {
            replay.apply_batch(updates.clone(), *at_ms);
        }
        assert_eq!(replay, r.catalog);
        assert_eq!(format!("{replay:?}"), format!("{:?}", r.catalog), "the same down to the byte");
    }
}

#[test]
fn the_same_commits_through_the_log_give_the_same_catalog() {
    // What a follower does: every commit encoded as the replicated log's entry, decoded, applied.
    let r = record();
    let mut follower = Catalog::default();
    for (updates, at_ms) in &r.log {
        let changes = updates
            .iter()
            .flatten()
            .map(|u| crate::catalog::log::Change { source: "t".into(), update: u.clone() })
            .collect();
        let bytes = crate::catalog::log::LogEntry::new(*at_ms, changes).encode();
        crate::catalog::log::LogEntry::decode(&bytes).unwrap().apply(&mut follower);
    }
    assert!(!follower.acl.tokens.is_empty() && !follower.vars.entries.is_empty());
    assert_eq!(follower, r.catalog);
}
