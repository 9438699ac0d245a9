//! The TLS client side (rustls on ring, no aws-lc): the MQTT link to the hub (or to an
//! external broker), verified against a configured CA file or the system's trust store.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// ring, the one crypto provider in the tree.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The verifying config, built once on first use from the system trust store.
pub fn verifying() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(
                    "no trusted CA certificates found on this system (install ca-certificates, or set tls_skip_verify)"
                        .into(),
                );
            }
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// The TLS config for the MQTT link: trusts exactly the certificates in `ca` (the
/// private CA from `rabble-hub tls init`), or the system's trust store without one.
/// Errors name the file.
pub fn hub_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let Some(ca) = ca else { return verifying() };
    let err = |e: &dyn std::fmt::Display| format!("CA file {}: {e}", ca.display());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| err(&e))? {
        roots.add(cert.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
    }
    if roots.is_empty() {
        return Err(err(&"no certificate in it (expected PEM)"));
    }
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| e.to_string())
}
