//! Golden tests of the HTTP API's answers (`shared::api`): the hub encodes these and
//! the `rabble` CLI decodes them, so a change here is a change of the API's contract.
//! Regenerate with `RABBLE_UPDATE_GOLDEN=1` when a change is intended.

use rabble_shared::alloc::{AllocPort, Allocation, ClientStatus, DesiredStatus};
use rabble_shared::api::*;
use rabble_shared::job::Resources;
use rabble_shared::{AllocId, NodeId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use support::golden;

mod support;

/// Pins the encoding, and checks it decodes to the same value (what the CLI reads).
fn pin<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(name: &str, v: &T) {
    let text = serde_json::to_string_pretty(v).unwrap() + "\n";
    golden(name, text.as_bytes());
    let back: T = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, v, "{name} does not decode to what was encoded");
}

fn node(n: &str) -> NodeId {
    NodeId::new(n).unwrap()
}

fn allocation() -> Allocation {
    Allocation {
        id: AllocId::new("5f0c3a1e-0000-4000-8000-00000000abcd").unwrap(),
        name: "web.web[0]".into(),
        job_id: "web".into(),
        job_version: 3,
        spec_hash: Some(42),
        group: "web".into(),
        index: 0,
        node: node("pi3"),
        desired: DesiredStatus::Run,
        desired_reason: String::new(),
        client_status: ClientStatus::Running,
        client_reason: "started".into(),
        ports: vec![AllocPort { label: "http".into(), value: 24_000, to: Some(80) }],
        resources: Resources { cpu_mhz: 100, memory_mb: 64, memory_max_mb: None },
        create_ms: 1_700_000_000_000,
        modify_ms: 1_700_000_001_000,
        previous: None,
        reschedule_times_ms: vec![],
        restart_asked: 0,
        tasks: [(
            "server".to_owned(),
            rabble_shared::alloc::TaskStatus {
                state: "running".into(),
                failed: false,
                restarts: 1,
                exit_code: None,
                started_ms: Some(1_700_000_000_500),
                finished_ms: None,
                events: vec![
                    rabble_shared::alloc::TaskEvent { at_ms: 1_700_000_000_500, text: "started".into() },
                    rabble_shared::alloc::TaskEvent {
                        at_ms: 1_700_000_060_000,
                        text: "exited with code 1; restarting in 15s".into(),
                    },
                ],
            },
        )]
        .into(),
    }
}

#[test]
fn every_error_has_one_shape() {
    pin("api_error.json", &ApiError { error: "no job \"web\"".into() });
}

#[test]
fn allocation_view_is_the_allocation_with_its_template_wait() {
    let v = AllocationView { alloc: allocation(), template_wait: Some("key \"app/config\"".into()), services: vec![] };
    pin("api_allocation.json", &v);
    // Without a wait the view is exactly the allocation's own encoding.
    let plain = AllocationView { alloc: allocation(), template_wait: None, services: vec![] };
    assert_eq!(serde_json::to_value(&plain).unwrap(), serde_json::to_value(allocation()).unwrap());
}

#[test]
fn writes_answer_what_they_did() {
    pin("api_job_stopped.json", &JobStopped { id: "web".into(), index: 17, changed: true });
    pin(
        "api_node_drained.json",
        &NodeDrained { node: node("pi3"), drain_deadline_ms: Some(1_700_003_600_000), index: 18 },
    );
    pin("api_node_eligibility.json", &NodeEligibility { node: node("pi3"), eligible: false, index: 19 });
    let token = JoinToken { node: node("pi5"), join_token: "rbj_x".into(), ttl_secs: 86_400, hub_key: "AAAA".into() };
    pin("api_join_token.json", &token);
    pin("api_join_request.json", &JoinRequest { ttl: Some("1h".into()) });
}

#[test]
fn certs_and_variables() {
    let certs = CertsView {
        resolvers: vec!["le".into()],
        certs: vec![CertStatus {
            resolver: "le".into(),
            domains: vec!["home.example.org".into()],
            lanes: vec!["edge".into()],
            not_after: Some(1_707_776_000),
            renew_at: Some(1_705_184_000),
            error: None,
            retry_at: None,
        }],
        problems: vec!["pi5: withheld: node pi5 has no key yet".into()],
    };
    pin("api_certs.json", &certs);
    let var = VarMeta {
        namespace: "default".into(),
        path: "nomad/jobs/web".into(),
        create_index: 5,
        modify_index: 9,
        create_time: 1_700_000_000_000_000_000,
        modify_time: 1_700_000_100_000_000_000,
        items: Some(BTreeMap::from([("password".to_owned(), "s3cret".to_owned())])),
    };
    pin("api_var.json", &var);
}

#[test]
fn the_hub_cluster() {
    let member = |id: u64, name: &str, role: &str| ClusterMember {
        id,
        name: name.into(),
        addr: format!("{name}.lan:8301"),
        role: role.into(),
        voter: role != "learner",
        matched: Some(120),
        last_contact_ms: (role != "leader").then_some(80),
    };
    let status = ClusterStatus {
        clustered: true,
        this: 11,
        leader: Some(11),
        term: 3,
        applied: Some(120),
        catalog_index: 97,
        members: vec![member(11, "hub1", "leader"), member(22, "hub2", "follower"), member(33, "pi3", "witness")],
        problem: None,
    };
    pin("api_cluster_status.json", &status);
}

#[test]
fn alerts_and_silences_as_alertmanager_writes_them() {
    use rabble_shared::alerts::*;
    let m = ApiMatcher { name: "node".into(), value: "pi3".into(), is_regex: false, is_equal: true };
    let silence = GettableSilence {
        id: "8a1f0c2e-aaaa-4bbb-8ccc-000000000001".into(),
        status: SilenceStatus { state: "active".into() },
        updated_at: "2026-11-30T00:53:20.000Z".into(),
        matchers: vec![m.clone()],
        starts_at: "2026-11-30T00:53:20.000Z".into(),
        ends_at: "2026-11-30T02:53:20.000Z".into(),
        created_by: "admin".into(),
        comment: "replacing its SD card".into(),
    };
    pin("api_silence.json", &silence);
    let alert = GettableAlert {
        labels: [("alertname", "NodeDown"), ("node", "pi3"), ("severity", "critical")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
        annotations: [("summary".to_owned(), "pi3 is down".to_owned())].into(),
        starts_at: "2026-11-30T00:53:20.000Z".into(),
        ends_at: "0001-01-01T00:00:00.000Z".into(),
        updated_at: "2026-11-30T00:53:21.000Z".into(),
        fingerprint: "3f2a9c1d0b4e5f60".into(),
        receivers: vec![ReceiverName { name: "phone".into() }],
        status: AlertStatus { state: "suppressed".into(), silenced_by: vec![silence.id.clone()], inhibited_by: vec![] },
        generator_url: "http://hub.lan:8500/ui/".into(),
    };
    pin("api_alert.json", &alert);
    // What amtool posts: no isEqual from older clients means `=`.
    let posted: PostableSilence = serde_json::from_str(
        r#"{"matchers":[{"name":"node","value":"pi3","isRegex":false}],"startsAt":"2026-11-30T00:53:20Z",
            "endsAt":"2026-11-30T02:53:20Z","createdBy":"root","comment":"x"}"#,
    )
    .unwrap();
    assert_eq!(posted.matchers, vec![m]);
    assert_eq!(posted.id, None);
}
