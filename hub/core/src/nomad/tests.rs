//! Nomad's JSON job form: every job file Rabble's tests hold survives JSON and back
//! unchanged; a job as Nomad's CLI sends it reads as its job file would; what Rabble
//! does not run is refused by name.

use super::*;
use crate::jobspec::parse;
use rabble_shared::job::{ChangeMode, Operator, RestartMode};

fn fixture(rel: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn no_lines(mut j: rabble_shared::job::JobSpec) -> rabble_shared::job::JobSpec {
    for t in j.groups.iter_mut().flat_map(|g| g.tasks.iter_mut()) {
        t.templates.iter_mut().for_each(|x| x.line = 0);
    }
    j
}

#[test]
fn every_fixture_job_survives_nomad_json_and_back() {
    let files = [
        "tests/fixtures/jobs/backup.nomad.hcl",
        "tests/fixtures/jobs/cleanup.nomad.hcl",
        "tests/fixtures/jobs/grafana-template.nomad.hcl",
        "tests/fixtures/jobs/plex.nomad.hcl",
        "tests/fixtures/jobs/traefik.nomad.hcl",
        "docs/examples/whoami.nomad.hcl",
        "docs/examples/edge.nomad.hcl",
    ];
    for f in files {
        let job = parse(f, &fixture(f), &Options { ignore_unsupported: true, ..Default::default() }).unwrap().job;
        let json = to_json(&job);
        // Through text, as a tool would hold it.
        let text = serde_json::to_string(&serde_json::json!({ "Job": json })).unwrap();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        let opts = Options { ignore_unsupported: true, ..Default::default() };
        let again = from_json(job_field(&back).unwrap(), &opts).unwrap_or_else(|e| panic!("{f}:\n{e}")).job;
        let mut want = no_lines(job);
        want.ignored.clear();
        assert_eq!(again, want, "{f}: {}", serde_json::to_string_pretty(&json).unwrap());
    }
}

#[test]
fn a_job_as_nomads_cli_sends_it_reads_as_its_file_would() {
    let body: serde_json::Value = serde_json::from_str(&fixture("tests/fixtures/nomad/redis.json")).unwrap();
    let parsed = from_json(job_field(&body).unwrap(), &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let j = parsed.job;
    assert_eq!((j.id.as_str(), j.priority, j.region.as_str()), ("redis", 50, "global"), "defaults filled in");
    assert_eq!(j.datacenters, ["homelab"]);
    assert_eq!(j.constraints[0].attribute, "${attr.cpu.arch}", "runtime interpolation kept as written");
    let g = &j.groups[0];
    assert_eq!((g.name.as_str(), g.count), ("cache", 2));
    assert_eq!(g.constraints[0].operator, Operator::DistinctHosts);
    let port = &g.network.ports[0];
    assert_eq!((port.label.as_str(), port.static_port, port.to), ("db", None, Some(6379)));
    assert_eq!(g.volumes["data"].source, "redis-data");
    assert_eq!(g.reschedule.delay_ms, 10_000);
    assert_eq!(g.reschedule.delay_function, "constant");
    let u = g.update.as_ref().unwrap();
    assert_eq!((u.max_parallel, u.min_healthy_time_ms, u.auto_revert), (1, 15_000, true));
    assert_eq!(u.healthy_deadline_ms, 300_000, "unset (null) keeps Nomad's default");
    assert_eq!(g.meta["owner"], "ops");
    let s = &g.services[0];
    assert_eq!((s.name.as_str(), s.port.as_deref(), s.address_mode.as_str()), ("redis-cache", Some("db"), "auto"));
    let c = &s.checks[0];
    assert_eq!((c.interval_ms, c.timeout_ms, c.failures_before_critical), (10_000, 2_000, 2));
    assert_eq!(c.check_restart.unwrap().grace_ms, 30_000);
    let t = &g.tasks[0];
    assert_eq!((t.driver.as_str(), t.kill_timeout_ms, t.kill_signal.as_deref()), ("docker", 20_000, Some("SIGTERM")));
    assert_eq!(t.config["args"][1], "${NOMAD_PORT_db}");
    assert_eq!((t.resources.cpu_mhz, t.resources.memory_mb, t.resources.memory_max_mb), (200, 256, None));
    assert_eq!((t.restart.attempts, t.restart.mode, t.restart.interval_ms), (5, RestartMode::Delay, 600_000));
    assert_eq!(t.env["TZ"], "Europe/Berlin");
    assert_eq!(t.volume_mounts[0].destination, "/data");
    let tpl = &t.templates[0];
    assert_eq!((tpl.change_mode, tpl.perms.as_str(), tpl.splay_ms), (ChangeMode::Signal, "0640", 5_000));
    assert!(tpl.data.contains("{{ env \"NOMAD_MEMORY_LIMIT\" }}"), "{:?}", tpl.data);
}

#[test]
fn keys_in_any_case_are_read_as_go_reads_them() {
    let v = serde_json::json!({"job": {"id": "x", "taskgroups": [{"name": "g", "tasks": [
        {"name": "t", "driver": "raw_exec", "config": {"command": "/bin/true"}}]}]}});
    let j = from_json(job_field(&v).unwrap(), &Options::default()).unwrap().job;
    assert_eq!((j.id.as_str(), j.groups[0].tasks[0].driver.as_str()), ("x", "raw_exec"));
}

fn problems(v: serde_json::Value) -> String {
    from_json(&v, &Options::default()).unwrap_err().to_string()
}

#[test]
fn what_rabble_does_not_run_is_refused_by_its_path() {
    let task = serde_json::json!({"Name": "t", "Driver": "docker", "Config": {"image": "x"}});
    let with = |k: &str, v: serde_json::Value| {
        let mut t = task.clone();
        t[k] = v;
        serde_json::json!({"ID": "j", "TaskGroups": [{"Name": "g", "Tasks": [t]}]})
    };
    let e = problems(with("Artifacts", serde_json::json!([{"GetterSource": "https://x"}])));
    assert!(e.contains("artifacts are not downloaded"), "{e}");
    let e = problems(with("Frobnicate", serde_json::json!(3)));
    assert!(e.contains("Job.TaskGroups[0].Tasks[0].frobnicate: is not a field Rabble reads"), "{e}");
    let e = problems(with("KillTimeout", serde_json::json!("soon")));
    assert!(e.contains("kill_timeout"), "{e}");
    let e = problems(with("Driver", serde_json::json!("lxc")));
    assert!(e.contains("driver \"lxc\" is not available"), "{e}");
    assert!(!e.contains(":0:0"), "no lines of a file nobody sees: {e}");
    let e = problems(serde_json::json!({"TaskGroups": []}));
    assert!(e.contains("Job.ID: is missing"), "{e}");
    let e = problems(serde_json::json!({"ID": "j", "TaskGroups": {"Name": "g"}}));
    assert!(e.contains("Job.TaskGroups: expected a list, got an object"), "{e}");
    // Nomad's server fields and its no-op settings pass.
    let mut ok = with("LogConfig", serde_json::json!({"MaxFiles": 10}));
    ok["Status"] = "running".into();
    ok["Version"] = 4.into();
    ok["SubmitTime"] = 1_700_000_000_000_000_000u64.into();
    assert!(from_json(&ok, &Options::default()).is_ok());
}

#[test]
fn text_that_looks_like_hcl_stays_text() {
    let cmd = "echo \"${HOME}\" %{ if x } \\ \n\t done";
    let v = serde_json::json!({"ID": "j\"q", "Meta": {"a b": "${x}"}, "TaskGroups": [{"Name": "g", "Tasks": [
        {"Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/sh", "args": ["-c", cmd]}}]}]});
    let j = from_json(&v, &Options::default()).unwrap().job;
    assert_eq!(j.id, "j\"q");
    assert_eq!(j.meta["a b"], "${x}");
    assert_eq!(j.groups[0].tasks[0].config["args"][1], cmd);
}

#[test]
fn any_mutation_of_a_real_json_job_is_read_or_refused_never_a_panic() {
    let redis = fixture("tests/fixtures/nomad/redis.json");
    let plex = fixture("tests/fixtures/jobs/plex.nomad.hcl");
    let plex = parse("plex", &plex, &Options { ignore_unsupported: true, ..Default::default() }).unwrap().job;
    let plex = serde_json::json!({ "Job": to_json(&plex) }).to_string();
    let seeds = [redis.as_str(), plex.as_str()];
    let mut read = 0;
    rabble_shared::support::mutate::mutations(&seeds, b"{}[]\":,0123456789.-tfnul ${}%\\eE", 3_000, 0x40b, |b| {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) else { return };
        if let Some(job) = job_field(&v)
            && from_json(job, &Options::default()).is_ok()
        {
            read += 1;
        }
    });
    assert!(read > 10, "almost every mutation was refused ({read} read): the seeds are wrong");
}
