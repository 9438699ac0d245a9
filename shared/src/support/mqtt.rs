//! MQTT plumbing shared by the agent and the hub's own client: broker addresses and
//! reconnect backoff (rumqttc has none of its own).

use std::time::Duration;

/// Where a broker is: `mqtt://host[:port]` (or plain `host[:port]`), or
/// `mqtts://host[:port]` for MQTT over TLS (port 8883 by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl BrokerAddr {
    pub fn parse(s: &str) -> Result<BrokerAddr, String> {
        let (rest, tls) = if let Some(r) = s.strip_prefix("mqtt://").or_else(|| s.strip_prefix("tcp://")) {
            (r, false)
        } else if let Some(r) = s.strip_prefix("mqtts://").or_else(|| s.strip_prefix("ssl://")) {
            (r, true)
        } else if s.contains("://") {
            return Err(format!("{s:?}: use mqtt://host[:port] or mqtts://host[:port]"));
        } else {
            (s, false)
        };
        let (host, port) = split_host_port(rest.trim_end_matches('/')).map_err(|e| format!("{s:?}: {e}"))?;
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("{s:?}: bad port {p:?}"))?,
            None if tls => 8883,
            None => 1883,
        };
        if host.is_empty() {
            return Err(format!("{s:?}: no host"));
        }
        Ok(BrokerAddr { host: host.to_owned(), port, tls })
    }
}

impl std::fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port` into host and port text.
pub fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("bad IPv6 address (missing ])")?;
        return Ok((h, after.strip_prefix(':')));
    }
    Ok(match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    })
}

/// Exponential backoff with jitter: 0.5 s doubling to 30 s, each wait drawn from
/// [delay/2, delay] so a fleet of agents does not reconnect in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Self::FIRST }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);
    /// At most 10 s between tries (jittered to 5–10 s): a restarted hub hears from every node
    /// within its restart grace, and a dozen nodes retrying every few seconds costs nothing.
    pub const MAX: Duration = Duration::from_secs(10);

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(Self::MAX);
        let ms = d.as_millis() as u64;
        Duration::from_millis(fastrand::u64(ms / 2..=ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_addresses() {
        assert_eq!(
            BrokerAddr::parse("mqtt://hub:1884").unwrap(),
            BrokerAddr { host: "hub".into(), port: 1884, tls: false }
        );
        let tls = BrokerAddr::parse("mqtts://hub.lan").unwrap();
        assert_eq!((tls.port, tls.tls, tls.to_string().as_str()), (8883, true, "mqtts://hub.lan:8883"));
        assert_eq!(BrokerAddr::parse("hub").unwrap().port, 1883);
        assert_eq!(BrokerAddr::parse("[::1]:9").unwrap().host, "::1");
        assert!(BrokerAddr::parse("http://hub").is_err());
        assert!(BrokerAddr::parse("mqtt://:1").is_err());
    }

    #[test]
    fn backoff_grows_with_jitter_and_resets() {
        let mut b = Backoff::default();
        let d: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(250) && d[0] <= Duration::from_millis(500));
        assert!(d[9] >= Duration::from_secs(5) && d[9] <= Duration::from_secs(10));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(500));
    }
}
