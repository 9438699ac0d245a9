//! The allocation runtime with real processes: success, failure with its reason,
//! lifecycle order, restarts, and stopping.

use super::*;
use rabble_shared::alloc::AllocPort;
use rabble_shared::job::{JobType, Lifecycle, Resources, RestartMode, RestartPolicy};
use rabble_shared::msg::OsFacts;

fn facts() -> NodeFacts {
    NodeFacts {
        name: "pi".into(),
        hostname: "pi".into(),
        arch: "aarch64".into(),
        os: OsFacts { name: "Debian".into(), version: "12".into(), kernel: "6.6".into() },
        cpus: 4,
        memory_bytes: 1 << 30,
        disks: vec![],
        addresses: vec![],
        advertise: "10.0.0.7".into(),
        agent_version: "0".into(),
        node_class: "pi4".into(),
        datacenter: "home".into(),
        meta: Default::default(),
        drivers: Default::default(),
        host_volumes: Default::default(),
        cpu_total_mhz: None,
        tls_lanes: Vec::new(),
        interfaces: Default::default(),
        alloc_dir: String::new(),
        storage: Vec::new(),
    }
}

fn task(name: &str, script: &str, attempts: u32, hook: Option<Hook>) -> Task {
    Task {
        name: name.into(),
        driver: "raw_exec".into(),
        config: serde_json::json!({"command": "/bin/sh", "args": ["-c", script]}).as_object().unwrap().clone(),
        env: [("GREETING".to_owned(), "hi ${node.class} ${NOMAD_PORT_http}".to_owned())].into(),
        user: None,
        resources: Resources::DEFAULT,
        kill_timeout_ms: 2_000,
        kill_signal: None,
        lifecycle: hook.map(|hook| Lifecycle { hook, sidecar: false }),
        services: vec![],
        constraints: vec![],
        volume_mounts: vec![],
        restart: RestartPolicy { attempts, interval_ms: 60_000, delay_ms: 100, mode: RestartMode::Fail },
        meta: Default::default(),
        templates: vec![],
        dispatch_payload: None,
        secret_paths: vec![],
    }
}

fn assignment(id: &str, kind: JobType, tasks: Vec<Task>) -> Assignment {
    Assignment {
        alloc: AllocId::new(id).unwrap(),
        name: "j.g[0]".into(),
        job_id: "j".into(),
        job_version: 0,
        kind,
        group: "g".into(),
        index: 0,
        ports: vec![AllocPort { label: "http".into(), value: 23456, to: None }],
        network_mode: "host".into(),
        services: vec![],
        tasks,
        volumes: Default::default(),
        csi_volumes: Default::default(),
        restart: 0,
    }
}

struct Rig {
    allocs: Allocs,
    exits: mpsc::Receiver<TaskExit>,
    facts: NodeFacts,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let (tx, exits) = mpsc::channel(16);
        let cfg = Settings {
            node: NodeId::new("pi").unwrap(),
            alloc_dir: dir.path().to_owned(),
            cgroups: false,
            host_volumes: Default::default(),
        };
        Rig { allocs: Allocs::new(cfg, tx), exits, facts: facts(), _dir: dir }
    }

    fn assign(&mut self, seq: u64, allocs: Vec<Assignment>) {
        let set = Assignments { node: NodeId::new("pi").unwrap(), seq, issued_ms: 0, allocs };
        self.allocs.assign(set, &self.facts, Instant::now());
    }

    /// Drives exits and ticks until the allocation reaches `want` (or 10 s pass).
    async fn until(&mut self, id: &str, want: ClientStatus) -> AllocState {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = self.allocs.all_states().into_iter().find(|s| s.id.as_str() == id);
            if let Some(st) = st.filter(|s| s.status == want) {
                return st;
            }
            assert!(Instant::now() < deadline, "{id} never became {want:?}");
            tokio::select! {
                Some(x) = self.exits.recv() => self.allocs.on_exit(x, &self.facts, Instant::now()),
                _ = tokio::time::sleep(Duration::from_millis(50)) => self.allocs.tick(&self.facts, Instant::now()),
            }
        }
    }
}

#[tokio::test]
async fn a_batch_task_completes_and_sees_nomads_environment() {
    let mut r = Rig::new();
    let script =
        r#"test "$GREETING" = "hi pi4 23456" && test "$NOMAD_ALLOC_NAME" = "j.g[0]" && test -d "$NOMAD_TASK_DIR""#;
    r.assign(1, vec![assignment("a1", JobType::Batch, vec![task("t", script, 0, None)])]);
    let st = r.until("a1", ClientStatus::Complete).await;
    assert_eq!(st.tasks["t"].exit_code, Some(0), "{st:?}");
}

#[tokio::test]
async fn a_failure_is_restarted_by_policy_then_reported_with_its_reason() {
    let mut r = Rig::new();
    r.assign(1, vec![assignment("a2", JobType::Batch, vec![task("t", "echo 'no database' >&2; exit 3", 2, None)])]);
    let st = r.until("a2", ClientStatus::Failed).await;
    assert_eq!(st.tasks["t"].restarts, 2, "two restarts, then out of attempts: {st:?}");
    assert!(st.reason.contains("exited with code 3: no database"), "{}", st.reason);
}

#[tokio::test]
async fn prestart_runs_first_and_a_stopped_allocation_is_reported_then_cleared() {
    let mut r = Rig::new();
    let pre = task("pre", r#"touch "$NOMAD_ALLOC_DIR/ready""#, 0, Some(Hook::Prestart));
    let main = task("main", r#"test -f "$NOMAD_ALLOC_DIR/ready" && exec sleep 30"#, 0, None);
    r.assign(1, vec![assignment("a3", JobType::Service, vec![pre, main])]);
    let st = r.until("a3", ClientStatus::Running).await;
    assert_eq!(st.tasks["pre"].state, "dead");
    r.allocs.reports();
    r.assign(2, vec![]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reports = Vec::new();
    while !r.allocs.is_empty() {
        assert!(Instant::now() < deadline, "never stopped");
        tokio::select! {
            Some(x) = r.exits.recv() => r.allocs.on_exit(x, &r.facts, Instant::now()),
            _ = tokio::time::sleep(Duration::from_millis(50)) => r.allocs.tick(&r.facts, Instant::now()),
        }
        reports.extend(r.allocs.reports());
    }
    let last_two: Vec<Option<ClientStatus>> =
        reports.iter().rev().take(2).map(|(_, s)| s.as_ref().map(|s| s.status)).collect();
    assert_eq!(last_two, [None, Some(ClientStatus::Complete)], "the final state, then the topic cleared");
}

#[tokio::test]
async fn an_operators_restart_restarts_running_tasks_in_place() {
    let mut r = Rig::new();
    // Each start appends a line: two lines once restarted.
    let starts = r.allocs.cfg.alloc_dir.join("starts");
    let script = format!("echo start >> '{}'; exec sleep 30", starts.display());
    let mut a = assignment("a4", JobType::Service, vec![task("main", &script, 0, None)]);
    r.assign(1, vec![a.clone()]);
    r.until("a4", ClientStatus::Running).await;
    // Running is reported once the process is spawned: wait for its first line.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&starts).unwrap_or_default().lines().count() < 1 {
        assert!(Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.restart = 1;
    r.assign(2, vec![a.clone()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    loop {
        let st = r.allocs.all_states().into_iter().find(|s| s.id.as_str() == "a4").unwrap();
        events.push(st.tasks["main"].event.clone());
        let lines = std::fs::read_to_string(&starts).unwrap_or_default().lines().count();
        if lines == 2 && st.status == ClientStatus::Running {
            assert_eq!(st.tasks["main"].restarts, 0, "not counted against the restart policy");
            break;
        }
        assert!(Instant::now() < deadline, "not restarted: {lines} starts, {events:?}");
        tokio::select! {
            Some(x) = r.exits.recv() => r.allocs.on_exit(x, &r.facts, Instant::now()),
            _ = tokio::time::sleep(Duration::from_millis(50)) => r.allocs.tick(&r.facts, Instant::now()),
        }
    }
    assert_eq!(events.last().map(String::as_str), Some("restarted: asked by an operator (restart 1)"), "{events:?}");
    // The same number again: nothing happens.
    r.assign(3, vec![a]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(std::fs::read_to_string(&starts).unwrap().lines().count(), 2);
    r.assign(4, vec![]);
}

/// `a` using the named volume `source` (csi) at `/data`, found at `backing`.
fn with_volume(mut a: Assignment, source: &str, backing: rabble_shared::volume::Backing) -> Assignment {
    use rabble_shared::job::{Volume, VolumeMount};
    let v = Volume { source: source.into(), read_only: false, kind: "csi".into(), access_mode: String::new() };
    a.volumes.insert("data".into(), v);
    a.csi_volumes.insert(source.into(), backing.attach());
    for t in &mut a.tasks {
        t.volume_mounts = vec![VolumeMount { volume: "data".into(), destination: "/data".into(), read_only: false }];
    }
    a
}

#[tokio::test]
async fn a_named_volume_is_linked_into_a_process_task_or_fails_the_allocation_with_why() {
    use rabble_shared::volume::Backing;
    let mut r = Rig::new();
    let disk = tempfile::tempdir().unwrap();
    let host = Backing::Host { path: disk.path().display().to_string(), nodes: vec!["pi".into()] };
    let write = task("t", r#"echo "from $NOMAD_ALLOC_ID" > data/state"#, 0, None);
    r.assign(1, vec![with_volume(assignment("v1", JobType::Batch, vec![write]), "disk", host)]);
    let st = r.until("v1", ClientStatus::Complete).await;
    assert_eq!(st.tasks["t"].exit_code, Some(0), "{st:?}");
    assert_eq!(std::fs::read_to_string(disk.path().join("state")).unwrap(), "from v1\n", "written through the link");
    // A local volume whose directory is missing fails at once, saying which.
    let gone = Backing::Local { node: "pi".into(), path: "/nonexistent/rabble".into() };
    r.assign(2, vec![with_volume(assignment("v2", JobType::Batch, vec![task("t", "true", 0, None)]), "db", gone)]);
    let st = r.until("v2", ClientStatus::Failed).await;
    assert_eq!(st.reason, "volume \"db\": /nonexistent/rabble is not a directory on this node");
    assert_eq!(st.tasks["t"].event, st.reason);
    // An export that cannot be mounted here (no NFS client on this kernel, not root, or
    // nothing on port 1: each a reason) fails the allocation with the mount's words.
    let nfs = Backing::Nfs { server: "127.0.0.1".into(), path: "/nothing".into(), options: "port=1".into() };
    r.assign(3, vec![with_volume(assignment("v3", JobType::Batch, vec![task("t", "true", 0, None)]), "media", nfs)]);
    let st = r.until("v3", ClientStatus::Failed).await;
    assert!(st.reason.starts_with("volume \"media\": mount 127.0.0.1:/nothing: "), "{}", st.reason);
    assert!(!r.allocs.cfg.alloc_dir.join(".volumes/media").read_dir().unwrap().any(|_| true), "nothing mounted");
    r.assign(4, vec![]);
}
