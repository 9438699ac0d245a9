//! Ingest counters, shared between the ingest task and the API.

use rabble_shared::api::IngestStats;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<IngestStats>,
}

impl Stats {
    fn with(&self, f: impl FnOnce(&mut IngestStats)) {
        if let Ok(mut s) = self.inner.lock() {
            f(&mut s);
        }
    }
    pub fn accepted(&self) {
        self.with(|s| s.accepted += 1);
    }
    pub fn rejected(&self, label: &'static str) {
        self.with(|s| {
            s.rejected += 1;
            *s.rejected_by_reason.entry(label.to_owned()).or_default() += 1;
        });
    }
    pub fn committed(&self) {
        self.with(|s| s.commits += 1);
    }
    pub fn snapshot(&self) -> IngestStats {
        self.inner.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
