//! The `rabble-hub` binary: the embedded broker, the catalog and the HTTP API.

use anyhow::Context;
use clap::Parser;
use rabble_hub::config::{Config, Flags};

#[derive(Parser)]
#[command(name = "rabble-hub", version, about = "Rabble's hub: MQTT broker, catalog and HTTP API")]
struct Cli {
    #[command(flatten)]
    flags: Flags,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("rabble-hub: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    rabble_hub::init_logging();
    let cfg = Config::resolve(cli.flags).context("configuration")?;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("tokio runtime")?;
    rt.block_on(async {
        let listeners = rabble_hub::Listeners::bind(&cfg).await?;
        rabble_hub::run(cfg, listeners, rabble_hub::shutdown_signal()).await.map_err(anyhow::Error::from)
    })
}
