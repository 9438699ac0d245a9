//! A hub cluster without a leader has no alert task (the rules run on the leader), so
//! every member watches for that itself: after [`NO_LEADER_AFTER`] without a leader it
//! tells the receivers directly (`HubNoLeader`, from each member that sees it: nobody is
//! there to group them), and that it is resolved once one is elected. Only the HTTP
//! receivers and email: the broker goes with the leader.

use super::config::AlertConfig;
use super::{email, payload, send};
use crate::HubError;
use rabble_core::alert::Alert;
use rabble_core::alert::group::Notification;
use rabble_shared::support::clock::now_ms;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a member goes without a leader before it says so (an election takes ~2 s).
pub const NO_LEADER_AFTER: Duration = Duration::from_secs(15);

pub struct Watchdog {
    pub cfg: AlertConfig,
    pub cluster: crate::cluster::Cluster,
    /// This member's name.
    pub name: String,
}

impl Watchdog {
    fn notify(&self, outbox: &send::Outbox, alert: &Alert, now: u64) {
        let n = Notification {
            group_key: alert.key(),
            group_labels: [("alertname".to_owned(), alert.name().to_owned()), ("hub".to_owned(), self.name.clone())]
                .into(),
            alerts: vec![alert.clone()],
        };
        for (name, kind) in &self.cfg.receivers {
            outbox.post(name, payload::request(name, kind, &n, &self.cfg.ui_url, now), payload::title(&n));
        }
    }

    pub async fn run(self, stop: CancellationToken) -> Result<(), HubError> {
        let outbox = send::Outbox::new(email::mailers(&self.cfg.smtp));
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut leaderless_since: Option<tokio::time::Instant> = None;
        let mut fired: Option<Alert> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            let now = now_ms();
            if self.cluster.leader().is_some() {
                leaderless_since = None;
                if let Some(mut a) = fired.take() {
                    tracing::info!("the hub cluster has a leader again");
                    a.ends_ms = Some(now);
                    self.notify(&outbox, &a, now);
                }
                continue;
            }
            let since = *leaderless_since.get_or_insert_with(tokio::time::Instant::now);
            if fired.is_none() && since.elapsed() >= NO_LEADER_AFTER {
                let status = crate::cluster::status::of(&self.cluster);
                let why = status.problem.unwrap_or_else(|| "no leader".into());
                let summary = format!("hub {} sees no leader of the hub cluster: {why}", self.name);
                tracing::error!("{summary}");
                let a = Alert {
                    labels: [("alertname", "HubNoLeader"), ("severity", "critical"), ("hub", self.name.as_str())]
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .into(),
                    annotations: [("summary".to_owned(), summary)].into(),
                    starts_ms: now.saturating_sub(NO_LEADER_AFTER.as_millis() as u64),
                    ends_ms: None,
                };
                self.notify(&outbox, &a, now);
                fired = Some(a);
            }
        }
    }
}
