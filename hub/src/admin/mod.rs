//! `rabble-hub node add|revoke|list` and `rabble-hub tls init`: the hub's offline
//! administration. They work on files in the data dir and /etc/rabble, so they run
//! beside a live hub (which re-reads the credentials file on every CONNECT).
//! `rabble-hub acl bootstrap` and `cluster` ask the running hub, on its loopback API.

pub mod cluster;

use crate::auth::pki::{self, PkiFiles};
use crate::auth::{Credentials, CredentialsError};
use crate::dispatch::sign::{KeyError, SigningKey};
use std::io::Write;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    /// The running hub's API refused or could not be reached.
    #[error("{0}")]
    Api(String),
}

/// Issues a token for a node and prints it with the lines to put on the node.
pub fn node_add(data_dir: &Path, name: &str, observer: bool, out: &mut impl Write) -> Result<(), AdminError> {
    let path = Credentials::path(data_dir);
    let mut file = Credentials::lock(&path)?;
    let (id, token) = file.creds.add_with(name, observer)?;
    file.save()?;
    if observer {
        writeln!(out, "{token}")?;
        eprintln!(
            "Issued an observer token for {id} (shown once): it may subscribe to rabble/# (and homeassistant/#) over TLS and publish nothing (but Home Assistant's homeassistant/status).\n  \
             mosquitto_sub -h <hub> -p 8883 --cafile ca.pem -u {id} -P <token> -t 'rabble/#' -v"
        );
        return Ok(());
    }
    let key = SigningKey::load_or_create(data_dir)?.public_b64();
    writeln!(out, "{token}")?;
    eprintln!(
        "Issued credentials for node {id} (shown once; the hub keeps only a hash).\n\
         On the node, as root:\n  \
         (umask 077; echo '{token}' > /etc/rabble/token)\n  \
         and set in /etc/rabble/agent.toml:  name = \"{id}\"  token_file = \"/etc/rabble/token\"\n  \
         hub_key = \"{key}\"   (the agent runs only work signed with this key)"
    );
    Ok(())
}

/// Issues a join token for a node (single use, valid `ttl`) and prints it: it goes on
/// the node's card (`rabble image --join-token-file`); the node trades it for its own
/// credential at its first connect.
pub fn node_join(
    data_dir: &Path,
    name: &str,
    ttl: std::time::Duration,
    out: &mut impl Write,
) -> Result<(), AdminError> {
    let path = Credentials::path(data_dir);
    let mut file = Credentials::lock(&path)?;
    let (id, token) = file.creds.add_join(name, ttl.as_secs())?;
    file.save()?;
    let key = SigningKey::load_or_create(data_dir)?.public_b64();
    writeln!(out, "{token}")?;
    eprintln!(
        "Issued a join token for node {id}: single use, valid {}s. Put it on the node's card:
           rabble image <image> --name {id} --join-token-file <this file> --hub-key {key} --hub mqtts://<hub>:8883 --ca ca.pem",
        ttl.as_secs()
    );
    Ok(())
}

/// `rabble-hub key`: the public key agents verify assignments with — an existing hub's
/// only (it never makes one), with the file it came from on stderr.
pub fn hub_key(data_dir: &Path, out: &mut impl Write) -> Result<(), AdminError> {
    let key = SigningKey::load(data_dir)?;
    writeln!(out, "{}", key.public_b64())?;
    eprintln!("the hub key in {}", SigningKey::path(data_dir).display());
    Ok(())
}

pub fn node_revoke(data_dir: &Path, name: &str) -> Result<(), AdminError> {
    let path = Credentials::path(data_dir);
    let mut file = Credentials::lock(&path)?;
    let id = file.creds.revoke(name)?;
    file.save()?;
    eprintln!(
        "Revoked node {id}: a running hub closes its session at once, marks it down and refuses it from then on."
    );
    Ok(())
}

pub fn node_list(data_dir: &Path, out: &mut impl Write) -> Result<(), AdminError> {
    let creds = Credentials::load(&Credentials::path(data_dir))?;
    writeln!(out, "{:<24} {:<8} {:<11} REVOKED", "NODE", "STATE", "ADDED")?;
    for (id, c) in &creds.nodes {
        let state = match (&c.revoked, &c.join) {
            (Some(_), _) => "revoked",
            (None, Some(j)) if j.used.is_none() && c.sha256.is_empty() => "joining",
            _ => "active",
        };
        let revoked = c.revoked.map(utc_date).unwrap_or_default();
        writeln!(out, "{:<24} {:<8} {:<11} {revoked}", id.as_str(), state, utc_date(c.added))?;
    }
    Ok(())
}

/// Creates the CA and hub certificate and says what to do with them.
pub fn tls_init(dir: &Path, extra_names: &[String]) -> Result<PkiFiles, AdminError> {
    let mut names = extra_names.to_vec();
    for n in pki::default_names() {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let f = pki::init(dir, &names)?;
    eprintln!(
        "Created a private CA and a hub certificate for {names:?}, valid {years} years:\n  \
         {ca}  (copy to every node as /etc/rabble/ca.pem)\n  \
         {ca_key}  (the CA's key: only needed to sign another hub certificate; keep it safe)\n  \
         {cert}, {key}\n\
         In /etc/rabble/hub.toml:  tls_cert = \"{cert}\"  tls_key = \"{key}\"\n\
         On each node (agent.toml):  hub = \"mqtts://<hub>:8883\"  ca = \"/etc/rabble/ca.pem\"",
        years = pki::VALID_YEARS,
        ca = f.ca_cert.display(),
        ca_key = f.ca_key.display(),
        cert = f.hub_cert.display(),
        key = f.hub_key.display(),
    );
    Ok(f)
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
fn utc_date(secs: u64) -> String {
    rabble_shared::support::clock::day(secs.saturating_mul(1000))
}

/// `rabble-hub acl bootstrap`: asks the hub running at `http` (its loopback API) for the
/// first management token. Its secret goes to `token_file` (0600, for the CLI on the hub)
/// or to stdout; the hub keeps only its hash. Waits up to `wait` for the hub to answer
/// (`rabble-hub install` has just restarted it).
// A command-line program, outside any runtime: it waits for the hub with a thread's sleep.
#[allow(clippy::disallowed_methods)]
pub fn acl_bootstrap(
    http: std::net::SocketAddr,
    token_file: Option<&Path>,
    wait: std::time::Duration,
    out: &mut impl Write,
) -> Result<rabble_shared::api::AclTokenView, AdminError> {
    let url = format!("http://{}/api/v1/acl/bootstrap", crate::broker::local_addr(http));
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let deadline = tokio::time::Instant::now() + wait;
    let mut resp = loop {
        match agent.post(&url).send_empty() {
            Ok(r) => break r,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(AdminError::Api(format!("{url}: {e} (is the hub running?)")));
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(250)),
        }
    };
    let body = resp.body_mut().read_to_string().map_err(|e| AdminError::Api(format!("{url}: {e}")))?;
    if !resp.status().is_success() {
        let msg = serde_json::from_str::<rabble_shared::api::ApiError>(&body).map_or(body, |e| e.error);
        return Err(AdminError::Api(msg));
    }
    let t: rabble_shared::api::AclTokenView =
        serde_json::from_str(&body).map_err(|e| AdminError::Api(format!("{url}: {e}")))?;
    let secret = t.secret.clone().unwrap_or_default();
    match token_file {
        Some(path) => {
            crate::auth::write_private(path, format!("{secret}\n").as_bytes())?;
            writeln!(
                out,
                "ACL bootstrapped: management token {} (its secret is in {}, readable by root only)",
                t.accessor,
                path.display()
            )?;
        }
        None => {
            writeln!(out, "AccessorID: {}\nSecretID:   {secret}", t.accessor)?;
            eprintln!(
                "The secret is shown once; the hub keeps only its hash. Use it as RABBLE_TOKEN, or `rabble login`."
            );
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc_date(0), "1970-01-01");
        assert_eq!(super::utc_date(951_782_400), "2000-02-29");
        assert_eq!(super::utc_date(1_795_484_366), "2026-11-24");
    }
}
