//! The secrets every leader needs, kept in step from the leader to the other members over
//! the cluster's mutual TLS (never anywhere else): the assignment-signing key, the key
//! that seals secrets at rest, the node credentials, and the sealed files (ACME's account
//! and certificates). A member writes what changed, each file replaced whole (0600).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The data dir's files that are the cluster's secrets, besides every `*.sealed` file.
const FILES: [&str; 3] = ["assign.key", crate::secrets::KEY_FILE, crate::auth::credentials::FILE_NAME];

/// Files by name, base64. Debug shows names only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    pub files: BTreeMap<String, String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.files.keys()).finish()
    }
}

impl Secrets {
    /// A digest of every file (names and contents): a follower sends its own, and the
    /// leader sends the files only when they differ.
    pub fn digest(&self) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for (name, b64) in &self.files {
            for part in [name.as_bytes(), b"\0", b64.as_bytes(), b"\0"] {
                ctx.update(part);
            }
        }
        ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn wanted(name: &str) -> bool {
    FILES.contains(&name) || (name.ends_with(".sealed") && !name.contains('/') && !name.starts_with('.'))
}

/// What this hub holds.
pub fn read(data_dir: &Path) -> std::io::Result<Secrets> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if wanted(&name) && entry.file_type()?.is_file() {
            files.insert(name, STANDARD.encode(std::fs::read(entry.path())?));
        }
    }
    Ok(Secrets { files })
}

/// Writes every file of `secrets` that differs here; returns their names.
pub fn write(data_dir: &Path, secrets: &Secrets) -> std::io::Result<Vec<String>> {
    let mut written = Vec::new();
    for (name, b64) in &secrets.files {
        if !wanted(name) {
            // Only the names above: a member never writes a path it was handed.
            continue;
        }
        let bytes = STANDARD.decode(b64).map_err(|e| std::io::Error::other(format!("{name}: {e}")))?;
        let path = data_dir.join(name);
        if std::fs::read(&path).is_ok_and(|have| have == bytes) {
            continue;
        }
        let tmp = data_dir.join(format!(".{name}.tmp"));
        crate::auth::write_private(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path)?;
        written.push(name.clone());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secret_files_travel_and_only_changes_are_written() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(a.path().join("assign.key"), b"k1").unwrap();
        std::fs::write(a.path().join("acme.sealed"), b"sealed").unwrap();
        std::fs::write(a.path().join("catalog.redb"), b"not a secret").unwrap();
        let s = read(a.path()).unwrap();
        assert_eq!(s.files.keys().collect::<Vec<_>>(), ["acme.sealed", "assign.key"]);
        assert_eq!(format!("{s:?}"), r#"["acme.sealed", "assign.key"]"#, "names, never contents");
        assert_eq!(write(b.path(), &s).unwrap(), ["acme.sealed", "assign.key"]);
        assert!(write(b.path(), &s).unwrap().is_empty(), "nothing changed");
        let mut hostile = s.clone();
        hostile.files.insert("../etc/passwd".into(), STANDARD.encode("x"));
        hostile.files.insert("hub.toml".into(), STANDARD.encode("x"));
        assert!(write(b.path(), &hostile).unwrap().is_empty());
        assert!(!b.path().join("hub.toml").exists());
        assert_eq!(read(b.path()).unwrap().digest(), s.digest(), "the same files, the same digest");
        std::fs::write(b.path().join("assign.key"), b"k2").unwrap();
        assert_ne!(read(b.path()).unwrap().digest(), s.digest(), "a changed file changes it");
    }
}
