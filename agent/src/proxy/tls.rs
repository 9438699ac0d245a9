//! TLS on a lane: certificates from PEM files and from the hub's ACME resolvers
//! ([`Pushed`], in memory only), the one presented chosen by the client's SNI (a hub
//! certificate valid for the name, else a file's; the first file's when none is or the
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

/// The certificates the hub handed this lane (`rabble/node/<node>/certs/<lane>`).
#[derive(Debug, Default)]
pub struct Pushed(std::sync::RwLock<Vec<Arc<CertifiedKey>>>);

impl Pushed {
    pub fn set(&self, certs: Vec<Arc<CertifiedKey>>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = certs;
    }
    fn get(&self) -> Vec<Arc<CertifiedKey>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Picks a certificate by SNI.
#[derive(Debug)]
struct BySni {
    files: Vec<CertFiles>,
    loaded: std::sync::Mutex<Loaded>,
    pushed: Arc<Pushed>,
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
        let pushed = self.pushed.get();
        let chosen =
            hello.server_name().and_then(|n| pushed.iter().chain(certs.iter()).find(|c| Self::valid_for(c, n)));
        chosen.or(certs.first()).or(pushed.first()).cloned()
    }
}

fn load(f: &CertFiles) -> Result<Arc<CertifiedKey>, String> {
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let (cert, key) = (read(&f.cert)?, read(&f.key)?);
    from_pem(&cert, &key, &f.cert.display().to_string(), &f.key.display().to_string())
}

/// A chain and its key from PEM; errors name `cert_name` or `key_name`.
pub fn from_pem(cert: &[u8], key: &[u8], cert_name: &str, key_name: &str) -> Result<Arc<CertifiedKey>, String> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert).collect::<Result<Vec<_>, _>>().map_err(|e| format!("{cert_name}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{cert_name}: no certificate in it (expected PEM)"));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("{key_name}: {e}"))?;
    let key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| format!("{key_name}: {e}"))?;
    let ck = CertifiedKey::new(certs, key);
    ck.keys_match().map_err(|e| format!("{key_name} does not go with {cert_name}: {e}"))?;
    Ok(Arc::new(ck))
}

/// The acceptor for a lane's TLS listener: its files' certificates and `pushed`.
pub fn acceptor(files: &[CertFiles], pushed: Arc<Pushed>) -> Result<TlsAcceptor, String> {
    let certs = files.iter().map(load).collect::<Result<Vec<_>, _>>()?;
    let loaded = Loaded { certs, stamps: stamps(files), checked: tokio::time::Instant::now() };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { files: files.to_vec(), loaded: std::sync::Mutex::new(loaded), pushed }));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
