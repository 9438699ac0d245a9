//! The catalog writer through the API: what it acknowledged is durable across a
//! restart on the same data dir, check-and-set holds, and sealed variables never reach
//! the disk in clear.

use rabble_shared::api::{JobView, VarMeta};
use rabble_shared::consul::KvPair;
use rabble_tests::inproc::InProcHub;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_writer_acknowledged_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let hub = InProcHub::start_in(data.clone()).await;

    // KV with Consul's check-and-set: create-only (cas=0) wins once.
    let put = |q: &'static str, v: &'static str| hub.must("PUT", q, None, v);
    assert_eq!(put("/v1/kv/app/config?cas=0", "one").await.body.trim(), "true");
    assert_eq!(put("/v1/kv/app/config?cas=0", "two").await.body.trim(), "false");
    let pairs: Vec<KvPair> = hub.get("/v1/kv/app/config").await;
    let modify = pairs[0].modify_index;
    assert_eq!(put_cas(&hub, modify + 1, "stale").await, "false");
    assert_eq!(put_cas(&hub, modify, "three").await, "true");

    // A sealed variable, and a job.
    let secret = "hunter2-in-process";
    let body = format!(r#"{{"Items": {{"password": "{secret}"}}}}"#);
    let a = hub.must("PUT", "/v1/var/nomad/jobs/web", Some("application/json"), body).await;
    assert_eq!(a.status, 200, "{a:?}");
    let job = rabble_tests::inproc::batch_job("batch1");
    let a = hub.must("POST", "/api/v1/jobs", Some("text/plain"), job.as_str()).await;
    assert_eq!(a.status, 200, "{a:?}");
    hub.stop().await.unwrap();

    // Nothing of the variable's value in the data dir's files.
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds the secret",
                path.display()
            );
        }
    }

    let hub = InProcHub::start_in(data).await;
    let pairs: Vec<KvPair> = hub.get("/v1/kv/app/config").await;
    assert_eq!(pairs[0].value.as_deref(), Some("dGhyZWU="), "{pairs:?}"); // "three"
    let var: VarMeta = hub.get("/v1/var/nomad/jobs/web").await;
    assert_eq!(var.items.unwrap()["password"], secret);
    let job: JobView = hub.get("/api/v1/jobs/batch1").await;
    assert_eq!(job.groups[0].name, "g");
    hub.stop().await.unwrap();
}

async fn put_cas(hub: &InProcHub, cas: u64, value: &str) -> String {
    hub.must("PUT", &format!("/v1/kv/app/config?cas={cas}"), None, value).await.body.trim().to_owned()
}
