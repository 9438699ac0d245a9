//! An MQTT client for tests that must know exactly what a broker did with one packet:
//! acked it, refused it, or cut the connection (the embedded broker's TLS relay cuts a
//! client that breaks the topic policy; Mosquitto drops the message and keeps the
//! connection). rumqttc, one short session per question, each on its own runtime.

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS, SubscribeReasonCode, Transport};
use std::path::PathBuf;
use std::time::Duration;

/// How long one question may take before the test fails (a broker that neither answers nor
/// closes is a bug, not an answer).
const DEADLINE: Duration = Duration::from_secs(10);

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Login {
    pub port: u16,
    pub user: String,
    pub pass: String,
    /// TLS to `localhost`, verified against this CA.
    pub ca: Option<PathBuf>,
}

/// What the broker did with a publish or a subscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// PUBACK, or a SUBACK granting the filter.
    Acked,
    /// A SUBACK refusing the filter.
    Refused,
    /// The connection was closed instead.
    Cut,
}

/// A message a subscriber received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn connect(login: &Login, id: &str) -> Result<(AsyncClient, EventLoop), String> {
    let mut opts = MqttOptions::new(id, "localhost", login.port);
    opts.set_credentials(login.user.clone(), login.pass.clone()).set_keep_alive(Duration::from_secs(30));
    if let Some(ca) = &login.ca {
        let tls = rabble_shared::support::tls::hub_config(Some(ca)).unwrap();
        opts.set_transport(Transport::Tls(rumqttc::TlsConfiguration::Rustls(tls)));
    }
    let (client, mut events) = AsyncClient::new(opts, 10);
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok((client, events)),
            Ok(_) => {}
            Err(e) => return Err(format!("{} could not connect: {e}", login.user)),
        }
    }
}

/// Publishes `payload` to `topic` (QoS 1) in a session of its own and says what came back.
pub fn publish(login: &Login, id: &str, topic: &str, payload: &str, retain: bool) -> Answer {
    runtime().block_on(async {
        let (client, mut events) = connect(login, id).await.unwrap();
        client.publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec()).await.unwrap();
        let answer = tokio::time::timeout(DEADLINE, async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => return Answer::Acked,
                    Ok(_) => {}
                    Err(_) => return Answer::Cut,
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no answer to {}'s publish to {topic}", login.user));
        let _ = client.disconnect().await;
        // Flush the DISCONNECT so the broker does not publish a Will.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(ev) = events.poll().await {
                if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
        answer
    })
}

/// Subscribes to each filter in turn (one SUBSCRIBE each, waiting for its SUBACK), then
/// collects what arrives until a message on `until` (which must be among the filters and
/// readable) or the connection is cut. Retained messages for a filter arrive after its
/// SUBACK and before the next filter's, so everything retained on an earlier filter has
/// arrived by the time `until`'s retained message does.
pub fn subscribe(login: &Login, id: &str, filters: &[&str], until: &str) -> (Vec<Answer>, Vec<Received>) {
    runtime().block_on(async {
        let (client, mut events) = connect(login, id).await.unwrap();
        let mut answers = Vec::new();
        let mut got = Vec::new();
        let done = tokio::time::timeout(DEADLINE, async {
            for f in filters {
                client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
                loop {
                    match events.poll().await {
                        Ok(Event::Incoming(Packet::SubAck(ack))) => {
                            let ok = ack.return_codes.iter().all(|c| !matches!(c, SubscribeReasonCode::Failure));
                            answers.push(if ok { Answer::Acked } else { Answer::Refused });
                            break;
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => got.push(received(&p)),
                        Ok(_) => {}
                        Err(_) => {
                            answers.push(Answer::Cut);
                            return;
                        }
                    }
                }
            }
            if got.iter().any(|r| r.topic == until) {
                return;
            }
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        got.push(received(&p));
                        if p.topic == until {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        })
        .await;
        assert!(done.is_ok(), "{} subscribed to {filters:?} and never saw {until}: {got:?}", login.user);
        let _ = client.disconnect().await;
        (answers, got)
    })
}

fn received(p: &rumqttc::Publish) -> Received {
    Received { topic: p.topic.clone(), payload: String::from_utf8_lossy(&p.payload).into_owned(), retain: p.retain }
}
