//! What `rabble image` puts in the boot partition's `rabble/` folder, pure: the agents
//! (one per CPU, `rabble-agent.<arch>`), the node's `agent.toml`, the CA, the token, the
//! node's service files (`services/`), the agent's unit and its drop-in, `firstboot.sh`
//! (images/pi/firstboot.sh, shipped in the binary) and `cmdline.added`.

use super::boot::Arch;

/// The installer that runs at first boot.
pub const FIRSTBOOT: &str = include_str!("../../../../images/pi/firstboot.sh");
/// The agent's unit (the same file README's manual install uses).
pub const UNIT: &str = include_str!("../../../../images/rabble-agent.service");
/// Where firstboot.sh puts the token, root-only; the unit's drop-in hands the agent a copy.
const TOKEN_DROP_IN: &str = "# Written by `rabble image`: the node's token (root-only in /etc/rabble) reaches the\n\
# agent through systemd's credentials.\n[Service]\nLoadCredential=token:/etc/rabble/token\n";

/// With a join token: the agent keeps the token it trades it for in its state directory.
const JOIN_DROP_IN: &str = "# Written by `rabble image`: the node's join token (root-only in /etc/rabble) reaches the\n\
# agent through systemd's credentials; the token it trades it for is kept in its state directory.\n\
[Service]\nLoadCredential=join:/etc/rabble/join-token\nStateDirectory=rabble-agent\nStateDirectoryMode=0700\n";

/// Everything about the node that goes on its card.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub name: String,
    /// Every hub, in order (the agent tries the next when one is down).
    pub hub: Vec<String>,
    pub datacenter: Option<String>,
    pub class: Option<String>,
    pub meta: Vec<(String, String)>,
    pub hub_key: Option<String>,
    pub ca: Option<Vec<u8>>,
    pub token: Option<String>,
    /// A join token (`rabble-hub node add <name> --join`): single use, short-lived.
    pub join_token: Option<String>,
    /// (file name, contents) of the node's service files.
    pub services: Vec<(String, Vec<u8>)>,
    pub agents: Vec<(Arch, Vec<u8>)>,
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The node's `/etc/rabble/agent.toml`.
pub fn agent_toml(n: &Node) -> String {
    let mut t = String::from("# /etc/rabble/agent.toml — written by `rabble image`; see docs/agent.md.\n");
    let mut kv = |k: &str, v: &str| t.push_str(&format!("{k} = {}\n", quote(v)));
    match n.hub.as_slice() {
        [one] => kv("hub", one),
        many => {
            let list: Vec<String> = many.iter().map(|h| quote(h)).collect();
            t.push_str(&format!("hub = [{}]\n", list.join(", ")));
        }
    }
    let mut kv = |k: &str, v: &str| t.push_str(&format!("{k} = {}\n", quote(v)));
    kv("name", &n.name);
    if let Some(dc) = &n.datacenter {
        kv("datacenter", dc);
    }
    if let Some(c) = &n.class {
        kv("node_class", c);
    }
    if n.ca.is_some() {
        kv("ca", "/etc/rabble/ca.pem");
    }
    if n.token.is_some() {
        kv("token_file", "/run/credentials/rabble-agent.service/token");
    } else if n.join_token.is_some() {
        kv("token_file", "/var/lib/rabble-agent/token");
        kv("join_token_file", "/run/credentials/rabble-agent.service/join");
    }
    if let Some(k) = &n.hub_key {
        kv("hub_key", k);
    }
    kv("services_dir", "/etc/rabble/services.d");
    if !n.meta.is_empty() {
        t.push_str("\n[meta]\n");
        for (k, v) in &n.meta {
            let bare = k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            t.push_str(&format!("{} = {}\n", if bare { k.clone() } else { quote(k) }, quote(v)));
        }
    }
    t
}

/// The files under `rabble/`, by path relative to it.
pub fn files(n: &Node, cmdline_added: &[String]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (arch, bytes) in &n.agents {
        out.push((format!("rabble-agent.{}", arch.suffix()), bytes.clone()));
    }
    out.push(("agent.toml".into(), agent_toml(n).into_bytes()));
    if let Some(ca) = &n.ca {
        out.push(("ca.pem".into(), ca.clone()));
    }
    if let Some(tok) = &n.token {
        out.push(("token".into(), format!("{}\n", tok.trim()).into_bytes()));
        out.push(("rabble-agent.service.d/10-token.conf".into(), TOKEN_DROP_IN.as_bytes().to_vec()));
    }
    if let Some(tok) = &n.join_token {
        out.push(("join-token".into(), format!("{}\n", tok.trim()).into_bytes()));
        out.push(("rabble-agent.service.d/10-join.conf".into(), JOIN_DROP_IN.as_bytes().to_vec()));
    }
    for (name, bytes) in &n.services {
        out.push((format!("services/{name}"), bytes.clone()));
    }
    out.push(("rabble-agent.service".into(), UNIT.as_bytes().to_vec()));
    out.push(("firstboot.sh".into(), FIRSTBOOT.as_bytes().to_vec()));
    out.push(("cmdline.added".into(), cmdline_added.iter().map(|t| format!("{t}\n")).collect::<String>().into_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_config_reads_back_and_names_what_firstboot_installs() {
        let n = Node {
            name: "pi-kitchen".into(),
            hub: vec!["mqtts://hub.lan:8883".into()],
            class: Some("pi4".into()),
            meta: vec![("room".into(), "kitchen \"2\"".into())],
            ca: Some(b"PEM".to_vec()),
            token: Some("tok\n".into()),
            hub_key: Some("abc=".into()),
            ..Default::default()
        };
        let text = agent_toml(&n);
        let cfg: rabble_agent::config::FileConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            (cfg.hub.unwrap().0, cfg.name.as_deref()),
            (vec!["mqtts://hub.lan:8883".into()], Some("pi-kitchen"))
        );
        let two = Node { hub: vec!["mqtts://hub1.lan".into(), "mqtts://hub2.lan".into()], ..n.clone() };
        let cfg: rabble_agent::config::FileConfig = toml::from_str(&agent_toml(&two)).unwrap();
        assert_eq!(cfg.hub.unwrap().0, two.hub);
        assert_eq!(cfg.meta["room"], "kitchen \"2\"");
        assert_eq!(cfg.token_file.unwrap().to_str(), Some("/run/credentials/rabble-agent.service/token"));
        let names: Vec<String> = files(&n, &["a".into()]).into_iter().map(|f| f.0).collect();
        for want in ["agent.toml", "ca.pem", "token", "rabble-agent.service.d/10-token.conf", "firstboot.sh"] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        // firstboot.sh installs each of them under the names it looks for.
        let j = Node { token: None, join_token: Some("j".into()), ..n.clone() };
        let cfg: rabble_agent::config::FileConfig = toml::from_str(&agent_toml(&j)).unwrap();
        assert!(cfg.join_token_file.is_some() && cfg.token_file.unwrap().starts_with("/var/lib/rabble-agent"));
        for used in
            ["agent.toml", "ca.pem", "token", "join-token", "rabble-agent.service", "cmdline.added", "services/"]
        {
            assert!(FIRSTBOOT.contains(used), "{used}");
        }
    }
}
