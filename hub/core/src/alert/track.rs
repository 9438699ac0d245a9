//! How long each condition has held: pending until its `for` has passed, then firing
//! (once), then resolved when it no longer holds. The state is plain data, kept in the
//! catalog, so a hub that restarts (or another hub that leads) neither loses a firing
//! alert nor fires it again.

use super::rules::Condition;
use super::{Alert, Labels, key};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One condition being watched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    /// Since when the condition holds (ms).
    pub active_ms: u64,
    /// When it started firing; `None` while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firing_ms: Option<u64>,
}

impl Tracked {
    fn alert(&self, ends_ms: Option<u64>) -> Alert {
        Alert {
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            starts_ms: self.firing_ms.unwrap_or(self.active_ms),
            ends_ms,
        }
    }
}

/// What a step changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Fired(Alert),
    Resolved(Alert),
}

/// Every condition being watched, by fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracker {
    pub watched: BTreeMap<String, Tracked>,
}

impl Tracker {
    /// The conditions that hold at `now_ms`: new ones start pending (or fire at once with
    /// no `for`), held ones fire once their `for` has passed, gone ones resolve.
    pub fn step(&mut self, holding: Vec<Condition>, now_ms: u64) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut seen = BTreeSet::new();
        for c in holding {
            let k = key(&c.labels);
            let t = self.watched.entry(k.clone()).or_insert_with(|| Tracked {
                labels: c.labels.clone(),
                annotations: BTreeMap::new(),
                active_ms: c.since_ms.unwrap_or(now_ms).min(now_ms),
                firing_ms: None,
            });
            t.annotations = c.annotations;
            if t.firing_ms.is_none() && now_ms.saturating_sub(t.active_ms) >= c.for_ms {
                t.firing_ms = Some(now_ms);
                changes.push(Change::Fired(t.alert(None)));
            }
            seen.insert(k);
        }
        let gone: Vec<String> = self.watched.keys().filter(|k| !seen.contains(*k)).cloned().collect();
        for k in gone {
            if let Some(t) = self.watched.remove(&k)
                && t.firing_ms.is_some()
            {
                changes.push(Change::Resolved(t.alert(Some(now_ms))));
            }
        }
        changes
    }

    /// The alerts firing now.
    pub fn firing(&self) -> Vec<Alert> {
        self.watched.values().filter(|t| t.firing_ms.is_some()).map(|t| t.alert(None)).collect()
    }
}
