//! Hub-to-hub TLS from the cluster key alone: the key (`rabble-hub cluster keygen`, 32
//! random bytes) derives the cluster CA's ed25519 key, so every hub holding the key makes
//! the same CA certificate (fixed name, serial and dates; ed25519 signs deterministically)
//! and signs a certificate of its own with it at start. Both ends of every connection
//! present one and accept only the cluster CA's: a machine without the key can neither
//! join nor read a byte of what hubs say to each other (the catalog, the secrets).

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::sync::Arc;

/// The one name every member's certificate carries (members are told apart by their id,
/// checked on every request, not by host name: addresses change in a homelab).
pub const PEER_NAME: &str = "rabble-cluster";

#[derive(Debug, thiserror::Error)]
pub enum ClusterTlsError {
    #[error("cluster_key: {0}")]
    Key(String),
    #[error("cluster certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("cluster TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The cluster key, decoded (base64 of 32 bytes, as `keygen` prints it).
#[derive(Clone)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    pub fn parse(text: &str) -> Result<ClusterKey, ClusterTlsError> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| {
            ClusterTlsError::Key(format!("not base64 ({e}); make one with `rabble-hub cluster keygen`"))
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            ClusterTlsError::Key(format!("{} bytes, expected 32; make one with `rabble-hub cluster keygen`", b.len()))
        })?;
        Ok(ClusterKey(key))
    }

    /// A new random key, base64 (what `keygen` prints).
    pub fn generate() -> Result<String, ClusterTlsError> {
        use base64::Engine;
        let bytes = rabble_shared::support::seal::SealKey::random_bytes()
            .map_err(|e| ClusterTlsError::Key(format!("no randomness for a new key: {e}")))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// A value derived for one purpose (the CA's key; nothing else reuses the key itself).
    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"rabble cluster v1");
        let prk = salt.extract(&self.0);
        let info = [purpose];
        let mut out = [0u8; 32];
        prk.expand(&info, ring::hkdf::HKDF_SHA256).and_then(|okm| okm.fill(&mut out)).expect("hkdf of 32 bytes");
        out
    }
}

/// PKCS#8 v1 for an ed25519 seed (RFC 8410): a fixed prefix, then the 32 bytes.
fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(seed);
    der
}

/// This hub's side of the cluster's TLS: the CA every member derives, and a certificate
/// of its own signed by it.
pub struct ClusterTls {
    pub ca: CertificateDer<'static>,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterTls")
    }
}

impl ClusterTls {
    pub fn new(key: &ClusterKey) -> Result<ClusterTls, ClusterTlsError> {
        let seed = key.derive(b"ca");
        let pkcs8 = ed25519_pkcs8(&seed);
        let ca_key = KeyPair::try_from(pkcs8.as_slice())?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.distinguished_name.push(DnType::CommonName, "Rabble hub cluster CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        ca.serial_number = Some(SerialNumber::from(vec![1]));
        (ca.not_before, ca.not_after) = (rcgen::date_time_ymd(2024, 1, 1), rcgen::date_time_ymd(2124, 1, 1));
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);
        let mut me = CertificateParams::new(vec![PEER_NAME.to_owned()])?;
        me.distinguished_name.push(DnType::CommonName, PEER_NAME);
        me.use_authority_key_identifier_extension = true;
        (me.not_before, me.not_after) = (rcgen::date_time_ymd(2024, 1, 1), rcgen::date_time_ymd(2124, 1, 1));
        let my_key = KeyPair::generate()?;
        let my_cert = me.signed_by(&my_key, &issuer)?;
        Ok(ClusterTls { ca: ca_cert.der().clone(), cert: my_cert.der().clone(), key: my_key.serialize_der() })
    }

    fn roots(&self) -> Result<Arc<rustls::RootCertStore>, ClusterTlsError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone())?;
        Ok(Arc::new(roots))
    }

    fn chain(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (vec![self.cert.clone()], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone())))
    }

    /// The server side: a client certificate from the cluster CA is required.
    pub fn server(&self) -> Result<Arc<rustls::ServerConfig>, ClusterTlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(self.roots()?, provider.clone())
            .build()
            .map_err(|e| ClusterTlsError::Key(format!("client verifier: {e}")))?;
        let (chain, key) = self.chain();
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        Ok(Arc::new(cfg))
    }

    /// The client side: the server must show a certificate from the cluster CA.
    pub fn client(&self) -> Result<Arc<rustls::ClientConfig>, ClusterTlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (chain, key) = self.chain();
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(chain, key)?;
        Ok(Arc::new(cfg))
    }

    pub fn server_name() -> ServerName<'static> {
        ServerName::try_from(PEER_NAME).expect("a valid DNS name")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_makes_the_same_ca_and_another_key_another() {
        let k = ClusterKey::parse(&ClusterKey::generate().unwrap()).unwrap();
        let (a, b) = (ClusterTls::new(&k).unwrap(), ClusterTls::new(&k).unwrap());
        assert_eq!(a.ca, b.ca, "every member derives the same CA");
        assert_ne!(a.cert, b.cert, "each member has a certificate of its own");
        let other = ClusterTls::new(&ClusterKey::parse(&ClusterKey::generate().unwrap()).unwrap()).unwrap();
        assert_ne!(a.ca, other.ca);
        a.server().unwrap();
        a.client().unwrap();
    }

    #[test]
    fn a_bad_key_is_named() {
        assert!(ClusterKey::parse("not base64!").unwrap_err().to_string().contains("keygen"));
        assert!(ClusterKey::parse("AAAA").unwrap_err().to_string().contains("3 bytes, expected 32"));
    }
}
