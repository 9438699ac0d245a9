//! Golden test of a job's encoded form (what the hub stores and ships in assignments).
//! Regenerate with `RABBLE_UPDATE_GOLDEN=1` only when the change is intended.

use rabble_shared::job::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn golden(name: &str, encoded: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("RABBLE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, encoded).unwrap();
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(String::from_utf8_lossy(encoded), String::from_utf8_lossy(&want), "encoding of {name} changed");
}

fn job() -> JobSpec {
    let check = Check {
        kind: CheckType::Http,
        name: "web answers".into(),
        path: Some("/health".into()),
        port: None,
        protocol: None,
        method: None,
        header: BTreeMap::new(),
        body: None,
        interval_ms: 10_000,
        timeout_ms: 2_000,
        command: None,
        args: vec![],
        tls_skip_verify: false,
        initial_status: None,
        success_before_passing: 0,
        failures_before_critical: 0,
        check_restart: Some(CheckRestart { limit: 3, grace_ms: 1_000, ignore_warnings: false }),
    };
    let task = Task {
        name: "web".into(),
        driver: "docker".into(),
        config: serde_json::json!({"image": "web:1", "ports": ["http"]}).as_object().unwrap().clone(),
        env: BTreeMap::from([("PORT".to_owned(), "${NOMAD_PORT_http}".to_owned())]),
        user: None,
        resources: Resources::DEFAULT,
        kill_timeout_ms: DEFAULT_KILL_TIMEOUT_MS,
        kill_signal: None,
        lifecycle: None,
        services: vec![Service {
            name: "web".into(),
            port: Some("http".into()),
            tags: vec!["routing.enable=true".into()],
            meta: BTreeMap::new(),
            address_mode: "auto".into(),
            address: None,
            task: Some("web".into()),
            checks: vec![check],
        }],
        constraints: vec![],
        volume_mounts: vec![],
        restart: RestartPolicy::default_for(JobType::Service),
        meta: BTreeMap::new(),
    };
    JobSpec {
        id: "web".into(),
        name: "web".into(),
        kind: JobType::Service,
        priority: DEFAULT_PRIORITY,
        region: "global".into(),
        datacenters: vec!["*".into()],
        meta: BTreeMap::new(),
        constraints: vec![Constraint {
            attribute: "${attr.cpu.arch}".into(),
            operator: Operator::Eq,
            value: "arm64".into(),
        }],
        periodic: None,
        groups: vec![Group {
            name: "web".into(),
            count: 2,
            constraints: vec![Constraint {
                attribute: String::new(),
                operator: Operator::DistinctHosts,
                value: "true".into(),
            }],
            network: Network {
                mode: "host".into(),
                ports: vec![Port { label: "http".into(), static_port: None, to: Some(8080), host_network: None }],
            },
            services: vec![],
            tasks: vec![task],
            reschedule: ReschedulePolicy::default_for(JobType::Service),
            update: Some(UpdateStrategy::default()),
            volumes: BTreeMap::new(),
            meta: BTreeMap::new(),
        }],
        ignored: vec![],
    }
}

#[test]
fn job_spec() {
    let j = job();
    let encoded = serde_json::to_vec_pretty(&j).unwrap();
    golden("job_spec.json", &encoded);
    assert_eq!(serde_json::from_slice::<JobSpec>(&encoded).unwrap(), j);
}

#[test]
fn operators_read_nomads_spellings() {
    for (s, op) in
        [("==", Operator::Eq), ("is", Operator::Eq), ("not", Operator::Ne), ("set_contains_all", Operator::SetContains)]
    {
        assert_eq!(Operator::parse(s), Some(op), "{s}");
    }
    assert_eq!(Operator::parse("~="), None);
    for op in [Operator::Eq, Operator::Regexp, Operator::DistinctProperty, Operator::IsNotSet] {
        assert_eq!(Operator::parse(op.as_str()), Some(op));
    }
}
