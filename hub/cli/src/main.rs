//! The `rabble` operator CLI.

use clap::{Parser, Subcommand};
use rabble_cli::{self as cli, Client, dev::DevArgs};

#[derive(Parser)]
#[command(name = "rabble", version, about = "Rabble's operator CLI")]
struct Cli {
    /// The hub's HTTP API.
    #[arg(long, global = true, env = "RABBLE_ADDR", default_value = "http://127.0.0.1:8500")]
    addr: String,
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
    /// Stream cluster changes as they happen.
    Watch {
        #[arg(long)]
        json: bool,
    },
    /// Work with jobs (Nomad job files).
    #[command(subcommand)]
    Job(JobCmd),
}

#[derive(Subcommand)]
enum JobCmd {
    /// Check a job file: every problem with its file, line, column and block.
    Validate(cli::job::FileArgs),
}

fn main() {
    let cli = Cli::parse_from(cli::job::nomad_style_flags(std::env::args()));
    let client = Client::new(&cli.addr);
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
        Cmd::Job(JobCmd::Validate(args)) => cli::job::validate(&args).map_err(Into::into),
    };
    if let Err(e) = result {
        eprintln!("rabble: {e:#}");
        std::process::exit(1);
    }
}
