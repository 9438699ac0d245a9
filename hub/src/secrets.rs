//! Secrets at rest in the hub's data dir: `secret.key` (32 random bytes, mode 0600,
//! created at first start) seals files with ChaCha20-Poly1305 (`support::seal`), the
//! file's name as associated data. A backup of the data dir without the key reveals
//! nothing sealed with it; losing the key loses what it sealed (for ACME: the account
//! and certificates, which are then obtained again).

use rabble_shared::support::seal::SealKey;
use std::path::{Path, PathBuf};

pub const KEY_FILE: &str = "secret.key";

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

fn err(path: &Path, message: impl std::fmt::Display) -> SecretsError {
    SecretsError::File { path: path.to_owned(), message: message.to_string() }
}

/// The data dir's sealing key, created (0600) if missing.
pub fn key(data_dir: &Path) -> Result<SealKey, SecretsError> {
    let path = data_dir.join(KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let k: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                err(
                    &path,
                    format!("{} bytes; a sealing key is 32 (restore it from the backup it came with)", bytes.len()),
                )
            })?;
            Ok(SealKey::from_bytes(&k))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(|e| err(data_dir, e))?;
            let k = SealKey::random_bytes().map_err(|e| err(&path, e))?;
            crate::auth::write_private(&path, &k).map_err(|e| err(&path, format!("cannot write: {e}")))?;
            tracing::info!(path = %path.display(), "created the key that seals secrets at rest");
            Ok(SealKey::from_bytes(&k))
        }
        Err(e) => Err(err(&path, format!("cannot read: {e}"))),
    }
}

fn aad(path: &Path) -> Vec<u8> {
    path.file_name().map(|n| n.as_encoded_bytes().to_vec()).unwrap_or_default()
}

/// The opened contents of a sealed file; `None` when there is none.
pub fn read(path: &Path, key: &SealKey) -> Result<Option<Vec<u8>>, SecretsError> {
    match std::fs::read(path) {
        Ok(bytes) => key.open(&aad(path), &bytes).map(Some).map_err(|e| err(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(path, format!("cannot read: {e}"))),
    }
}

/// Seals `plain` into `path` (atomically, 0600).
pub fn write(path: &Path, key: &SealKey, plain: &[u8]) -> Result<(), SecretsError> {
    let sealed = key.seal(&aad(path), plain).map_err(|e| err(path, e))?;
    crate::auth::write_private(path, &sealed).map_err(|e| err(path, format!("cannot write: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_file_opens_with_its_key_only_and_shows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let f = dir.path().join("acme.sealed");
        assert_eq!(read(&f, &k).unwrap(), None);
        write(&f, &k, b"-----BEGIN PRIVATE KEY-----").unwrap();
        assert!(!std::fs::read(&f).unwrap().windows(7).any(|w| w == b"PRIVATE"));
        // The same key comes back from the file.
        assert_eq!(read(&f, &key(dir.path()).unwrap()).unwrap().unwrap(), b"-----BEGIN PRIVATE KEY-----");
        // Renamed, or under another key: refused, saying where.
        let g = dir.path().join("other.sealed");
        std::fs::copy(&f, &g).unwrap();
        assert!(read(&g, &k).unwrap_err().to_string().contains("other.sealed"));
        let other = tempfile::tempdir().unwrap();
        assert!(read(&f, &key(other.path()).unwrap()).is_err());
        std::fs::write(other.path().join(KEY_FILE), b"short").unwrap();
        assert!(key(other.path()).unwrap_err().to_string().contains("5 bytes"));
    }
}
