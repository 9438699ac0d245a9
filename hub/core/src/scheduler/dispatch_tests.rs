//! Dispatch: the request's rules, the child's form, and the queue draining in order.

use super::*;
use crate::catalog::{AllocUpdate, NodeUpdate, Update};
use crate::scheduler::eval::{evaluate, register};
use rabble_shared::{AllocId, NodeId};
use std::collections::BTreeSet;

const RENDER: &str = r#"job "render" {
  type = "batch"
  parameterized {
    payload       = "required"
    meta_required = ["frame"]
    meta_optional = ["quality"]
  }
  meta { quality = "draft" }
  group "g" {
    task "t" {
      driver = "raw_exec"
      config { command = "/bin/render" }
      dispatch_payload { file = "scene.json" }
      resources { memory = 3000 }
    }
  }
}
"#;

fn parent() -> JobSpec {
    crate::jobspec::parse("render.hcl", RENDER, &Default::default()).unwrap().job
}

fn req(frame: &str) -> Request {
    Request { meta: [("frame".to_owned(), frame.to_owned())].into(), payload: b"{\"scene\":1}".to_vec() }
}

#[test]
fn a_child_carries_meta_and_payload() {
    let c = child(&parent(), false, &req("7"), 1_700_000_000_123, 5).unwrap();
    assert_eq!(c.id, "render/dispatch-1700000000-1ec00005");
    assert!(c.parameterized.is_none());
    assert_eq!((c.meta["frame"].as_str(), c.meta["quality"].as_str()), ("7", "draft"));
    let d = c.groups[0].tasks[0].dispatch_payload.as_ref().unwrap();
    assert_eq!((d.file.as_str(), d.data.as_str()), ("scene.json", "eyJzY2VuZSI6MX0="));
    // Ids sort as the dispatches were made, even within one second.
    assert!(child_id("render", 1_700_000_000_009, 0x3f_ffff) < child_id("render", 1_700_000_000_010, 0));
    assert!(child_id("render", 1_700_000_000_999, 0x3f_ffff) < child_id("render", 1_700_000_001_000, 0));
}

#[test]
fn requests_are_checked_against_the_rules() {
    let p = parent();
    let mut r = req("1");
    r.payload.clear();
    assert_eq!(child(&p, false, &r, 0, 0), Err(DispatchError::PayloadRequired));
    let mut r = req("1");
    r.meta.clear();
    assert_eq!(child(&p, false, &r, 0, 0), Err(DispatchError::MetaMissing(vec!["frame".into()])));
    let mut r = req("1");
    r.meta.insert("colour".into(), "x".into());
    assert_eq!(child(&p, false, &r, 0, 0), Err(DispatchError::MetaUnknown(vec!["colour".into()])));
    let mut r = req("1");
    r.payload = vec![b'x'; MAX_PAYLOAD + 1];
    assert_eq!(child(&p, false, &r, 0, 0), Err(DispatchError::PayloadTooLarge(MAX_PAYLOAD + 1)));
    assert_eq!(child(&p, true, &req("1"), 0, 0), Err(DispatchError::Stopped("render".into())));
    let mut plain = p.clone();
    plain.parameterized = None;
    assert!(matches!(child(&plain, false, &req("1"), 0, 0), Err(DispatchError::NotParameterized(_))));
    let e = crate::jobspec::parse("x.hcl", &RENDER.replace("\"required\"", "\"sometimes\""), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("payload: \"sometimes\" is not optional, required or forbidden"), "{e}");
    let e = crate::jobspec::parse("x.hcl", &RENDER.replace("\"batch\"", "\"service\""), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("a service job cannot be dispatched"), "{e}");
}

/// One 4 GB node, tasks of 3 GB: one child at a time, the oldest first, the next as the
/// one before it completes; the parent itself is never placed.
#[test]
fn the_queue_drains_in_order() {
    let mut c = Catalog::default();
    let node = NodeId::new("pi").unwrap();
    let f = crate::scheduler::fixture::facts("pi", "aarch64", 4, 4, &["raw_exec"]);
    c.apply(Update::Node(node.clone(), NodeUpdate::Facts(Box::new(f))));
    c.apply(register(parent(), 0));
    let mut ids = Vec::new();
    for (i, at) in [3_000u64, 1_000, 2_000].into_iter().enumerate() {
        let ch = child(&parent(), false, &req(&i.to_string()), at, 0).unwrap();
        ids.push(ch.id.clone());
        c.apply(register(ch, at));
    }
    ids.sort();
    let mut n = 0u64;
    let mut placed = Vec::new();
    for round in 0..3 {
        let out = evaluate(&c, &BTreeSet::new(), None, 10_000 + round, &mut || {
            n += 1;
            AllocId::new(format!("{n:016x}")).unwrap()
        });
        let created: Vec<_> = out
            .updates
            .iter()
            .filter_map(|u| match u {
                Update::Alloc(id, AllocUpdate::Create(a)) => Some((id.clone(), a.job_id.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(created.len(), 1, "round {round}: {created:?}");
        assert_eq!(out.unplaced.len(), 2 - round as usize, "round {round}");
        for u in out.updates {
            c.apply(u);
        }
        let (alloc, job) = created[0].clone();
        placed.push(job);
        let q = queue(&c, "render");
        assert_eq!((q.queued, q.running, q.complete), (2 - round as u32, 1, round as u32));
        let done = AllocUpdate::Client {
            status: ClientStatus::Complete,
            reason: String::new(),
            at_ms: 10_000 + round,
            node: Some(node.clone()),
            tasks: Default::default(),
        };
        c.apply(Update::Alloc(alloc, done));
    }
    assert_eq!(placed, ids, "oldest first");
    assert_eq!(queue(&c, "render"), DispatchQueue { queued: 0, running: 0, complete: 3, failed: 0 });
}
