//! The operations rules against small catalogs: a periodic job's dead man's switch,
//! deployments rolled back, certificates, the hub cluster.

use super::*;
use crate::catalog::Catalog;
use crate::catalog::jobs::JobRecord;
use rabble_shared::alloc::{Allocation, DesiredStatus};
use rabble_shared::api::{CertStatus, ClusterMember, ClusterStatus};
use rabble_shared::job::Resources;
use rabble_shared::{AllocId, NodeId};
use std::collections::{BTreeMap, HashMap};

const HOUR: u64 = 3_600_000;
/// 2026-11-30 00:00 UTC.
const T0: u64 = 1_795_996_800_000;

fn job(id: &str, src_extra: &str) -> JobRecord {
    let src = format!(
        "job \"{id}\" {{\n type = \"batch\"\n {src_extra}\n group \"g\" {{\n task \"t\" {{\n driver = \"raw_exec\"\n config {{ command = \"x\" }}\n }}\n }}\n}}\n"
    );
    let spec = crate::jobspec::parse("j.hcl", &src, &Default::default()).unwrap().job;
    JobRecord { spec: spec.into(), version: 0, stopped: false, submit_ms: T0, group_hashes: Default::default() }
}

fn launch(c: &mut Catalog, parent: &str, at_ms: u64, status: ClientStatus, reason: &str) {
    let child = format!("{parent}/periodic-{}", at_ms / 1000);
    c.work.jobs.insert(child.clone(), job(&child, ""));
    let id = AllocId::new(format!("{:016x}", at_ms)).unwrap();
    c.work.allocs.insert(
        id.clone(),
        std::sync::Arc::new(Allocation {
            id,
            name: format!("{child}.g[0]"),
            job_id: child,
            job_version: 0,
            spec_hash: None,
            group: "g".into(),
            index: 0,
            node: NodeId::new("pi1").unwrap(),
            desired: DesiredStatus::Run,
            desired_reason: String::new(),
            client_status: status,
            client_reason: reason.into(),
            ports: vec![],
            resources: Resources { cpu_mhz: 100, memory_mb: 64, memory_max_mb: None },
            create_ms: at_ms,
            modify_ms: at_ms,
            previous: None,
            reschedule_times_ms: vec![],
            restart_asked: 0,
            tasks: Default::default(),
        }),
    );
}

fn eval(c: &Catalog, certs: &[CertStatus], hubs: Option<&ClusterStatus>, now: u64) -> Vec<Condition> {
    let (hb, unplaced, reverted) = (HashMap::new(), BTreeMap::new(), BTreeMap::new());
    let i = Inputs { catalog: c, heartbeats: &hb, unplaced: &unplaced, reverted: &reverted, certs, hubs, now_ms: now };
    conditions(&Thresholds::default(), &i)
}

fn summaries(c: &[Condition]) -> Vec<String> {
    c.iter().map(|c| format!("{}: {}", c.labels["alertname"], c.annotations["summary"])).collect()
}

#[test]
fn a_periodic_job_that_did_not_complete_its_due_run_fires_after_the_grace() {
    let mut c = Catalog::default();
    // Nightly at 03:00, registered at midnight.
    c.work.jobs.insert("backup".into(), job("backup", "periodic {\n crons = [\"0 3 * * *\"]\n }"));
    let due = T0 + 3 * HOUR;
    assert!(eval(&c, &[], None, due + HOUR - 1_000).is_empty(), "within the grace");
    let missed = eval(&c, &[], None, due + HOUR);
    assert_eq!(
        summaries(&missed),
        ["PeriodicMissed: periodic job backup has not completed the run due at 2026-11-30 03:00: it has not run"]
    );
    assert_eq!(missed[0].since_ms, Some(due + HOUR));
    // It ran and failed.
    launch(&mut c, "backup", due, ClientStatus::Failed, "exit code 1");
    let failed = eval(&c, &[], None, due + HOUR);
    assert!(summaries(&failed)[0].ends_with("its run launched 2026-11-30 03:00 failed: exit code 1"), "{failed:?}");
    // A run that completes clears it until the next one is due (and overdue).
    launch(&mut c, "backup", due + 60_000, ClientStatus::Complete, "");
    assert!(eval(&c, &[], None, due + 2 * HOUR).is_empty());
    assert!(eval(&c, &[], None, due + 24 * HOUR + HOUR - 1_000).is_empty());
    assert_eq!(eval(&c, &[], None, due + 25 * HOUR).len(), 1, "the next night's run never came");
    // Still running past its grace: said so.
    launch(&mut c, "backup", due + 24 * HOUR, ClientStatus::Running, "");
    assert!(summaries(&eval(&c, &[], None, due + 25 * HOUR))[0].ends_with("its run is still going"));
    // A stopped job, or a disabled schedule, is not watched.
    c.work.jobs.get_mut("backup").unwrap().stopped = true;
    assert!(eval(&c, &[], None, due + 25 * HOUR).is_empty());
}

#[test]
fn certificates_expiring_or_failing_and_a_silent_hub() {
    let c = Catalog::default();
    let now = T0;
    let cert = |not_after: Option<u64>, error: Option<&str>| CertStatus {
        resolver: "le".into(),
        domains: vec!["home.example.org".into()],
        lanes: vec!["ingress".into()],
        not_after,
        renew_at: None,
        error: error.map(Into::into),
        retry_at: None,
    };
    let s = now / 1000;
    let certs = [
        cert(Some(s + 60 * 86_400), None),
        cert(Some(s + 10 * 86_400), None),
        cert(Some(s + 20 * 86_400), Some("DNS challenge failed")),
        cert(None, Some("rate limited")),
    ];
    let got = eval(&c, &certs, None, now);
    assert_eq!(
        summaries(&got),
        [
            "CertificateExpiring: the certificate for home.example.org expires in 10 days",
            "CertificateFailing: the certificate for home.example.org cannot be issued or renewed: DNS challenge failed",
            "CertificateFailing: the certificate for home.example.org cannot be issued or renewed: rate limited",
        ]
    );
    assert_eq!((got[1].labels["severity"].as_str(), got[2].labels["severity"].as_str()), ("warning", "critical"));
    let member = |id: u64, name: &str, contact: Option<u64>| ClusterMember {
        id,
        name: name.into(),
        addr: format!("{name}.lan:8301"),
        role: "follower".into(),
        voter: true,
        matched: None,
        last_contact_ms: contact,
    };
    let hubs = ClusterStatus {
        clustered: true,
        this: 1,
        leader: Some(1),
        term: 2,
        applied: None,
        catalog_index: 1,
        members: vec![member(1, "hub1", None), member(2, "hub2", Some(80)), member(3, "hub3", Some(42_000))],
        problem: None,
    };
    let got = eval(&c, &[], Some(&hubs), now);
    assert_eq!(
        summaries(&got),
        ["HubMemberDown: hub hub3 (hub3.lan:8301) is silent for 42 s; the cluster keeps going while a majority is up"]
    );
}

#[test]
fn a_rolled_back_deployment_fires_until_a_new_version_comes() {
    let mut c = Catalog::default();
    let mut web = job("web", "");
    web.version = 4; // 3 failed; 4 is the revert to 2
    c.work.jobs.insert("web".into(), web);
    let reverted = BTreeMap::from([("web".to_owned(), (3, T0))]);
    let (hb, unplaced) = (HashMap::new(), BTreeMap::new());
    let at = |c: &Catalog| {
        let i = Inputs {
            catalog: c,
            heartbeats: &hb,
            unplaced: &unplaced,
            reverted: &reverted,
            certs: &[],
            hubs: None,
            now_ms: T0,
        };
        summaries(&conditions(&Thresholds::default(), &i))
    };
    assert_eq!(
        at(&c),
        [
            "DeploymentReverted: job web: version 3 failed to deploy and was rolled back (auto_revert) at 2026-11-30 00:00"
        ]
    );
    c.work.jobs.get_mut("web").unwrap().version = 5;
    assert!(at(&c).is_empty(), "the operator submitted a new version");
}
