//! The job files the docs show (docs/examples/*.nomad.hcl) are real: each parses, is placed
//! in full on a small homelab (Pis and an x86 box, Docker on some), appears verbatim in
//! docs/jobs.md, and its templates render.

use crate::catalog::vars::VarUpdate;
use crate::catalog::{Catalog, NodeUpdate, Update};
use rabble_shared::NodeId;
use rabble_shared::support::seal::SealKey;
use std::path::PathBuf;

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

fn examples() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(docs().join("examples"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".nomad.hcl"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// Three Pis (arm64) and an x86 box, each with raw_exec and Docker.
fn homelab() -> Catalog {
    let mut c = Catalog::default();
    for (name, arch) in [("pi1", "aarch64"), ("pi2", "aarch64"), ("pi3", "aarch64"), ("nuc", "x86_64")] {
        let facts = crate::scheduler::fixture::facts(name, arch, 4, 4, &["raw_exec", "docker"]);
        let id = NodeId::new(name).unwrap();
        c.apply(Update::Node(id.clone(), NodeUpdate::Online));
        c.apply(Update::Node(id, NodeUpdate::Facts(Box::new(facts))));
    }
    crate::dns::fixture::add(&mut c, "pi1", "192.168.1.11", "web", &[], None, rabble_shared::Status::Passing);
    c
}

#[test]
fn every_example_parses_is_placed_and_is_in_the_docs() {
    let examples = examples();
    assert!(examples.len() >= 2, "{examples:?}");
    let jobs_md = std::fs::read_to_string(docs().join("jobs.md")).unwrap();
    let c = homelab();
    for (name, text) in &examples {
        assert!(jobs_md.contains(text.as_str()), "docs/jobs.md does not show {name} as it is");
        let job = crate::jobspec::parse(name, text, &Default::default()).unwrap_or_else(|e| panic!("{e}")).job;
        let plan = crate::scheduler::preview::plan(&c, job.clone(), 1_796_000_000_000);
        assert!(plan.unplaced.is_empty(), "{name}: {:?}", plan.unplaced);
        let wanted: u32 = job.groups.iter().map(|g| g.count).sum();
        assert_eq!(plan.placements.len() as u32, wanted, "{name}: every allocation placed");
    }
}

#[test]
fn the_template_example_renders() {
    let text = std::fs::read_to_string(docs().join("examples/edge.nomad.hcl")).unwrap();
    let job = crate::jobspec::parse("edge.nomad.hcl", &text, &Default::default()).unwrap().job;
    let mut c = homelab();
    let seal = SealKey::from_bytes(&[5; 32]);
    let sealed = seal.seal(b"nomad/jobs/edge", br#"{"status_password":"s3cret"}"#).unwrap();
    c.apply(Update::Var(VarUpdate::Put { path: "nomad/jobs/edge".into(), sealed, cas: None, at_ns: 1 }));
    let out = crate::template::source::preview(&c, &seal, &job);
    assert_eq!(out.len(), 2);
    for (_, task, dest, outcome) in out {
        assert!(outcome.is_ok(), "{task} {dest}: {outcome:?}");
    }
}
