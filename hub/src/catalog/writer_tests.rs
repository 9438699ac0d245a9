//! The writer at its boundary, in process and in paused time: what it commits, in
//! which order readers hear of it, how it answers inputs, and when nodes go down.

use super::*;
use crate::catalog::Store;
use crate::stats::Stats;
use rabble_shared::TopicId;
use rabble_shared::api::Event;
use rabble_shared::msg::ServiceRegistration;
use tokio::sync::broadcast;

/// Records each ack with the snapshot index visible when it was made.
#[derive(Clone, Default)]
struct Recorder {
    acks: Arc<Mutex<Vec<(u32, u64)>>>,
    snapshot: Arc<Mutex<Option<watch::Receiver<Arc<Catalog>>>>>,
}

impl Acker for Recorder {
    type Token = u32;
    async fn ack(&self, token: u32) {
        let seen = self.snapshot.lock().unwrap().as_ref().map_or(0, |s| s.borrow().index);
        self.acks.lock().unwrap().push((token, seen));
    }
}

/// Records the index of every catalog it is shown, and what the snapshot said then.
struct Witness {
    seen: Mutex<Vec<(u64, u64)>>,
    snapshot: watch::Receiver<Arc<Catalog>>,
}

impl Observer for Witness {
    fn committed(&self, catalog: &Arc<Catalog>) {
        self.seen.lock().unwrap().push((catalog.index, self.snapshot.borrow().index));
    }
}

struct Harness {
    tx: mpsc::Sender<Input<u32>>,
    snapshot: watch::Receiver<Arc<Catalog>>,
    recorder: Recorder,
    witness: Arc<Witness>,
    stats: Arc<Stats>,
    events: broadcast::Receiver<Event>,
    task: tokio::task::JoinHandle<()>,
    live: LiveMap,
    dir: tempfile::TempDir,
}

fn start(ttl: Duration) -> Harness {
    start_in(tempfile::tempdir().unwrap(), ttl, ttl)
}

/// A writer on the catalog in `dir` (a hub start), with its heartbeat TTL and restart grace.
fn start_in(dir: tempfile::TempDir, ttl: Duration, restart_grace: Duration) -> Harness {
    let (store, catalog) = Store::open(dir.path()).unwrap();
    let (snap_tx, snapshot) = watch::channel(Arc::new(catalog.clone()));
    let (tx, rx) = mpsc::channel(1024);
    let (events, events_rx) = broadcast::channel(1024);
    let recorder = Recorder::default();
    *recorder.snapshot.lock().unwrap() = Some(snapshot.clone());
    let witness = Arc::new(Witness { seen: Mutex::new(vec![]), snapshot: snapshot.clone() });
    let stats = Arc::new(Stats::default());
    let live = LiveMap::default();
    let applier = crate::catalog::apply::Applier {
        store: Arc::new(store),
        observers: vec![witness.clone() as Arc<dyn Observer>],
        catalog,
        snapshot: snap_tx,
        events,
        stats: stats.clone(),
    };
    let writer = Writer {
        commit: Commit::Local(Box::new(applier)),
        rx,
        acker: recorder.clone(),
        heartbeat_ttl: ttl,
        restart_grace,
        snapshot: snapshot.clone(),
        live: live.clone(),
    };
    let task = tokio::spawn(writer.run());
    Harness { tx, snapshot, recorder, witness, stats, events: events_rx, task, live, dir }
}

fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn service(n: &str, name: &str) -> Update {
    let reg = ServiceRegistration {
        id: name.into(),
        name: name.into(),
        tags: vec![],
        address: None,
        port: Some(80),
        meta: Default::default(),
        source: String::new(),
    };
    Update::Node(node(n), NodeUpdate::Service(TopicId::new(name).unwrap(), Some(reg)))
}

fn input(update: Update, done: Done<u32>) -> Input<u32> {
    Input { source: "test".into(), update: Some(update), done }
}

async fn reply(h: &Harness, update: Update) -> Result<Committed, CommitFailed> {
    let (tx, rx) = oneshot::channel();
    h.tx.send(input(update, Done::Reply(tx))).await.unwrap();
    rx.await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn observers_then_snapshot_then_acks() {
    let mut h = start(Duration::from_secs(15));
    h.tx.send(input(service("a", "web"), Done::Ack(1))).await.unwrap();
    h.tx.send(input(service("a", "web"), Done::Ack(2))).await.unwrap();
    h.tx.send(input(service("b", "db"), Done::Nothing)).await.unwrap();
    let r = reply(&h, service("b", "db")).await.unwrap();
    assert_eq!(
        r,
        Committed { index: 1, changed: false, txn: None },
        "queued together: one batch, and the copy changed nothing"
    );
    assert_eq!(*h.witness.seen.lock().unwrap(), vec![(1, 0)], "the observer saw index 1 before the snapshot did");
    assert_eq!(*h.recorder.acks.lock().unwrap(), vec![(1, 1), (2, 1)], "acks come after the snapshot moved");
    assert_eq!(h.snapshot.borrow().instance_count(), 2);
    assert_eq!(h.stats.snapshot().commits, 1, "one batch, one commit");
    let e = h.events.try_recv().unwrap();
    assert_eq!((e.index, e.topic.as_str()), (1, "test"));
    drop(h.tx);
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn inputs_without_an_update_are_acked_in_order_with_the_rest() {
    let h = start(Duration::from_secs(15));
    h.tx.send(input(service("a", "web"), Done::Ack(1))).await.unwrap();
    h.tx.send(Input { source: "rabble/hub/status".into(), update: None, done: Done::Ack(2) }).await.unwrap();
    h.tx.send(input(service("a", "db"), Done::Ack(3))).await.unwrap();
    reply(&h, service("a", "db")).await.unwrap();
    let order: Vec<u32> = h.recorder.acks.lock().unwrap().iter().map(|(t, _)| *t).collect();
    assert_eq!(order, [1, 2, 3], "rumqttd drops a client whose acks come out of order");
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_update_writes_nothing_and_says_so() {
    let h = start(Duration::from_secs(15));
    assert_eq!(reply(&h, service("a", "web")).await.unwrap(), Committed { index: 1, changed: true, txn: None });
    assert_eq!(reply(&h, service("a", "web")).await.unwrap(), Committed { index: 1, changed: false, txn: None });
    assert_eq!(reply(&h, service("a", "db")).await.unwrap(), Committed { index: 2, changed: true, txn: None });
    assert_eq!(h.stats.snapshot().commits, 2);
}

fn heartbeat(n: &str) -> Update {
    let hb = Heartbeat {
        seq: 1,
        uptime_s: 1,
        cpu_percent: 0.0,
        load: [0.0; 3],
        memory_used_bytes: 0,
        memory_total_bytes: 0,
        disks: vec![],
        temperature_c: None,
        throttled: None,
        assignments_refused: 0,
        metrics: None,
    };
    Update::Node(node(n), NodeUpdate::Heartbeat(hb))
}

fn status(h: &Harness, n: &str) -> (NodeStatus, String) {
    let s = h.snapshot.borrow();
    (s.nodes[&node(n)].status, s.nodes[&node(n)].reason.clone())
}

#[tokio::test(start_paused = true)]
async fn a_silent_node_goes_down_after_the_ttl_and_a_heartbeat_brings_it_back() {
    let h = start(Duration::from_secs(3));
    reply(&h, service("a", "web")).await.unwrap();
    reply(&h, service("b", "web")).await.unwrap();
    // b keeps beating; a is silent.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        h.tx.send(input(heartbeat("b"), Done::Nothing)).await.unwrap();
    }
    assert_eq!(status(&h, "a"), (NodeStatus::Down, "heartbeat-timeout".to_owned()));
    assert_eq!(status(&h, "b").0, NodeStatus::Up);
    reply(&h, Update::Node(node("a"), NodeUpdate::Online)).await.unwrap();
    assert_eq!(status(&h, "a"), (NodeStatus::Up, "online".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn the_writer_stops_when_its_inputs_are_gone_after_committing_them() {
    let h = start(Duration::from_secs(15));
    for i in 0..10 {
        h.tx.send(input(service("a", &format!("s{i}")), Done::Ack(i))).await.unwrap();
    }
    drop(h.tx);
    h.task.await.unwrap();
    assert_eq!(h.snapshot.borrow().instance_count(), 10);
    assert_eq!(h.recorder.acks.lock().unwrap().len(), 10);
}

/// After a hub start, nodes the catalog has up get the restart grace (an agent in its
/// reconnect backoff is not down after one heartbeat TTL), unheard meanwhile; an
/// operator's command is not hearing from the node; once the grace is over a silent node
/// is down, and a node that spoke is judged by the heartbeat TTL again.
#[tokio::test(start_paused = true)]
async fn after_a_restart_known_nodes_get_the_restart_grace() {
    let h = start(Duration::from_secs(4));
    for n in ["a", "b", "c"] {
        reply(&h, service(n, "web")).await.unwrap();
    }
    drop(h.tx);
    h.task.await.unwrap();
    let h = start_in(h.dir, Duration::from_secs(4), Duration::from_secs(35));
    let heard = |n: &str| h.live.lock().unwrap()[&node(n)].heard;
    reply(&h, heartbeat("b")).await.unwrap();
    reply(&h, Update::Node(node("c"), NodeUpdate::Eligibility(false))).await.unwrap();
    assert!(heard("b"));
    assert!(!heard("a") && !heard("c"), "a drain or eligibility is not the node speaking");
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(status(&h, "a").0, NodeStatus::Up, "still within the restart grace");
    assert_eq!(status(&h, "c").0, NodeStatus::Up);
    assert_eq!(status(&h, "b"), (NodeStatus::Down, "heartbeat-timeout".to_owned()), "heard: the TTL again");
    tokio::time::sleep(Duration::from_secs(16)).await;
    assert_eq!(status(&h, "a"), (NodeStatus::Down, "heartbeat-timeout".to_owned()));
    assert_eq!(status(&h, "c").0, NodeStatus::Down);
}
