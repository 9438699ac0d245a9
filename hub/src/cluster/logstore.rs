//! The Raft log in `<data_dir>/raft.redb`: entries by index, the vote, the committed and
//! last purged positions, and this member's id. Every write is one redb transaction,
//! durable before it returns (a vote or an entry Raft counts on is on disk).

use super::{ClusterError, MemberId, TypeConfig};
use openraft::alias::{LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

type Entry = <TypeConfig as openraft::RaftTypeConfig>::Entry;

const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";
const ID: &str = "id";
/// A small page cache: recent entries are what is read (a witness fits a Pi 3).
const CACHE_BYTES: usize = 4 * 1024 * 1024;

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// The log; clones share the database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    /// Opens (or creates) the log, and this member's id (made at the first start).
    pub fn open(data_dir: &Path) -> Result<(LogStore, MemberId), ClusterError> {
        let path = data_dir.join("raft.redb");
        let err = |e: redb::Error| ClusterError::Log { path: path.clone(), error: e.to_string() };
        std::fs::create_dir_all(data_dir)
            .map_err(|e| ClusterError::Log { path: path.clone(), error: e.to_string() })?;
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(&path).map_err(|e| err(e.into()))?;
        let tx = db.begin_write().map_err(|e| err(e.into()))?;
        tx.open_table(LOG).map_err(|e| err(e.into()))?;
        let id = {
            let mut meta = tx.open_table(META).map_err(|e| err(e.into()))?;
            let stored = meta.get(ID).map_err(|e| err(e.into()))?.and_then(|v| v.value().try_into().ok());
            match stored {
                Some(bytes) => u64::from_be_bytes(bytes),
                None => {
                    // Never 0, so a printed id is never mistaken for "none".
                    let id = fastrand::u64(1..);
                    meta.insert(ID, id.to_be_bytes().as_slice()).map_err(|e| err(e.into()))?;
                    id
                }
            }
        };
        tx.commit().map_err(|e| err(e.into()))?;
        Ok((LogStore { db: Arc::new(db) }, id))
    }

    /// Runs `f` on a blocking thread (redb's IO and fsyncs must not stall the async workers).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, io::Error> + Send + 'static,
    ) -> Result<T, io::Error> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(io_err)?
    }

    async fn put_meta(&self, key: &'static str, value: Vec<u8>) -> Result<(), io::Error> {
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(io_err)?;
            tx.open_table(META).map_err(io_err)?.insert(key, value.as_slice()).map_err(io_err)?;
            tx.commit().map_err(io_err)
        })
        .await
    }

    async fn get_meta<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, io::Error> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(io_err)?;
            let meta = tx.open_table(META).map_err(io_err)?;
            match meta.get(key).map_err(io_err)? {
                Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(io_err),
                None => Ok(None),
            }
        })
        .await
    }
}

fn decode(bytes: &[u8]) -> Result<Entry, io::Error> {
    serde_json::from_slice(bytes).map_err(io_err)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = (range.start_bound().cloned(), range.end_bound().cloned());
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(io_err)?;
            let log = tx.open_table(LOG).map_err(io_err)?;
            let mut out = Vec::new();
            for row in log.range::<u64>((start, end)).map_err(io_err)? {
                let (_, v) = row.map_err(io_err)?;
                out.push(decode(v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<TypeConfig>>, io::Error> {
        self.get_meta(VOTE).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let purged: Option<LogIdOf<TypeConfig>> = self.get_meta(PURGED).await?;
        let last = self
            .blocking(|db| {
                let tx = db.begin_read().map_err(io_err)?;
                let log = tx.open_table(LOG).map_err(io_err)?;
                match log.last().map_err(io_err)? {
                    Some((_, v)) => Ok(Some(decode(v.value())?.log_id())),
                    None => Ok(None),
                }
            })
            .await?;
        Ok(LogState { last_log_id: last.or(purged), last_purged_log_id: purged })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> Result<(), io::Error> {
        self.put_meta(VOTE, serde_json::to_vec(vote).map_err(io_err)?).await
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<TypeConfig>>) -> Result<(), io::Error> {
        self.put_meta(COMMITTED, serde_json::to_vec(&committed).map_err(io_err)?).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<TypeConfig>>, io::Error> {
        Ok(self.get_meta::<Option<LogIdOf<TypeConfig>>>(COMMITTED).await?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut rows = Vec::new();
        for e in entries {
            rows.push((e.index(), serde_json::to_vec(&e).map_err(io_err)?));
        }
        let done = self
            .blocking(move |db| {
                let tx = db.begin_write().map_err(io_err)?;
                {
                    let mut log = tx.open_table(LOG).map_err(io_err)?;
                    for (i, bytes) in &rows {
                        log.insert(*i, bytes.as_slice()).map_err(io_err)?;
                    }
                }
                tx.commit().map_err(io_err)
            })
            .await;
        let failed = done.as_ref().err().map(|e| io::Error::new(e.kind(), e.to_string()));
        callback.io_completed(done);
        failed.map_or(Ok(()), Err)
    }

    async fn truncate_after(&mut self, last: Option<LogIdOf<TypeConfig>>) -> Result<(), io::Error> {
        let from = last.map_or(0, |l| l.index() + 1);
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(io_err)?;
            tx.open_table(LOG).map_err(io_err)?.retain_in::<u64, _>(from.., |_, _| false).map_err(io_err)?;
            tx.commit().map_err(io_err)
        })
        .await
    }

    async fn purge(&mut self, upto: LogIdOf<TypeConfig>) -> Result<(), io::Error> {
        let bytes = serde_json::to_vec(&upto).map_err(io_err)?;
        let last = upto.index();
        self.blocking(move |db| {
            // One transaction: the purged position and the entries go together (no hole).
            let tx = db.begin_write().map_err(io_err)?;
            tx.open_table(META).map_err(io_err)?.insert(PURGED, bytes.as_slice()).map_err(io_err)?;
            tx.open_table(LOG).map_err(io_err)?.retain_in::<u64, _>(..=last, |_, _| false).map_err(io_err)?;
            tx.commit().map_err(io_err)
        })
        .await
    }
}
