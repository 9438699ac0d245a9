//! Nomad's HTTP API on the hub, driven by the clients homelab pipelines use against
//! Nomad: python-nomad 2.1 (PyPI) and Ansible's `community.general.nomad_job` (Debian's
//! ansible, with python-nomad) — parse, plan, register, read back, block, stop — with
//! and without ACL tokens, against a real hub and agent running the job.

use rabble_tests::{Agent, Hub, bin, tool, wait_for};
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// A raw_exec service job (the tiny HTTP server) with a check and a template.
fn web_job() -> String {
    format!(
        r#"job "web" {{
  datacenters = ["*"]
  group "web" {{
    network {{
      port "http" {{}}
    }}
    service {{
      name = "web"
      port = "http"
      check {{
        type     = "http"
        path     = "/health"
        interval = "1s"
        timeout  = "1s"
      }}
    }}
    task "server" {{
      driver = "raw_exec"
      config {{
        command = "{}"
      }}
      template {{
        data        = "port={{{{ env \"NOMAD_PORT_http\" }}}}\n"
        destination = "local/app.env"
      }}
      resources {{
        cpu    = 50
        memory = 32
      }}
    }}
  }}
}}
"#,
        bin("tiny-http").display()
    )
}

fn python() -> String {
    let py = Command::new(tool("python3")).args(["-c", "import sys; print(sys.executable)"]).output().unwrap();
    String::from_utf8_lossy(&py.stdout).trim().to_owned()
}

fn run_python(script: &str) -> String {
    let out = Command::new(tool("python3")).arg("-c").arg(script).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    text
}

fn port(hub: &Hub) -> String {
    hub.http.rsplit(':').next().unwrap().to_owned()
}

#[test]
fn python_nomad_parses_plans_registers_reads_and_stops_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let _pi1 = Agent::worker(d, &hub, "pi1");
    let job_file = d.join("web.nomad.hcl");
    std::fs::write(&job_file, web_job()).unwrap();
    let script = format!(
        r#"
import nomad, time, json
n = nomad.Nomad(host="127.0.0.1", port={port}, timeout=30)
hcl = open({file:?}).read()
job = n.jobs.parse(hcl)
assert job["ID"] == "web" and job["TaskGroups"][0]["Tasks"][0]["Driver"] == "raw_exec", job
assert job["TaskGroups"][0]["Tasks"][0]["Templates"][0]["DestPath"] == "local/app.env", job
plan = n.job.plan_job("web", {{"Job": job}}, diff=True)
assert plan["Diff"]["Type"] == "Added", plan
assert plan["Annotations"]["DesiredTGUpdates"]["web"]["Place"] == 1, plan
r = n.jobs.register_job({{"Job": job}})
ev = n.evaluation.get_evaluation(r["EvalID"])
assert ev["Status"] == "complete" and ev["JobID"] == "web" and ev["TriggeredBy"] == "job-register", ev
deadline = time.time() + 20
while True:
    allocs = n.job.get_allocations("web")
    states = [a["TaskStates"].get("server", {{}}).get("State") for a in allocs]
    if [a["ClientStatus"] for a in allocs] == ["running"] and states == ["running"]:
        break
    assert time.time() < deadline, allocs
    time.sleep(0.2)
alloc = n.allocation.get_allocation(allocs[0]["ID"])
assert alloc["NodeID"] == "pi1" and alloc["Job"]["ID"] == "web", alloc
events = [e["Type"] for e in alloc["TaskStates"]["server"]["Events"]]
assert "Started" in events, alloc["TaskStates"]
got = n.job.get_job("web")
assert got["Status"] == "running" and got["Version"] == 0 and got["Stop"] is False, got
# The same job again: no change (Ansible's idempotence rests on this).
assert n.job.plan_job("web", {{"Job": got}}, diff=True)["Diff"]["Type"] == "None"
changed = dict(got, TaskGroups=[dict(got["TaskGroups"][0], Count=2)])
plan = n.job.plan_job("web", {{"Job": changed}}, diff=True)
assert plan["Diff"]["Type"] == "Edited", plan
assert [f["Name"] for f in plan["Diff"]["Fields"]] == ["groups[web].count"], plan["Diff"]
assert [j["ID"] for j in n.jobs.get_jobs()] == ["web"]
nodes = n.nodes.get_nodes()
assert [(x["ID"], x["Status"], x["SchedulingEligibility"]) for x in nodes] == [("pi1", "ready", "eligible")], nodes
node = n.node.get_node("pi1")
assert node["Attributes"]["kernel.name"] == "linux" and node["Drivers"]["raw_exec"]["Healthy"], node
versions = n.job.get_versions("web")["Versions"]
assert [v["Version"] for v in versions] == [0], versions
# A broken job is refused with the problem named.
try:
    n.jobs.parse('job "x" {{ group "g" {{ task "t" {{ driver = "nope" }} }} }}')
    raise SystemExit("a broken job parsed")
except nomad.api.exceptions.BadRequestNomadException as e:
    assert "driver" in e.nomad_resp.text, e.nomad_resp.text
r = n.job.deregister_job("web")
assert n.evaluation.get_evaluation(r["EvalID"])["TriggeredBy"] == "job-deregister"
deadline = time.time() + 20
while n.job.get_job("web")["Status"] != "dead":
    assert time.time() < deadline, n.job.get_job("web")
    time.sleep(0.2)
print("ok")
"#,
        port = port(&hub),
        file = job_file.display().to_string(),
    );
    assert!(run_python(&script).contains("ok"));
    // Blocking: a read at the current index waits for the next change (a purge), and
    // answers as soon as it comes.
    let url = format!("{}/v1/job/web", hub.http);
    let index_of = |r: &ureq::http::Response<ureq::Body>| -> u64 {
        r.headers().get("x-nomad-index").unwrap().to_str().unwrap().parse().unwrap()
    };
    // Once the stop has settled (the node's last reports), a read at the current index
    // waits out its `wait` and answers with the same index.
    let index = wait_for("a read at the current index to block", Duration::from_secs(20), || {
        let index = index_of(&ureq::get(&url).call().map_err(|e| e.to_string())?);
        let started = Instant::now();
        let idle = ureq::get(&format!("{url}?index={index}&wait=1s")).call().map_err(|e| e.to_string())?;
        match (started.elapsed() >= Duration::from_millis(900), index_of(&idle) == index) {
            (true, true) => Ok(index),
            (false, false) => Err(format!("the catalog moved past {index}: answered at once (right)")),
            other => Err(format!("{other:?} after {:?}", started.elapsed())),
        }
    });
    // Other writers (the alert book settling the removed check) may move the index
    // first: the waiter follows the index, as a Nomad client's watch loop does, until
    // the job is gone.
    let waiter = std::thread::spawn(move || {
        let mut index = index;
        loop {
            let r = ureq::get(&format!("{url}?index={index}&wait=20s")).config().http_status_as_error(false).build();
            let r = r.call().unwrap();
            let status = r.status().as_u16();
            if status != 200 {
                return (status, Instant::now());
            }
            let next = index_of(&r);
            assert_ne!(next, index, "a blocking read answered 200 at the index it waited on");
            index = next;
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let purged = Instant::now();
    let del = ureq::delete(&format!("{}/v1/job/web?purge=true", hub.http)).call().unwrap();
    assert_eq!(del.status().as_u16(), 200);
    let (status, woke) = waiter.join().unwrap();
    assert_eq!(status, 404, "the purged job is gone");
    assert!(woke.duration_since(purged) < Duration::from_secs(3), "the waiter woke with the change");
}

/// A playbook running `community.general.nomad_job` with `state` against the hub.
fn nomad_job(dir: &std::path::Path, hub: &Hub, state: &str, token: Option<&str>) -> (bool, String) {
    let token = token.map(|t| format!("\n        token: \"{t}\"")).unwrap_or_default();
    let content = match state {
        "present" => "\n        content: \"{{ lookup('file', 'web.nomad.hcl') }}\"",
        _ => "\n        name: web",
    };
    let playbook = format!(
        r#"- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - community.general.nomad_job:
        host: 127.0.0.1
        use_ssl: false
        timeout: 60
        state: {state}{content}{token}
      environment:
        NOMAD_ADDR: "http://127.0.0.1:{port}"
"#,
        port = port(hub)
    );
    let file = dir.join(format!("{state}.yml"));
    std::fs::write(&file, playbook).unwrap();
    let out = Command::new(tool("ansible-playbook"))
        .arg(&file)
        .args(["-i", "localhost,", "-e", &format!("ansible_python_interpreter={}", python())])
        .current_dir(dir)
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn get_job(hub: &Hub, token: &str) -> Result<rabble_shared::api::JobView, String> {
    let url = format!("{}/api/v1/jobs/web", hub.http);
    let mut r = ureq::get(&url).header("X-Nomad-Token", token).call().map_err(|e| format!("GET {url}: {e}"))?;
    r.body_mut().read_json().map_err(|e| e.to_string())
}

#[test]
fn ansibles_nomad_job_module_runs_idempotently_and_stops_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let _pi1 = Agent::worker(d, &hub, "pi1");
    std::fs::write(d.join("web.nomad.hcl"), web_job()).unwrap();
    let root = hub.bootstrap_acl();
    let token = hub.token_with(&root, "ci", "job \"web\" {\n  policy = \"write\"\n}\n");
    // The pipeline ran `rabble job run` before (as it ran `nomad job run`): the same
    // file through Ansible is no change.
    let out = Command::new(bin("rabble"))
        .args(["job", "run", "-detach", d.join("web.nomad.hcl").to_str().unwrap()])
        .env("RABBLE_ADDR", &hub.http)
        .env("RABBLE_TOKEN", &root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (ok, out) = nomad_job(d, &hub, "present", None);
    assert!(!ok, "no token, no job: {out}");
    let (ok, out) = nomad_job(d, &hub, "present", Some(&token));
    assert!(ok && out.contains("changed=0"), "{out}");
    std::fs::write(d.join("web.nomad.hcl"), web_job().replace("memory = 32", "memory = 48")).unwrap();
    let (ok, out) = nomad_job(d, &hub, "present", Some(&token));
    assert!(ok && out.contains("changed=1"), "{out}");
    let job: rabble_shared::api::JobView = get_job(&hub, &root).unwrap();
    assert_eq!(job.version, 1, "one new version");
    let (ok, out) = nomad_job(d, &hub, "present", Some(&token));
    assert!(ok && out.contains("changed=0"), "the new version again: no change: {out}");
    wait_for("the job to run", T, || {
        let j: rabble_shared::api::JobView = get_job(&hub, &root)?;
        if j.status == "running" { Ok(()) } else { Err(j.status) }
    });
    let (ok, out) = nomad_job(d, &hub, "absent", Some(&token));
    assert!(ok && out.contains("changed=1"), "{out}");
    let job: rabble_shared::api::JobView = get_job(&hub, &root).unwrap();
    assert!(job.stopped);
    let (ok, out) = nomad_job(d, &hub, "absent", Some(&token));
    assert!(ok, "{out}");
    assert!(!hub.proc.log().contains(&token), "a token in the hub's log");
}
