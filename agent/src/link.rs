//! The agent's MQTT link task: polls rumqttc's event loop (and does nothing else, so
//! it never blocks on a publish), reconnects with backoff, and reports what matters
//! to the engine over a bounded channel. With several hubs it moves to the next one as
//! soon as a connection fails, and backs off only after a whole round failed, never
//! longer than [`CYCLE_MAX`]: a node is never waiting out a long backoff while another
//! hub is up.

use crate::config::Config;
use crate::error::AgentError;
use rabble_shared::support::mqtt::Backoff;
use rabble_shared::{msg, topic};
use rumqttc::{
    ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use std::time::Duration;
use tokio::sync::mpsc;

/// The longest wait between two rounds over a list of hubs (jittered down to half): a
/// hub cluster elects a new leader in about 2 s, and its broker is up a moment later.
pub const CYCLE_MAX: Duration = Duration::from_secs(1);
/// The wait before trying the next hub of a round (jittered from 0), so a fleet that
/// lost its hub together does not reach the next one in the same millisecond.
const NEXT_HUB_JITTER_MS: u64 = 200;

/// The sessions the agent may keep: one per hub of `cfg.hubs`, in order, each as
/// [`options`] makes it.
pub fn options_all(cfg: &Config, queue: usize) -> Result<Vec<MqttOptions>, AgentError> {
    cfg.hubs.iter().map(|hub| options(cfg, hub, queue)).collect()
}

/// The MQTT session the agent keeps with the hub: client id `rabble-agent-<node>`, the
/// node's Will (`offline`, retained), TLS when the hub is `mqtts://`, and the node's
/// credentials when it has a token.
pub fn options(
    cfg: &Config,
    hub: &rabble_shared::support::mqtt::BrokerAddr,
    queue: usize,
) -> Result<MqttOptions, AgentError> {
    let node = &cfg.node;
    let mut opts = MqttOptions::new(format!("{}{node}", topic::AGENT_CLIENT_PREFIX), hub.host.clone(), hub.port);
    opts.set_keep_alive(cfg.keepalive)
        .set_clean_session(true)
        // In: room for this node's signed assignments; out: any message of ours.
        .set_max_packet_size(rabble_shared::assign::MAX_ASSIGNMENTS + 1024, msg::MAX_PACKET)
        .set_request_channel_capacity(queue)
        .set_last_will(LastWill::new(topic::node_status(node), topic::OFFLINE, QoS::AtLeastOnce, true));
    if hub.tls {
        let tls = rabble_shared::support::tls::hub_config(cfg.ca.as_deref()).map_err(AgentError::Tls)?;
        opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)));
    }
    if let Some((user, pass)) = &cfg.credentials {
        opts.set_credentials(user.clone(), cfg.join.as_ref().map_or(pass, |j| &j.password).clone());
    }
    Ok(opts)
}

/// Says what went wrong in words a person can act on. rumqttd closes the connection
/// without a CONNACK when it refuses credentials, so an early close while presenting
/// credentials is reported as the likely refusal it is.
pub fn explain(e: &ConnectionError, with_credentials: bool) -> (String, bool) {
    use rumqttc::ConnectReturnCode as Code;
    const REFUSED: &str = "most likely it refused this node's credentials (unknown or revoked node, or a wrong \
                           token): see `rabble-hub node list` on the hub";
    match e {
        ConnectionError::ConnectionRefused(Code::BadUserNamePassword | Code::NotAuthorized) if with_credentials => {
            (format!("the hub refused this node's credentials: {REFUSED}"), true)
        }
        ConnectionError::ConnectionRefused(Code::BadUserNamePassword | Code::NotAuthorized) => (
            "the broker requires credentials: give this node a token_file (`rabble-hub node add <name>`, or its \
             password on an external broker)"
                .into(),
            true,
        ),
        ConnectionError::Tls(t) => (
            format!("TLS handshake with the hub failed: {t} (is `ca` the CA that signed the hub's certificate?)"),
            true,
        ),
        e if with_credentials && closed_early(e) => {
            (format!("the hub closed the connection before accepting it ({e}): {REFUSED}"), true)
        }
        e if closed_early(e) => (
            format!(
                "the hub closed the connection before accepting it ({e}): if it requires credentials, give this \
                 node a token_file from `rabble-hub node add <name>`"
            ),
            true,
        ),
        other => (other.to_string(), false),
    }
}

/// The broker hung up mid-handshake (as opposed to not answering at all).
fn closed_early(e: &ConnectionError) -> bool {
    use rumqttc::StateError;
    let io_closed = |io: &std::io::Error| {
        use std::io::ErrorKind::*;
        matches!(io.kind(), ConnectionAborted | ConnectionReset | UnexpectedEof | BrokenPipe)
    };
    match e {
        ConnectionError::Io(io) | ConnectionError::MqttState(StateError::Io(io)) => io_closed(io),
        ConnectionError::MqttState(StateError::Deserialization(rumqttc::mqttbytes::Error::Io(io))) => io_closed(io),
        ConnectionError::MqttState(StateError::ConnectionAborted) => true,
        _ => false,
    }
}

/// What the link tells the engine.
#[derive(Debug)]
pub enum LinkEvent {
    /// A CONNACK arrived from this hub (`host:port`): the engine re-publishes everything.
    Connected(String),
    /// The connection failed or dropped; the link is backing off.
    Disconnected(String),
    /// `rabble/hub/status` changed. `retained` is true when the broker replayed it on
    /// subscribe (the hub did not just come up).
    Hub { online: bool, retained: bool },
    /// Our DISCONNECT went out and the broker closed the connection: the link has stopped.
    Closed,
    /// A message on this node's assignments topic (not yet verified).
    Assignments(Vec<u8>),
    /// A message on this node's logs-request topic (not yet verified).
    LogsRequest(Vec<u8>),
    /// A lane's routing table (`rabble/hub/routes/<lane>`).
    Routes(String, Vec<u8>),
    /// A lane's ACME certificates for this node (`rabble/node/<node>/certs/<lane>`).
    Certs(String, Vec<u8>),
    /// An allocation's rendered templates (not yet verified).
    Templates(rabble_shared::AllocId, Vec<u8>),
    /// A message of the hub's DNS zone (`rabble/hub/dns/...`).
    Dns(topic::Topic, Vec<u8>),
}

/// Moves the session to the next hub of `hubs`, keeping the credentials it has now (a
/// join may have changed them). Returns the wait before trying it.
fn next_hub(
    eventloop: &mut EventLoop,
    hubs: &[MqttOptions],
    at: &mut usize,
    tried: &mut usize,
    backoff: &mut Backoff,
) -> Duration {
    if hubs.len() < 2 {
        return backoff.next_delay();
    }
    let login = eventloop.mqtt_options.credentials();
    *at = (*at + 1) % hubs.len();
    let mut next = hubs[*at].clone();
    if let Some(l) = login {
        next.set_credentials(l.username, l.password);
    }
    eventloop.mqtt_options = next;
    *tried += 1;
    if *tried < hubs.len() {
        return Duration::from_millis(fastrand::u64(0..=NEXT_HUB_JITTER_MS));
    }
    *tried = 0;
    backoff.next_delay().min(CYCLE_MAX)
}

/// Runs until the engine's DISCONNECT goes out or the engine drops the receiver. The
/// event loop starts on `hubs[0]`.
pub async fn run(
    mut eventloop: EventLoop,
    tx: mpsc::Sender<LinkEvent>,
    node: rabble_shared::NodeId,
    mut join: Option<(crate::config::Join, String)>,
    hubs: Vec<MqttOptions>,
) {
    let (assignments_topic, logs_topic) = (topic::assignments(&node), topic::logs_request(&node));
    let with_credentials = eventloop.mqtt_options.credentials().is_some();
    let mut backoff = Backoff::default();
    let mut up = false;
    let mut closing = false;
    let (mut at, mut tried) = (0usize, 0usize);
    loop {
        let ev = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                tried = 0;
                up = true;
                if let Some((j, token)) = join.take() {
                    // Joined: the hub keeps our token's hash; it is our credential from now on.
                    match std::fs::rename(&j.pending, &j.token_file) {
                        Ok(()) => tracing::info!(token_file = %j.token_file.display(), "joined the hub; token kept"),
                        Err(e) => {
                            tracing::error!(error = %e, path = %j.token_file.display(), "joined, but cannot keep the token")
                        }
                    }
                    eventloop.mqtt_options.set_credentials(node.as_str(), token);
                }
                let (host, port) = eventloop.mqtt_options.broker_address();
                LinkEvent::Connected(format!("{host}:{port}"))
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == topic::HUB_STATUS => {
                LinkEvent::Hub { online: &p.payload[..] == topic::ONLINE.as_bytes(), retained: p.retain }
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == assignments_topic => {
                LinkEvent::Assignments(p.payload.to_vec())
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == logs_topic => {
                LinkEvent::LogsRequest(p.payload.to_vec())
            }
            Ok(Event::Incoming(Packet::Publish(p))) => match topic::Topic::parse(&p.topic) {
                Ok(topic::Topic::Routes(lane)) => LinkEvent::Routes(lane, p.payload.to_vec()),
                Ok(topic::Topic::Certs(n, lane)) if n == node => LinkEvent::Certs(lane, p.payload.to_vec()),
                Ok(topic::Topic::Templates(n, alloc)) if n == node => LinkEvent::Templates(alloc, p.payload.to_vec()),
                Ok(t @ (topic::Topic::DnsZone | topic::Topic::DnsService(_) | topic::Topic::DnsNode(_))) => {
                    LinkEvent::Dns(t, p.payload.to_vec())
                }
                _ => continue, // nothing else is subscribed to
            },
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                // Queued, not yet flushed: keep polling until the broker hangs up.
                closing = true;
                continue;
            }
            Ok(_) => continue,
            Err(_) if closing => {
                let _ = tx.send(LinkEvent::Closed).await;
                return;
            }
            Err(e) => {
                let (host, port) = eventloop.mqtt_options.broker_address();
                let delay = next_hub(&mut eventloop, &hubs, &mut at, &mut tried, &mut backoff);
                let (mut why, refused) = if up { (e.to_string(), false) } else { explain(&e, with_credentials) };
                if refused && join.is_some() {
                    why = format!(
                        "{why} — joining: the join token may be used, expired or for another node (the hub's log says                          which; `rabble-hub node add <name> --join` makes a new one)"
                    );
                }
                let hub = format!("{host}:{port}");
                let (next, _) = eventloop.mqtt_options.broker_address();
                if up {
                    tracing::warn!(%hub, error = %why, next = %next, "lost the hub; reconnecting");
                } else if refused {
                    // Worth a warning every time: nothing will work until someone acts.
                    tracing::warn!(%hub, error = %why, retry_in = ?delay, "the hub refused the connection");
                } else {
                    tracing::info!(%hub, error = %why, retry_in = ?delay, next = %next, "cannot reach the hub; retrying");
                }
                up = false;
                if tx.send(LinkEvent::Disconnected(why)).await.is_err() {
                    return;
                }
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        if tx.send(ev).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::ConnectReturnCode;
    use std::io::{Error, ErrorKind};

    #[test]
    fn refusals_are_told_apart_from_an_absent_hub() {
        let refused = || ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized);
        let (why, r) = explain(&refused(), true);
        assert!(r && why.contains("refused this node's credentials"), "{why}");
        let (why, r) = explain(&refused(), false);
        assert!(r && why.contains("requires credentials"), "{why}");
        // rumqttd hangs up without a CONNACK: a likely refusal when we sent credentials.
        let eof = || ConnectionError::Io(Error::new(ErrorKind::UnexpectedEof, "eof"));
        let (why, r) = explain(&eof(), true);
        assert!(r && why.contains("most likely it refused"), "{why}");
        let (why, r) = explain(&eof(), false);
        assert!(r && why.contains("token_file"), "{why}");
        // Nobody listening: the hub is away, not refusing.
        let (why, r) = explain(&ConnectionError::Io(Error::new(ErrorKind::ConnectionRefused, "refused")), true);
        assert!(!r && !why.contains("credentials"), "{why}");
        let (why, r) = explain(&ConnectionError::NetworkTimeout, true);
        assert!(!r, "{why}");
    }
}
