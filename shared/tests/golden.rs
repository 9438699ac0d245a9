//! Golden tests: the exact encoded form of every wire message, pinned in tests/golden/.
//!
//! A failing test here means the wire changed. If that was intended, bump or extend
//! the version rules in `msg.rs`, then regenerate with `RABBLE_UPDATE_GOLDEN=1`.

use rabble_shared::control;
use rabble_shared::job::*;
use rabble_shared::msg::*;
use rabble_shared::{Status, TopicId};
use std::collections::BTreeMap;
use support::golden;

mod support;

fn facts() -> NodeFacts {
    NodeFacts {
        name: "Pi3.lan".into(),
        hostname: "pi3".into(),
        arch: "aarch64".into(),
        os: OsFacts { name: "Debian GNU/Linux".into(), version: "12".into(), kernel: "6.6.31".into() },
        cpus: 4,
        memory_bytes: 1_000_000_000,
        disks: vec![DiskFacts { mount: "/".into(), fs: "ext4".into(), total_bytes: 32_000_000_000 }],
        addresses: vec!["192.168.178.172".into(), "fe80::1".into()],
        advertise: "192.168.178.172".into(),
        agent_version: "0.1.0".into(),
        node_class: "pi".into(),
        datacenter: "home".into(),
        meta: BTreeMap::from([("rack".to_owned(), "shelf".to_owned())]),
        drivers: BTreeMap::from([(
            "docker".to_owned(),
            DriverFacts { healthy: true, version: "28.2.2".into(), detail: "unix:///var/run/docker.sock".into() },
        )]),
        host_volumes: Default::default(),
        cpu_total_mhz: None,
        tls_lanes: Vec::new(),
        interfaces: Default::default(),
        alloc_dir: String::new(),
        storage: vec!["nfs".into()],
    }
}

fn heartbeat() -> Heartbeat {
    Heartbeat {
        seq: 7,
        uptime_s: 3600,
        cpu_percent: 12.5,
        load: [0.5, 0.25, 0.125],
        memory_used_bytes: 400_000_000,
        memory_total_bytes: 1_000_000_000,
        disks: vec![DiskUse { mount: "/".into(), used_bytes: 8_000_000_000, total_bytes: 32_000_000_000 }],
        temperature_c: Some(48.5),
        throttled: Some(Throttled::from_raw(0x50005)),
        assignments_refused: 0,
        metrics: None,
    }
}

fn service() -> ServiceRegistration {
    ServiceRegistration {
        id: "proxmox".into(),
        name: "proxmox".into(),
        tags: vec!["traefik.enable=true".into()],
        address: None,
        port: Some(8006),
        meta: BTreeMap::new(),
        source: "/etc/rabble/services.d/proxmox.hcl".into(),
    }
}

fn check() -> CheckState {
    CheckState {
        id: "service:proxmox".into(),
        name: "http ui".into(),
        service_id: Some("proxmox".into()),
        kind: CheckKind::Http,
        status: Status::Critical,
        output: "connection refused".into(),
        since_ms: 1_700_000_000_000,
    }
}

fn manifest() -> Manifest {
    Manifest {
        services: vec![TopicId::new("proxmox").unwrap()],
        checks: vec![TopicId::new("service-proxmox").unwrap()],
    }
}

#[test]
fn node_facts_v1() {
    golden("node_facts.v1.json", &encode(&facts()));
    assert_eq!(decode::<NodeFacts>(&encode(&facts())).unwrap(), facts());
}

#[test]
fn heartbeat_with_metrics_v1() {
    use rabble_shared::msg::{NetUse, NodeMetrics, ThermalZone};
    let hb = Heartbeat {
        metrics: Some(NodeMetrics {
            cpu_seconds: [1200.5, 3.25, 300.0, 86000.75, 12.5, 0.0, 4.0, 0.0],
            memory_available_bytes: 600_000_000,
            swap_total_bytes: 104_853_504,
            swap_free_bytes: 104_853_504,
            net: vec![NetUse { device: "eth0".into(), rx_bytes: 123_456_789, tx_bytes: 98_765_432 }],
            thermal: vec![ThermalZone { zone: 0, kind: "cpu-thermal".into(), celsius: 48.5 }],
        }),
        ..heartbeat()
    };
    golden("heartbeat_metrics.v1.json", &encode(&hb));
    assert_eq!(decode::<Heartbeat>(&encode(&hb)).unwrap(), hb);
    let mut many = hb.clone();
    if let Some(m) = many.metrics.as_mut() {
        m.net = vec![m.net[0].clone(); rabble_shared::msg::MAX_METRIC_ITEMS + 1];
    }
    assert!(decode::<Heartbeat>(&encode(&many)).is_err(), "unbounded interfaces refused");
    // What a heartbeat with metrics costs on the wire, against one without.
    println!("heartbeat {} B, with metrics {} B", encode(&heartbeat()).len(), encode(&hb).len());
}

#[test]
fn heartbeat_v1() {
    golden("heartbeat.v1.json", &encode(&heartbeat()));
    assert_eq!(decode::<Heartbeat>(&encode(&heartbeat())).unwrap(), heartbeat());
    assert_eq!(
        heartbeat().throttled.unwrap().flags,
        ["under-voltage", "under-voltage-occurred", "throttled", "throttled-occurred"]
    );
}

#[test]
fn service_v1() {
    golden("service.v1.json", &encode(&service()));
    assert_eq!(decode::<ServiceRegistration>(&encode(&service())).unwrap(), service());
}

#[test]
fn check_v1() {
    golden("check.v1.json", &encode(&check()));
    assert_eq!(decode::<CheckState>(&encode(&check())).unwrap(), check());
}

#[test]
fn manifest_v1() {
    golden("manifest.v1.json", &encode(&manifest()));
    assert_eq!(decode::<Manifest>(&encode(&manifest())).unwrap(), manifest());
}

#[test]
fn availability_is_plain_text() {
    assert_eq!(Availability::Online.as_str(), "online");
    assert_eq!(Availability::decode(b"offline").unwrap(), Availability::Offline);
    let e = Availability::decode(b"ONLINE").unwrap_err();
    assert!(e.to_string().contains("\"ONLINE\""), "{e}");
}

#[test]
fn control_request() {
    let r = control::Request::UpdateTtl { check: "web-ttl".into(), status: Status::Warning, note: "slow".into() };
    golden("control_update_ttl.json", &serde_json::to_vec(&r).unwrap());
    golden("control_reload.json", &serde_json::to_vec(&control::Request::Reload).unwrap());
}

#[test]
fn decode_rejects_unknown_version_clearly() {
    let mut v: serde_json::Value = serde_json::from_slice(&encode(&service())).unwrap();
    v["v"] = 2.into();
    let e = decode::<ServiceRegistration>(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(matches!(e, DecodeError::UnknownVersion { found: 2 }), "{e}");
    assert_eq!(e.to_string(), "payload version 2 is not supported (this build reads v1)");
}

#[test]
fn decode_rejects_garbage_with_a_reason() {
    let cases: [(&[u8], &str); 6] = [
        (b"", "empty"),
        (b"{not json", "not valid JSON for service registration"),
        (b"{\"name\":\"x\"}", "no numeric \"v\""),
        (b"{\"v\":\"1\",\"name\":\"x\"}", "no numeric \"v\""),
        (b"{\"v\":1,\"name\":\"x\"}", "missing field `id`"),
        (b"{\"v\":1,\"id\":\"\",\"name\":\"\"}", "must not be empty"),
    ];
    for (bytes, want) in cases {
        let e = decode::<ServiceRegistration>(bytes).unwrap_err().to_string();
        assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(bytes));
    }
    let huge = vec![b' '; MAX_PAYLOAD + 1];
    assert!(matches!(decode::<Heartbeat>(&huge), Err(DecodeError::TooLarge { .. })));
}

#[test]
fn decode_ignores_fields_added_within_a_version() {
    let mut v: serde_json::Value = serde_json::from_slice(&encode(&check())).unwrap();
    v["added_later"] = "ok".into();
    assert_eq!(decode::<CheckState>(&serde_json::to_vec(&v).unwrap()).unwrap(), check());
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
        templates: vec![rabble_shared::job::TemplateSpec {
            data: "{{ range service \"web\" }}server {{ .Address }}:{{ .Port }};\n{{ end }}".into(),
            destination: "local/upstreams.conf".into(),
            env: false,
            change_mode: rabble_shared::job::ChangeMode::Signal,
            change_signal: Some("SIGHUP".into()),
            perms: "0644".into(),
            uid: None,
            gid: None,
            left_delimiter: "{{".into(),
            right_delimiter: "}}".into(),
            splay_ms: 5000,
            wait_ms: Some((2000, 10_000)),
            error_on_missing_key: false,
            line: 14,
        }],
        dispatch_payload: None,
        secret_paths: vec![],
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
        parameterized: None,
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

#[test]
fn logs_request_and_chunk_v1() {
    use rabble_shared::logs::*;
    let req = LogsRequest {
        node: rabble_shared::NodeId::new("pi3").unwrap(),
        session: "0c1f".into(),
        alloc: rabble_shared::AllocId::new("7a3c9e01").unwrap(),
        task: "web".into(),
        stream: LogStream::Stderr,
        follow: true,
        lines: Some(10),
        bytes: None,
        issued_ms: 1_700_000_000_000,
        cancel: false,
    };
    let signed = SignedRequest { body: serde_json::to_string(&req).unwrap(), sig: "c2ln".into() };
    golden("logs_request.v1.json", &encode(&signed));
    let chunk =
        LogChunk { session: "0c1f".into(), seq: 3, data: "ready\n".into(), skipped: 120, eof: false, error: None };
    golden("log_chunk.v1.json", &encode(&chunk));
    assert_eq!(decode::<LogChunk>(&encode(&chunk)).unwrap(), chunk);
    let bad = br#"{"v":1,"session":"../x","seq":0}"#;
    assert!(decode::<LogChunk>(bad).unwrap_err().to_string().contains("hex"));
}

#[test]
fn consul_health_entry_and_register_as_consul_clients_use_them() {
    use rabble_shared::consul::*;
    let node = Node {
        id: "3f2a4c1e-0b9d-4e7f-8a6b-5c4d3e2f1a0b".into(),
        node: "pi3".into(),
        address: "192.168.1.23".into(),
        datacenter: "home".into(),
        tagged_addresses: BTreeMap::from([("lan".to_owned(), "192.168.1.23".to_owned())]),
        meta: BTreeMap::new(),
        create_index: 1,
        modify_index: 42,
    };
    let service = Service {
        id: "filebot".into(),
        service: "filebot".into(),
        tags: vec!["routing.enable=true".into()],
        address: String::new(),
        port: 5452,
        meta: BTreeMap::new(),
        enable_tag_override: false,
        create_index: 1,
        modify_index: 42,
    };
    let check = Check {
        node: "pi3".into(),
        check_id: "serfHealth".into(),
        name: "Serf Health Status".into(),
        status: "passing".into(),
        notes: String::new(),
        output: "Agent alive and reachable".into(),
        service_id: String::new(),
        service_name: String::new(),
        service_tags: vec![],
        kind: String::new(),
        create_index: 1,
        modify_index: 42,
    };
    let entry = HealthEntry { node, service, checks: vec![check] };
    golden("consul_health_entry.json", &serde_json::to_vec(&entry).unwrap());
    let r: Register = serde_json::from_str(
        r#"{"Node":"printer","Address":"10.0.0.5","Service":{"Service":"ipp","Port":631},"SkipNodeUpdate":true}"#,
    )
    .unwrap();
    assert_eq!((r.node.as_str(), r.service.unwrap().port), ("printer", 631));
}

#[test]
fn proxy_stats_v1() {
    use rabble_shared::routes::{ProxyStats, RouterStats};
    let r = RouterStats {
        responses: BTreeMap::from([("2xx".to_owned(), 41), ("5xx".to_owned(), 1)]),
        seconds_sum: 0.125,
        count: 42,
    };
    let s = ProxyStats { lanes: BTreeMap::from([("routing".to_owned(), BTreeMap::from([("filebot".to_owned(), r)]))]) };
    golden("proxy_stats.v1.json", &encode(&s));
    assert_eq!(decode::<ProxyStats>(&encode(&s)).unwrap(), s);
}

#[test]
fn certs_v1() {
    use rabble_shared::certs::{CertBundle, CertMessage, IssuedCert};
    let bundle = CertBundle {
        lane: "ingress".into(),
        certs: vec![IssuedCert {
            resolver: "cloudflare".into(),
            domains: vec!["registry.example.com".into()],
            chain_pem: "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n".into(),
            key_pem: "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n".into(),
            not_after: 1_803_254_400,
        }],
    };
    let m = CertMessage::plain(bundle);
    golden("certs_plain.v1.json", &encode(&m));
    assert_eq!(decode::<CertMessage>(&encode(&m)).unwrap(), m);
    let sealed = CertMessage::sealed("bm9uY2UuLi5jaXBoZXJ0ZXh0".into());
    golden("certs_sealed.v1.json", &encode(&sealed));
}

#[test]
fn node_summary_v1() {
    use rabble_shared::summary::{NodeSummary, VERSION};
    let s = NodeSummary {
        v: VERSION,
        status: "up".into(),
        cpu_percent: Some(12.5),
        memory_percent: Some(40.0),
        disk_percent: Some(25.0),
        temperature_c: Some(48.5),
        uptime_s: Some(3600),
        throttled: Some(false),
        allocations: 3,
        services: [("web".to_owned(), rabble_shared::Status::Passing)].into(),
    };
    let bytes = serde_json::to_vec(&s).unwrap();
    golden("node_summary.v1.json", &bytes);
    assert_eq!(serde_json::from_slice::<NodeSummary>(&bytes).unwrap(), s);
}
