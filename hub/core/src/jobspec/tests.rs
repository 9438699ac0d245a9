//! Job files as homelab repos write them, and the mistakes people make in them.

use super::*;
use rabble_shared::job::*;

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/jobs").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ok(name: &str) -> JobSpec {
    match parse(name, &fixture(name), &Options::default()) {
        Ok(p) => p.job,
        Err(e) => panic!("{name}:\n{e}"),
    }
}

fn errors(src: &str) -> String {
    match parse("job.hcl", src, &Options::default()) {
        Ok(p) => panic!("expected errors, got {:#?}", p.job),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_docker_service_job_with_variables_and_runtime_references() {
    let j = ok("plex.nomad.hcl");
    assert_eq!((j.id.as_str(), j.name.as_str(), j.kind, j.priority), ("plex", "plex", JobType::Service, 50));
    assert_eq!((j.region.as_str(), j.datacenters.as_slice()), ("global", &["home".to_owned()][..]));
    assert_eq!(j.meta["owner"], "media");
    assert_eq!(
        j.constraints,
        [Constraint { attribute: "${attr.cpu.arch}".into(), operator: Operator::Eq, value: "amd64".into() }]
    );
    let g = &j.groups[0];
    assert_eq!(g.count, 1, "a quoted count coerces");
    assert_eq!(
        g.network.ports,
        [Port { label: "http".into(), static_port: Some(32400), to: None, host_network: None }]
    );
    assert_eq!(
        g.volumes["media"],
        Volume { source: "media".into(), read_only: true, kind: "host".into(), access_mode: String::new() }
    );
    let u = g.update.as_ref().unwrap();
    assert_eq!(
        (u.max_parallel, u.min_healthy_time_ms, u.auto_revert, u.healthy_deadline_ms),
        (1, 30_000, true, 300_000)
    );
    assert_eq!(g.reschedule, ReschedulePolicy::default_for(JobType::Service));
    let t = &g.tasks[0];
    assert_eq!(t.driver, "docker");
    assert_eq!(t.config["image"], "plexinc/pms-docker:1.40.0");
    assert_eq!(t.config["privileged"], "false", "driver config is kept as written; the driver coerces");
    assert_eq!(t.env["ADVERTISE"], "http://${NOMAD_ADDR_http}/");
    assert_eq!(t.resources, Resources { cpu_mhz: 2000, memory_mb: 2048, memory_max_mb: None });
    assert_eq!(
        t.restart,
        RestartPolicy { attempts: 3, interval_ms: 1_800_000, delay_ms: 20_000, mode: RestartMode::Fail }
    );
    assert_eq!(t.kill_timeout_ms, 5_000);
    assert_eq!(t.volume_mounts[0].destination, "/data");
    let s = &t.services[0];
    assert_eq!((s.name.as_str(), s.port.as_deref()), ("plex", Some("http")));
    assert_eq!(s.tags[1], "routing.http.routers.plex.rule=Host(`plex.service.rabble`)");
    let c = &s.checks[0];
    assert_eq!(
        (c.kind, c.path.as_deref(), c.interval_ms, c.timeout_ms),
        (CheckType::Http, Some("/identity"), 30_000, 5_000)
    );
    assert_eq!(c.check_restart, Some(CheckRestart { limit: 3, grace_ms: 90_000, ignore_warnings: false }));
}

#[test]
fn a_system_job_and_nomad_defaults() {
    let j = ok("traefik.nomad.hcl");
    assert_eq!((j.kind, j.priority), (JobType::System, 80));
    assert_eq!(j.datacenters, ["*"]);
    let g = &j.groups[0];
    assert_eq!(
        g.network.ports[1],
        Port { label: "admin".into(), static_port: Some(8081), to: Some(8080), host_network: None }
    );
    assert_eq!(g.services[0].name, "traefik");
    assert_eq!(g.services[0].checks[0].kind, CheckType::Tcp);
    assert_eq!(g.reschedule, ReschedulePolicy::default_for(JobType::System));
    assert_eq!(g.tasks[0].restart, RestartPolicy::default_for(JobType::System));
    assert_eq!(g.update, Some(UpdateStrategy::default()));
}

#[test]
fn periodic_sysbatch_raw_exec() {
    let j = ok("cleanup.nomad.hcl");
    assert_eq!(j.kind, JobType::Sysbatch);
    let p = j.periodic.as_ref().unwrap();
    assert_eq!((p.crons.as_slice(), p.prohibit_overlap, p.enabled), (&["0 3 * * * *".to_owned()][..], true, true));
    let t = &j.groups[0].tasks[0];
    assert_eq!((t.driver.as_str(), t.kill_timeout_ms), ("raw_exec", 30_000));
    assert_eq!(t.restart, RestartPolicy::default_for(JobType::Sysbatch));
    assert_eq!(j.groups[0].update, None, "no rolling updates for batch work");
    assert_eq!(t.resources, Resources::DEFAULT);
}

#[test]
fn batch_with_heredoc_lifecycle_and_distinct_hosts() {
    let j = ok("backup.nomad.hcl");
    let g = &j.groups[0];
    assert_eq!(g.count, 2);
    assert_eq!(g.constraints[0].operator, Operator::DistinctHosts);
    assert_eq!(g.tasks[0].lifecycle, Some(Lifecycle { hook: Hook::Prestart, sidecar: false }));
    let args = g.tasks[1].config["args"].as_array().unwrap();
    assert_eq!(
        args[1],
        "pg_dumpall -h db.service.rabble > /backup/${NOMAD_ALLOC_ID}.sql\necho done on ${node.unique.name}\n"
    );
    assert_eq!(g.tasks[1].user.as_deref(), Some("backup"));
    assert_eq!(g.tasks[1].resources.memory_max_mb, Some(512));
    assert_eq!(g.reschedule, ReschedulePolicy::default_for(JobType::Batch));
}

#[test]
fn template_blocks_are_read_and_checked() {
    let src = fixture("grafana-template.nomad.hcl");
    let p = parse("grafana.hcl", &src, &Options::default()).unwrap();
    let t = &p.job.groups[0].tasks[0].templates[0];
    assert_eq!((t.destination.as_str(), t.env, t.line), ("secrets/env", true, 14));
    assert_eq!(t.data, "GF_SECURITY_ADMIN_PASSWORD={{ key \"grafana/admin\" }}");
    assert_eq!((t.change_mode, t.perms.as_str(), t.splay_ms), (rabble_shared::job::ChangeMode::Restart, "0644", 5000));
    assert_eq!(p.job.groups[0].tasks[0].services[0].name, "grafana-grafana-grafana", "Nomad's default service name");
    let job = |tpl: &str| {
        format!(
            "job \"j\" {{\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"raw_exec\"\n      config {{ command = \"x\" }}\n      template {{\n{tpl}\n      }}\n    }}\n  }}\n}}\n"
        )
    };
    // A heredoc's template error names the job file's own line.
    let bad = job("        destination = \"local/a\"\n        data = <<EOF\nok\n{{ range }}\nEOF");
    let e = parse("j.hcl", &bad, &Options::default()).unwrap_err().to_string();
    assert!(e.contains("template \"local/a\" line 10") && e.contains("empty action"), "{e}");
    for (tpl, why) in [
        ("data = \"x\"\n destination = \"/etc/passwd\"", "inside the task's directory"),
        ("data = \"x\"\n destination = \"local/../../x\"", "inside the task's directory"),
        ("source = \"a.tpl\"\n destination = \"local/a\"", "`source` is a file on the node"),
        ("data = \"x\"\n destination = \"local/a\"\n change_mode = \"signal\"", "needs change_signal"),
        ("data = \"x\"\n destination = \"local/a\"\n change_mode = \"script\"", "not supported"),
        ("data = \"x\"\n destination = \"local/a\"\n perms = \"rw\"", "octal"),
        (
            "data = \"[[ x \"\n destination = \"local/a\"\n left_delimiter = \"[[\"\n right_delimiter = \"]]\"",
            "unclosed action",
        ),
    ] {
        let e = parse("j.hcl", &job(tpl), &Options::default()).unwrap_err().to_string();
        assert!(e.contains(why), "{tpl}: {e}");
    }
    let ok = job(
        "data = \"{{ with nomadVar \\\"nomad/jobs/j\\\" }}{{ .user }}{{ end }}\"\n destination = \"${NOMAD_SECRETS_DIR}/u\"\n change_mode = \"signal\"\n change_signal = \"SIGHUP\"\n wait {\n min = \"2s\"\n max = \"10s\"\n }",
    );
    let p = parse("j.hcl", &ok, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.job.groups[0].tasks[0].templates[0].wait_ms, Some((2000, 10_000)));
}

#[test]
fn variables_from_flags_and_files() {
    let src = fixture("plex.nomad.hcl");
    let given = Given {
        vars: vec!["image=plex:beta".into(), "memory=4096".into()],
        var_files: vec![("prod.hcl".into(), "image = \"plex:prod\"\n".into())],
    };
    let j = parse("plex.hcl", &src, &Options { given, ..Default::default() }).unwrap().job;
    assert_eq!(j.groups[0].tasks[0].config["image"], "plex:beta", "-var wins over -var-file");
    assert_eq!(j.groups[0].tasks[0].resources.memory_mb, 4096);
    let given = Given { vars: vec!["nope=1".into()], var_files: vec![] };
    let e = parse("plex.hcl", &src, &Options { given, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("\"nope\" is not declared"), "{e}");
    let given = Given { vars: vec![], var_files: vec![("bad.hcl".into(), "image = \n".into())] };
    let e = parse("plex.hcl", &src, &Options { given, ..Default::default() }).unwrap_err().to_string();
    assert!(e.starts_with("bad.hcl:"), "{e}");
}

#[test]
fn mistakes_name_file_line_column_and_block() {
    let e = errors(
        "job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"docker\"\n      confg { image = \"a\" }\n    }\n  }\n}\n",
    );
    assert!(e.contains("job.hcl:5:7: job \"x\" > group \"g\" > task \"t\": unknown block `confg`"), "{e}");
    assert!(e.contains("the docker driver needs `image`"), "{e}");
    let e = errors(
        "job \"x\" {\n  group \"g\" {\n    count = \"two\"\n    task \"t\" {\n      driver = \"lxc\"\n    }\n  }\n}\n",
    );
    assert!(e.contains("job.hcl:3:5: job \"x\" > group \"g\": count: expected a whole number, got \"two\""), "{e}");
    assert!(e.contains("driver \"lxc\" is not available in Rabble (docker, podman"), "{e}");
    let e = errors("job \"x\" {\n  group \"g\" {\n");
    assert!(e.starts_with("job.hcl:2:"), "a syntax error has its place: {e}");
    let e = errors("job \"x\" {\n  type = \"daemon\"\n}\n");
    assert!(e.contains("not a job type"), "{e}");
    let e = errors(
        "job \"x\" {\n  group \"g\" {\n    service {\n      port = \"http\"\n    }\n    task \"t\" {\n      driver = \"raw_exec\"\n      config { command = \"/bin/true\" }\n    }\n  }\n}\n",
    );
    assert!(e.contains("port \"http\" is not a label"), "{e}");
    let e = errors(
        "job \"x\" {\n  constraint {\n    attribute = \"${attr.kernel.name}\"\n    operator = \"regexp\"\n    value = \"(\"\n  }\n  group \"g\" {\n    task \"t\" {\n      driver = \"raw_exec\"\n      config { command = \"x\" }\n    }\n  }\n}\n",
    );
    assert!(e.contains("is not a regular expression"), "{e}");
    let e = errors(
        "job \"x\" {\n  type = \"service\"\n  periodic { cron = \"@often\" }\n  group \"g\" {\n    task \"t\" {\n      driver = \"raw_exec\"\n      config { command = \"x\" }\n    }\n  }\n}\n",
    );
    assert!(e.contains("cannot be periodic") && e.contains("not a known shortcut"), "{e}");
}

#[test]
fn the_job_encodes_and_decodes_the_same() {
    for f in ["plex.nomad.hcl", "traefik.nomad.hcl", "cleanup.nomad.hcl", "backup.nomad.hcl"] {
        let j = ok(f);
        let text = serde_json::to_string(&j).unwrap();
        assert_eq!(serde_json::from_str::<JobSpec>(&text).unwrap(), j, "{f}");
    }
}

#[test]
fn job_files_take_any_mutation_without_a_panic() {
    let files: Vec<String> = ["plex", "traefik", "backup", "cleanup", "grafana-template"]
        .iter()
        .map(|n| fixture(&format!("{n}.nomad.hcl")))
        .collect();
    let seeds: Vec<&str> = files.iter().map(String::as_str).collect();
    let alphabet = b"{}[]()\"=,.$#<>\n -_:*+/%abcdefghijklmnoprstuvxyz0123456789";
    let opts = Options::default();
    rabble_shared::support::mutate::mutations(&seeds, alphabet, 3_000, 0x10b, |b| {
        let _ = parse("fuzz.hcl", &String::from_utf8_lossy(b), &opts);
    });
}

#[test]
fn deeply_nested_job_files_are_refused_unread() {
    let src = format!("job \"x\" {{\n  meta = {}\n}}\n", "j=api0%lll%{llll%ll%{lll".repeat(12));
    let e = errors(&src);
    assert!(e.contains("fuzz.hcl:2:") || e.contains(":2:"), "{e}");
    assert!(e.contains("expressions nest deeper than 8"), "{e}");
}

/// `vault` (as homelab files write it, beside `{{ with secret }}`) is accepted: the task may
/// read the variables its templates name, and the warning says where to put them.
#[test]
fn vault_grants_the_secret_paths() {
    let src = r#"job "db" {
  vault { policies = ["db"] }
  group "g" {
    task "pg" {
      driver = "docker"
      config { image = "postgres:16" }
      vault {
        policies    = ["postgres"]
        change_mode = "restart"
      }
      template {
        data        = "{{ with secret \"kv/data/postgres\" }}PW={{ .Data.data.password }}{{ end }}"
        destination = "secrets/pg.env"
        env         = true
      }
    }
    task "other" {
      driver = "docker"
      config { image = "busybox" }
    }
  }
}
"#;
    let p = parse("db.hcl", src, &Options::default()).unwrap();
    let g = &p.job.groups[0];
    assert_eq!(g.tasks[0].secret_paths, ["kv/data/postgres"]);
    assert!(g.tasks[1].secret_paths.is_empty());
    let w: Vec<String> = p.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w.iter().all(|w| w.contains("vault: Rabble has no Vault")), "{w:?}");
    assert!(w[0].starts_with("db.hcl:7:7: job \"db\" > group \"g\" > task \"pg\" > vault:"), "{w:?}");
    assert!(w[0].contains("kv/data/postgres") && w[1].starts_with("db.hcl:2:3"), "{w:?}");
}

#[test]
fn parameterized_jobs_and_their_payload_file() {
    let src = r#"job "render" {
  type = "batch"
  parameterized {
    meta_required = ["frame"]
  }
  group "g" {
    task "t" {
      driver = "raw_exec"
      config { command = "/bin/render" }
      dispatch_payload { file = "in/scene.json" }
    }
  }
}
"#;
    let j = parse("r.hcl", src, &Options::default()).unwrap().job;
    let p = j.parameterized.unwrap();
    assert_eq!((p.payload, p.meta_required.as_slice()), (PayloadRule::Optional, &["frame".to_owned()][..]));
    assert_eq!(j.groups[0].tasks[0].dispatch_payload.as_ref().unwrap().file, "in/scene.json");
    let e = errors(&src.replace("in/scene.json", "../../etc/passwd"));
    assert!(e.contains("r.hcl") || e.contains("the payload is written under the task's local/ directory"), "{e}");
    let e = errors(&src.replace("parameterized {", "periodic { cron = \"@daily\" }\n  parameterized {"));
    assert!(e.contains("either periodic or parameterized"), "{e}");
}

#[test]
fn csi_volumes_name_rabble_volumes_and_their_modes_are_checked() {
    let job = |volume: &str| {
        format!(
            "job \"db\" {{\n  group \"g\" {{\n    volume \"data\" {{\n{volume}\n    }}\n    task \"t\" {{\n      \
             driver = \"docker\"\n      config {{ image = \"postgres:16\" }}\n      volume_mount {{\n        \
             volume = \"data\"\n        destination = \"/var/lib/postgresql/data\"\n      }}\n    }}\n  }}\n}}\n"
        )
    };
    let src = job(
        "      type            = \"csi\"\n      source          = \"pgdata\"\n      attachment_mode = \"file-system\"\n      \
         access_mode     = \"single-node-writer\"\n      read_only       = false",
    );
    let p = parse("db.hcl", &src, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        p.job.groups[0].volumes["data"],
        Volume {
            source: "pgdata".into(),
            read_only: false,
            kind: "csi".into(),
            access_mode: "single-node-writer".into()
        }
    );
    let e = errors(&job("      type = \"csi\"\n      source = \"x\"\n      access_mode = \"multi-node-reader-only\""));
    assert!(
        e.contains("job.hcl:3:5") && e.contains("access_mode \"multi-node-reader-only\" needs read_only = true"),
        "{e}"
    );
    let e = errors(&job("      type = \"csi\"\n      source = \"x\"\n      attachment_mode = \"block-device\""));
    assert!(e.contains("attachment_mode \"block-device\""), "{e}");
    let e = errors(&job("      type = \"csi\"\n      source = \"x\"\n      access_mode = \"anyone\""));
    assert!(e.contains("single-node-reader-only, single-node-writer"), "{e}");
    let e = errors(&job("      type = \"nfs\"\n      source = \"x\""));
    assert!(e.contains("volume type \"nfs\" is not supported"), "{e}");
}
