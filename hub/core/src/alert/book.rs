//! The alerts' part of the catalog, changed only through the writer as the rest is: what
//! the leader's alert task last tracked and sent (so a restarted hub, or a new leader,
//! neither loses a firing alert nor sends it again) and the silences (Alertmanager's:
//! matchers, a start and an end). Also the API's view of both (`shared::alerts`).

use super::Alert;
use super::group::{Dispatcher, Matcher, Silence};
use super::track::Tracker;
use crate::catalog::state::{Applied, Dirty};
use rabble_shared::alerts::SilenceStatus;
use rabble_shared::alerts::{AlertStatus, ApiMatcher, GettableAlert, GettableSilence, PostableSilence, ReceiverName};
use rabble_shared::support::clock::{datetime, parse_rfc3339, rfc3339};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Ended silences are listed (and can be re-created from) this long, as Alertmanager's
/// retention; then the leader forgets them.
pub const SILENCE_RETENTION_MS: u64 = 5 * 24 * 3_600_000;

/// The alert task's memory: conditions being watched, and what each group was last sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    pub tracker: Tracker,
    pub dispatcher: Dispatcher,
}

impl AlertState {
    /// The state without its words (annotations carry live values, a disk's percent): what
    /// must be kept when it changes. Written only then, so a steady alert costs no writes.
    pub fn course(&self) -> AlertState {
        let mut c = self.clone();
        for t in c.tracker.watched.values_mut() {
            t.annotations.clear();
        }
        for g in c.dispatcher.groups.values_mut() {
            for a in g.alerts.values_mut() {
                a.annotations.clear();
            }
        }
        c
    }
}

/// Everything alerts keep in the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertBook {
    pub state: Arc<AlertState>,
    pub silences: BTreeMap<String, Silence>,
}

/// A change to the alerts' part of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertUpdate {
    /// The leader's state after a step that changed what fires or what was sent.
    State(Box<AlertState>),
    /// A silence, new or replacing the one of its id.
    Silence(Silence),
    /// Ends a silence at `at_ms` (Alertmanager's expire).
    Expire { id: String, at_ms: u64 },
    /// Forgets silences that ended more than [`SILENCE_RETENTION_MS`] ago.
    Forget(Vec<String>),
}

impl AlertBook {
    pub fn apply(&mut self, u: AlertUpdate) -> Applied {
        let mut out = Applied::default();
        match u {
            AlertUpdate::State(s) => {
                if *self.state != *s {
                    self.state = Arc::new(*s);
                    out.dirty.push(Dirty::AlertState);
                }
            }
            AlertUpdate::Silence(s) => {
                if self.silences.get(&s.id) != Some(&s) {
                    out.summaries.push(format!(
                        "silence {} ({}) until {} by {}",
                        s.id,
                        matchers_text(&s.matchers),
                        datetime(s.ends_ms),
                        s.created_by
                    ));
                    out.dirty.push(Dirty::Silence(s.id.clone()));
                    self.silences.insert(s.id.clone(), s);
                }
            }
            AlertUpdate::Expire { id, at_ms } => {
                if let Some(s) = self.silences.get_mut(&id).filter(|s| s.ends_ms > at_ms) {
                    s.ends_ms = at_ms;
                    s.starts_ms = s.starts_ms.min(at_ms);
                    s.updated_ms = at_ms;
                    out.summaries.push(format!("silence {id} expired"));
                    out.dirty.push(Dirty::Silence(id));
                }
            }
            AlertUpdate::Forget(ids) => {
                for id in ids {
                    if self.silences.remove(&id).is_some() {
                        out.dirty.push(Dirty::Silence(id));
                    }
                }
            }
        }
        out
    }

    /// The silences that mute now or later (not the ended ones).
    pub fn live_silences(&self, now_ms: u64) -> Vec<Silence> {
        self.silences.values().filter(|s| s.ends_ms > now_ms).cloned().collect()
    }

    /// Silences ended longer ago than the retention.
    pub fn stale_silences(&self, now_ms: u64) -> Vec<String> {
        let old = |s: &&Silence| s.ends_ms.saturating_add(SILENCE_RETENTION_MS) < now_ms;
        self.silences.values().filter(old).map(|s| s.id.clone()).collect()
    }
}

pub fn matchers_text(ms: &[Matcher]) -> String {
    ms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// A silence as the API shows it.
pub fn silence_view(s: &Silence, now_ms: u64) -> GettableSilence {
    let state = if s.ends_ms <= now_ms {
        "expired"
    } else if s.starts_ms > now_ms {
        "pending"
    } else {
        "active"
    };
    GettableSilence {
        id: s.id.clone(),
        status: SilenceStatus { state: state.into() },
        updated_at: rfc3339(s.updated_ms.max(s.starts_ms)),
        matchers: s.matchers.iter().map(api_matcher).collect(),
        starts_at: rfc3339(s.starts_ms),
        ends_at: rfc3339(s.ends_ms),
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
    }
}

fn api_matcher(m: &Matcher) -> ApiMatcher {
    ApiMatcher { name: m.name.clone(), value: m.value.clone(), is_regex: m.regex, is_equal: !m.negate }
}

/// A posted silence, checked as Alertmanager checks one: at least one matcher, each a
/// label name and (for `=~`) a regular expression, not every matcher matching an empty
/// label (it would silence everything), and an end after its start and after now. A start
/// in the past starts now.
pub fn silence_from(p: PostableSilence, id: String, now_ms: u64) -> Result<Silence, String> {
    if p.matchers.is_empty() {
        return Err("a silence needs at least one matcher".into());
    }
    let matchers = p.matchers.iter().map(Matcher::from_api).collect::<Result<Vec<_>, _>>()?;
    if matchers.iter().all(|m| m.matches(&BTreeMap::new())) {
        return Err("at least one matcher must not match the empty label (that silence would mute every alert)".into());
    }
    let time = |field: &str, v: &str| parse_rfc3339(v).ok_or_else(|| format!("{field}: {v:?} is not an RFC 3339 time"));
    let starts = time("startsAt", &p.starts_at)?.max(now_ms);
    let ends = time("endsAt", &p.ends_at)?;
    if ends <= now_ms {
        return Err(format!("endsAt {} is in the past", p.ends_at));
    }
    if ends <= starts {
        return Err("endsAt must be after startsAt".into());
    }
    let created_by = if p.created_by.trim().is_empty() { "unknown".into() } else { p.created_by };
    Ok(Silence { id, matchers, starts_ms: starts, ends_ms: ends, created_by, comment: p.comment, updated_ms: now_ms })
}

/// The firing alerts as the API shows them: each `active` (sent) or `suppressed`, with the
/// silences that mute it and the alerts that inhibit it (its node's `NodeDown`).
pub fn alert_views(book: &AlertBook, receivers: &[String], ui_url: &str, now_ms: u64) -> Vec<GettableAlert> {
    let firing = book.state.tracker.firing();
    let silences = book.live_silences(now_ms);
    firing
        .iter()
        .map(|a| {
            let silenced_by: Vec<String> =
                silences.iter().filter(|s| s.mutes(a, now_ms)).map(|s| s.id.clone()).collect();
            let inhibited_by: Vec<String> = match a.labels.get("node") {
                Some(n) if a.name() != "NodeDown" => firing
                    .iter()
                    .filter(|x| x.name() == "NodeDown" && x.labels.get("node") == Some(n))
                    .map(Alert::fingerprint)
                    .collect(),
                _ => Vec::new(),
            };
            let quiet = !silenced_by.is_empty() || !inhibited_by.is_empty();
            GettableAlert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: rfc3339(a.starts_ms),
                ends_at: "0001-01-01T00:00:00.000Z".into(),
                updated_at: rfc3339(a.starts_ms),
                fingerprint: a.fingerprint(),
                receivers: receivers.iter().map(|r| ReceiverName { name: r.clone() }).collect(),
                status: AlertStatus {
                    state: if quiet { "suppressed" } else { "active" }.into(),
                    silenced_by,
                    inhibited_by,
                },
                generator_url: ui_url.to_owned(),
            }
        })
        .collect()
}
