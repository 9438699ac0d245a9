//! The command line: `rabble-agent [flags]` runs the agent, `rabble-agent check|reload`
//! talks to a running one. Parsed with `lexopt` rather than clap: the same flags for
//! ~100 KB less on every SD card (the agent has a size budget; BENCHMARKS.md).

use crate::config::Flags;
use lexopt::prelude::*;
use rabble_shared::Status;
use rabble_shared::control::Request;
use std::ffi::OsString;

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Flags),
    /// A request to the running agent over its control socket.
    Control(Flags, Request),
    /// `service install|uninstall|run`: the agent as a Windows service.
    Service(Flags, Service),
    Help,
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Install,
    Uninstall,
    /// Started by the service manager.
    Run,
}

pub const HELP: &str = "\
Rabble's node agent: facts, heartbeats, services, checks and work over MQTT

Usage: rabble-agent [OPTIONS]
       rabble-agent check <pass|warn|fail> <CHECK-ID> [--note TEXT]   update a TTL check
       rabble-agent reload                                            re-read the service files
       rabble-agent service install [OPTIONS] | uninstall             Windows: the agent as a service

Options (each also in the config file; a flag wins):
      --config <FILE>             config file (TOML) [env: RABBLE_AGENT_CONFIG]
      --hub <URL>                 the hub's MQTT broker, e.g. mqtt://hub.lan:1883 (repeatable: every hub, in order)
      --name <NAME>               the node's name (default: the hostname)
      --datacenter <DC>
      --node-class <CLASS>
      --advertise <IP>            the address DNS and other nodes use (default: detected)
      --services-dir <DIR>        service files (*.toml, *.hcl, *.json)
      --enable-script-checks      allow `args` (script) checks
      --heartbeat-interval <D>    e.g. 1s
      --keepalive <D>             MQTT keepalive; the broker declares the agent gone after 1.5x
      --socket <PATH>             the local control socket
      --ca <FILE>                 PEM of the CA that signed the hub's certificate
      --token-file <FILE>         this node's token from `rabble-hub node add <name>`
      --join-token-file <FILE>    a join token (`node add <name> --join`), traded at the first connect for the
                                  node's own token, kept in --token-file
      --docker-socket <PATH>      the Docker engine (default /var/run/docker.sock)
      --no-docker                 do not use Docker on this node
      --podman-socket <PATH>      Podman's socket (default /run/podman/podman.sock, where it exists)
      --meta <KEY=VALUE>          node metadata (repeatable)
      --hub-key <KEY>             the hub's public key (`rabble-hub key`): only work signed with it runs
      --no-exec                   do not run raw_exec or exec tasks
      --alloc-dir <DIR>           allocations' working directories (a tmpfs)
      --lane <NAME=ADDR>          serve an HTTP lane, e.g. routing=0.0.0.0:80 (repeatable)
      --dns-listen <ADDR>         answer DNS for the domain here, UDP and TCP (default 127.0.0.1:8600; \"\": off)
  -h, --help
  -V, --version
";

fn value<T: std::str::FromStr>(p: &mut lexopt::Parser, flag: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let v = p.value().map_err(|e| e.to_string())?;
    let s = v.to_str().ok_or_else(|| format!("--{flag}: not UTF-8"))?;
    s.parse().map_err(|e| format!("--{flag} {s:?}: {e}"))
}

/// Parses the arguments after the program name; `env_config` is `$RABBLE_AGENT_CONFIG`.
pub fn parse(args: impl IntoIterator<Item = OsString>, env_config: Option<OsString>) -> Result<Command, String> {
    let mut p = lexopt::Parser::from_args(args);
    let mut f = Flags::default();
    let mut words: Vec<String> = Vec::new();
    let mut note = String::new();
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Long("config") => f.config = Some(value(&mut p, "config")?),
            Long("hub") => f.hub.push(value(&mut p, "hub")?),
            Long("name") => f.name = Some(value(&mut p, "name")?),
            Long("datacenter") => f.datacenter = Some(value(&mut p, "datacenter")?),
            Long("node-class") => f.node_class = Some(value(&mut p, "node-class")?),
            Long("advertise") => f.advertise = Some(value(&mut p, "advertise")?),
            Long("services-dir") => f.services_dir = Some(value(&mut p, "services-dir")?),
            Long("enable-script-checks") => f.enable_script_checks = true,
            Long("heartbeat-interval") => f.heartbeat_interval = Some(value(&mut p, "heartbeat-interval")?),
            Long("keepalive") => f.keepalive = Some(value(&mut p, "keepalive")?),
            Long("socket") => f.socket = Some(value(&mut p, "socket")?),
            Long("ca") => f.ca = Some(value(&mut p, "ca")?),
            Long("token-file") => f.token_file = Some(value(&mut p, "token-file")?),
            Long("join-token-file") => f.join_token_file = Some(value(&mut p, "join-token-file")?),
            Long("docker-socket") => f.docker_socket = Some(value(&mut p, "docker-socket")?),
            Long("no-docker") => f.no_docker = true,
            Long("podman-socket") => f.podman_socket = Some(value(&mut p, "podman-socket")?),
            Long("meta") => {
                let kv: String = value(&mut p, "meta")?;
                let (k, v) = kv.split_once('=').ok_or_else(|| format!("--meta {kv:?} is not key=value"))?;
                f.meta.push((k.to_owned(), v.to_owned()));
            }
            Long("hub-key") => f.hub_key = Some(value(&mut p, "hub-key")?),
            Long("no-exec") => f.no_exec = true,
            Long("alloc-dir") => f.alloc_dir = Some(value(&mut p, "alloc-dir")?),
            Long("dns-listen") => f.dns_listen = Some(value(&mut p, "dns-listen")?),
            Long("lane") => {
                let nv: String = value(&mut p, "lane")?;
                let (name, addr) = nv.split_once('=').ok_or_else(|| format!("--lane {nv:?} is not name=address"))?;
                let listen = addr.parse().map_err(|e| format!("--lane {nv:?}: {e}"))?;
                f.lanes.push(crate::proxy::LaneListen {
                    name: name.to_owned(),
                    listen,
                    tls_listen: None,
                    certs: vec![],
                    servers_transport: Default::default(),
                });
            }
            Long("note") if words.first().is_some_and(|w| w == "check") => note = value(&mut p, "note")?,
            Value(v) => words.push(v.into_string().map_err(|v| format!("{v:?} is not UTF-8"))?),
            other => return Err(format!("{} (see --help)", other.unexpected())),
        }
    }
    if f.config.is_none() {
        f.config = env_config.map(Into::into);
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] => Ok(Command::Run(f)),
        ["reload"] => Ok(Command::Control(f, Request::Reload)),
        ["check", status, id] => {
            let status = match *status {
                "pass" => Status::Passing,
                "warn" => Status::Warning,
                "fail" => Status::Critical,
                other => return Err(format!("check: status {other:?} is not pass, warn or fail")),
            };
            Ok(Command::Control(f, Request::UpdateTtl { check: (*id).to_owned(), status, note }))
        }
        ["check", ..] => Err("usage: rabble-agent check <pass|warn|fail> <CHECK-ID> [--note TEXT]".into()),
        ["service", "install"] => Ok(Command::Service(f, Service::Install)),
        ["service", "uninstall"] => Ok(Command::Service(f, Service::Uninstall)),
        ["service", "run"] => Ok(Command::Service(f, Service::Run)),
        ["service", ..] => Err("usage: rabble-agent service install [OPTIONS] | service uninstall".into()),
        [other, ..] => Err(format!("unknown command {other:?} (commands: check, reload, service; see --help)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from), None)
    }

    #[test]
    fn flags_commands_and_mistakes() {
        let Command::Run(f) = parse_str(&[
            "--hub=mqtts://hub.lan:8883",
            "--name",
            "pi3",
            "--meta",
            "rack=top",
            "--meta=room=attic",
            "--heartbeat-interval",
            "2s",
            "--no-docker",
            "--advertise",
            "10.0.0.3",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(f.hub, ["mqtts://hub.lan:8883"]);
        assert_eq!(f.name.as_deref(), Some("pi3"));
        assert_eq!(f.meta, vec![("rack".into(), "top".into()), ("room".into(), "attic".into())]);
        assert_eq!(f.heartbeat_interval.unwrap().0, std::time::Duration::from_secs(2));
        assert!(f.no_docker && f.advertise.is_some());
        let Command::Control(_, Request::UpdateTtl { check, status, note }) =
            parse_str(&["check", "warn", "service:web", "--note", "slow"]).unwrap()
        else {
            panic!()
        };
        assert_eq!((check.as_str(), status, note.as_str()), ("service:web", Status::Warning, "slow"));
        assert!(matches!(parse_str(&["--socket", "/tmp/s", "reload"]), Ok(Command::Control(_, Request::Reload))));
        let install = parse_str(&["service", "install", "--hub", "mqtt://hub:1883"]);
        assert!(matches!(&install, Ok(Command::Service(f, Service::Install)) if f.hub.len() == 1), "{install:?}");
        assert!(matches!(parse_str(&["service", "uninstall"]), Ok(Command::Service(_, Service::Uninstall))));
        assert!(parse_str(&["service", "start"]).unwrap_err().contains("service install [OPTIONS]"));
        assert!(matches!(parse_str(&["--version"]), Ok(Command::Version)));
        for (args, want) in [
            (&["--hubb", "x"][..], "invalid option '--hubb' (see --help)"),
            (&["--hub"], "missing argument for option '--hub'"),
            (&["--advertise", "pi"], "--advertise \"pi\""),
            (&["--meta", "novalue"], "is not key=value"),
            (&["--keepalive", "soon"], "--keepalive \"soon\""),
            (&["check", "ok", "x"], "not pass, warn or fail"),
            (&["start"], "unknown command \"start\""),
            (&["--note", "x"], "invalid option '--note'"),
        ] {
            let e = parse_str(args).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
        let Command::Run(f) = parse(Vec::<OsString>::new(), Some("/etc/rabble/agent.toml".into())).unwrap() else {
            panic!()
        };
        assert_eq!(f.config.unwrap().to_str(), Some("/etc/rabble/agent.toml"));
    }
}
