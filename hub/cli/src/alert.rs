//! `rabble alert list|silence|silences|expire`: what fires and whether it is sent or held
//! back, and silences (Alertmanager's: matchers, a start, an end) through the hub's
//! Alertmanager-shaped API (`amtool --alertmanager.url=<hub>` works too).

use super::{CliError, Client};
use crate::table;
use rabble_core::alert::group::Matcher;
use rabble_shared::alerts::{ApiMatcher, GettableAlert, GettableSilence, PostableSilence, SilenceCreated};
use rabble_shared::support::clock::{now_ms, parse_rfc3339, rfc3339};

/// `rabble alert ...`.
#[derive(Debug, clap::Subcommand)]
pub enum AlertCmd {
    /// The alerts firing now: sent, or held back by a silence or a down node.
    List {
        /// Only alerts matching these (`node=pi3`, `alertname=~"Disk.*"`).
        matchers: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Silence the alerts matching every matcher, for a while (`--for 2h`).
    Silence {
        #[arg(required = true)]
        matchers: Vec<String>,
        #[arg(long = "for", default_value = "1h")]
        duration: String,
        #[arg(long, default_value = "")]
        comment: String,
        /// Who silenced (default: $USER).
        #[arg(long)]
        author: Option<String>,
    },
    /// Silences: active and pending (and ended ones with --expired).
    Silences {
        #[arg(long)]
        expired: bool,
        #[arg(long)]
        json: bool,
    },
    /// End a silence now.
    Expire { id: String },
}

pub fn run(client: &Client, cmd: AlertCmd) -> Result<(), CliError> {
    match cmd {
        AlertCmd::List { matchers, json } => list(client, &matchers, json),
        AlertCmd::Silence { matchers, duration, comment, author } => {
            silence(client, &matchers, &duration, comment, author).map(|id| println!("{id}"))
        }
        AlertCmd::Silences { expired, json } => silences(client, expired, json),
        AlertCmd::Expire { id } => {
            client.delete::<serde_json::Value>(&format!("/api/v2/silence/{id}"))?;
            println!("silence {id} expired");
            Ok(())
        }
    }
}

fn matchers(texts: &[String]) -> Result<Vec<Matcher>, CliError> {
    texts.iter().map(|t| Matcher::parse(t).map_err(CliError::Usage)).collect()
}

fn list(client: &Client, texts: &[String], json: bool) -> Result<(), CliError> {
    let ms = matchers(texts)?;
    let mut alerts: Vec<GettableAlert> = client.get("/api/v2/alerts")?;
    alerts.retain(|a| ms.iter().all(|m| m.matches(&a.labels)));
    if json {
        println!("{}", serde_json::to_string_pretty(&alerts).unwrap_or_default());
        return Ok(());
    }
    if alerts.is_empty() {
        println!("No alerts firing.");
        return Ok(());
    }
    print!("{}", render_alerts(&alerts, now_ms()));
    Ok(())
}

/// The alerts' table (pure, for the tests): the alert, what it names, since when, whether
/// it is sent, its summary.
pub fn render_alerts(alerts: &[GettableAlert], now: u64) -> String {
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            let l = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
            let about: Vec<String> = a
                .labels
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "severity"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let since = parse_rfc3339(&a.starts_at).map(|t| now.saturating_sub(t));
            let state = if !a.status.silenced_by.is_empty() {
                "silenced".to_owned()
            } else if !a.status.inhibited_by.is_empty() {
                "inhibited (node down)".to_owned()
            } else {
                "sent".to_owned()
            };
            let summary = a.annotations.get("summary").cloned().unwrap_or_default();
            vec![l("alertname"), l("severity"), about.join(" "), table::ago(since), state, summary]
        })
        .collect();
    table::render(&["ALERT", "SEVERITY", "ABOUT", "SINCE", "STATE", "SUMMARY"], &rows)
}

fn silence(
    client: &Client,
    texts: &[String],
    duration: &str,
    comment: String,
    author: Option<String>,
) -> Result<String, CliError> {
    let ms = matchers(texts)?;
    let d = rabble_shared::support::duration::parse(duration).map_err(|e| CliError::Usage(format!("--for: {e}")))?;
    let now = now_ms();
    let body = PostableSilence {
        id: None,
        matchers: ms
            .iter()
            .map(|m| ApiMatcher {
                name: m.name.clone(),
                value: m.value.clone(),
                is_regex: m.regex,
                is_equal: !m.negate,
            })
            .collect(),
        starts_at: rfc3339(now),
        ends_at: rfc3339(now + d.as_millis() as u64),
        created_by: author.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "rabble".into()),
        comment,
    };
    let created: SilenceCreated = client.post("/api/v2/silences", &body)?;
    Ok(created.silence_id)
}

fn silences(client: &Client, expired: bool, json: bool) -> Result<(), CliError> {
    let mut all: Vec<GettableSilence> = client.get("/api/v2/silences")?;
    all.retain(|s| expired || s.status.state != "expired");
    if json {
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(());
    }
    let now = now_ms();
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| {
            let ms: Vec<String> = s.matchers.iter().map(matcher_text).collect();
            let ends = parse_rfc3339(&s.ends_at).unwrap_or(0);
            let when = if ends > now {
                format!("in {}", table::ago(Some(ends - now)).trim_end_matches(" ago"))
            } else {
                table::ago(Some(now - ends))
            };
            vec![s.id.clone(), ms.join(" "), s.status.state.clone(), when, s.created_by.clone(), s.comment.clone()]
        })
        .collect();
    print!("{}", table::render(&["ID", "MATCHERS", "STATE", "ENDS", "BY", "COMMENT"], &rows));
    Ok(())
}

fn matcher_text(m: &ApiMatcher) -> String {
    Matcher::from_api(m).map_or_else(|_| format!("{}?{:?}", m.name, m.value), |m| m.to_string())
}
