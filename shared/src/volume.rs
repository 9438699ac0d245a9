//! Named volumes (`rabble volume create`): storage a job's `volume { type = "csi", source =
//! "<name>" }` uses, wherever its allocation lands — an NFS export, a host path present on
//! chosen nodes, or a directory local to one node (its users are pinned there). The hub
//! keeps them in the catalog; these are the API's shapes.

use serde::{Deserialize, Serialize};

/// What a volume is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    /// The `source` jobs name it by.
    pub name: String,
    #[serde(flatten)]
    pub backing: Backing,
}

/// Where a volume's data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Backing {
    /// `server:/path`, mounted on the node that runs a user (`mount -t nfs`), with
    /// `options` as `mount -o` takes them (`vers=4.2,soft`).
    Nfs {
        server: String,
        path: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        options: String,
    },
    /// A directory that exists on each of `nodes` (a disk they share, or a copy each).
    Host { path: String, nodes: Vec<String> },
    /// A directory on one node: a user runs there or nowhere.
    Local { node: String, path: String },
}

/// A named volume as an assignment carries it to a node (flat: cheap to decode on a Pi):
/// an NFS export to mount when `nfs` names its server, else a path on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attach {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nfs: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub options: String,
}

impl Backing {
    pub fn attach(&self) -> Attach {
        match self {
            Backing::Nfs { server, path, options } => {
                Attach { nfs: server.clone(), path: path.clone(), options: options.clone() }
            }
            Backing::Host { path, .. } | Backing::Local { path, .. } => {
                Attach { nfs: String::new(), path: path.clone(), options: String::new() }
            }
        }
    }
}

/// A volume and what uses it, as `GET /api/v1/volumes[/<name>]` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeView {
    #[serde(flatten)]
    pub spec: VolumeSpec,
    pub create_ms: u64,
    /// Allocations placed with it (`job/group` on a node), read-only or not.
    #[serde(default)]
    pub users: Vec<VolumeUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeUser {
    pub alloc: String,
    pub job: String,
    pub node: String,
    pub read_only: bool,
}

fn path_ok(p: &str) -> bool {
    p.starts_with('/') && !p.split('/').any(|c| c == "..") && !p.contains('\0')
}

impl VolumeSpec {
    /// Refuses what could not be mounted or would reach outside what it names.
    pub fn validate(&self) -> Result<(), String> {
        let n = &self.name;
        if n.is_empty() || n.len() > 128 || !n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(format!("name {n:?}: letters, digits, '-', '_' and '.', at most 128"));
        }
        match &self.backing {
            Backing::Nfs { server, path, options } => {
                if server.is_empty() || !server.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)) {
                    return Err(format!("server {server:?}: a host name or an address"));
                }
                if !path_ok(path) {
                    return Err(format!("path {path:?}: the export's absolute path"));
                }
                if !options.chars().all(|c| c.is_ascii_alphanumeric() || "=,._:-".contains(c)) {
                    return Err(format!("options {options:?}: mount -o options (vers=4.2,soft), no spaces"));
                }
            }
            Backing::Host { path, nodes } => {
                if !path_ok(path) {
                    return Err(format!("path {path:?}: an absolute path on the nodes"));
                }
                if nodes.is_empty() {
                    return Err("a host volume names the nodes that have its path".into());
                }
            }
            Backing::Local { node, path } => {
                if !path_ok(path) {
                    return Err(format!("path {path:?}: an absolute path on {node}"));
                }
                if node.is_empty() {
                    return Err("a local volume names its node".into());
                }
            }
        }
        Ok(())
    }

    /// `nfs 192.168.1.10:/tank/media (vers=4.2)`, `host /mnt/media on pi1, pi2`, ...
    pub fn describe(&self) -> String {
        match &self.backing {
            Backing::Nfs { server, path, options } if options.is_empty() => format!("nfs {server}:{path}"),
            Backing::Nfs { server, path, options } => format!("nfs {server}:{path} ({options})"),
            Backing::Host { path, nodes } => format!("host {path} on {}", nodes.join(", ")),
            Backing::Local { node, path } => format!("local {path} on {node}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoded_form_and_what_is_refused() {
        let nfs = VolumeSpec {
            name: "media".into(),
            backing: Backing::Nfs {
                server: "192.168.1.10".into(),
                path: "/tank/media".into(),
                options: "vers=4.2".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&nfs).unwrap(),
            r#"{"name":"media","type":"nfs","server":"192.168.1.10","path":"/tank/media","options":"vers=4.2"}"#
        );
        let back: VolumeSpec =
            serde_json::from_str(r#"{"name":"db","type":"local","node":"pi1","path":"/srv/db"}"#).unwrap();
        assert_eq!(back.backing, Backing::Local { node: "pi1".into(), path: "/srv/db".into() });
        assert!(nfs.validate().is_ok());
        let bad = |b: Backing| VolumeSpec { name: "x".into(), backing: b }.validate().unwrap_err();
        assert!(
            bad(Backing::Nfs { server: "h".into(), path: "/a/../etc".into(), options: String::new() }).contains("path")
        );
        assert!(
            bad(Backing::Nfs { server: "h".into(), path: "/a".into(), options: "ro,x y".into() }).contains("options")
        );
        assert!(bad(Backing::Host { path: "/a".into(), nodes: vec![] }).contains("nodes"));
        let e = VolumeSpec { name: "a b".into(), backing: Backing::Local { node: "n".into(), path: "/a".into() } };
        assert!(e.validate().unwrap_err().contains("name"));
        assert_eq!(nfs.describe(), "nfs 192.168.1.10:/tank/media (vers=4.2)");
    }
}
