//! The hub's own MQTT session: the options the hub's client connects with (`plan`), and
//! the embedded broker with its TLS front and the revocation watcher, as named tasks
//! (`start`; nothing for an external broker).

use super::{BrokerError, BrokerSetup};
use crate::HubError;
use crate::auth::{self, Authenticator};
use crate::config::{BrokerChoice, Config};
use crate::topology::{Stage, Topology};
use rabble_shared::topic;
use rumqttc::{LastWill, MqttOptions, QoS};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// What the hub's client needs, and how to describe the broker (`/api/v1/health`).
#[derive(Debug)]
pub struct Session {
    pub options: MqttOptions,
    pub describe: String,
    /// The embedded broker's credentials check, when nodes need credentials.
    pub auth: Option<Arc<Authenticator>>,
}

/// The hub's session with the broker its config chooses: the options its client
/// connects with and how to describe the broker. Starts nothing (`start` does): a
/// clustered hub knows how it will connect long before it leads.
pub fn plan(cfg: &Config, queue: usize, creds: &Arc<Authenticator>) -> Result<Session, HubError> {
    let (host, port, describe, login, session_auth) = match &cfg.broker {
        BrokerChoice::Embedded { listen, tls, require_credentials } => {
            let auth = require_credentials.then(|| creds.clone());
            let login = auth.as_ref().map(|a| a.hub_login());
            let local = super::local_addr(*listen);
            let mut desc = format!("embedded mqtt://{listen}");
            if let Some(t) = tls {
                desc.push_str(&format!(" mqtts://{}", t.listen));
            }
            (local.ip().to_string(), local.port(), desc, login, auth)
        }
        BrokerChoice::External(addr) => {
            (addr.host.clone(), addr.port, format!("external {addr}"), cfg.broker_login.clone(), None)
        }
    };
    let mut opts = MqttOptions::new("rabble-hub", host, port);
    if let Some((user, pass)) = login {
        opts.set_credentials(user, pass);
    }
    if let BrokerChoice::External(addr) = &cfg.broker
        && addr.tls
    {
        // An external broker over TLS, verified against `broker_ca` or the system's trust store.
        let tls = rabble_shared::support::tls::hub_config(cfg.broker_ca.as_deref()).map_err(HubError::Tls)?;
        opts.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(tls)));
    }
    opts.set_keep_alive(Duration::from_secs(10))
        .set_clean_session(true)
        .set_manual_acks(true)
        // Larger than anything valid, so an oversized message is rejected by us (and
        // counted) instead of breaking the connection.
        .set_max_packet_size(4 * 1024 * 1024, rabble_shared::assign::MAX_ASSIGNMENTS + 1024)
        .set_request_channel_capacity(queue)
        .set_last_will(LastWill::new(topic::HUB_STATUS, topic::OFFLINE, QoS::AtLeastOnce, true));
    Ok(Session { options: opts, describe, auth: session_auth })
}

/// Starts what the broker choice needs — the embedded broker, its TLS front, the
/// revocation watcher, as named tasks in `topo` — and returns once it accepts
/// connections. Nothing for an external broker.
pub async fn start(
    cfg: &Config,
    mqtts: Option<TcpListener>,
    topo: &mut Topology,
    creds: &Arc<Authenticator>,
) -> Result<(), HubError> {
    let BrokerChoice::Embedded { listen, tls, require_credentials } = &cfg.broker else { return Ok(()) };
    let auth = require_credentials.then(|| creds.clone());
    // A bad certificate or key stops the hub here, naming the file.
    let certified = match tls {
        Some(t) => Some(super::tls::Certified::load(&t.cert, &t.key).map_err(BrokerError::Tls)?),
        None => None,
    };
    let ended = super::start(&BrokerSetup { listen: *listen, auth: auth.clone() }).await?;
    topo.spawn("broker", Stage::Doors, |stop| async move {
        tokio::select! {
            _ = stop.cancelled() => Ok(()),
            _ = ended => Err("the embedded broker (rumqttd) stopped"),
        }
    });
    let local = super::local_addr(*listen);
    if let (Some(l), Some(certified)) = (mqtts, certified) {
        // Node credentials in use: the relay enforces the topic ACL (`acl.rs`).
        let acl = auth.clone();
        // Home Assistant (an observer) reads and says its status under its discovery prefix.
        let ha_prefix: Arc<str> = crate::homeassistant::prefix(cfg.homeassistant.as_ref()).into();
        topo.spawn("mqtt-tls", Stage::Doors, |stop| {
            super::tls::serve(l, certified, local, acl, ha_prefix, stop.cancelled_owned())
        });
    }
    if let Some(auth) = auth {
        topo.spawn("revocation", Stage::Doors, |stop| auth::revoke::run(auth, local, stop));
    }
    tracing::info!(listen = %listen, tls = ?tls.as_ref().map(|t| t.listen), require_credentials, "embedded MQTT broker listening");
    Ok(())
}
