//! The `rabble-agent` binary: runs the agent, talks to a running one (`check`, `reload`),
//! or (Windows) installs it as a service.

use rabble_agent::args::{self, Command, HELP};
use rabble_agent::config::{Config, DEFAULT_SOCKET, Flags};
use std::path::PathBuf;

/// `rabble-agent --version` says which build this is.
const VERSION: &str = if cfg!(feature = "docker") {
    concat!(env!("CARGO_PKG_VERSION"), " (docker driver)")
} else {
    concat!(env!("CARGO_PKG_VERSION"), " (bare metal: no docker driver)")
};

fn socket(flags: &Flags) -> PathBuf {
    flags.socket.clone().unwrap_or_else(|| DEFAULT_SOCKET.into())
}

/// An error and its causes, `what: cause: cause` (anyhow's `{:#}`, without anyhow: the
/// agent's size budget has no room for it).
fn chain(what: &str, e: &dyn std::error::Error) -> String {
    let mut out = if what.is_empty() { e.to_string() } else { format!("{what}: {e}") };
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("rabble-agent: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<(), String> {
    let command = args::parse(std::env::args_os().skip(1), std::env::var_os("RABBLE_AGENT_CONFIG"));
    let (flags, request) = match command {
        Ok(Command::Run(flags)) => return run(flags, None),
        Ok(Command::Service(_, action)) => return service(action),
        Ok(Command::Control(flags, request)) => (flags, request),
        Ok(Command::Help) => {
            print!("{HELP}");
            return Ok(());
        }
        Ok(Command::Version) => {
            println!("rabble-agent {VERSION}");
            return Ok(());
        }
        Err(e) => {
            eprintln!("rabble-agent: {e}");
            std::process::exit(2);
        }
    };
    let reply = rabble_agent::control::send(&socket(&flags), &request)?;
    if !reply.ok {
        return Err(reply.error);
    }
    Ok(())
}

/// The command line without the words `service <action>`: the flags a service runs with.
fn service_flags() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "service") {
        args.drain(i..(i + 2).min(args.len()));
    }
    args
}

#[cfg(windows)]
fn service(action: args::Service) -> Result<(), String> {
    use rabble_agent::winservice;
    match action {
        args::Service::Install => println!("{}", winservice::install(service_flags())?),
        args::Service::Uninstall => println!("{}", winservice::uninstall()?),
        args::Service::Run => winservice::run(service_body, service_flags())?,
    }
    Ok(())
}

#[cfg(not(windows))]
fn service(_: args::Service) -> Result<(), String> {
    let _ = service_flags;
    Err("`service` is for Windows; on Linux the agent runs under systemd (images/rabble-agent.service)".into())
}

/// The agent under the service manager: its log into the service's file, stopped by it.
#[cfg(windows)]
fn service_body(flags: Vec<std::ffi::OsString>, stop: tokio::sync::oneshot::Receiver<()>) -> Result<(), String> {
    let log = std::path::Path::new(rabble_agent::winservice::LOG);
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        rabble_agent::win32::stderr_to(f);
    }
    match args::parse(flags, std::env::var_os("RABBLE_AGENT_CONFIG"))? {
        Command::Run(flags) => run(flags, Some(stop)),
        _ => Err("a service runs the agent: `service install` takes the agent's flags only".into()),
    }
}

fn run(flags: Flags, stop: Option<tokio::sync::oneshot::Receiver<()>>) -> Result<(), String> {
    // Plain lines on stderr (journald under systemd), filtered as tracing-subscriber's
    // `Targets` would (`info,rumqttc=debug`): rabble_agent::trace.
    let lines: rabble_agent::trace::Lines = match std::env::var("RABBLE_LOG") {
        Ok(s) => s.parse().map_err(|e| format!("RABBLE_LOG={s:?}: {e}"))?,
        Err(_) => "info".parse()?,
    };
    let _ = tracing::subscriber::set_global_default(lines);
    let cfg = Config::resolve(flags).map_err(|e| chain("configuration", &e))?;
    // One thread: the agent does little, and every thread costs memory on a 1 GB Pi.
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| chain("tokio runtime", &e))?;
    rt.block_on(async {
        let shutdown = async {
            #[cfg(unix)]
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            // Windows: CTRL_BREAK (and a service stop, through the service's handler) end it like SIGTERM.
            #[cfg(windows)]
            let mut term = tokio::signal::windows::ctrl_break().ok();
            let stopped = async {
                match stop {
                    Some(rx) => {
                        let _ = rx.await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = stopped => {}
                Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
            }
        };
        rabble_agent::run(cfg, shutdown).await
    })
    .map_err(|e| chain("", &e))
}
