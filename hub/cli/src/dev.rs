//! `rabble dev`: a hub, an agent and a demo service in one process, for a first look.

use rabble_agent::facts::Identity;
use rabble_hub::config::{BrokerChoice, Config as HubConfig};
use rabble_hub::dispatch::sign::SigningKey;
use rabble_shared::NodeId;
use rabble_shared::support::mqtt::BrokerAddr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// The embedded broker's address.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub mqtt_listen: SocketAddr,
    /// The HTTP API's address.
    #[arg(long, default_value = "127.0.0.1:8500")]
    pub http_listen: SocketAddr,
    /// The DNS server's address (UDP and TCP).
    #[arg(long, default_value = "127.0.0.1:8600")]
    pub dns_listen: SocketAddr,
    /// Keep the catalog here (default: a fresh temporary directory, removed on exit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
    #[error(transparent)]
    Hub(#[from] rabble_hub::HubError),
    #[error(transparent)]
    Agent(#[from] rabble_agent::AgentError),
    #[error(transparent)]
    SigningKey(#[from] rabble_hub::dispatch::sign::KeyError),
    #[error("hub key: {0}")]
    Key(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevError {
    let what = what.into();
    move |source| DevError::Io { what, error: source }
}

/// A tiny HTTP server standing in for a real service: `/health` answers 200.
async fn demo_server(l: tokio::net::TcpListener) {
    loop {
        let Ok((mut s, _)) = l.accept().await else { continue };
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let body = if buf[..n].starts_with(b"GET /health") { "ok\n" } else { "hello from rabble dev\n" };
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        });
    }
}

pub async fn run(
    args: DevArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DevError> {
    let scratch = std::env::temp_dir().join(format!("rabble-dev-{}", std::process::id()));
    let services_dir = scratch.join("services.d");
    std::fs::create_dir_all(&services_dir).map_err(io(format!("creating {}", services_dir.display())))?;
    let data_dir = args.data_dir.clone().unwrap_or_else(|| scratch.join("data"));

    let demo = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(io("binding the demo service"))?;
    let demo_port = demo.local_addr().map_err(io("demo service address"))?.port();
    tokio::spawn(demo_server(demo));
    let service_file = format!(
        "# Written by `rabble dev`: a demo service with a passing HTTP check.\n\
         [[service]]\nname = \"demo\"\nport = {demo_port}\ntags = [\"dev\"]\n\n\
         [[service.checks]]\nname = \"demo answers\"\nhttp = \"http://127.0.0.1:{demo_port}/health\"\ninterval = \"2s\"\ntimeout = \"1s\"\n"
    );
    std::fs::write(services_dir.join("demo.toml"), service_file).map_err(io("writing the demo service file"))?;

    let hub_cfg = HubConfig {
        data_dir,
        broker: BrokerChoice::Embedded { listen: args.mqtt_listen, tls: None, require_credentials: false },
        broker_login: None,
        broker_ca: None,
        http_listen: args.http_listen,
        heartbeat_ttl: rabble_hub::config::DEFAULT_HEARTBEAT_TTL,
        dns: rabble_hub::config::DnsConfig {
            listen: args.dns_listen,
            settings: rabble_hub::dns::DnsSettings {
                domain: vec!["rabble".into()],
                ttl: 0,
                negative_ttl: 0,
                only_passing: false,
                a_record_limit: 0,
            },
            recursors: vec![],
        },
    };
    let listeners = rabble_hub::Listeners::bind(&hub_cfg).await?;
    let hub_data = hub_cfg.data_dir.clone();
    let name = sysinfo::System::host_name().unwrap_or_else(|_| "dev".into());
    let agent_cfg = rabble_agent::Config {
        hub: BrokerAddr {
            host: rabble_hub::broker::local_addr(args.mqtt_listen).ip().to_string(),
            port: args.mqtt_listen.port(),
            tls: false,
        },
        node: NodeId::from_name(&name).unwrap_or_else(|| NodeId::new("dev").expect("valid id")),
        identity: Identity {
            name,
            datacenter: "dc1".into(),
            advertise: Some([127, 0, 0, 1].into()),
            ..Default::default()
        },
        services_dir: services_dir.clone(),
        enable_script_checks: false,
        heartbeat_interval: rabble_agent::config::DEFAULT_HEARTBEAT_INTERVAL,
        keepalive: rabble_agent::config::DEFAULT_KEEPALIVE,
        socket: Some(scratch.join("agent.sock")),
        ca: None,
        credentials: None,
        drivers: rabble_agent::driver::DriverConfig { docker_socket: None, exec: true },
        // The hub signs assignments with this key (made now if the data dir is new).
        hub_key: Some(
            rabble_agent::assign::parse_key(&SigningKey::load_or_create(&hub_data)?.public_b64())
                .map_err(DevError::Key)?,
        ),
        alloc_dir: scratch.join("alloc"),
        host_volumes: Default::default(),
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let hub = tokio::spawn(rabble_hub::run(hub_cfg, listeners, stopped(stop_rx.clone())));
    // Let the embedded broker come up before the agent dials it (it retries anyway).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let agent = tokio::spawn(rabble_agent::run(agent_cfg, stopped(stop_rx)));

    let mqtt = args.mqtt_listen;
    println!("Rabble dev is running: a hub, an agent and a demo service in this process.\n");
    println!(
        "  MQTT      mqtt://{mqtt}    watch it:  mosquitto_sub -h {} -p {} -t 'rabble/#' -v",
        mqtt.ip(),
        mqtt.port()
    );
    println!(
        "  HTTP API  http://{}    try:       rabble services   (or curl http://{}/api/v1/services)",
        args.http_listen, args.http_listen
    );
    println!("  Demo      http://127.0.0.1:{demo_port}/   service \"demo\", HTTP check every 2s");
    println!("  Services  {}   (edit or add files: the agent reloads them)", services_dir.display());
    let dns = args.dns_listen;
    println!("  DNS       {dns}    try:       dig @{} -p {} demo.service.rabble\n", dns.ip(), dns.port());
    println!("Ctrl-C to stop.");

    shutdown.await;
    let _ = stop_tx.send(true);
    let agent_result = agent.await.unwrap_or(Ok(()));
    let hub_result = hub.await.unwrap_or(Ok(()));
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    agent_result?;
    hub_result?;
    Ok(())
}
