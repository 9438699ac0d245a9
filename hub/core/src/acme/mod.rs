//! ACME planning for the lanes' `tls.certresolver` routers, pure: `plan` (what is wanted,
//! when to renew, a certificate's dates) and `deliver` (each node's bundle). The hub's
//! `acme` task orders, stores and delivers.

pub mod deliver;
pub mod plan;

use plan::CertKey;
use serde::{Deserialize, Serialize};

/// A certificate and its key, as the hub keeps it (sealed on disk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub key: CertKey,
    pub chain_pem: String,
    pub key_pem: String,
    pub not_before: u64,
    pub not_after: u64,
}
