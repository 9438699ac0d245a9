//! TLS to a lane's `https` servers (`loadbalancer.server.scheme=https`: the Proxmox UI on
//! 8006, a NAS's admin page): verified against the system's roots, the lane's
//! `[lane.servers_transport] root_cas`, or — Traefik's `insecureSkipVerify`, what a
//! homelab with self-signed appliances sets — not verified at all (signatures are still
//! checked, so the session keys are the server's). HTTP/1.1 by ALPN.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::path::PathBuf;
use std::sync::Arc;

/// `[lane.servers_transport]`, Traefik's `serversTransport` for the lane's servers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServersTransport {
    /// Accept any server certificate (self-signed appliances).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Trust these CA files (PEM) instead of the system's roots.
    #[serde(default)]
    pub root_cas: Vec<PathBuf>,
}

/// The client config for a lane's https servers, or why there is none (then those
/// servers get a 502 that says it).
pub fn client_config(t: &ServersTransport) -> Result<Arc<ClientConfig>, String> {
    let mut config = if t.insecure_skip_verify {
        (*crate::tls::skip_verify()?).clone()
    } else if !t.root_cas.is_empty() {
        let builder = ClientConfig::builder_with_provider(rabble_shared::support::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let mut roots = RootCertStore::empty();
        for f in &t.root_cas {
            let err = |e: &dyn std::fmt::Display| format!("root_cas {}: {e}", f.display());
            for c in CertificateDer::pem_file_iter(f).map_err(|e| err(&e))? {
                roots.add(c.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        (*rabble_shared::support::tls::verifying()?).clone()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name a server is verified as: its host (an IP checks the certificate's IP SANs).
pub fn server_name(authority: &str) -> Result<ServerName<'static>, String> {
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| format!("{authority}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_authorities() {
        assert_eq!(server_name("pve.lan:8006").unwrap(), ServerName::try_from("pve.lan").unwrap());
        assert!(matches!(server_name("10.0.0.2:8006").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name("[fd00::2]:443").unwrap(), ServerName::IpAddress(_)));
        assert!(server_name("bad name:1").is_err());
    }

    #[test]
    fn configs_and_a_broken_ca_file_named() {
        let t = ServersTransport { insecure_skip_verify: true, root_cas: vec![] };
        assert_eq!(client_config(&t).unwrap().alpn_protocols, vec![b"http/1.1".to_vec()]);
        let t = ServersTransport { insecure_skip_verify: false, root_cas: vec!["/nonexistent/ca.pem".into()] };
        assert!(client_config(&t).unwrap_err().contains("/nonexistent/ca.pem"));
    }
}
