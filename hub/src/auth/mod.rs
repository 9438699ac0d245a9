//! Who may talk to the embedded broker: per-node credentials (`credentials`), the
//! broker's auth hook that checks them (`Authenticator`), and the private CA and hub
//! certificate for MQTT over TLS (`pki`).
//!
//! Credentials authenticate a connection; they do not yet authorise topics (rumqttd has
//! no ACLs): see ARCHITECTURE.md, "What a node's credentials protect".

pub mod credentials;
pub mod pki;
pub mod revoke;

pub use credentials::{Credentials, CredentialsError, HUB_USER, Sealing, Verdict};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use rabble_shared::topic::AGENT_CLIENT_PREFIX;

/// The directory a file lives in (`.` for a bare file name).
pub fn dir_of(path: &std::path::Path) -> &std::path::Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."))
}

/// Opens (creating it, mode 0600) a private file and hands it to whoever owns its
/// directory: made by root next to a hub that runs as its own user, the hub can still
/// open it.
pub fn open_private(path: &std::path::Path, truncate: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(truncate).mode(0o600).open(path)?;
    if let Ok(m) = std::fs::metadata(dir_of(path)) {
        let _ = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()));
    }
    Ok(f)
}

/// Writes a secret file atomically (a temporary file, fsync, rename) through
/// `open_private`.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = open_private(&tmp, true)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Checks CONNECTs against the credentials file, re-reading it whenever it changes, so
/// `rabble-hub node add|revoke` take effect without a restart (from each node's next
/// connect on). The hub's own client uses a per-process secret that is never written.
#[derive(Debug)]
pub struct Authenticator {
    path: PathBuf,
    hub_secret: String,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    stamp: Option<crate::stamp::Stamp>,
    creds: Credentials,
    /// Why the last read failed (the last good set is kept meanwhile).
    error: Option<String>,
}

impl Authenticator {
    /// Reads the file once now so a broken file stops the hub at startup.
    pub fn new(path: PathBuf) -> Result<Authenticator, CredentialsError> {
        let a = Authenticator { path, hub_secret: credentials::new_token()?, cache: Mutex::default() };
        a.refresh()?;
        Ok(a)
    }

    /// Username and password the hub itself connects with.
    pub fn hub_login(&self) -> (String, String) {
        (HUB_USER.to_owned(), self.hub_secret.clone())
    }

    /// Re-reads the file if it changed since the last look (a stat otherwise).
    pub fn refresh(&self) -> Result<(), CredentialsError> {
        let stamp = crate::stamp::of(&self.path);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.stamp != stamp || stamp.is_none() {
            match Credentials::load(&self.path) {
                Ok(creds) => {
                    cache.creds = creds;
                    cache.stamp = stamp;
                    cache.error = None;
                }
                Err(e) => {
                    cache.error = Some(e.to_string());
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Who a username is, for the topic ACL: an active node or observer; `None` for
    /// anyone else (the hub's own user never comes through the TLS relay).
    pub fn role(&self, user: &str) -> Option<crate::broker::acl::Role> {
        use crate::broker::acl::Role;
        let _ = self.refresh(); // a node added a moment ago is known at once
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let id = rabble_shared::NodeId::new(user).ok()?;
        let c = cache.creds.nodes.get(&id).filter(|c| c.revoked.is_none())?;
        Some(if c.observer { Role::Observer } else { Role::Node(id) })
    }

    /// How content for `node` alone may leave the hub, from the file as last read (no IO:
    /// `refresh` first). Fails closed: when the file could not be read and the last good
    /// one has no entry for the node, nothing goes out in clear.
    pub fn sealing(&self, node: &rabble_shared::NodeId) -> Sealing {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        match (cache.creds.sealing(node), &cache.error) {
            (Sealing::Clear, Some(e)) => Sealing::Withheld(format!("the credentials file is unreadable: {e}")),
            (s, _) => s,
        }
    }

    /// The revoked nodes, as of the last `refresh`.
    pub fn revoked(&self) -> std::collections::BTreeSet<rabble_shared::NodeId> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).creds.revoked()
    }

    /// Decides one CONNECT. A file broken since startup keeps the last good set (and
    /// says so), rather than locking every node out.
    pub fn check(&self, client_id: &str, user: &str, pass: &str) -> Verdict {
        if user == HUB_USER {
            let ok = credentials::hash(pass) == credentials::hash(&self.hub_secret);
            return if ok { Verdict::Accepted } else { Verdict::WrongToken };
        }
        if let Err(e) = self.refresh() {
            tracing::error!(error = %e, "credentials file unreadable; using the last good one");
        }
        // rumqttd drops the older of two sessions with one client id: a node may use its
        // own agent id, or any id that is not an agent's, never another node's (checked
        // first, so a join is never spent on a connection that is then refused).
        let verdict = if client_id.strip_prefix(AGENT_CLIENT_PREFIX).is_some_and(|n| n != user) {
            Verdict::OtherNodesClientId
        } else {
            match rabble_shared::support::join::parse(pass) {
                Some((join, token_hash)) => self.join(user, join, token_hash),
                None => self.cache.lock().unwrap_or_else(|p| p.into_inner()).creds.verify(user, pass),
            }
        };
        match verdict {
            Verdict::Accepted => tracing::debug!(client_id, user, "node authenticated"),
            Verdict::JoinUsed => {
                tracing::warn!(client_id, user, "refused a join token: it was already used (a copy of the card?)")
            }
            Verdict::JoinExpired => tracing::warn!(
                client_id,
                user,
                "refused a join token: it expired (`rabble-hub node add {user} --join` makes a new one)"
            ),
            Verdict::NotJoined => {
                tracing::warn!(client_id, user, "refused: the node has a join token and has not joined yet")
            }
            v => tracing::warn!(client_id, user, verdict = ?v, "refused an MQTT connection"),
        }
        if verdict == Verdict::Joined { Verdict::Accepted } else { verdict }
    }

    /// Mints a join token for `name` (`POST /api/v1/nodes/<name>/join`): under the file's
    /// lock, from the file as it is now.
    pub fn mint_join(&self, name: &str, ttl_secs: u64) -> Result<(rabble_shared::NodeId, String), CredentialsError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = Credentials::lock(&self.path)?;
        let minted = file.creds.add_join(name, ttl_secs)?;
        self.keep(&mut cache, file)?;
        tracing::info!(node = %minted.0, ttl_secs, "minted a join token");
        Ok(minted)
    }

    /// A join: decided on the file as it is now, under its lock, and on success saved at
    /// once (the file is the record that the token is used).
    fn join(&self, user: &str, join: &str, token_hash: &str) -> Verdict {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let saved = Credentials::lock(&self.path).and_then(|mut file| {
            let verdict = file.creds.join(user, join, token_hash, credentials::now());
            if verdict == Verdict::Joined { self.keep(&mut cache, file).map(|()| verdict) } else { Ok(verdict) }
        });
        match saved {
            Ok(Verdict::Joined) => {
                tracing::info!(user, "node joined: its join token is used, its own credential recorded");
                Verdict::Joined
            }
            Ok(verdict) => verdict,
            Err(e) => {
                tracing::error!(error = %e, user, "could not record the node's credential; refusing its join for now");
                Verdict::WrongToken
            }
        }
    }

    /// Saves the locked file and makes it the cached set (its stamp too, so it is not
    /// re-read).
    fn keep(&self, cache: &mut Cache, file: credentials::Locked) -> Result<(), CredentialsError> {
        (cache.creds, cache.stamp) = file.save()?;
        Ok(())
    }

    /// The hook rumqttd calls for every CONNECT on a listener that requires credentials.
    pub fn handler(self: Arc<Self>) -> rumqttd::AuthHandler {
        Arc::new(move |client_id, user, pass| {
            let me = self.clone();
            Box::pin(async move { me.check(&client_id, &user, &pass) == Verdict::Accepted })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_file_changes_and_accepts_only_the_hub_s_own_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = Credentials::path(dir.path());
        let a = Authenticator::new(path.clone()).unwrap();
        assert_eq!(a.check("c", "pi", "x"), Verdict::UnknownNode);
        let mut c = Credentials::load(&path).unwrap();
        let (_, token) = c.add("pi").unwrap();
        c.save(&path).unwrap();
        assert_eq!(a.check("c", "pi", &token), Verdict::Accepted);
        assert_eq!(a.check("rabble-agent-pi", "pi", &token), Verdict::Accepted);
        assert_eq!(a.check("rabble-agent-pi4", "pi", &token), Verdict::OtherNodesClientId);
        c.revoke("pi").unwrap();
        c.save(&path).unwrap();
        assert_eq!(a.check("c", "pi", &token), Verdict::Revoked);
        let (user, pass) = a.hub_login();
        assert_eq!(a.check("rabble-hub", &user, &pass), Verdict::Accepted);
        assert_eq!(a.check("rabble-hub", &user, "guess"), Verdict::WrongToken);
        // A broken file keeps the last good set.
        std::fs::write(&path, "{").unwrap();
        assert_eq!(a.check("c", "pi", &token), Verdict::Revoked);
    }
}
