//! The API's contract: typed answers (`shared::api`), and one error shape on every
//! `/api/v1` answer that is not a success, whoever refused the request.

use rabble_shared::api::{ApiError, HubHealth, JobStopped, JobSubmitted, JobVersion, JobView, NodeView};
use rabble_tests::inproc::InProcHub;

const JSON: Option<&str> = Some("application/json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_error_is_one_json_shape() {
    let hub = InProcHub::start().await;
    // (method, path, content type, body, status): handlers, the writer's callers, and
    // what the HTTP layer refuses before a handler runs.
    let cases: &[(&str, &str, Option<&str>, &str, u16)] = &[
        ("GET", "/api/v1/jobs/nope", None, "", 404),
        ("DELETE", "/api/v1/jobs/nope", None, "", 404),
        ("GET", "/api/v1/jobs/nope/versions", None, "", 404),
        ("GET", "/api/v1/nodes/nope", None, "", 404),
        ("GET", "/api/v1/services/nope", None, "", 404),
        ("GET", "/api/v1/allocations/zzz", None, "", 404),
        ("GET", "/api/v1/allocations/zzz/logs", None, "", 404),
        ("GET", "/api/v1/routes?lane=nope", None, "", 404),
        ("GET", "/api/v1/no-such-thing", None, "", 404),
        ("POST", "/api/v1/jobs", Some("text/plain"), "job \"x\" {", 400),
        ("POST", "/api/v1/jobs", JSON, "{", 400),
        ("POST", "/api/v1/jobs/plan", JSON, "[]", 400),
        ("POST", "/api/v1/nodes/pi/drain", JSON, "{\"enable\": true}", 404),
        // axum's own rejections: plain text (or nothing) until the error layer.
        ("POST", "/api/v1/nodes/pi/drain", JSON, "not json", 400),
        ("POST", "/api/v1/nodes/pi/drain", JSON, "{\"enable\": \"yes\"}", 422),
        ("POST", "/api/v1/nodes/pi/eligibility", None, "{\"eligible\": true}", 415),
        ("DELETE", "/api/v1/health", None, "", 405),
        ("PUT", "/api/v1/jobs", JSON, "{}", 405),
        ("GET", "/api/v1/jobs?ignore_unsupported=maybe", None, "", 200),
        ("POST", "/api/v1/jobs?ignore_unsupported=maybe", Some("text/plain"), "job \"x\" {}", 400),
        // This hub does not use node credentials: no join tokens.
        ("POST", "/api/v1/nodes/pi/join", JSON, "", 409),
    ];
    for (method, path, ct, body, status) in cases {
        let a = hub.must(method, path, *ct, *body).await;
        assert_eq!(a.status, *status, "{method} {path}: {a:?}");
        if *status == 200 {
            continue;
        }
        assert!(a.content_type.starts_with("application/json"), "{method} {path}: content type {a:?}");
        let e: ApiError = a.json();
        assert!(!e.error.trim().is_empty(), "{method} {path}: an empty error");
    }
    // Consul's endpoints keep Consul's shapes: a missing key is an empty 404.
    let a = hub.must("GET", "/v1/kv/missing", None, "").await;
    assert_eq!((a.status, a.body.as_str()), (404, ""), "{a:?}");
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_decode_as_the_shared_types() {
    let hub = InProcHub::start().await;
    let health: HubHealth = hub.get("/api/v1/health").await;
    assert!(health.broker.starts_with("embedded"), "{health:?}");
    let nodes: Vec<NodeView> = hub.get("/api/v1/nodes").await;
    assert!(nodes.is_empty());

    let job =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/whoami.nomad.hcl")).unwrap();
    let a = hub.must("POST", "/api/v1/jobs", Some("text/plain"), job.as_str()).await;
    assert_eq!(a.status, 200, "{a:?}");
    let sub: JobSubmitted = a.json();
    assert_eq!((sub.id.as_str(), sub.version, sub.changed), ("whoami", 0, true));
    let again: JobSubmitted = hub.must("POST", "/api/v1/jobs", Some("text/plain"), job.as_str()).await.json();
    assert!(!again.changed, "the same job file twice is no change: {again:?}");

    let view: JobView = hub.get("/api/v1/jobs/whoami").await;
    assert_eq!(view.groups.len(), 1);
    let versions: Vec<JobVersion> = hub.get("/api/v1/jobs/whoami/versions").await;
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [0]);
    assert_eq!(versions[0].job.id, "whoami");

    let stop: JobStopped = hub.must("DELETE", "/api/v1/jobs/whoami", None, "").await.json();
    assert!(stop.changed && stop.index > sub.index, "{stop:?} after {sub:?}");
    let twice: JobStopped = hub.must("DELETE", "/api/v1/jobs/whoami", None, "").await.json();
    assert!(!twice.changed, "stopping a stopped job changes nothing: {twice:?}");
    hub.stop().await.unwrap();
}
