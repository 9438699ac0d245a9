//! Tests of service-file parsing: the seed's Consul files, every format, every error path.

use super::*;
use std::fs;

fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/seed").join(name)
}

#[test]
fn seed_proxmox_hcl_parses_unchanged() {
    let d = parse_file(&seed("proxmox.hcl")).unwrap();
    assert_eq!(d.services.len(), 1);
    let s = &d.services[0];
    assert_eq!((s.reg.name.as_str(), s.reg.id.as_str(), s.reg.port), ("proxmox", "proxmox", Some(8006)));
    assert_eq!(s.reg.tags.len(), 3);
    assert_eq!(s.checks.len(), 1);
    let c = &s.checks[0];
    assert_eq!(c.id, "service:proxmox");
    assert_eq!(c.key.as_str(), "service-proxmox");
    assert_eq!(c.name, "http ui");
    assert_eq!(c.interval, Duration::from_secs(30));
    assert_eq!(c.timeout, Duration::from_secs(5));
    assert_eq!(c.initial, Status::Critical);
    assert!(matches!(&c.probe, Probe::Http { url, method, tls_skip_verify: true, .. }
        if url == "https://localhost:8006" && method == "GET"));
}

#[test]
fn seed_postgres_hcl_parses_unchanged() {
    let d = parse_file(&seed("postgres.hcl")).unwrap();
    let c = &d.services[0].checks[0];
    assert!(matches!(&c.probe, Probe::Script { args } if args[0] == "/usr/bin/pg_isready" && args.len() == 5));
    assert_eq!(c.timeout, Duration::from_secs(1));
}

#[test]
fn consul_json_with_camel_case_and_several_checks() {
    let text = r#"{"Service": {"Name": "web", "ID": "web-1", "Port": 80, "Tags": ["a"],
        "Checks": [{"HTTP": "http://127.0.0.1/health", "Interval": "5s", "Header": {"X-A": ["1", "2"]}},
                   {"TCP": "127.0.0.1:80", "Interval": "10s", "Status": "passing"},
                   {"TTL": "30s", "CheckID": "web-ttl"}]}}"#;
    let spec = parse::parse_str(text, "json").unwrap();
    let d = parse::to_definitions_for_test(spec);
    let s = &d.services[0];
    assert_eq!(s.reg.id, "web-1");
    let ids: Vec<_> = s.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["service:web-1:1", "service:web-1:2", "web-ttl"]);
    assert!(matches!(&s.checks[0].probe, Probe::Http { headers, .. } if headers.len() == 2));
    assert_eq!(s.checks[1].initial, Status::Passing);
    assert!(matches!(s.checks[2].probe, Probe::Ttl { ttl } if ttl == Duration::from_secs(30)));
}

#[test]
fn rabble_toml_with_node_checks() {
    let text = r#"
[[service]]
name = "demo"
port = 8080
meta = { owner = "me" }
[[service.checks]]
http = "http://127.0.0.1:8080/"
interval = "2s"

[[check]]
id = "disk-ok"
args = ["/bin/true"]
interval = "1m"
"#;
    let d = parse::to_definitions_for_test(parse::parse_str(text, "toml").unwrap());
    assert_eq!(d.services[0].reg.meta["owner"], "me");
    assert_eq!(d.services[0].checks[0].id, "service:demo");
    assert_eq!(d.node_checks[0].id, "disk-ok");
    assert_eq!(d.node_checks[0].service_id, None);
}

#[test]
fn errors_name_the_line_or_field() {
    let cases = [
        ("hcl", "service {\n  name = \"b\"\n  port = \n}\n", "3"),
        ("json", "{\"service\": {\"name\": \"x\",\n \"port\": \"eighty\"}}", "line 2"),
        ("toml", "[service]\nname = \"x\"\nport = \"eighty\"\n", "line 3"),
        (
            "toml",
            "[service]\nname = \"x\"\n[[service.checks]]\ninterval = \"3x\"\nhttp = \"http://a\"\n",
            "unknown unit",
        ),
        (
            "hcl",
            "service {\n name = \"x\"\n check {\n  tcp = \"a:1\"\n  interval = \"3x\"\n }\n}\n",
            "service.check.interval",
        ),
        (
            "json",
            "{\"service\": {\"name\": \"x\", \"check\": {\"interval\": \"1s\"}}}",
            "needs one of http, tcp, args or ttl",
        ),
        ("json", "{\"service\": {\"name\": \"x\", \"check\": {\"http\": \"http://a\"}}}", "interval is required"),
        ("json", "{\"service\": {\"name\": \"x\", \"check\": {\"ttl\": \"1s\", \"status\": \"great\"}}}", "status"),
        (
            "json",
            "{\"service\": {\"name\": \"x\", \"check\": {\"tcp\": \"nohost\", \"interval\": \"1s\"}}}",
            "host:port",
        ),
    ];
    for (ext, text, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("broken.{ext}"));
        fs::write(&path, text).unwrap();
        let e = parse_file(&path).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains(want), "{ext} {text:?}: wanted {want:?} in {msg}");
    }
}

#[test]
fn a_broken_file_does_not_stop_the_others_and_keeps_its_last_good_version() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.hcl"), "service { name = \"a\" }").unwrap();
    fs::write(dir.path().join("b.json"), "{\"service\": {\"name\": \"b\"}}").unwrap();
    fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let mut loader = Loader::default();
    let (d, errs) = loader.load(dir.path());
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(d.services.iter().map(|s| s.reg.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);

    fs::write(dir.path().join("b.json"), "{\"service\": {\"name\": ").unwrap();
    fs::write(dir.path().join("c.toml"), "[service\n").unwrap();
    let (d, errs) = loader.load(dir.path());
    assert_eq!(d.services.iter().map(|s| s.reg.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].to_string().contains("keeping its last good definitions"), "{}", errs[0]);
    assert!(errs[1].path.ends_with("c.toml"));

    fs::remove_file(dir.path().join("b.json")).unwrap();
    let (d, _) = loader.load(dir.path());
    assert_eq!(d.services.len(), 1, "a deleted file's services go away");
}

#[test]
fn duplicate_ids_across_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("1.hcl"), "service { name = \"web\" }").unwrap();
    fs::write(dir.path().join("2.hcl"), "service { name = \"Web\" }").unwrap();
    let (d, errs) = Loader::default().load(dir.path());
    assert_eq!(d.services.len(), 1);
    assert!(errs[0].to_string().contains("1.hcl"), "{}", errs[0]);
}

/// Service files as users write them, mutated: parsed or refused with a reason, never a
/// panic (the seed's Consul HCL, Consul JSON, Rabble TOML).
#[test]
fn service_files_take_any_mutation_without_a_panic() {
    let hcl = [fs::read_to_string(seed("proxmox.hcl")).unwrap(), fs::read_to_string(seed("postgres.hcl")).unwrap()];
    let json = [r#"{"Service": {"Name": "web", "ID": "web-1", "Port": 80, "Tags": ["a"],
        "Checks": [{"HTTP": "http://127.0.0.1/health", "Interval": "5s", "Header": {"X-A": ["1"]}},
                   {"TCP": "127.0.0.1:80", "Interval": "10s"}, {"TTL": "30s", "CheckID": "t"}]}}"#];
    let toml = [
        "[[service]]\nname = \"demo\"\nport = 8080\n[[service.checks]]\nhttp = \"http://127.0.0.1:8080/\"\ninterval = \"2s\"\n[[check]]\nid = \"d\"\nargs = [\"/bin/true\"]\ninterval = \"1m\"\n",
    ];
    let alphabet = b"{}[]\"=:,.-_/ \n0123456789smhabcdeiklnoprstuvxyz";
    let hcl: Vec<&str> = hcl.iter().map(String::as_str).collect();
    for (ext, seeds) in [("hcl", &hcl[..]), ("json", &json[..]), ("toml", &toml[..])] {
        rabble_shared::support::mutate::mutations(seeds, alphabet, 3_000, 5, |b| {
            let _ = parse::parse_text(&String::from_utf8_lossy(b), ext, "fuzz");
        });
    }
}
