//! What ACME obtained, kept across restarts: each resolver's account credentials and
//! every certificate with its key, in `<data_dir>/acme.sealed` (sealed with the data
//! dir's key, `crate::secrets`: never a private key in clear on disk).

use super::plan::CertKey;
use crate::secrets::{self, SecretsError};
use rabble_shared::support::seal::SealKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub const FILE_NAME: &str = "acme.sealed";

pub use rabble_core::acme::Stored;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Contents {
    /// `instant_acme::AccountCredentials` by `<resolver> <directory>`.
    accounts: BTreeMap<String, serde_json::Value>,
    certs: Vec<Stored>,
}

/// The store, loaded; every change is written before it is used.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    key: Arc<SealKey>,
    contents: Contents,
}

impl Store {
    pub fn open(data_dir: &std::path::Path, key: Arc<SealKey>) -> Result<Store, SecretsError> {
        let path = data_dir.join(FILE_NAME);
        let contents = match secrets::read(&path, &key)? {
            None => Contents::default(),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| SecretsError::File { path: path.clone(), message: format!("not an ACME store: {e}") })?,
        };
        Ok(Store { path, key, contents })
    }

    fn save(&self) -> Result<(), SecretsError> {
        let bytes = serde_json::to_vec(&self.contents).unwrap_or_default();
        secrets::write(&self.path, &self.key, &bytes)
    }

    pub fn account(&self, id: &str) -> Option<&serde_json::Value> {
        self.contents.accounts.get(id)
    }

    pub fn set_account(&mut self, id: &str, creds: serde_json::Value) -> Result<(), SecretsError> {
        self.contents.accounts.insert(id.to_owned(), creds);
        self.save()
    }

    pub fn cert(&self, key: &CertKey) -> Option<&Stored> {
        self.contents.certs.iter().find(|c| &c.key == key)
    }

    pub fn certs(&self) -> &[Stored] {
        &self.contents.certs
    }

    /// Keeps `c`, replacing the certificate for the same names.
    pub fn put(&mut self, c: Stored) -> Result<(), SecretsError> {
        self.contents.certs.retain(|o| o.key != c.key);
        self.contents.certs.push(c);
        self.save()
    }

    /// Forgets expired certificates nothing wants any more.
    pub fn prune(&mut self, wanted: &super::plan::Wanted, now: u64) -> Result<(), SecretsError> {
        let before = self.contents.certs.len();
        self.contents.certs.retain(|c| wanted.contains_key(&c.key) || c.not_after > now);
        if self.contents.certs.len() != before { self.save() } else { Ok(()) }
    }
}
