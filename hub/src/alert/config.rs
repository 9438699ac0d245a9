//! hub.toml's `[alert]`: the route (grouping and pacing), the built-in rules' switches and
//! thresholds (`[alert.rules]`), custom rules (`[[alert.rule]]`) and receivers
//! (`[[alert.receiver]]`). Secrets (tokens, webhook URLs) come from files, read here.

use rabble_core::alert::expr::{CustomRule, Expr};
use rabble_core::alert::group::Route;
use rabble_core::alert::payload::Kind;
use rabble_core::alert::rules::Thresholds;
use rabble_shared::support::config::{ConfigError, read_secret};
use rabble_shared::support::duration::GoDuration;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertFile {
    pub group_by: Option<Vec<String>>,
    pub group_wait: Option<GoDuration>,
    pub group_interval: Option<GoDuration>,
    pub repeat_interval: Option<GoDuration>,
    /// The web UI's address in notifications (the click link).
    pub ui_url: Option<String>,
    #[serde(default)]
    pub rules: RulesFile,
    #[serde(default)]
    pub rule: Vec<RuleFile>,
    #[serde(default)]
    pub receiver: Vec<ReceiverFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    pub node_down: Option<bool>,
    pub check_critical: Option<bool>,
    pub check_critical_for: Option<GoDuration>,
    pub alloc_failed: Option<bool>,
    pub restarts: Option<u32>,
    pub restarts_window: Option<GoDuration>,
    pub unplaceable: Option<bool>,
    /// A number, or `false` to turn the rule off.
    pub disk_percent: Option<toml::Value>,
    pub temperature_c: Option<toml::Value>,
    pub throttled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub name: String,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: Option<GoDuration>,
    pub severity: Option<String>,
    pub summary: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverFile {
    pub name: String,
    /// ntfy, gotify, webhook, discord, slack, alertmanager.
    pub kind: String,
    pub url: Option<String>,
    /// A file holding the URL (a webhook URL is a secret).
    pub url_file: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
}

/// `[alert]`, checked and with its secrets read.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    pub route: Route,
    pub thresholds: Thresholds,
    pub rules: Vec<CustomRule>,
    pub receivers: Vec<(String, Kind)>,
    pub ui_url: String,
}

fn field(field: &'static str, message: String) -> ConfigError {
    ConfigError::Field { field, message }
}

/// A threshold: a number, or `false` (off).
fn limit(v: Option<toml::Value>, default: Option<f64>, name: &'static str) -> Result<Option<f64>, ConfigError> {
    match v {
        None => Ok(default),
        Some(toml::Value::Boolean(false)) => Ok(None),
        Some(toml::Value::Integer(n)) => Ok(Some(n as f64)),
        Some(toml::Value::Float(x)) => Ok(Some(x)),
        Some(other) => Err(field(name, format!("{other:?} is not a number or false"))),
    }
}

impl AlertConfig {
    /// No `[alert]` section: the built-in rules with their defaults, no receiver (alerts
    /// are logged and listed, not sent).
    pub fn defaults(http_port: u16) -> AlertConfig {
        AlertConfig {
            route: Route::default(),
            thresholds: Thresholds::default(),
            rules: Vec::new(),
            receivers: Vec::new(),
            ui_url: format!("http://{}:{http_port}/ui/", crate::cluster::config::hostname()),
        }
    }

    pub fn resolve(f: AlertFile, http_port: u16) -> Result<AlertConfig, ConfigError> {
        let d = Route::default();
        let ms = |v: Option<GoDuration>, default: u64| v.map_or(default, |d| d.0.as_millis() as u64);
        let route = Route {
            group_by: f.group_by.unwrap_or(d.group_by),
            group_wait_ms: ms(f.group_wait, d.group_wait_ms),
            group_interval_ms: ms(f.group_interval, d.group_interval_ms),
            repeat_interval_ms: ms(f.repeat_interval, d.repeat_interval_ms),
        };
        let t = Thresholds::default();
        let r = f.rules;
        let thresholds = Thresholds {
            node_down: r.node_down.unwrap_or(t.node_down),
            check_critical_for_ms: match r.check_critical {
                Some(false) => None,
                _ => Some(ms(r.check_critical_for, t.check_critical_for_ms.unwrap_or(30_000))),
            },
            alloc_failed: r.alloc_failed.unwrap_or(t.alloc_failed),
            restarts: r.restarts.unwrap_or(t.restarts),
            restarts_window_ms: ms(r.restarts_window, t.restarts_window_ms),
            unplaceable: r.unplaceable.unwrap_or(t.unplaceable),
            disk_percent: limit(r.disk_percent, t.disk_percent, "alert.rules.disk_percent")?,
            temperature_c: limit(r.temperature_c, t.temperature_c, "alert.rules.temperature_c")?,
            throttled: r.throttled.unwrap_or(t.throttled),
        };
        let mut rules = Vec::new();
        for rf in f.rule {
            Expr::parse(&rf.expr).map_err(|e| field("alert.rule.expr", format!("rule {:?}: {e}", rf.name)))?;
            rules.push(CustomRule {
                name: rf.name,
                expr: rf.expr,
                severity: rf.severity.unwrap_or_else(|| "warning".into()),
                for_ms: ms(rf.for_, 0),
                summary: rf.summary.unwrap_or_default(),
            });
        }
        let mut receivers = Vec::new();
        for rf in f.receiver {
            let name = rf.name.clone();
            let url = match (rf.url, &rf.url_file) {
                (Some(u), None) => u,
                (None, Some(p)) => read_secret(p)?,
                _ => return Err(field("alert.receiver", format!("receiver {name:?}: give url or url_file"))),
            };
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(field("alert.receiver", format!("receiver {name:?}: the url must be http:// or https://")));
            }
            let token = rf.token_file.as_deref().map(read_secret).transpose()?;
            let kind = match rf.kind.as_str() {
                "ntfy" => Kind::Ntfy { url, token },
                "gotify" => Kind::Gotify {
                    url,
                    token: token.ok_or_else(|| {
                        field("alert.receiver", format!("receiver {name:?}: gotify needs token_file"))
                    })?,
                },
                "webhook" => Kind::Webhook { url },
                "discord" => Kind::Discord { url },
                "slack" => Kind::Slack { url },
                "alertmanager" => Kind::Alertmanager { url },
                other => {
                    let msg = format!(
                        "receiver {name:?}: kind {other:?} is not one of ntfy, gotify, webhook, discord, slack, alertmanager"
                    );
                    return Err(field("alert.receiver", msg));
                }
            };
            receivers.push((name, kind));
        }
        let host = crate::cluster::config::hostname();
        let ui_url = f.ui_url.unwrap_or_else(|| format!("http://{host}:{http_port}/ui/"));
        Ok(AlertConfig { route, thresholds, rules, receivers, ui_url })
    }
}
