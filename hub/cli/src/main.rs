//! The `rabble` operator CLI.

use clap::{Parser, Subcommand};
use rabble_cli::{self as cli, Client, dev::DevArgs};

#[derive(Parser)]
#[command(name = "rabble", version, about = "Rabble's operator CLI")]
struct Cli {
    /// The hub's HTTP API.
    #[arg(long, global = true, env = "RABBLE_ADDR", default_value = "http://127.0.0.1:8500")]
    addr: String,
    /// The CA the hub's HTTPS certificate is checked against (its ca.pem from
    /// `rabble-hub tls init`); default: Mozilla's roots.
    #[arg(long = "ca-cert", global = true, env = "RABBLE_CACERT")]
    ca_cert: Option<std::path::PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a hub, an agent and a demo service in this process.
    Dev(DevArgs),
    /// List nodes.
    Nodes {
        #[arg(long)]
        json: bool,
    },
    /// List services and their instances.
    Services {
        #[arg(long)]
        json: bool,
    },
    /// The HTTP routing table of each lane: routers, their services' servers, problems.
    Routes {
        #[arg(long)]
        lane: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Stream cluster changes as they happen.
    Watch {
        #[arg(long)]
        json: bool,
    },
    /// Work with jobs (Nomad job files).
    #[command(subcommand)]
    Job(JobCmd),
    /// Inspect allocations.
    #[command(subcommand)]
    Alloc(AllocCmd),
    /// Drain nodes, set eligibility, forget a node that is gone.
    #[command(subcommand)]
    Node(NodeCmd),
    /// The KV store (Consul's, at /v1/kv).
    #[command(subcommand)]
    Kv(KvCmd),
    /// Variables, sealed by the hub (as `nomad var`).
    #[command(subcommand)]
    Var(VarCmd),
    /// ACL tokens and policies for the hub's API.
    Acl {
        #[command(subcommand)]
        cmd: cli::acl::AclCmd,
        #[arg(long, global = true)]
        json: bool,
    },
    /// Alerts firing now, and silences (Alertmanager's).
    Alert {
        #[command(subcommand)]
        cmd: cli::alert::AlertCmd,
    },
    /// Named volumes jobs use by `source`: NFS exports, host paths, a node's directory.
    Volume {
        #[command(subcommand)]
        cmd: cli::volume::VolumeCmd,
    },
    /// Keep a token for this CLI (checked with the hub; read from stdin, or --token).
    Login {
        #[arg(long)]
        token: Option<String>,
    },
    /// Put the agent on a Raspberry Pi OS image (its boot partition only; no mount, no root).
    Image(cli::image::ImageArgs),
    /// The demo job's task (`rabble dev`): a tiny HTTP server on $NOMAD_PORT_http.
    #[command(hide = true)]
    DemoServer,
}

#[derive(Subcommand)]
enum JobCmd {
    /// Check a job file: every problem with its file, line, column and block.
    Validate(cli::job::FileArgs),
    /// Submit a job file; the hub places it.
    Run {
        #[command(flatten)]
        file: cli::job::FileArgs,
        /// Return once submitted, without showing the placements.
        #[arg(long)]
        detach: bool,
    },
    /// What running a job file would do: placements, stops, and why a group cannot be placed.
    Plan(cli::job::FileArgs),
    /// Jobs, or one job with its allocations.
    Status {
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Stop a job's allocations (-purge also forgets the job).
    Stop {
        id: String,
        #[arg(long)]
        purge: bool,
    },
    /// Restart a job's running allocations in place, a batch at a time (each batch
    /// running again before the next).
    Restart {
        id: String,
        #[arg(long = "batch-size", default_value_t = 1)]
        batch_size: usize,
        /// Pause between batches (`10s`).
        #[arg(long = "batch-wait", value_parser = parse_duration, default_value = "0s")]
        batch_wait: std::time::Duration,
        /// Give up when an allocation is not running again after this long.
        #[arg(long, value_parser = parse_duration, default_value = "5m")]
        timeout: std::time::Duration,
    },
    /// Run an earlier version of a job again (it becomes a new version).
    Revert { id: String, version: u64 },
    /// Dispatch a parameterized job: a child batch job with this meta and payload, queued
    /// until a node has room.
    Dispatch {
        id: String,
        /// `key=value`, repeatable; checked against the job's meta_required and meta_optional.
        #[arg(long = "meta")]
        meta: Vec<String>,
        /// A file (or `-` for stdin) written into each task's `local/<dispatch_payload.file>`.
        payload: Option<std::path::PathBuf>,
    },
    /// A job's versions.
    History {
        id: String,
        /// Show what each version changed from the one before it (Nomad's -p).
        #[arg(short = 'p', long = "diffs")]
        diffs: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AllocCmd {
    /// One allocation: where, what state, why; its tasks' events and its checks.
    Status {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Restart an allocation's running tasks in place, on its node.
    Restart { id: String },
    /// A task's output, read from its node on demand (the node keeps the last few kB of
    /// a process's output; Docker keeps a container's whole log).
    Logs {
        id: String,
        /// The task (needed when the group has several; also `-task`).
        task_arg: Option<String>,
        #[arg(long)]
        task: Option<String>,
        /// stderr instead of stdout.
        #[arg(long)]
        stderr: bool,
        /// Keep printing new output until interrupted.
        #[arg(short = 'f')]
        follow: bool,
        /// Only the end: the last -n lines (default 10) or -c bytes.
        #[arg(long)]
        tail: bool,
        #[arg(short = 'n')]
        lines: Option<u32>,
        #[arg(short = 'c')]
        bytes: Option<u32>,
    },
}

#[derive(Subcommand)]
enum KvCmd {
    /// A key's value (raw bytes), or its Consul JSON with --json.
    Get {
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a key: VALUE, @FILE, or - (stdin; also without VALUE).
    Put {
        key: String,
        value: Option<String>,
        #[arg(long)]
        flags: Option<u64>,
        /// Only if the key's ModifyIndex is this (0: only if it does not exist).
        #[arg(long)]
        cas: Option<u64>,
    },
    /// Delete a key, or every key under a prefix with --recurse.
    Delete {
        key: String,
        #[arg(long)]
        recurse: bool,
        #[arg(long)]
        cas: Option<u64>,
    },
    /// The keys under a prefix.
    List {
        #[arg(default_value = "")]
        prefix: String,
        /// One level only: cut each key after this (e.g. /).
        #[arg(long)]
        separator: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print a key (or a prefix with --recurse) now and at every change.
    Watch {
        key: String,
        #[arg(long)]
        recurse: bool,
    },
}

#[derive(Subcommand)]
enum VarCmd {
    /// Write a variable: key=value items (key=@file, key=- for stdin).
    Put {
        path: String,
        #[arg(required = true)]
        items: Vec<String>,
        /// Only if its ModifyIndex is this (0: only if new).
        #[arg(long)]
        cas: Option<u64>,
    },
    /// A variable's items (one with --item).
    Get {
        path: String,
        #[arg(long)]
        item: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Variable paths under a prefix (never their items).
    List {
        #[arg(default_value = "")]
        prefix: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a variable.
    Purge {
        path: String,
        #[arg(long)]
        cas: Option<u64>,
    },
}

#[derive(Subcommand)]
enum NodeCmd {
    /// Move work off a node (service work moves now; batch work gets until the deadline).
    Drain {
        node: String,
        /// End a drain instead (the node is eligible again).
        #[arg(long)]
        disable: bool,
        /// How long before what is left is stopped, e.g. 30m (default 1h).
        #[arg(long)]
        deadline: Option<String>,
    },
    /// Every node, or one node: status, eligibility, drain, facts, allocations, services.
    Status {
        node: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a node that is down, with its services and checks (a decommissioned Pi);
    /// its agent, started again, joins again. Down nodes are forgotten after the hub's
    /// node_gc_threshold (24h) anyway.
    Forget { node: String },
    /// Allow or forbid new work on a node.
    Eligibility {
        node: String,
        #[arg(long, conflicts_with = "disable", required_unless_present = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
}

fn main() {
    let cli = Cli::parse_from(cli::job::nomad_style_flags(std::env::args()));
    let client = match &cli.ca_cert {
        Some(ca) => Client::new(&cli.addr).with_ca(ca).unwrap_or_else(|e| {
            eprintln!("rabble: --ca-cert: {e}");
            std::process::exit(2)
        }),
        None => Client::new(&cli.addr),
    };
    let result: anyhow::Result<()> = match cli.cmd {
        Cmd::Dev(args) => {
            rabble_hub::init_logging();
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| {
                    rt.block_on(cli::dev::run(args, rabble_hub::shutdown_signal())).map_err(anyhow::Error::from)
                })
        }
        Cmd::Nodes { json } => cli::print_nodes(&client, json).map_err(Into::into),
        Cmd::Services { json } => cli::print_services(&client, json).map_err(Into::into),
        Cmd::Watch { json } => cli::watch(&client, json).map_err(Into::into),
        Cmd::Routes { lane, json } => cli::print_routes(&client, lane.as_deref(), json).map_err(Into::into),
        Cmd::Job(JobCmd::Validate(args)) => cli::job::validate(&args).map_err(Into::into),
        Cmd::Job(JobCmd::Run { file, detach }) => cli::job::run(&client, &file, detach).map_err(Into::into),
        Cmd::Job(JobCmd::Plan(file)) => match cli::job::plan(&client, &file) {
            Ok(code) => std::process::exit(code),
            Err(e) => Err(e.into()),
        },
        Cmd::Job(JobCmd::Status { id, json }) => cli::job::status(&client, id.as_deref(), json).map_err(Into::into),
        Cmd::Job(JobCmd::Stop { id, purge }) => cli::job::stop(&client, &id, purge).map_err(Into::into),
        Cmd::Job(JobCmd::History { id, diffs, json }) => {
            cli::job::history(&client, &id, diffs, json).map_err(Into::into)
        }
        Cmd::DemoServer => cli::dev::demo_server().map_err(Into::into),
        Cmd::Acl { cmd, json } => cli::acl::run(&client, cmd, json).map_err(Into::into),
        Cmd::Alert { cmd } => cli::alert::run(&client, cmd).map_err(Into::into),
        Cmd::Volume { cmd } => cli::volume::run(&client, cmd).map_err(Into::into),
        Cmd::Login { token } => {
            let secret = match token {
                Some(t) => Ok(t),
                None => std::io::read_to_string(std::io::stdin()).map_err(anyhow::Error::from),
            };
            secret.and_then(|s| cli::acl::login(&client, &s).map(drop).map_err(Into::into))
        }
        Cmd::Image(args) => cli::image::run(&args, &client).map(|r| cli::image::print(&r)).map_err(Into::into),
        Cmd::Alloc(AllocCmd::Restart { id }) => cli::alloc::restart(&client, &id).map_err(Into::into),
        Cmd::Job(JobCmd::Restart { id, batch_size, batch_wait, timeout }) => {
            cli::alloc::restart_job(&client, &id, batch_size, batch_wait, timeout).map_err(Into::into)
        }
        Cmd::Job(JobCmd::Revert { id, version }) => cli::job::revert(&client, &id, version).map_err(Into::into),
        Cmd::Job(JobCmd::Dispatch { id, meta, payload }) => {
            cli::job::dispatch(&client, &id, &meta, payload.as_deref()).map_err(Into::into)
        }
        Cmd::Alloc(AllocCmd::Status { id, json }) => cli::alloc::status(&client, &id, json).map_err(Into::into),
        Cmd::Alloc(AllocCmd::Logs { id, task_arg, task, stderr, follow, tail, lines, bytes }) => {
            let lines = lines.or((tail && bytes.is_none()).then_some(10));
            let q = cli::LogsQuery { task: task.or(task_arg), stderr, follow, lines, bytes };
            client.logs(&id, &q, &mut std::io::stdout()).map_err(Into::into)
        }
        Cmd::Node(NodeCmd::Drain { node, disable, deadline }) => {
            let deadline_s = match deadline.as_deref().map(rabble_shared::support::duration::parse) {
                Some(Ok(d)) => Some(d.as_secs()),
                Some(Err(e)) => {
                    eprintln!("rabble: --deadline: {e}");
                    std::process::exit(2);
                }
                None => None,
            };
            cli::job::drain(&client, &node, !disable, deadline_s).map_err(Into::into)
        }
        Cmd::Kv(KvCmd::Get { key, json }) => {
            cli::kv::get(&client, &key, json, &mut std::io::stdout()).map_err(Into::into)
        }
        Cmd::Kv(KvCmd::Put { key, value, flags, cas }) => cli::kv::value(value.as_deref())
            .and_then(|v| cli::kv::put(&client, &key, v, flags, cas))
            .map_err(Into::into),
        Cmd::Kv(KvCmd::Delete { key, recurse, cas }) => {
            cli::kv::delete(&client, &key, recurse, cas).map_err(Into::into)
        }
        Cmd::Kv(KvCmd::List { prefix, separator, json }) => {
            cli::kv::list(&client, &prefix, separator.as_deref(), json).map_err(Into::into)
        }
        Cmd::Kv(KvCmd::Watch { key, recurse }) => cli::kv::watch(&client, &key, recurse).map_err(Into::into),
        Cmd::Var(VarCmd::Put { path, items, cas }) => cli::vars::put(&client, &path, &items, cas).map_err(Into::into),
        Cmd::Var(VarCmd::Get { path, item, json }) => {
            cli::vars::get(&client, &path, item.as_deref(), json).map_err(Into::into)
        }
        Cmd::Var(VarCmd::List { prefix, json }) => cli::vars::list(&client, &prefix, json).map_err(Into::into),
        Cmd::Var(VarCmd::Purge { path, cas }) => cli::vars::purge(&client, &path, cas).map_err(Into::into),
        Cmd::Node(NodeCmd::Status { node, json }) => {
            cli::node::status(&client, node.as_deref(), json).map_err(Into::into)
        }
        Cmd::Node(NodeCmd::Forget { node }) => cli::job::forget(&client, &node).map_err(Into::into),
        Cmd::Node(NodeCmd::Eligibility { node, enable, .. }) => {
            cli::job::eligibility(&client, &node, enable).map_err(Into::into)
        }
    };
    if let Err(e) = result {
        eprintln!("rabble: {e:#}");
        std::process::exit(1);
    }
}

/// A Go duration on the command line (`10s`, `1m30s`).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    rabble_shared::support::duration::parse(s)
}
