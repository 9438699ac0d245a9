//! The hub's assignment-signing key: ed25519 (ring), created at first start in the
//! data dir (`assign.key`, PKCS#8, mode 0600). Agents are configured with its public
//! half (`hub_key`), which `rabble-hub node add` and `rabble-hub key` print.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("signing key {path}: {message}")]
pub struct KeyError {
    pub path: PathBuf,
    pub message: String,
}

pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public_b64())
    }
}

impl SigningKey {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("assign.key")
    }

    /// Loads the key, or creates it (0600, owned like the data dir) when there is none.
    pub fn load_or_create(data_dir: &Path) -> Result<SigningKey, KeyError> {
        let path = Self::path(data_dir);
        let err = |message: String| KeyError { path: path.clone(), message };
        let doc = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(|e| err(format!("cannot create the data dir: {e}")))?;
                let rng = ring::rand::SystemRandom::new();
                let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| err("cannot generate a key".into()))?;
                crate::auth::write_private(&path, doc.as_ref()).map_err(|e| err(format!("cannot write: {e}")))?;
                tracing::info!(path = %path.display(), "created the assignment-signing key");
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(err(format!("cannot read: {e}"))),
        };
        Self::from_pkcs8(&doc).map_err(err)
    }

    /// Loads an existing key; never creates one (`rabble-hub key` on a machine that is not
    /// the hub must not print a key no hub has).
    pub fn load(data_dir: &Path) -> Result<SigningKey, KeyError> {
        let path = Self::path(data_dir);
        let err = |message: String| KeyError { path: path.clone(), message };
        let doc = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(err(format!(
                    "no hub key in the data dir {}: a hub makes its key when it first starts. Run this on the hub, \
                     or point --data-dir (or --config) at the hub's data dir",
                    data_dir.display()
                )));
            }
            Err(e) => return Err(err(format!("cannot read: {e}"))),
        };
        Self::from_pkcs8(&doc).map_err(err)
    }

    fn from_pkcs8(doc: &[u8]) -> Result<SigningKey, String> {
        let pair = Ed25519KeyPair::from_pkcs8(doc).map_err(|e| format!("not an ed25519 PKCS#8 key: {e}"))?;
        Ok(SigningKey { pair })
    }

    /// The public key as agents are configured with it (base64 of the 32 bytes).
    pub fn public_b64(&self) -> String {
        STANDARD.encode(self.pair.public_key().as_ref())
    }

    /// The base64 signature of `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        STANDARD.encode(self.pair.sign(body).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_private_and_signs_verifiably() {
        let dir = tempfile::tempdir().unwrap();
        let k = SigningKey::load_or_create(dir.path()).unwrap();
        let again = SigningKey::load_or_create(dir.path()).unwrap();
        assert_eq!(k.public_b64(), again.public_b64(), "loaded, not made anew");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(SigningKey::path(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sig = STANDARD.decode(k.sign(b"body")).unwrap();
        let public = STANDARD.decode(k.public_b64()).unwrap();
        let v = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public);
        assert!(v.verify(b"body", &sig).is_ok());
        assert!(v.verify(b"other", &sig).is_err());
        std::fs::write(SigningKey::path(dir.path()), b"junk").unwrap();
        assert!(SigningKey::load_or_create(dir.path()).unwrap_err().to_string().contains("assign.key"));
    }
}
