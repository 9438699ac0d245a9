//! TLS client setup (rustls on ring): the MQTT link to the hub, verified against the
//! configured CA file (or the system's trust store), and HTTPS health checks, verified
//! against the system's trust store unless the check says `tls_skip_verify`.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The verifying config, built once on first use from the system trust store.
fn verifying() -> Result<Arc<ClientConfig>, String> {
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

/// Accepts any certificate (as Consul's `tls_skip_verify` does) but still checks that
/// the handshake is signed by the key in the certificate presented.
#[derive(Debug)]
struct SkipVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn skip_verify() -> Result<Arc<ClientConfig>, String> {
    let p = provider();
    ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map(|b| {
            Arc::new(b.dangerous().with_custom_certificate_verifier(Arc::new(SkipVerify(p))).with_no_client_auth())
        })
        .map_err(|e| e.to_string())
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

/// Wraps a connected socket in TLS for an HTTPS check.
pub async fn connect_for_check(tcp: TcpStream, host: &str, skip: bool) -> Result<TlsStream<TcpStream>, String> {
    let config = if skip { skip_verify()? } else { verifying()? };
    let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("bad TLS server name {host:?}: {e}"))?;
    TlsConnector::from(config).connect(name, tcp).await.map_err(|e| format!("TLS handshake: {e}"))
}
