//! TLS for HTTPS health checks (rustls on ring): verified against the system's trust
//! store unless the check says `tls_skip_verify`. The MQTT link's config is
//! `rabble_shared::support::tls`.

use rabble_shared::support::tls::{provider, verifying};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

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

/// A client config that accepts any server certificate (health checks'
/// `tls_skip_verify`, a lane's `insecure_skip_verify`).
pub fn skip_verify() -> Result<Arc<ClientConfig>, String> {
    let p = provider();
    ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map(|b| {
            Arc::new(b.dangerous().with_custom_certificate_verifier(Arc::new(SkipVerify(p))).with_no_client_auth())
        })
        .map_err(|e| e.to_string())
}

/// Wraps a connected socket in TLS for an HTTPS check.
pub async fn connect_for_check(tcp: TcpStream, host: &str, skip: bool) -> Result<TlsStream<TcpStream>, String> {
    let config = if skip { skip_verify()? } else { verifying()? };
    let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("bad TLS server name {host:?}: {e}"))?;
    TlsConnector::from(config).connect(name, tcp).await.map_err(|e| format!("TLS handshake: {e}"))
}
