//! Certificates the hub obtained by ACME for the `tls.certresolver` routers of a lane,
//! handed to every node that serves the lane over TLS: a [`CertMessage`] retained on
//! `rabble/node/<node>/certs/<lane>`. The private keys travel sealed for that node
//! (ChaCha20-Poly1305 under a key both ends derive from the node's token: see
//! `support::seal`) whenever the node has credentials; only a cluster that runs
//! without credentials (`rabble dev`, an open broker) sends them [`CertMessage::Plain`].
//! The node keeps them in memory only (no SD-card writes); the retained message brings
//! them back after a restart.

use crate::msg::{DecodeError, Payload};
use serde::{Deserialize, Serialize};

/// A node takes at most this many certificates per lane.
pub const MAX_CERTS: usize = 64;

/// One certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCert {
    /// The resolver (`[[resolver]] name`) that obtained it.
    pub resolver: String,
    /// The names it is for (the first is the subject).
    pub domains: Vec<String>,
    /// The chain, leaf first (PEM).
    pub chain_pem: String,
    /// Its private key (PEM, PKCS#8).
    pub key_pem: String,
    /// Unix seconds.
    pub not_after: u64,
}

/// The certificates of one lane for one node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CertBundle {
    pub lane: String,
    pub certs: Vec<IssuedCert>,
}

/// What travels on `rabble/node/<node>/certs/<lane>`: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CertMessage {
    /// Base64 of a sealed [`CertBundle::to_bytes`] (the topic is the associated data,
    /// so a message moved to another node's or lane's topic does not open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    /// The bundle in clear: only where the node has no credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain: Option<CertBundle>,
}

impl CertMessage {
    pub fn sealed(b64: String) -> CertMessage {
        CertMessage { sealed: Some(b64), plain: None }
    }
    pub fn plain(bundle: CertBundle) -> CertMessage {
        CertMessage { sealed: None, plain: Some(bundle) }
    }
}

impl Payload for CertMessage {
    const WHAT: &'static str = "certificates";
    fn validate(&self) -> Result<(), DecodeError> {
        match (&self.sealed, &self.plain) {
            (Some(_), None) => Ok(()),
            (None, Some(b)) => b.check(),
            _ => Err(DecodeError::Invalid("certificates: exactly one of \"sealed\" and \"plain\"".into())),
        }
    }
}

impl CertBundle {
    /// Bounds a node relies on.
    pub fn check(&self) -> Result<(), DecodeError> {
        if self.certs.len() > MAX_CERTS {
            return Err(DecodeError::Invalid(format!(
                "{} certificates, over the limit of {MAX_CERTS}",
                self.certs.len()
            )));
        }
        Ok(())
    }
    /// The bundle's bytes inside a sealed message.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    pub fn from_bytes(bytes: &[u8]) -> Result<CertBundle, DecodeError> {
        let b: CertBundle =
            serde_json::from_slice(bytes).map_err(|error| DecodeError::Json { what: "certificates", error })?;
        b.check()?;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg;

    fn bundle() -> CertBundle {
        CertBundle {
            lane: "ingress".into(),
            certs: vec![IssuedCert {
                resolver: "le".into(),
                domains: vec!["home.example.org".into()],
                chain_pem: "-----BEGIN CERTIFICATE-----\n".into(),
                key_pem: "-----BEGIN PRIVATE KEY-----\n".into(),
                not_after: 1_790_000_000,
            }],
        }
    }

    #[test]
    fn golden_encodings() {
        assert_eq!(
            String::from_utf8(msg::encode(&CertMessage::sealed("AAEC".into()))).unwrap(),
            r#"{"v":1,"sealed":"AAEC"}"#
        );
        let plain = String::from_utf8(msg::encode(&CertMessage::plain(bundle()))).unwrap();
        assert_eq!(
            plain,
            r#"{"v":1,"plain":{"lane":"ingress","certs":[{"resolver":"le","domains":["home.example.org"],"chain_pem":"-----BEGIN CERTIFICATE-----\n","key_pem":"-----BEGIN PRIVATE KEY-----\n","not_after":1790000000}]}}"#
        );
        assert_eq!(msg::decode::<CertMessage>(plain.as_bytes()).unwrap(), CertMessage::plain(bundle()));
        assert!(msg::decode::<CertMessage>(br#"{"v":1}"#).is_err());
        assert_eq!(CertBundle::from_bytes(&bundle().to_bytes()).unwrap(), bundle());
    }

    #[test]
    fn too_many_certificates_are_refused() {
        let mut b = bundle();
        b.certs = vec![b.certs[0].clone(); MAX_CERTS + 1];
        assert!(CertBundle::from_bytes(&b.to_bytes()).unwrap_err().to_string().contains("over the limit"));
        assert!(msg::decode::<CertMessage>(&msg::encode(&CertMessage::plain(b))).is_err());
    }
}
