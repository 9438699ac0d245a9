//! ACL tokens at the API's door, in process: before bootstrap loopback may do all (the
//! hub as it was); after, an anonymous request reads only what DNS tells anyone, tokens
//! travel as the ecosystem sends them, policies scope them, and a deleted token is
//! refused at once, even by a request already waiting.

use rabble_shared::api::{AclPolicyRequest, AclTokenRequest, AclTokenView, ApiError};
use rabble_tests::inproc::InProcHub;

fn job(name: &str) -> String {
    rabble_tests::inproc::batch_job(name)
}

async fn bootstrap(hub: &InProcHub) -> String {
    let a = hub.must("POST", "/api/v1/acl/bootstrap", None, "").await;
    assert_eq!(a.status, 200, "{a:?}");
    let t: AclTokenView = a.json();
    assert!(t.management);
    t.secret.expect("the secret, shown once")
}

/// `method path` with the token as a Bearer header.
async fn with(hub: &InProcHub, token: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("authorization", bearer.as_str())];
    if body.starts_with('{') {
        headers.push(("content-type", "application/json"));
    }
    let a = hub.call_with(method, path, &headers, body).await;
    (a.status, a.body)
}

fn refusal(status: u16, body: &str) -> String {
    assert_eq!(status, 403, "{body}");
    serde_json::from_str::<ApiError>(body).unwrap_or_else(|e| panic!("{body}: {e}")).error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_closes_the_door_to_anonymous_writes_and_secrets() {
    let hub = InProcHub::start().await;
    // Not bootstrapped: loopback does everything, as before ACLs.
    assert_eq!(hub.must("POST", "/api/v1/jobs", None, job("early")).await.status, 200);
    let root = bootstrap(&hub).await;
    let again = hub.must("POST", "/api/v1/acl/bootstrap", None, "").await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("acl-bootstrap-reset"), "says how to reset: {}", again.body);

    // Anonymous: the service catalog and what derives from it, and liveness.
    for path in [
        "/v1/catalog/services",
        "/v1/health/service/web",
        "/api/v1/services",
        "/metrics",
        "/v1/traefik",
        "/api/v1/prometheus/targets",
        "/api/v1/health",
        "/v1/agent/self",
    ] {
        let a = hub.must("GET", path, None, "").await;
        assert!(a.status == 200 || a.status == 404, "GET {path}: {a:?}");
    }
    // ... and nothing else.
    for (method, path, body, needs) in [
        ("GET", "/api/v1/jobs", "", "job:read on some name"),
        ("GET", "/api/v1/jobs/early", "", "job:read on \"early\""),
        ("POST", "/api/v1/jobs", "job", "job:submit"),
        ("DELETE", "/api/v1/jobs/early", "", "job:stop on \"early\""),
        ("GET", "/api/v1/allocations", "", "alloc:read"),
        ("GET", "/api/v1/nodes", "", "node:read"),
        ("POST", "/api/v1/nodes/pi1/join", "", "node:write on \"pi1\""),
        ("POST", "/api/v1/nodes/pi1/drain", "{\"enable\":true}", "node:write on \"pi1\""),
        ("GET", "/v1/kv/app/config", "", "kv:read on \"app/config\""),
        ("PUT", "/v1/kv/app/config", "x", "kv:write on \"app/config\""),
        ("PUT", "/v1/txn", "[]", "kv:read"),
        ("GET", "/v1/var/nomad/jobs/web", "", "var:read on \"nomad/jobs/web\""),
        ("GET", "/v1/vars", "", "var:read"),
        ("GET", "/api/v1/events", "", "operator:read"),
        ("GET", "/api/v1/certs", "", "operator:read"),
        ("GET", "/api/v1/acl/tokens", "", "acl:read"),
        ("POST", "/api/v1/acl/tokens", "{}", "acl:write"),
        ("PUT", "/v1/catalog/register", "{}", "service:register"),
    ] {
        let a = hub.must(method, path, None, body).await;
        let e = refusal(a.status, &a.body);
        assert!(e.contains("anonymous") && e.contains(needs), "{method} {path}: {e}");
    }
    // The management token, however a client sends it.
    for headers in [
        vec![("authorization", format!("Bearer {root}"))],
        vec![("x-consul-token", root.clone())],
        vec![("x-nomad-token", root.clone())],
    ] {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = hub.call_with("GET", "/api/v1/jobs/early", &h, "").await;
        assert_eq!(a.status, 200, "{headers:?}: {a:?}");
    }
    assert_eq!(hub.must("GET", &format!("/v1/kv/nothing?token={root}"), None, "").await.status, 404);
    // A wrong token is refused, not taken as anonymous.
    let (status, body) = with(&hub, "not-a-token", "GET", "/v1/catalog/services", "").await;
    assert!(refusal(status, &body).contains("ACL token not found"));

    // The CLI: refused without a token (and says what is missing), served with RABBLE_TOKEN.
    let rabble = |token: Option<&str>| {
        let mut cmd = std::process::Command::new(rabble_tests::bin("rabble"));
        cmd.args(["--addr", &format!("http://{}", hub.http), "nodes"]).env_remove("RABBLE_TOKEN");
        cmd.env_remove("RABBLE_TOKEN_FILE").env("XDG_CONFIG_HOME", hub.data_dir.join("no-login"));
        if let Some(t) = token {
            cmd.env("RABBLE_TOKEN", t);
        }
        cmd.output().unwrap()
    };
    let out = rabble(None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs node:read"), "{out:?}");
    let out = rabble(Some(&root));
    assert!(out.status.success(), "{out:?}");

    // The documented reset: the bootstrap's index, written to the data dir's reset file.
    let e: ApiError = again.json();
    let at: String = e.error.split("at index ").nth(1).unwrap().chars().take_while(char::is_ascii_digit).collect();
    let reset = hub.data_dir.join("acl-bootstrap-reset");
    std::fs::write(&reset, "1").unwrap();
    assert_eq!(hub.must("POST", "/api/v1/acl/bootstrap", None, "").await.status, 409, "a wrong index resets nothing");
    std::fs::write(&reset, &at).unwrap();
    let second = bootstrap(&hub).await;
    assert_ne!(second, root);
    assert!(!reset.exists(), "the reset file is used once");
    assert_eq!(with(&hub, &root, "GET", "/api/v1/jobs", "").await.0, 200, "the first token stays");
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_scope_tokens_and_a_deleted_token_is_refused_at_once() {
    let hub = InProcHub::start().await;
    let root = bootstrap(&hub).await;
    let policy = |rules: &str| {
        serde_json::to_string(&AclPolicyRequest { description: String::new(), rules: rules.into() }).unwrap()
    };
    let p = policy(
        "job \"web-\" {\n  policy = \"read\"\n  capabilities = [\"submit\"]\n}\nkv \"app/\" { policy = \"read\" }\nkv \"app/secret/\" { policy = \"deny\" }\n",
    );
    assert_eq!(with(&hub, &root, "PUT", "/api/v1/acl/policies/deploy", &p).await.0, 200);
    let bad = with(&hub, &root, "PUT", "/api/v1/acl/policies/oops", &policy("job \"x\" { policy = \"root\" }")).await;
    assert_eq!(bad.0, 400);
    assert!(bad.1.contains("deny, read or write"), "{}", bad.1);
    let req = AclTokenRequest { description: "ci".into(), policies: vec!["deploy".into()], ..Default::default() };
    let (status, body) = with(&hub, &root, "POST", "/api/v1/acl/tokens", &serde_json::to_string(&req).unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let made: AclTokenView = serde_json::from_str(&body).unwrap();
    let deploy = made.secret.clone().unwrap();

    // Who did what: the events name the token's accessor, never its secret.
    let events = {
        let (http, root) = (hub.http, root.clone());
        tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let r = ureq::get(&format!("http://{http}/api/v1/events")).header("x-consul-token", &root).call().unwrap();
            let mut lines = std::io::BufReader::new(r.into_body().into_reader()).lines();
            lines.find_map(|l| l.ok().filter(|l| l.contains("web-a"))).unwrap_or_default()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(with(&hub, &deploy, "POST", "/api/v1/jobs", &job("web-a")).await.0, 200);
    let line = tokio::time::timeout(std::time::Duration::from_secs(10), events).await.unwrap().unwrap();
    assert!(line.contains(&format!("api (token {})", made.accessor)), "{line}");
    assert!(!line.contains(&deploy), "a secret in an event: {line}");
    let (status, body) = with(&hub, &deploy, "POST", "/api/v1/jobs", &job("db")).await;
    assert!(refusal(status, &body).contains("needs job:submit on \"db\""), "{body}");
    let (status, body) = with(&hub, &deploy, "DELETE", "/api/v1/jobs/web-a", "").await;
    assert!(refusal(status, &body).contains(&format!("token {} needs job:stop on \"web-a\"", made.accessor)));
    // Lists show what the token may read: its jobs, not the others.
    assert_eq!(with(&hub, &root, "POST", "/api/v1/jobs", &job("db")).await.0, 200);
    let (status, body) = with(&hub, &deploy, "GET", "/api/v1/jobs", "").await;
    let ids: Vec<String> =
        serde_json::from_str::<Vec<rabble_shared::api::JobView>>(&body).unwrap().into_iter().map(|j| j.id).collect();
    assert_eq!((status, ids), (200, vec!["web-a".to_owned()]));
    let (_, body) = with(&hub, &root, "GET", "/api/v1/jobs", "").await;
    assert!(body.contains("\"db\"") && body.contains("\"web-a\""), "{body}");
    // ... and Consul's catalog, as Consul filters it.
    for svc in ["web", "db"] {
        let reg = format!(r#"{{"Node": "nas", "Address": "10.0.0.2", "Service": {{"Service": "{svc}", "Port": 80}}}}"#);
        assert_eq!(with(&hub, &root, "PUT", "/v1/catalog/register", &reg).await.0, 200);
    }
    let p = policy("service \"web\" { policy = \"read\" }");
    assert_eq!(with(&hub, &root, "PUT", "/api/v1/acl/policies/web-reader", &p).await.0, 200);
    let req = AclTokenRequest { policies: vec!["web-reader".into()], ..Default::default() };
    let (_, body) = with(&hub, &root, "POST", "/api/v1/acl/tokens", &serde_json::to_string(&req).unwrap()).await;
    let web_reader = serde_json::from_str::<AclTokenView>(&body).unwrap().secret.unwrap();
    let (status, body) = with(&hub, &web_reader, "GET", "/v1/catalog/services", "").await;
    let services: std::collections::BTreeMap<String, Vec<String>> = serde_json::from_str(&body).unwrap();
    assert_eq!((status, services.keys().cloned().collect::<Vec<_>>()), (200, vec!["web".to_owned()]));
    // Registering: each service's name, and the external node itself only with node:write.
    let p = policy("service \"web\" { capabilities = [\"register\"] }");
    assert_eq!(with(&hub, &root, "PUT", "/api/v1/acl/policies/web-registrar", &p).await.0, 200);
    let req = AclTokenRequest { policies: vec!["web-registrar".into()], ..Default::default() };
    let (_, body) = with(&hub, &root, "POST", "/api/v1/acl/tokens", &serde_json::to_string(&req).unwrap()).await;
    let registrar = serde_json::from_str::<AclTokenView>(&body).unwrap().secret.unwrap();
    let reg = |svc: &str| format!(r#"{{"Node": "nas", "Address": "10.0.0.2", "Service": {{"Service": "{svc}"}}}}"#);
    assert_eq!(with(&hub, &registrar, "PUT", "/v1/catalog/register", &reg("web")).await.0, 200);
    let (status, body) = with(&hub, &registrar, "PUT", "/v1/catalog/register", &reg("db")).await;
    assert!(refusal(status, &body).contains("needs service:register on \"db\""), "{body}");
    let (status, body) =
        with(&hub, &registrar, "PUT", "/v1/catalog/deregister", r#"{"Node": "nas", "ServiceID": "db"}"#).await;
    assert!(refusal(status, &body).contains("needs service:register on \"db\""), "{body}");
    let (status, body) = with(&hub, &registrar, "PUT", "/v1/catalog/deregister", r#"{"Node": "nas"}"#).await;
    assert!(refusal(status, &body).contains("needs node:write on \"nas\""), "{body}");
    let unbound = r#"{"Node": "nas", "Address": "10.0.0.2", "Check": {"Name": "ping", "Status": "passing"}}"#;
    let (status, body) = with(&hub, &registrar, "PUT", "/v1/catalog/register", unbound).await;
    assert!(refusal(status, &body).contains("needs node:write on \"nas\""), "{body}");
    // KV: reads under app/, not app/secret/, and no recursive read over it.
    assert_eq!(with(&hub, &root, "PUT", "/v1/kv/app/secret/pw", "hunter2").await.0, 200);
    assert_eq!(with(&hub, &deploy, "GET", "/v1/kv/app/other", "").await.0, 404);
    assert_eq!(with(&hub, &deploy, "GET", "/v1/kv/app/secret/pw", "").await.0, 403);
    assert_eq!(with(&hub, &deploy, "GET", "/v1/kv/app/?recurse", "").await.0, 403);
    assert_eq!(with(&hub, &deploy, "PUT", "/v1/kv/app/other", "x").await.0, 403);

    let self_view: AclTokenView =
        serde_json::from_str(&with(&hub, &deploy, "GET", "/api/v1/acl/token/self", "").await.1).unwrap();
    assert_eq!((self_view.accessor.as_str(), self_view.secret), (made.accessor.as_str(), None));

    // A blocking query waiting with the token is refused when the token goes.
    let index = hub.get::<rabble_shared::api::HubHealth>("/api/v1/health").await.index;
    let waiting = {
        let hub_http = hub.http;
        let deploy = deploy.clone();
        tokio::task::spawn_blocking(move || {
            let url = format!("http://{hub_http}/v1/kv/app/other?index={index}&wait=20s");
            let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
            let r = agent.get(&url).header("x-consul-token", &deploy).call().unwrap();
            r.status().as_u16()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, _) = with(&hub, &root, "DELETE", &format!("/api/v1/acl/tokens/{}", made.accessor), "").await;
    assert_eq!(status, 200);
    let started = tokio::time::Instant::now();
    assert_eq!(waiting.await.unwrap(), 403, "the waiting query answered with a deleted token");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "it waited for its own timeout");
    let (status, body) = with(&hub, &deploy, "GET", "/v1/kv/app/other", "").await;
    assert!(refusal(status, &body).contains("ACL token not found"));
    hub.stop().await.unwrap();
}

/// The operator's path: `rabble-hub acl bootstrap` into a root-only file, policies and
/// tokens made with `rabble acl`, `rabble login` keeping one for later commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_bootstraps_makes_policies_and_tokens_and_logs_in() {
    let hub = InProcHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (root_file, config_home) = (dir.path().join("management.token"), dir.path().join("config"));
    let run = |bin: &str, args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(rabble_tests::bin(bin));
        cmd.args(args).env_remove("RABBLE_TOKEN").env_remove("RABBLE_TOKEN_FILE");
        cmd.env("XDG_CONFIG_HOME", &config_home).env("RABBLE_ADDR", format!("http://{}", hub.http));
        cmd.envs(env.iter().copied());
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let listen = hub.http.to_string();
    let hub_args = ["--http-listen", listen.as_str(), "--data-dir", hub.data_dir.to_str().unwrap()];
    let boot = |extra: &[&str]| {
        let mut a = hub_args.to_vec();
        a.extend(["acl", "bootstrap"]);
        a.extend(extra);
        run("rabble-hub", &a, &[])
    };
    let (ok, out, err) = boot(&["--token-file", root_file.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&root_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!out.contains(std::fs::read_to_string(&root_file).unwrap().trim()), "the secret printed: {out}");
    let (ok, _, err) = boot(&[]);
    assert!(!ok && err.contains("acl-bootstrap-reset"), "a second bootstrap: {err}");

    let as_root = [("RABBLE_TOKEN_FILE", root_file.to_str().unwrap())];
    let rules = dir.path().join("deploy.hcl");
    std::fs::write(&rules, "job \"web-\" {\n  policy = \"write\"\n}\n").unwrap();
    let at_rules = format!("@{}", rules.display());
    let (ok, out, err) =
        run("rabble", &["acl", "policy", "create", "--name", "deploy", "--rules", &at_rules], &as_root);
    assert!(ok, "{out}{err}");
    let (ok, out, err) =
        run("rabble", &["acl", "token", "create", "--policy", "deploy", "--description", "ci"], &as_root);
    assert!(ok, "{out}{err}");
    let secret = out.lines().find_map(|l| l.strip_prefix("SecretID:")).map(|s| s.trim().to_owned()).expect(&out);
    let (ok, out, _) = run("rabble", &["acl", "token", "list"], &as_root);
    assert!(ok && out.contains("deploy") && out.contains("management"), "{out}");
    assert!(!out.contains(&secret), "a list shows a secret: {out}");

    // Logged in, the CLI uses the token: it may run web-* jobs, not read nodes.
    let (ok, out, err) = run("rabble", &["login", "--token", &secret], &[]);
    assert!(ok, "{out}{err}");
    let login = config_home.join("rabble/token");
    assert_eq!(std::fs::metadata(&login).unwrap().permissions().mode() & 0o777, 0o600);
    let job = dir.path().join("web.nomad.hcl");
    std::fs::write(&job, rabble_tests::inproc::batch_job("web-batch")).unwrap();
    let (ok, out, err) = run("rabble", &["job", "run", "-detach", job.to_str().unwrap()], &[]);
    assert!(ok, "{out}{err}");
    let (ok, _, err) = run("rabble", &["nodes"], &[]);
    assert!(!ok && err.contains("needs node:read"), "{err}");
    let (ok, _, err) = run("rabble", &["login", "--token", "wrong"], &[]);
    assert!(!ok && err.contains("ACL token not found"), "{err}");
    hub.stop().await.unwrap();
}
