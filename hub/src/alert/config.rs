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
    /// A duration, or `false`.
    pub periodic_grace: Option<toml::Value>,
    /// Days, or `false`.
    pub cert_days: Option<toml::Value>,
    pub reverted: Option<bool>,
    pub hub_member_down: Option<bool>,
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
    /// Not for `mqtt` (the hub's own broker).
    pub url: Option<String>,
    /// A file holding the URL (a webhook URL is a secret).
    pub url_file: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    /// email: the SMTP server, `host:port` (587 or 25: STARTTLS, required; 465: TLS).
    pub smtp: Option<String>,
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// A CA (PEM) the SMTP server's certificate is checked with (default: the system's).
    pub ca_file: Option<PathBuf>,
}

/// `[alert]`, checked and with its secrets read.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    pub route: Route,
    pub thresholds: Thresholds,
    pub rules: Vec<CustomRule>,
    pub receivers: Vec<(String, Kind)>,
    /// An `mqtt` receiver's name: firing alerts kept retained on `rabble/alerts/<fingerprint>`.
    pub mqtt: Option<String>,
    /// Each email receiver's SMTP server and credentials (its name → server).
    pub smtp: Vec<(String, crate::alert::email::SmtpServer)>,
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
            mqtt: None,
            smtp: Vec::new(),
            ui_url: format!("http://{}:{http_port}/ui/", crate::cluster::config::hostname()),
        }
    }

    /// The receivers' names (the HTTP ones and the MQTT one).
    pub fn receiver_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.receivers.iter().map(|(n, _)| n.clone()).collect();
        names.extend(self.mqtt.clone());
        names
    }

    /// A `--notify` flag: `kind:URL`, `mqtt`, or a bare URL (Discord's or Slack's by its
    /// host, else ntfy), named `notify-<n>`.
    pub fn notify(&mut self, flag: &str) -> Result<(), ConfigError> {
        let name = format!("notify-{}", self.receivers.len() + usize::from(self.mqtt.is_some()) + 1);
        let (kind, url) = match flag.split_once(':') {
            Some((k, rest)) if !rest.starts_with("//") => (k.to_owned(), Some(rest.to_owned())),
            _ if flag == "mqtt" => ("mqtt".to_owned(), None),
            _ if flag.contains("discord.com/api/webhooks") => ("discord".to_owned(), Some(flag.to_owned())),
            _ if flag.contains("hooks.slack.com") => ("slack".to_owned(), Some(flag.to_owned())),
            _ => ("ntfy".to_owned(), Some(flag.to_owned())),
        };
        let token = match kind.as_str() {
            "gotify" => std::env::var("RABBLE_GOTIFY_TOKEN").ok(),
            _ => None,
        };
        let rf = ReceiverFile {
            name,
            kind,
            url,
            url_file: None,
            token_file: None,
            smtp: None,
            from: None,
            to: Vec::new(),
            username: None,
            password_file: None,
            ca_file: None,
        };
        self.add(rf, token, "--notify")
    }

    /// Adds a receiver; `token` given directly (a flag's) or read from its `token_file`.
    fn add(&mut self, rf: ReceiverFile, token: Option<String>, at: &'static str) -> Result<(), ConfigError> {
        let name = rf.name.clone();
        if self.receiver_names().contains(&name) {
            return Err(field(at, format!("receiver {name:?} is named twice")));
        }
        if rf.kind == "mqtt" {
            if rf.url.is_some() || rf.url_file.is_some() {
                return Err(field(at, format!("receiver {name:?}: mqtt goes to the hub's own broker; no url")));
            }
            if self.mqtt.is_some() {
                return Err(field(at, "one mqtt receiver at most".into()));
            }
            self.mqtt = Some(name);
            return Ok(());
        }
        if rf.kind == "email" {
            return self.add_email(rf, at);
        }
        let url = match (rf.url, &rf.url_file) {
            (Some(u), None) => u,
            (None, Some(p)) => read_secret(p)?,
            _ => return Err(field(at, format!("receiver {name:?}: give url or url_file"))),
        };
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(field(at, format!("receiver {name:?}: the url must be http:// or https://")));
        }
        let token = match (token, rf.token_file.as_deref()) {
            (Some(t), _) => Some(t),
            (None, Some(p)) => Some(read_secret(p)?),
            (None, None) => None,
        };
        let kind = match rf.kind.as_str() {
            "ntfy" => Kind::Ntfy { url, token },
            "gotify" => Kind::Gotify {
                url,
                token: token
                    .ok_or_else(|| field(at, format!("receiver {name:?}: gotify needs a token (token_file)")))?,
            },
            "webhook" => Kind::Webhook { url },
            "discord" => Kind::Discord { url },
            "slack" => Kind::Slack { url },
            "alertmanager" => Kind::Alertmanager { url },
            other => {
                let msg = format!(
                    "receiver {name:?}: kind {other:?} is not one of ntfy, gotify, webhook, discord, slack, alertmanager, email, mqtt"
                );
                return Err(field(at, msg));
            }
        };
        self.receivers.push((name, kind));
        Ok(())
    }

    /// An email receiver: its server (STARTTLS or TLS, never plain), sender, recipients,
    /// credentials (the password from a file).
    fn add_email(&mut self, rf: ReceiverFile, at: &'static str) -> Result<(), ConfigError> {
        let name = rf.name;
        let bad = |m: &str| field(at, format!("receiver {name:?}: {m}"));
        let server = rf.smtp.ok_or_else(|| bad("email needs smtp = \"host:port\""))?;
        let (host, port) = server.rsplit_once(':').ok_or_else(|| bad("smtp must be host:port (587 for STARTTLS)"))?;
        let port: u16 = port.parse().map_err(|_| bad("smtp's port is not a number"))?;
        let from = rf.from.ok_or_else(|| bad("email needs from"))?;
        if rf.to.is_empty() {
            return Err(bad("email needs to = [\"...\"]"));
        }
        for a in rf.to.iter().chain(std::iter::once(&from)) {
            a.parse::<lettre::message::Mailbox>().map_err(|e| bad(&format!("{a:?} is not an address: {e}")))?;
        }
        let password = rf.password_file.as_deref().map(read_secret).transpose()?;
        let ca_pem = match &rf.ca_file {
            Some(p) => Some(std::fs::read(p).map_err(|e| bad(&format!("ca_file {}: {e}", p.display())))?),
            None => None,
        };
        let smtp =
            crate::alert::email::SmtpServer { host: host.to_owned(), port, username: rf.username, password, ca_pem };
        crate::alert::email::Mailer::new(&smtp).map_err(|e| bad(&e))?;
        self.receivers.push((name.clone(), Kind::Email { server: server.clone(), from, to: rf.to }));
        self.smtp.push((name, smtp));
        Ok(())
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
            periodic_grace_ms: match r.periodic_grace {
                None => t.periodic_grace_ms,
                Some(toml::Value::Boolean(false)) => None,
                Some(toml::Value::String(d)) => Some(
                    rabble_shared::support::duration::parse(&d)
                        .map_err(|e| field("alert.rules.periodic_grace", e))?
                        .as_millis() as u64,
                ),
                Some(other) => {
                    return Err(field("alert.rules.periodic_grace", format!("{other:?} is not a duration or false")));
                }
            },
            cert_days: limit(r.cert_days, t.cert_days.map(|d| d as f64), "alert.rules.cert_days")?.map(|d| d as u64),
            reverted: r.reverted.unwrap_or(t.reverted),
            hub_member_down: r.hub_member_down.unwrap_or(t.hub_member_down),
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
        let host = crate::cluster::config::hostname();
        let ui_url = f.ui_url.unwrap_or_else(|| format!("http://{host}:{http_port}/ui/"));
        let mut cfg =
            AlertConfig { route, thresholds, rules, receivers: Vec::new(), mqtt: None, smtp: Vec::new(), ui_url };
        for rf in f.receiver {
            cfg.add(rf, None, "alert.receiver")?;
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(toml_text: &str) -> Result<AlertConfig, ConfigError> {
        let f: AlertFile = toml::from_str(toml_text).map_err(|e| field("alert", e.to_string()))?;
        AlertConfig::resolve(f, 8500)
    }

    #[test]
    fn receivers_from_the_file_and_from_notify_flags() {
        let mut c = file(
            "[[receiver]]\nname = \"phone\"\nkind = \"ntfy\"\nurl = \"https://ntfy.sh/lab\"\n\n\
             [[receiver]]\nname = \"bus\"\nkind = \"mqtt\"\n",
        )
        .unwrap();
        assert_eq!(c.mqtt.as_deref(), Some("bus"));
        c.notify("https://discord.com/api/webhooks/1/x").unwrap();
        c.notify("webhook:http://n8n.lan/hook").unwrap();
        c.notify("https://ntfy.lan/alerts").unwrap();
        let kinds: Vec<(&str, &Kind)> = c.receivers.iter().map(|(n, k)| (n.as_str(), k)).collect();
        assert_eq!(kinds[1], ("notify-3", &Kind::Discord { url: "https://discord.com/api/webhooks/1/x".into() }));
        assert_eq!(kinds[2], ("notify-4", &Kind::Webhook { url: "http://n8n.lan/hook".into() }));
        assert_eq!(kinds[3].1, &Kind::Ntfy { url: "https://ntfy.lan/alerts".into(), token: None });
        assert_eq!(c.receiver_names(), ["phone", "notify-3", "notify-4", "notify-5", "bus"]);
        for (bad, why) in [
            ("mqtt", "one mqtt receiver"),
            ("pager:http://x", "not one of"),
            ("ftp://x", "http:// or https://"),
            ("gotify:http://gotify.lan", "needs a token"),
        ] {
            let e = c.notify(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("--notify"), "{bad}: {e}");
        }
        let e = file("[[receiver]]\nname = \"m\"\nkind = \"mqtt\"\nurl = \"http://x\"\n").unwrap_err().to_string();
        assert!(e.contains("no url"), "{e}");
        let e = file("[[receiver]]\nname = \"a\"\nkind = \"ntfy\"\nurl = \"http://x\"\n[[receiver]]\nname = \"a\"\nkind = \"slack\"\nurl = \"http://y\"\n").unwrap_err().to_string();
        assert!(e.contains("named twice"), "{e}");
    }
}
