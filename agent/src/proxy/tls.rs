//! TLS on a lane: certificates from PEM files, the one presented chosen by the client's
//! SNI (the first certificate valid for the name; the first one when none is or the
//! client sends no name), HTTP/1.1 by ALPN. Renewed files (certbot, lego, a copy) are
//! picked up by the next handshakes, checked at most every few seconds; a broken
//! renewal keeps the certificates in use and says why. Errors name the file.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// A certificate chain and its key (`[[lane.cert]] cert = "..." key = "..."`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How often the files are looked at for a renewal.
const RELOAD_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Every file's stamp (`None`: missing), in order.
type Stamps = Vec<Option<rabble_shared::support::stamp::Stamp>>;

fn stamps(files: &[CertFiles]) -> Stamps {
    use rabble_shared::support::stamp::of;
    files.iter().flat_map(|f| [of(&f.cert), of(&f.key)]).collect()
}

/// The certificates in use, and what they were loaded from.
#[derive(Debug)]
struct Loaded {
    certs: Vec<Arc<CertifiedKey>>,
    stamps: Stamps,
    checked: tokio::time::Instant,
}

/// Picks a certificate by SNI.
#[derive(Debug)]
struct BySni {
    files: Vec<CertFiles>,
    loaded: std::sync::Mutex<Loaded>,
}

impl BySni {
    /// The certificates, re-read first if their files changed (at most every
    /// [`RELOAD_CHECK`]).
    fn current(&self) -> Vec<Arc<CertifiedKey>> {
        let mut l = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let now = tokio::time::Instant::now();
        if now.duration_since(l.checked) >= RELOAD_CHECK {
            l.checked = now;
            let st = stamps(&self.files);
            if st != l.stamps {
                l.stamps = st;
                match self.files.iter().map(load).collect::<Result<Vec<_>, _>>() {
                    Ok(certs) => {
                        tracing::info!(certs = certs.len(), "lane certificates reloaded");
                        l.certs = certs;
                    }
                    Err(e) => tracing::warn!("lane certificates not reloaded (keeping those in use): {e}"),
                }
            }
        }
        l.certs.clone()
    }

    fn valid_for(ck: &CertifiedKey, name: &str) -> bool {
        let Ok(name) = ServerName::try_from(name) else { return false };
        let Some(der) = ck.cert.first() else { return false };
        webpki::EndEntityCert::try_from(der).is_ok_and(|c| c.verify_is_valid_for_subject_name(&name).is_ok())
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self.current();
        let chosen = hello.server_name().and_then(|n| certs.iter().find(|c| Self::valid_for(c, n)));
        chosen.or(certs.first()).cloned()
    }
}

fn load(f: &CertFiles) -> Result<Arc<CertifiedKey>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&f.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", f.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it (expected PEM)", f.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&f.key).map_err(|e| format!("{}: {e}", f.key.display()))?;
    let key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| format!("{}: {e}", f.key.display()))?;
    let ck = CertifiedKey::new(certs, key);
    ck.keys_match().map_err(|e| format!("{} does not go with {}: {e}", f.key.display(), f.cert.display()))?;
    Ok(Arc::new(ck))
}

/// The acceptor for a lane's TLS listener.
pub fn acceptor(files: &[CertFiles]) -> Result<TlsAcceptor, String> {
    if files.is_empty() {
        return Err("tls_listen needs at least one [[lane.cert]] (cert and key files)".into());
    }
    let certs = files.iter().map(load).collect::<Result<Vec<_>, _>>()?;
    let loaded = Loaded { certs, stamps: stamps(files), checked: tokio::time::Instant::now() };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { files: files.to_vec(), loaded: std::sync::Mutex::new(loaded) }));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
