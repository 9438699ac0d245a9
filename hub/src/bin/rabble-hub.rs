//! The `rabble-hub` binary: the embedded broker, the catalog and the HTTP API; and its
//! offline administration (`node add|revoke|list`, `tls init`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use rabble_hub::admin;
use rabble_hub::config::{Config, Flags};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "rabble-hub", version, about = "Rabble's hub: MQTT broker, catalog and HTTP API")]
struct Cli {
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Node credentials for the MQTT broker (in <data_dir>/credentials.json).
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
    /// TLS for MQTT.
    Tls {
        #[command(subcommand)]
        cmd: TlsCmd,
    },
    /// Print the public key agents verify assignments with (their `hub_key`).
    Key,
    /// ACL tokens for the HTTP API.
    Acl {
        #[command(subcommand)]
        cmd: AclCmd,
    },
    /// The hub cluster: a key for it, its state, members leaving.
    Cluster {
        #[command(subcommand)]
        cmd: ClusterCmd,
    },
    /// Make this machine (a Debian container or VM, as root) a hub: user, directories,
    /// config, TLS, the systemd unit; enable and start it. Re-run to upgrade.
    Install {
        /// Install the files under this directory instead (no user, no systemd).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// A DNS name or IP address nodes reach the hub at (repeatable), for its certificate.
        #[arg(long = "name")]
        names: Vec<String>,
    },
}

#[derive(Subcommand)]
enum NodeCmd {
    /// Issue a token for a node; prints it (once) on stdout.
    Add {
        name: String,
        /// A read-only watcher (mosquitto_sub, Home Assistant): may subscribe to rabble/#,
        /// may not publish.
        #[arg(long)]
        observer: bool,
        /// Issue a join token instead (single use, short-lived; for `rabble image`): the
        /// node trades it for its own credential at its first connect.
        #[arg(long, conflicts_with = "observer")]
        join: bool,
        /// How long a join token stays valid.
        #[arg(long, default_value = "24h", requires = "join")]
        ttl: rabble_shared::support::duration::GoDuration,
    },
    /// Refuse a node's token from its next connection on.
    Revoke { name: String },
    /// List nodes with credentials.
    List,
}

#[derive(Subcommand)]
enum AclCmd {
    /// Make the first management token (once) on the running hub; from then on the API
    /// wants a token, loopback included. Prints the secret once, or writes it to a file.
    Bootstrap {
        /// Write the secret here (mode 0600) instead of printing it.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Print a new cluster key (base64); every hub of the cluster gets the same, in the
    /// file `cluster_key_file` names (mode 0600).
    Keygen,
    /// Members, their roles, the leader, how far each is (asks the running hub).
    Status,
    /// This hub leaves the cluster (asks the running hub; the others go on without it).
    Leave,
    /// Remove a member that is gone for good (by id or name, from `cluster status`).
    RemovePeer { member: String },
    /// With the hub stopped: make this hub a cluster of one, with its catalog, at its next
    /// start — for a cluster that lost its quorum for good. The other hubs must then be
    /// emptied (their data dir removed) and started again to join it.
    Reset,
}

#[derive(Subcommand)]
enum TlsCmd {
    /// Create a private CA and a hub certificate signed by it.
    Init {
        /// Where to write ca.pem, ca.key, hub.pem, hub.key.
        #[arg(long, default_value = "/etc/rabble/tls")]
        dir: PathBuf,
        /// A DNS name or IP address agents use to reach the hub (repeatable); the host's
        /// name, localhost and loopback are always included.
        #[arg(long = "name")]
        names: Vec<String>,
    },
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("rabble-hub: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let Some(cmd) = cli.cmd else { return serve(cli.flags) };
    let data_dir = || Config::resolve(cli.flags.clone()).context("configuration").map(|c| c.data_dir);
    let mut out = std::io::stdout().lock();
    match cmd {
        Cmd::Node { cmd: NodeCmd::Add { name, join: true, ttl, .. } } => {
            admin::node_join(&data_dir()?, &name, ttl.0, &mut out)?
        }
        Cmd::Node { cmd: NodeCmd::Add { name, observer, .. } } => {
            admin::node_add(&data_dir()?, &name, observer, &mut out)?
        }
        Cmd::Node { cmd: NodeCmd::Revoke { name } } => admin::node_revoke(&data_dir()?, &name)?,
        Cmd::Node { cmd: NodeCmd::List } => admin::node_list(&data_dir()?, &mut out)?,
        Cmd::Tls { cmd: TlsCmd::Init { dir, names } } => drop(admin::tls_init(&dir, &names)?),
        Cmd::Key => admin::hub_key(&data_dir()?, &mut out)?,
        Cmd::Cluster { cmd } => {
            let http = || Config::resolve(cli.flags.clone()).context("configuration").map(|c| c.http_listen);
            match cmd {
                ClusterCmd::Keygen => admin::cluster::keygen(&mut out)?,
                ClusterCmd::Status => admin::cluster::status(http()?, &mut out)?,
                ClusterCmd::Leave => admin::cluster::remove(http()?, None, &mut out)?,
                ClusterCmd::RemovePeer { member } => admin::cluster::remove(http()?, Some(&member), &mut out)?,
                ClusterCmd::Reset => admin::cluster::reset(&data_dir()?, &mut out)?,
            }
        }
        Cmd::Acl { cmd: AclCmd::Bootstrap { token_file } } => {
            let http = Config::resolve(cli.flags.clone()).context("configuration")?.http_listen;
            let wait = std::time::Duration::from_secs(30);
            drop(admin::acl_bootstrap(http, token_file.as_deref(), wait, &mut out)?)
        }
        Cmd::Install { root, names } => {
            let binary = std::env::current_exe().context("finding this program")?;
            drop(rabble_hub::install::install(&rabble_hub::install::Options { root, binary, names }, &mut out)?)
        }
    }
    Ok(())
}

fn serve(flags: Flags) -> anyhow::Result<()> {
    rabble_hub::init_logging();
    let cfg = Config::resolve(flags).context("configuration")?;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("tokio runtime")?;
    let witness = cfg.cluster.as_ref().is_some_and(|c| c.witness);
    let ended = rt.block_on(async {
        if witness {
            return rabble_hub::run_witness(cfg, rabble_hub::shutdown_signal()).await.map_err(anyhow::Error::from);
        }
        let listeners = rabble_hub::Listeners::bind(&cfg).await?;
        rabble_hub::run(cfg, listeners, rabble_hub::shutdown_signal()).await.map_err(anyhow::Error::from)
    });
    if let Err(e) = &ended
        && matches!(e.downcast_ref::<rabble_hub::HubError>(), Some(rabble_hub::HubError::SteppedDown))
    {
        // A member that stopped leading starts again as a follower, in a fresh process:
        // nothing of its term (the broker's retained state, leader tasks) survives.
        tracing::warn!("{e:#}");
        drop(rt);
        let exe = std::env::current_exe().context("finding this program")?;
        let err =
            std::os::unix::process::CommandExt::exec(std::process::Command::new(exe).args(std::env::args_os().skip(1)));
        return Err(anyhow::Error::from(err).context("restarting to follow"));
    }
    ended
}
