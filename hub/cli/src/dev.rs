//! `rabble dev`: a hub, an agent and a demo service in one process, for a first look.

use rabble_agent::facts::Identity;
use rabble_hub::config::Config as HubConfig;
use rabble_hub::dispatch::sign::SigningKey;
use rabble_shared::NodeId;
use rabble_shared::support::mqtt::BrokerAddr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Where the agent serves the `routing` HTTP lane.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub lane_listen: SocketAddr,
    /// Keep the catalog here (default: a fresh temporary directory, removed on exit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The Docker engine's socket, probed as an agent probes it (docker jobs run when it
    /// answers).
    #[arg(long, default_value = rabble_agent::driver::DEFAULT_DOCKER_SOCKET)]
    pub docker_socket: PathBuf,
    /// Do not use Docker even where it runs.
    #[arg(long)]
    pub no_docker: bool,
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

/// `rabble demo-server`: the demo job's task. A tiny HTTP server on
/// `$NOMAD_PORT_http`: `/health` answers `ok`, everything else says hello.
pub fn demo_server() -> std::io::Result<()> {
    use std::io::{Read, Write};
    let port = std::env::var("NOMAD_PORT_http").unwrap_or_else(|_| "8080".into());
    let alloc = std::env::var("NOMAD_ALLOC_NAME").unwrap_or_else(|_| "demo".into());
    let listener = std::net::TcpListener::bind(format!("0.0.0.0:{port}"))?;
    for conn in listener.incoming() {
        let Ok(mut s) = conn else { continue };
        let mut buf = [0u8; 2048];
        let n = s.read(&mut buf).unwrap_or(0);
        let body = if buf[..n].starts_with(b"GET /health") {
            "ok\n".to_owned()
        } else {
            format!("hello from rabble dev: allocation {alloc}\n")
        };
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(resp.as_bytes());
    }
    Ok(())
}

/// The demo job: this binary's demo server as a raw_exec task on a dynamic port, with a
/// service, Traefik-style tags and an HTTP check.
fn demo_job(exe: &std::path::Path) -> String {
    format!(
        r#"# Written by `rabble dev`: edit it and run `rabble job run` on it again.
job "demo" {{
  group "demo" {{
    network {{
      port "http" {{}}
    }}

    service {{
      name = "demo"
      port = "http"
      tags = ["dev", "routing.enable=true"]

      check {{
        type     = "http"
        path     = "/health"
        interval = "2s"
        timeout  = "1s"
      }}
    }}

    task "web" {{
      driver = "raw_exec"

      config {{
        command = "{}"
        args    = ["demo-server"]
      }}

      resources {{
        cpu    = 50
        memory = 32
      }}
    }}
  }}
}}
"#,
        exe.display()
    )
}

pub async fn run(
    args: DevArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DevError> {
    let scratch = std::env::temp_dir().join(format!("rabble-dev-{}", std::process::id()));
    let services_dir = scratch.join("services.d");
    std::fs::create_dir_all(&services_dir).map_err(io(format!("creating {}", services_dir.display())))?;
    let data_dir = args.data_dir.clone().unwrap_or_else(|| scratch.join("data"));

    let exe = std::env::current_exe().map_err(io("finding the rabble binary"))?;
    let job_file = scratch.join("demo.nomad.hcl");
    std::fs::write(&job_file, demo_job(&exe)).map_err(io("writing the demo job"))?;

    let hub_cfg = HubConfig::local(data_dir, args.http_listen, args.dns_listen, args.mqtt_listen);
    let listeners = rabble_hub::Listeners::bind(&hub_cfg).await?;
    let hub_data = hub_cfg.data_dir.clone();
    let name = sysinfo::System::host_name().unwrap_or_else(|_| "dev".into());
    let hub = BrokerAddr {
        host: rabble_hub::broker::local_addr(args.mqtt_listen).ip().to_string(),
        port: args.mqtt_listen.port(),
        tls: false,
    };
    // Docker as an agent finds it: a docker job runs in dev when the engine answers.
    let drivers = rabble_agent::driver::DriverConfig {
        docker_socket: (!args.no_docker).then(|| args.docker_socket.clone()),
        exec: true,
        podman_socket: Some(rabble_agent::driver::DEFAULT_PODMAN_SOCKET.into()),
    };
    let docker = match rabble_agent::driver::probe(&drivers).await.remove("docker") {
        Some(d) if d.healthy => {
            format!("Docker {} at {} (docker jobs run here)", d.version, args.docker_socket.display())
        }
        Some(d) => format!("no Docker: {} (docker jobs are not placed; raw_exec and exec are)", d.detail),
        None => "no Docker (--no-docker): docker jobs are not placed".to_owned(),
    };
    let agent_cfg = rabble_agent::Config {
        hubs: vec![hub.clone()],
        hub,
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
        metrics_interval: rabble_agent::config::DEFAULT_METRICS_INTERVAL,
        keepalive: rabble_agent::config::DEFAULT_KEEPALIVE,
        socket: Some(scratch.join("agent.sock")),
        ca: None,
        credentials: None,
        join: None,
        drivers: drivers.clone(),
        // The hub signs assignments with this key (made now if the data dir is new).
        hub_key: Some(
            rabble_agent::assign::parse_key(&SigningKey::load_or_create(&hub_data)?.public_b64())
                .map_err(DevError::Key)?,
        ),
        alloc_dir: scratch.join("alloc"),
        host_volumes: Default::default(),
        // The hub beside it answers DNS.
        dns_listen: None,
        lanes: vec![rabble_agent::proxy::LaneListen {
            name: "routing".into(),
            listen: args.lane_listen,
            tls_listen: None,
            certs: vec![],
            servers_transport: Default::default(),
        }],
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let hub = tokio::spawn(rabble_hub::run(hub_cfg, listeners, stopped(stop_rx.clone())));
    // Let the embedded broker come up before the agent dials it (it retries anyway).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let agent = tokio::spawn(rabble_agent::run(agent_cfg, stopped(stop_rx)));
    // Submit the demo job the way `rabble job run` does (the hub's API answers once
    // its listener is up).
    let api = format!("http://{}", args.http_listen);
    let text = std::fs::read_to_string(&job_file).map_err(io("reading the demo job"))?;
    let mut submitted = Err(String::new());
    for _ in 0..50 {
        let (url, body) = (format!("{api}/api/v1/jobs"), text.clone());
        submitted = tokio::task::spawn_blocking(move || {
            ureq::post(&url).content_type("text/plain").send(body.as_str()).map(|_| ()).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        if submitted.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Err(e) = submitted {
        eprintln!("rabble dev: could not submit the demo job: {e}");
    }

    let mqtt = args.mqtt_listen;
    let rabble = invocation();
    println!("Rabble dev is running: a hub and an agent in this process, and a demo job placed on it.\n");
    println!(
        "  MQTT      mqtt://{mqtt}    watch it:  mosquitto_sub -h {} -p {} -t 'rabble/#' -v",
        mqtt.ip(),
        mqtt.port()
    );
    println!("  Web UI    http://{}/ui/   nodes, jobs, services, routes, KV: live", args.http_listen);
    println!(
        "  HTTP API  http://{}    try:       {rabble} services   (or curl http://{}/api/v1/services)",
        args.http_listen, args.http_listen
    );
    println!("  Drivers   raw_exec, exec, {docker}");
    println!("  Demo job  {}   try:  {rabble} job status demo", job_file.display());
    println!("            service \"demo\" on a dynamic port, HTTP check every 2s: {rabble} services");
    println!("  Services  {}   (service files: the agent reloads them)", services_dir.display());
    let dns = args.dns_listen;
    println!("  DNS       {dns}    try:       dig @{} -p {} demo.service.rabble", dns.ip(), dns.port());
    let lane = args.lane_listen;
    println!(
        "  Routes    http://{lane}   the routing lane: curl -H 'Host: demo.service.rabble' http://{lane}/   ({rabble} routes)\n"
    );
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

/// How to run this CLI from the shell the banner is read in: `rabble` when that is on
/// `PATH` and is this program, else its path (a clone's `target/debug/rabble`).
fn invocation() -> String {
    let Ok(exe) = std::env::current_exe().and_then(std::fs::canonicalize) else { return "rabble".into() };
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path).any(|d| std::fs::canonicalize(d.join("rabble")).is_ok_and(|p| p == exe));
    if on_path {
        return "rabble".into();
    }
    let cwd = std::env::current_dir().ok().and_then(|d| std::fs::canonicalize(d).ok());
    match cwd.and_then(|d| exe.strip_prefix(d).ok().map(|p| p.to_path_buf())) {
        Some(rel) => rel.display().to_string(),
        None => exe.display().to_string(),
    }
}
