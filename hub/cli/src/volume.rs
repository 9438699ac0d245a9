//! `rabble volume create|list|show|delete`: named volumes jobs use by `source` (an NFS
//! export, a host path on chosen nodes, or a directory on one node).

use super::{CliError, Client};
use crate::table;
use rabble_shared::volume::{Backing, VolumeSpec, VolumeView};

/// `rabble volume ...`.
#[derive(Debug, clap::Subcommand)]
pub enum VolumeCmd {
    /// Create a volume: `--nfs server:/export [-o opts]`, `--host-path /p --node a --node b`,
    /// or `--local-node n --path /p`.
    Create {
        name: String,
        /// An NFS export, `server:/path`.
        #[arg(long)]
        nfs: Option<String>,
        /// mount -o options for the NFS export (`vers=4.2,soft`).
        #[arg(short = 'o', long = "options", default_value = "")]
        options: String,
        /// A directory present on each `--node`.
        #[arg(long = "host-path")]
        host_path: Option<String>,
        #[arg(long = "node")]
        nodes: Vec<String>,
        /// A directory on this one node (its users run there).
        #[arg(long = "local-node")]
        local_node: Option<String>,
        #[arg(long)]
        path: Option<String>,
    },
    /// Every volume, with how many allocations use it.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One volume and its users.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a volume no allocation uses (its data stays where it is).
    Delete { name: String },
}

/// What `rabble volume create`'s flags describe.
#[allow(clippy::too_many_arguments)]
fn spec(
    name: String,
    nfs: Option<String>,
    options: String,
    host_path: Option<String>,
    nodes: Vec<String>,
    local_node: Option<String>,
    path: Option<String>,
) -> Result<VolumeSpec, CliError> {
    let usage = |m: &str| CliError::Usage(m.to_owned());
    let backing = match (nfs, host_path, local_node) {
        (Some(nfs), None, None) => {
            let (server, path) = nfs.split_once(':').ok_or_else(|| usage("--nfs server:/path"))?;
            Backing::Nfs { server: server.to_owned(), path: path.to_owned(), options }
        }
        (None, Some(path), None) => Backing::Host { path, nodes },
        (None, None, Some(node)) => {
            Backing::Local { node, path: path.ok_or_else(|| usage("--local-node needs --path"))? }
        }
        _ => return Err(usage("give one of --nfs, --host-path or --local-node")),
    };
    let spec = VolumeSpec { name, backing };
    spec.validate().map_err(CliError::Usage)?;
    Ok(spec)
}

fn print_one(v: &VolumeView) {
    println!("Name    = {}", v.spec.name);
    println!("Backing = {}", v.spec.describe());
    println!(
        "Created = {}",
        crate::table::ago(Some(rabble_shared::support::clock::now_ms().saturating_sub(v.create_ms)))
    );
    if v.users.is_empty() {
        println!("Users   = none");
        return;
    }
    let rows: Vec<Vec<String>> = v
        .users
        .iter()
        .map(|u| vec![u.alloc.clone(), u.job.clone(), u.node.clone(), if u.read_only { "ro" } else { "rw" }.into()])
        .collect();
    print!("\nUsers\n{}", table::render(&["Alloc", "Job/group", "Node", "Mode"], &rows));
}

pub fn run(client: &Client, cmd: VolumeCmd) -> Result<(), CliError> {
    match cmd {
        VolumeCmd::Create { name, nfs, options, host_path, nodes, local_node, path } => {
            let s = spec(name, nfs, options, host_path, nodes, local_node, path)?;
            let v: VolumeView = client.post("/api/v1/volumes", &s)?;
            println!("==> Volume {:?} created: {}", v.spec.name, v.spec.describe());
        }
        VolumeCmd::List { json } => {
            let all: Vec<VolumeView> = client.get("/api/v1/volumes")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
                return Ok(());
            }
            let rows: Vec<Vec<String>> =
                all.iter().map(|v| vec![v.spec.name.clone(), v.spec.describe(), v.users.len().to_string()]).collect();
            print!("{}", table::render(&["Name", "Backing", "Users"], &rows));
        }
        VolumeCmd::Show { name, json } => {
            let v: VolumeView = client.get(&format!("/api/v1/volumes/{name}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print_one(&v);
            }
        }
        VolumeCmd::Delete { name } => {
            let v: VolumeView = client.delete(&format!("/api/v1/volumes/{name}"))?;
            println!("==> Volume {:?} deleted ({} keeps its data)", v.spec.name, v.spec.describe());
        }
    }
    Ok(())
}
