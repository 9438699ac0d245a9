//! The KV store through Consul's HTTP API, with the clients users already have: curl's
//! shapes (base64 JSON, `?raw`, `?keys&separator`), check-and-set conflicts, a blocking
//! read woken by a write, recursive delete, durability across a hub restart, py-consul,
//! and `rabble kv`.

use rabble_tests::{Hub, Subscriber, bin, tool, wait_for};
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(15);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().new_agent()
}

/// (status, X-Consul-Index, body)
fn req(method: &str, url: &str, body: &str) -> (u16, u64, String) {
    let a = agent();
    let r = match method {
        "PUT" => a.put(url).send(body),
        "DELETE" => a.delete(url).call(),
        _ => a.get(url).call(),
    };
    let mut r = r.unwrap();
    let index = r.headers().get("x-consul-index").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0);
    (r.status().as_u16(), index, r.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn kv_over_consuls_api_with_cas_blocking_reads_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut hub = Hub::start(d, &[]);
    let kv = |k: &str| format!("{}/v1/kv/{k}", hub.http);

    assert_eq!(req("GET", &kv("app/db"), ""), (404, req("GET", &kv("app/db"), "").1, String::new()));
    assert_eq!(req("PUT", &(kv("app/db") + "?flags=42"), "postgres://db:5432").2, "true");
    let (code, index, body) = req("GET", &kv("app/db"), "");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["Key"], "app/db");
    assert_eq!(v[0]["Flags"], 42);
    assert_eq!(v[0]["Value"], "cG9zdGdyZXM6Ly9kYjo1NDMy"); // base64, as Consul
    let modify = v[0]["ModifyIndex"].as_u64().unwrap();
    assert_eq!((index, v[0]["CreateIndex"].as_u64().unwrap()), (modify, modify));
    assert_eq!(req("GET", &(kv("app/db") + "?raw"), "").2, "postgres://db:5432");

    // Check-and-set.
    assert_eq!(req("PUT", &(kv("app/db") + "?cas=0"), "x").2, "false", "cas=0 on an existing key");
    assert_eq!(req("PUT", &(kv("app/db") + &format!("?cas={}", modify + 100)), "x").2, "false");
    assert_eq!(req("PUT", &(kv("app/db") + &format!("?cas={modify}")), "postgres://db2").2, "true");
    assert_eq!(req("PUT", &(kv("app/db") + &format!("?cas={modify}")), "x").2, "false", "a stale index");
    assert_eq!(req("DELETE", &(kv("app/db") + "?cas=1"), "").2, "false");

    // A blocking read is woken by a write.
    let (_, index, _) = req("GET", &kv("app/db"), "");
    let url = kv("app/db") + &format!("?index={index}&wait=20s");
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        (req("GET", &url, ""), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    // A write to another key does not wake it (its index is the key's own)...
    assert_eq!(req("PUT", &kv("other/key"), "x").2, "true");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!waiter.is_finished(), "a write to another key woke the blocking read");
    // ...a write to it does.
    assert_eq!(req("PUT", &kv("app/db"), "postgres://db3").2, "true");
    let ((code, new_index, body), took) = waiter.join().unwrap();
    assert_eq!(code, 200);
    assert!(new_index > index && took < Duration::from_secs(10), "{new_index} {took:?}");
    assert!(body.contains("cG9zdGdyZXM6Ly9kYjM="), "{body}");

    // Keys, one level at a time; recursive delete.
    for k in ["app/a", "app/b/c", "app/b/d", "apple"] {
        assert_eq!(req("PUT", &kv(k), "v").2, "true");
    }
    assert_eq!(req("GET", &(kv("app/") + "?keys&separator=/"), "").2, r#"["app/a","app/b/","app/db"]"#);
    let (_, _, all) = req("GET", &(kv("app") + "?recurse"), "");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&all).unwrap().as_array().unwrap().len(), 5);
    assert_eq!(req("DELETE", &(kv("app/") + "?recurse"), "").2, "true");
    assert_eq!(req("GET", &(kv("") + "?keys"), "").2, r#"["apple","other/key"]"#);
    assert_eq!(req("PUT", &kv(""), "v").0, 400, "no key");
    let big = "x".repeat(512 * 1024 + 1);
    assert_eq!(req("PUT", &kv("big"), &big).0, 413);

    // Durable: a restarted hub has it.
    hub.restart("KILL");
    let kv = |k: &str| format!("{}/v1/kv/{k}", hub.http);
    assert_eq!(req("GET", &(kv("apple") + "?raw"), "").2, "v");

    // py-consul, as scripts and Ansible's older modules use it.
    let port = hub.http.rsplit(':').next().unwrap().to_owned();
    let script = format!(
        r#"
import base64, consul
c = consul.Consul(host="127.0.0.1", port={port})
assert c.kv.put("py/config", "one")
index, data = c.kv.get("py/config")
assert data["Value"] == b"one", data
assert not c.kv.put("py/config", "two", cas=data["ModifyIndex"] + 1000)
assert c.kv.put("py/config", "two", cas=data["ModifyIndex"])
c.kv.put("py/other", "x", flags=7)
index, keys = c.kv.get("py/", keys=True)
assert keys == ["py/config", "py/other"], keys
index, items = c.kv.get("py/", recurse=True)
assert [(i["Key"], i["Value"], i["Flags"]) for i in items] == [("py/config", b"two", 0), ("py/other", b"x", 7)], items
assert c.kv.delete("py/", recurse=True)
assert c.kv.get("py/config")[1] is None
# A transaction: both writes and a read of the first, or nothing.
b64 = lambda s: base64.b64encode(s.encode()).decode()
r = c.txn.put([{{"KV": {{"Verb": "set", "Key": "tx/a", "Value": b64("1")}}}},
               {{"KV": {{"Verb": "set", "Key": "tx/b", "Value": b64("2"), "Flags": 5}}}},
               {{"KV": {{"Verb": "get", "Key": "tx/a"}}}}])
assert [x["KV"]["Key"] for x in r["Results"]] == ["tx/a", "tx/b", "tx/a"], r
assert r["Results"][2]["KV"]["Value"] == b64("1") and r["Results"][0]["KV"]["Value"] is None, r
a_index = c.kv.get("tx/a")[1]["ModifyIndex"]
try:
    c.txn.put([{{"KV": {{"Verb": "set", "Key": "tx/c", "Value": b64("3")}}}},
               {{"KV": {{"Verb": "cas", "Key": "tx/a", "Value": b64("x"), "Index": a_index + 99}}}}])
    raise SystemExit("a stale cas committed")
except consul.ConsulException as e:
    assert "OpIndex" in str(e) or "409" in str(e) or "stale" in str(e), e
assert c.kv.get("tx/c")[1] is None, "rolled back"
assert c.kv.get("tx/a")[1]["Value"] == b"1"
print("ok")
"#
    );
    let out = Command::new(tool("python3")).arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // rabble kv.
    let rabble = |args: &[&str]| {
        let out = Command::new(bin("rabble")).args(args).env("RABBLE_ADDR", &hub.http).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = rabble(&["kv", "put", "cli/greeting", "hello world"]);
    assert!(ok && out.contains("Success! Data written to: cli/greeting"), "{out}{err}");
    let file = d.join("conf");
    std::fs::write(&file, "from a file\n").unwrap();
    assert!(rabble(&["kv", "put", "cli/file", &format!("@{}", file.display())]).0);
    assert_eq!(rabble(&["kv", "get", "cli/greeting"]).1, "hello world");
    assert_eq!(rabble(&["kv", "get", "cli/file"]).1, "from a file\n");
    assert_eq!(rabble(&["kv", "list", "cli/"]).1, "cli/file\ncli/greeting\n");
    let (ok, _, err) = rabble(&["kv", "put", "cli/greeting", "x", "--cas", "0"]);
    assert!(!ok && err.contains("check-and-set failed"), "{err}");
    let (ok, _, err) = rabble(&["kv", "get", "cli/none"]);
    assert!(!ok && err.contains("no key \"cli/none\""), "{err}");
    assert!(rabble(&["kv", "delete", "cli/", "--recurse"]).0);
    assert_eq!(rabble(&["kv", "list", "cli/"]).1, "");
}

#[test]
fn variables_are_sealed_at_rest_and_useless_without_the_key() {
    const SECRET: &str = "hunter2-3f9a7c";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut hub = Hub::start(d, &[]);
    let rabble = |hub: &Hub, args: &[&str]| {
        let out = Command::new(bin("rabble")).args(args).env("RABBLE_ADDR", &hub.http).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = rabble(&hub, &["var", "put", "nomad/jobs/web", &format!("db_password={SECRET}"), "user=app"]);
    assert!(ok, "{out}{err}");
    assert_eq!(rabble(&hub, &["var", "get", "nomad/jobs/web", "--item", "db_password"]).1.trim(), SECRET);
    // Nomad's API shape.
    let (code, _, body) = req("GET", &format!("{}/v1/var/nomad/jobs/web", hub.http), "");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((code, v["Path"].as_str(), v["Items"]["user"].as_str()), (200, Some("nomad/jobs/web"), Some("app")));
    assert!(v["ModifyIndex"].as_u64().unwrap() > 0 && v["CreateTime"].as_u64().unwrap() > 1_700_000_000_000_000_000);
    let (_, _, list) = req("GET", &format!("{}/v1/vars?prefix=nomad/", hub.http), "");
    assert!(list.contains("nomad/jobs/web") && !list.contains(SECRET) && !list.contains("Items"), "{list}");
    // Check-and-set.
    let (ok, _, err) = rabble(&hub, &["var", "put", "nomad/jobs/web", "x=1", "--cas", "0"]);
    assert!(!ok && err.contains("conflict"), "{err}");

    // Never in clear: not on disk, not in the hub's log, not in events.
    hub.restart("TERM");
    for (path, bytes) in rabble_tests::files_under(&hub.data_dir) {
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{} holds the value in clear",
            path.display()
        );
    }
    assert!(!hub.proc.log().contains(SECRET));
    assert_eq!(
        rabble(&hub, &["var", "get", "nomad/jobs/web", "--item", "db_password"]).1.trim(),
        SECRET,
        "after a restart"
    );

    // A backup of the data dir without secret.key opens nothing.
    hub.proc.stop("TERM");
    let elsewhere = d.join("elsewhere");
    let stolen = elsewhere.join("hub-data");
    std::fs::create_dir_all(&stolen).unwrap();
    for (path, bytes) in rabble_tests::files_under(&hub.data_dir) {
        if path.file_name().is_some_and(|n| n != "secret.key") {
            std::fs::write(stolen.join(path.file_name().unwrap()), bytes).unwrap();
        }
    }
    let other = Hub::start(&elsewhere, &[]);
    let (code, _, body) = req("GET", &format!("{}/v1/var/nomad/jobs/web", other.http), "");
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("does not open") && !body.contains(SECRET), "{body}");
    assert!(rabble(&other, &["var", "purge", "nomad/jobs/web"]).0);
    assert_eq!(req("GET", &format!("{}/v1/var/nomad/jobs/web", other.http), "").0, 404);
}

/// Ansible's `community.general.consul_kv` against `hub` with `args`: (succeeded, its output).
/// Debian's ansible (with community.general), run on the Python that has py-consul.
fn consul_kv(hub: &Hub, args: &str) -> (bool, String) {
    let port = hub.http.rsplit(':').next().unwrap();
    let py = Command::new(tool("python3")).args(["-c", "import sys; print(sys.executable)"]).output().unwrap();
    let py = String::from_utf8_lossy(&py.stdout).trim().to_owned();
    let out = Command::new(tool("ansible"))
        .args(["localhost", "-c", "local", "-e", &format!("ansible_python_interpreter={py}")])
        .args(["-m", "community.general.consul_kv", "-a", &format!("{args} host=127.0.0.1 port={port}")])
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn ansibles_consul_kv_module_puts_reads_idempotently_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), &[]);
    let ansible = |args: &str| {
        let (ok, text) = consul_kv(&hub, args);
        assert!(ok, "{text}");
        text
    };
    assert!(ansible("key=ansible/motd value=hello").contains("\"changed\": true"));
    assert_eq!(req("GET", &format!("{}/v1/kv/ansible/motd?raw", hub.http), "").2, "hello");
    assert!(ansible("key=ansible/motd value=hello").contains("\"changed\": false"), "idempotent");
    assert!(ansible("key=ansible/motd value=bye").contains("\"changed\": true"));
    assert_eq!(req("GET", &format!("{}/v1/kv/ansible/motd?raw", hub.http), "").2, "bye");
    assert!(ansible("key=ansible/motd state=absent").contains("\"changed\": true"));
    assert_eq!(req("GET", &format!("{}/v1/kv/ansible/motd", hub.http), "").0, 404);
}

/// With the ACLs bootstrapped, py-consul and Ansible's consul_kv module work with a token
/// (`token=`), and are refused without one.
#[test]
fn py_consul_and_ansible_with_an_acl_token() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path(), &[]);
    let root = hub.bootstrap_acl();
    let token = hub.token_with(&root, "ansible", "kv \"ansible/\" {\n  policy = \"write\"\n}\n");
    let port = hub.http.rsplit(':').next().unwrap().to_owned();
    let ansible = |args: &str| consul_kv(&hub, args);
    let (ok, out) = ansible(&format!("key=ansible/motd value=hello token={token}"));
    assert!(ok && out.contains("\"changed\": true"), "{out}");
    let (ok, out) = ansible("key=ansible/motd value=bye");
    assert!(!ok, "no token, no write: {out}");
    let (ok, out) = ansible(&format!("key=other/motd value=x token={token}"));
    assert!(!ok, "outside the token's prefix: {out}");
    let script = format!(
        r#"
import consul
c = consul.Consul(host="127.0.0.1", port={port}, token="{token}")
index, v = c.kv.get("ansible/motd")
assert v["Value"] == b"hello", v
anon = consul.Consul(host="127.0.0.1", port={port})
try:
    anon.kv.get("ansible/motd")
    raise SystemExit("read without a token")
except consul.ACLPermissionDenied:
    pass
"#
    );
    let out = Command::new(tool("python3")).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!hub.proc.log().contains(&token), "a token in the hub's log");
}

/// Keys under a prefix the operator marked public are mirrored retained on
/// `rabble/kv/<key>`, as `mosquitto_sub` shows them; other keys never reach MQTT; a
/// deleted key's topic is cleared; a restarted hub publishes them again.
#[test]
fn public_prefixes_are_mirrored_on_mqtt_and_nothing_else_is() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut hub = Hub::start(d, &["--kv-public", "public/"]);
    let sub = Subscriber::start(d, hub.mqtt_port);
    let kv = |h: &Hub, k: &str| format!("{}/v1/kv/{k}", h.http);
    assert_eq!(req("PUT", &kv(&hub, "secret/db"), "s3cret-value").2, "true");
    assert_eq!(req("PUT", &kv(&hub, "public/motd"), "hello homelab").2, "true");
    assert_eq!(req("PUT", &kv(&hub, "public/gone"), "soon").2, "true");
    sub.wait_line("rabble/kv/public/motd hello homelab", T);
    sub.wait_line("rabble/kv/public/gone soon", T);
    assert_eq!(req("DELETE", &kv(&hub, "public/gone"), "").2, "true");
    sub.wait_line("rabble/kv/public/gone (null)", T);
    let retained = |port: u16| {
        let out = Command::new(tool("mosquitto_sub"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "rabble/kv/#", "-v", "-W", "2"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(retained(hub.mqtt_port), "rabble/kv/public/motd hello homelab\n", "a late watcher sees the value");

    // The embedded broker forgets retained messages with the hub: they come back.
    drop(sub);
    hub.restart("KILL");
    wait_for("the mirror after a restart", T, || {
        let r = retained(hub.mqtt_port);
        if r == "rabble/kv/public/motd hello homelab\n" { Ok(()) } else { Err(r) }
    });
    assert!(!hub.proc.log().contains("s3cret-value"));
    let all = Command::new(tool("mosquitto_sub"))
        .args(["-h", "127.0.0.1", "-p", &hub.mqtt_port.to_string(), "-t", "rabble/#", "-v", "-W", "2"])
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&all.stdout);
    assert!(all.contains("rabble/kv/public/motd") && !all.contains("secret/db") && !all.contains("s3cret"), "{all}");
}
