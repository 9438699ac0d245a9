//! What only a leading hub runs: the broker nodes connect to, ingest (MQTT in), the
//! scheduler, dispatch, templates, ACME, and the publishers of retained state (routes,
//! the DNS zone, public KV). A single hub runs them from its start; a cluster member from
//! the moment it leads ([`Leading::when_leading`]), and a member that stops leading stops
//! (its process is restarted as a follower: see `cluster`'s invariant).

use crate::topology::{Stage, Topology};
use crate::{HubError, WriterTx, acme, alloc_logs, auth, broker, cluster, config, dispatch, dnsmirror, ingest};
use crate::{kvmirror, render, routes, scheduler, stats};
use rumqttc::{AsyncClient, EventLoop};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub struct Leading {
    pub cfg: config::Config,
    pub mqtts: Option<tokio::net::TcpListener>,
    pub creds: Arc<auth::Authenticator>,
    pub client: AsyncClient,
    pub eventloop: EventLoop,
    pub key: Arc<dispatch::sign::SigningKey>,
    pub seal: Arc<rabble_shared::support::seal::SealKey>,
    pub snapshot: watch::Receiver<Arc<crate::catalog::Catalog>>,
    pub writer: WriterTx,
    pub sched: watch::Sender<Arc<scheduler::task::SchedStatus>>,
    pub connects: (watch::Sender<u64>, watch::Receiver<u64>),
    pub routes: watch::Receiver<routes::Tables>,
    pub certs: watch::Sender<acme::Status>,
    pub waits: watch::Sender<render::Waits>,
    pub dns: Arc<crate::dns::DnsServer>,
    pub stats: Arc<stats::Stats>,
    pub connected: Arc<AtomicBool>,
    pub proxy: ingest::ProxyMap,
    pub logs: Arc<alloc_logs::LogHub>,
    /// Each node's last heartbeat (the alert rules read them).
    pub live: crate::catalog::writer::LiveMap,
    /// The hub cluster this hub leads, when it is a member of one (the alert rules read it).
    pub cluster: Option<cluster::Cluster>,
}

impl Leading {
    /// Starts the broker and spawns every leader task into `topo`.
    pub async fn spawn(self, topo: &mut Topology) -> Result<(), HubError> {
        let Leading { cfg, mqtts, creds, client, eventloop, key, seal, snapshot, writer, .. } = self;
        // Credentials may have arrived from the leader while this hub followed.
        creds.refresh().ok();
        broker::session::start(&cfg, mqtts, topo, &creds).await?;
        let (snapshot_for_summaries, live_for_summaries) = (snapshot.clone(), self.live.clone());
        let alerter = crate::alert::Alerter {
            cfg: cfg.alert.clone(),
            snapshot: snapshot.clone(),
            live: self.live,
            sched: self.sched.subscribe(),
            writer: writer.clone(),
            certs: self.certs.subscribe(),
            cluster: self.cluster.clone(),
            metrics: Some(crate::alert::MetricsInputs {
                stats: self.stats.clone(),
                dns: self.dns.clone(),
                routes: self.routes.clone(),
                proxy: self.proxy.clone(),
            }),
        };
        topo.spawn("alerts", Stage::Doors, |stop| alerter.run(stop));
        if cfg.alert.mqtt.is_some() {
            let mirror = crate::alert::mqtt::AlertMirror {
                receivers: cfg.alert.receiver_names(),
                ui_url: cfg.alert.ui_url.clone(),
                snapshot: snapshot.clone(),
                client: client.clone(),
                connects: self.connects.1.clone(),
            };
            topo.spawn("alert-mirror", Stage::Doors, |stop| mirror.run(stop));
        }
        let scheduler =
            scheduler::task::Scheduler { snapshot: snapshot.clone(), writer: writer.clone(), status: self.sched };
        topo.spawn("scheduler", Stage::Inputs, |stop| scheduler.run(stop));
        let (connects_tx, connects_rx) = self.connects;
        let publisher =
            routes::Publisher { tables: self.routes.clone(), client: client.clone(), connects: connects_rx.clone() };
        topo.spawn("routes", Stage::Doors, |stop| publisher.run(stop));
        let acme = acme::Acme {
            resolvers: cfg.resolvers.clone(),
            data_dir: cfg.data_dir.clone(),
            seal: seal.clone(),
            tables: self.routes,
            snapshot: snapshot.clone(),
            client: client.clone(),
            connects: connects_rx.clone(),
            status: self.certs,
            keys: creds.clone(),
        };
        topo.spawn("acme", Stage::Doors, |stop| acme.run(stop));
        let renderer = render::Renderer {
            snapshot: snapshot.clone(),
            client: client.clone(),
            key: key.clone(),
            seal,
            keys: creds,
            connects: connects_rx.clone(),
            writer: writer.clone(),
            waits: self.waits,
        };
        topo.spawn("templates", Stage::Doors, |stop| renderer.run(stop));
        if !cfg.kv_public.is_empty() {
            let mirror = kvmirror::KvMirror {
                public: cfg.kv_public.clone(),
                snapshot: snapshot.clone(),
                client: client.clone(),
                connects: connects_rx.clone(),
            };
            topo.spawn("kv-mirror", Stage::Doors, |stop| mirror.run(stop));
        }
        let dns_mirror = dnsmirror::DnsMirror {
            dns: self.dns,
            snapshot: snapshot.clone(),
            client: client.clone(),
            connects: connects_rx.clone(),
        };
        topo.spawn("dns-mirror", Stage::Doors, |stop| dns_mirror.run(stop));
        let forgetter = crate::forget::Forgetter {
            snapshot: snapshot.clone(),
            client: client.clone(),
            writer: writer.clone(),
            threshold: cfg.node_gc_threshold,
        };
        topo.spawn("forget", Stage::Doors, |stop| forgetter.run(stop));
        let dispatch = dispatch::Dispatch { snapshot, client: client.clone(), key, connects: connects_rx.clone() };
        topo.spawn("dispatch", Stage::Doors, |stop| dispatch.run(stop));
        let (ha_online_tx, ha_online) = watch::channel(0u64);
        let summaries = crate::homeassistant::Summaries {
            snapshot: snapshot_for_summaries,
            live: live_for_summaries,
            client: client.clone(),
            connects: connects_rx.clone(),
            ha: cfg.homeassistant.clone(),
            ha_online,
            ui_url: cfg.alert.ui_url.clone(),
        };
        topo.spawn("summaries", Stage::Doors, |stop| summaries.run(stop));
        let ha_status =
            cfg.homeassistant.as_ref().map(|ha| (rabble_core::homeassistant::status_topic(&ha.prefix), ha_online_tx));
        let ingest = ingest::Ingest {
            ha_status,
            proxy: self.proxy,
            client,
            tx: writer,
            stats: self.stats,
            connected: self.connected,
            connects: connects_tx,
            logs: self.logs,
        };
        topo.spawn("ingest", Stage::Inputs, |stop| ingest.run(eventloop, stop));
        Ok(())
    }

    /// A cluster member's leader tasks: started when it leads (confirmed by a quorum), in a
    /// topology of their own; when it stops leading they stop, `stepped_down` is set and the
    /// task ends (so the hub stops, and is restarted to follow).
    pub async fn when_leading(
        self,
        member: cluster::Cluster,
        stepped_down: Arc<AtomicBool>,
        stop: CancellationToken,
    ) -> Result<(), HubError> {
        let mut gate = member.gate();
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = gate.until_leading() => {}
            }
            if member.confirm_leading().await {
                break;
            }
            tracing::info!("elected, but a quorum does not confirm it yet; waiting");
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
            }
        }
        tracing::info!("this hub leads the cluster: starting the broker, ingest, the scheduler and the publishers");
        let mut tasks = Topology::default();
        self.spawn(&mut tasks).await?;
        let mut lost = false;
        let since = tokio::time::Instant::now();
        let ended = tasks
            .run_until(async {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = gate.until_not_leading() => lost = true,
                    () = cut_off(&member, since) => lost = true,
                }
            })
            .await;
        ended?;
        if lost {
            stepped_down.store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::warn!("this hub no longer leads the cluster; it stops, to start again as a follower");
        }
        Ok(())
    }
}

/// Resolves when a quorum has not acknowledged this leader for `cluster::LEADER_SILENT`: it
/// is cut off from the others, who elect another leader — it must not keep the nodes.
async fn cut_off(member: &cluster::Cluster, since: tokio::time::Instant) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(300));
    loop {
        tick.tick().await;
        if member.voters() < 2 {
            continue; // a cluster of one is its own quorum
        }
        let silence = member.quorum_silence().unwrap_or_else(|| since.elapsed());
        if silence > cluster::LEADER_SILENT {
            tracing::warn!(?silence, "no quorum has acknowledged this leader; stepping down");
            return;
        }
    }
}
