//! The replicated log's entry: one commit of the writer — its updates, where each came
//! from, and the time the leader stamped it with — and how every hub applies it.
//!
//! A clustered hub's writer proposes a [`LogEntry`]; every member (the leader too) applies
//! the committed entry with [`LogEntry::apply`] to its own catalog, so every replica
//! reaches the same catalog at the same index (`replay_tests.rs` holds the property).
//! Nothing here reads a clock or does IO.
//!
//! **Invariant:** the encoded form is versioned ([`LOG_FORMAT`]) and golden-tested
//! (`log_tests.rs`); a hub refuses an entry of a newer format rather than misread it.

use super::kv_txn::TxnOutcome;
use super::state::{Applied, Catalog, Update};
use serde::{Deserialize, Serialize};

/// The encoded form of a [`LogEntry`]. Moves when the encoding of any update changes.
pub const LOG_FORMAT: u32 = 1;

/// One change in an entry: where it came from (an MQTT topic, `api`, `hub`, for events) and
/// what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub source: String,
    pub update: Update,
}

/// One commit, as the leader proposes it and every member applies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub format: u32,
    /// The leader's clock when it proposed the entry: every member stamps with it.
    pub at_ms: u64,
    pub changes: Vec<Change>,
}

impl std::fmt::Display for LogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} change(s) at {}", self.changes.len(), self.at_ms)
    }
}

/// What one change did, for the caller that asked for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeResult {
    /// False when the change changed nothing.
    pub changed: bool,
    /// A KV transaction's results or errors.
    pub txn: Option<TxnOutcome>,
}

/// What applying an entry did: the catalog index it is visible at, and per change its result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EntryResult {
    pub index: u64,
    pub results: Vec<ChangeResult>,
}

/// An entry this hub cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("log entry is format {0}, from a newer hub (this one reads up to {LOG_FORMAT}): upgrade this hub")]
    Newer(u32),
    #[error("log entry does not decode: {0}")]
    Decode(String),
}

impl LogEntry {
    pub fn new(at_ms: u64, changes: Vec<Change>) -> LogEntry {
        LogEntry { format: LOG_FORMAT, at_ms, changes }
    }

    /// Applies the entry to `catalog` as one commit; also returns the dirty keys to persist
    /// and, per change, its summaries (with the change's source) for events.
    pub fn apply(self, catalog: &mut Catalog) -> Applying {
        let (sources, updates): (Vec<String>, Vec<Option<Update>>) =
            self.changes.into_iter().map(|c| (c.source, Some(c.update))).unzip();
        let batch = catalog.apply_batch(updates, self.at_ms);
        let mut results = Vec::with_capacity(batch.applied.len());
        let mut summaries = Vec::new();
        for (source, applied) in sources.into_iter().zip(batch.applied) {
            let Applied { dirty, summaries: said, txn } = applied.unwrap_or_default();
            results.push(ChangeResult { changed: !dirty.is_empty(), txn });
            summaries.extend(said.into_iter().map(|s| (source.clone(), s)));
        }
        Applying { result: EntryResult { index: catalog.index, results }, dirty: batch.dirty, summaries }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<LogEntry, LogError> {
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let f: Format = serde_json::from_slice(bytes).map_err(|e| LogError::Decode(e.to_string()))?;
        if f.format > LOG_FORMAT {
            return Err(LogError::Newer(f.format));
        }
        serde_json::from_slice(bytes).map_err(|e| LogError::Decode(e.to_string()))
    }
}

/// An applied entry: its result, the durable keys it changed, and its events.
#[derive(Debug, Default, PartialEq)]
pub struct Applying {
    pub result: EntryResult,
    pub dirty: Vec<super::state::Dirty>,
    /// `(source, summary)` per change, for `rabble watch`.
    pub summaries: Vec<(String, String)>,
}

/// Bytes as base64 in the log (KV values, sealed variables): a third of JSON's arrays.
pub mod bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(b))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        STANDARD.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
