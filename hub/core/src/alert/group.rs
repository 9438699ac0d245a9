//! Who is told what, when: Alertmanager's dispatch. Firing alerts are grouped by the
//! route's `group_by` labels; a new group is sent after `group_wait`, a changed one
//! (an alert joined, or resolved) at most every `group_interval`, an unchanged one again
//! after `repeat_interval`; a resolved alert goes out once, in its group's next message.
//! Before grouping, inhibition (a node that is down silences every other alert naming
//! it) and silences (matchers with an end) mute alerts: a muted alert is not sent and is
//! not resolved either. All plain data, kept in the catalog.

use super::{Alert, Labels, key};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The route: how alerts are grouped and paced (hub.toml `[alert]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Route {
    /// Labels that make a group (`["..."]`: every label, one alert per group).
    pub group_by: Vec<String>,
    pub group_wait_ms: u64,
    pub group_interval_ms: u64,
    pub repeat_interval_ms: u64,
}

impl Default for Route {
    /// Alertmanager's sample has 30 s / 5 min / 3 h for fleets; a homelab wants its phone
    /// to buzz within seconds of a Pi dying (a check critical with `for = 0`: within 2 s),
    /// and the all-clear soon after.
    fn default() -> Self {
        Route {
            group_by: vec!["alertname".into(), "node".into()],
            group_wait_ms: 1_000,
            group_interval_ms: 30_000,
            repeat_interval_ms: 3 * 3_600_000,
        }
    }
}

/// One label matcher, as Alertmanager writes them: `node=pi3`, `alertname!=DiskFull`,
/// `service=~"web|db"`, `node!~"pi[12]"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    /// `=~` / `!~`: the value is a regular expression matched against the whole label.
    pub regex: bool,
    /// `!=` / `!~`.
    pub negate: bool,
}

impl Matcher {
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let t = text.trim();
        let (i, op) = ["!~", "=~", "!=", "="]
            .iter()
            .filter_map(|op| t.find(op).map(|i| (i, *op)))
            .min_by_key(|(i, op)| (*i, std::cmp::Reverse(op.len())))
            .ok_or_else(|| format!("{t:?} is not a matcher (name=value, name!=value, name=~regex, name!~regex)"))?;
        let name = t[..i].trim();
        let value = t[i + op.len()..].trim().trim_matches('"');
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{t:?}: {name:?} is not a label name"));
        }
        let m =
            Matcher { name: name.into(), value: value.into(), regex: op.ends_with('~'), negate: op.starts_with('!') };
        if m.regex {
            regex_lite::Regex::new(&format!("^(?:{})$", m.value)).map_err(|e| format!("{t:?}: {e}"))?;
        }
        Ok(m)
    }

    /// A matcher as Alertmanager's API sends it (checked as [`Matcher::parse`] checks one).
    pub fn from_api(m: &rabble_shared::alerts::ApiMatcher) -> Result<Matcher, String> {
        let op = match (m.is_regex, m.is_equal) {
            (false, true) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (true, false) => "!~",
        };
        Matcher::parse(&format!("{}{op}{}", m.name, m.value))
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).map_or("", String::as_str);
        let hit = if self.regex {
            regex_lite::Regex::new(&format!("^(?:{})$", self.value)).is_ok_and(|r| r.is_match(v))
        } else {
            v == self.value
        };
        hit != self.negate
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match (self.regex, self.negate) {
            (false, false) => "=",
            (false, true) => "!=",
            (true, false) => "=~",
            (true, true) => "!~",
        };
        write!(f, "{}{op}{:?}", self.name, self.value)
    }
}

/// A silence: alerts matching all its matchers are muted until `ends_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_ms: u64,
    pub ends_ms: u64,
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
    /// When it was last changed (created, or expired).
    #[serde(default)]
    pub updated_ms: u64,
}

impl Silence {
    pub fn mutes(&self, a: &Alert, now_ms: u64) -> bool {
        (self.starts_ms..self.ends_ms).contains(&now_ms) && self.matchers.iter().all(|m| m.matches(&a.labels))
    }
}

/// Whether `a` is muted: silenced, or inhibited by a `NodeDown` of the node it names.
pub fn muted(a: &Alert, firing: &[Alert], silences: &[Silence], now_ms: u64) -> bool {
    let node = a.labels.get("node");
    let inhibited = a.name() != "NodeDown"
        && node.is_some_and(|n| firing.iter().any(|x| x.name() == "NodeDown" && x.labels.get("node") == Some(n)));
    inhibited || silences.iter().any(|s| s.mutes(a, now_ms))
}

/// One message for the receivers: a group's alerts, firing and just resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub group_key: String,
    pub group_labels: Labels,
    pub alerts: Vec<Alert>,
}

impl Notification {
    pub fn firing(&self) -> bool {
        self.alerts.iter().any(Alert::firing)
    }
}

/// One aggregation group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub labels: Labels,
    pub created_ms: u64,
    /// Its alerts by fingerprint (resolved ones until they have been sent).
    pub alerts: BTreeMap<String, Alert>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_ms: Option<u64>,
    /// What was sent last: each alert's fingerprint and whether it fired.
    pub sent: BTreeSet<(String, bool)>,
}

/// Every group, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatcher {
    pub groups: BTreeMap<String, Group>,
}

impl Dispatcher {
    /// The alerts firing now (muted ones already left out); what is due to be sent.
    pub fn step(
        &mut self,
        route: &Route,
        firing: &[Alert],
        muted: &BTreeSet<String>,
        now_ms: u64,
    ) -> Vec<Notification> {
        let live: BTreeMap<String, &Alert> = firing.iter().map(|a| (a.key(), a)).collect();
        for (k, a) in &live {
            if muted.contains(k) {
                continue;
            }
            let labels = group_labels(route, a);
            let g = self.groups.entry(key(&labels)).or_insert_with(|| Group {
                labels,
                created_ms: now_ms,
                ..Default::default()
            });
            g.alerts.insert(k.clone(), (*a).clone());
        }
        let mut out = Vec::new();
        for (gk, g) in self.groups.iter_mut() {
            // What left the firing set resolved now (a muted one stays as it was).
            for (k, a) in g.alerts.iter_mut() {
                if !live.contains_key(k) && !muted.contains(k) && a.ends_ms.is_none() {
                    a.ends_ms = Some(now_ms);
                }
            }
            let due = match g.sent_ms {
                None => g.created_ms + route.group_wait_ms,
                Some(t) => t + route.group_interval_ms,
            };
            if now_ms < due {
                continue;
            }
            let showing: Vec<&Alert> = g.alerts.iter().filter(|(k, _)| !muted.contains(*k)).map(|(_, a)| a).collect();
            let state: BTreeSet<(String, bool)> = showing.iter().map(|a| (a.key(), a.firing())).collect();
            let repeat = g.sent_ms.is_some_and(|t| now_ms >= t + route.repeat_interval_ms) && state.iter().any(|s| s.1);
            // A group never sent whose alerts all resolved during group_wait says nothing.
            let worth = state.iter().any(|s| s.1) || g.sent.iter().any(|s| s.1);
            if (state != g.sent || repeat) && worth && !showing.is_empty() {
                out.push(Notification {
                    group_key: gk.clone(),
                    group_labels: g.labels.clone(),
                    alerts: showing.into_iter().cloned().collect(),
                });
                g.sent_ms = Some(now_ms);
                g.sent = state;
            }
            // Resolved alerts go out once (never, if they were never sent firing); what was
            // sent is then remembered only for the alerts still in the group.
            let sent = &g.sent;
            let owed = |k: &String| sent.contains(&(k.clone(), true)) && !sent.contains(&(k.clone(), false));
            g.alerts.retain(|k, a| a.firing() || owed(k));
            let alerts = &g.alerts;
            g.sent.retain(|(k, _)| alerts.contains_key(k));
        }
        self.groups.retain(|_, g| !g.alerts.is_empty());
        out
    }
}

impl Dispatcher {
    /// When a group is next due to be looked at (its wait or interval ends), if any: the
    /// alert task wakes then rather than on its next tick.
    pub fn next_due(&self, route: &Route) -> Option<u64> {
        self.groups
            .values()
            .map(|g| match g.sent_ms {
                None => g.created_ms + route.group_wait_ms,
                Some(t) => t + route.group_interval_ms,
            })
            .min()
    }
}

fn group_labels(route: &Route, a: &Alert) -> Labels {
    if route.group_by.iter().any(|l| l == "...") {
        return a.labels.clone();
    }
    route.group_by.iter().filter_map(|l| a.labels.get(l).map(|v| (l.clone(), v.clone()))).collect()
}
