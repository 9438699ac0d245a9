//! Topic ACLs for node credentials, enforced in the TLS relay (rumqttd has none). Pure:
//! the client's bytes are cut into MQTT 3.1.1 packets, and each is checked before it is
//! forwarded to the broker against the topic policy (`rabble_shared::topic::policy`):
//! a node publishes only its own state and reads only what the hub sends it (its Will must
//! be its own `status`); an observer (`rabble-hub node add <name> --observer`) reads
//! anything under `rabble/` and Home Assistant's discovery prefix (`homeassistant/`
//! unless hub.toml sets another), and publishes only Home Assistant's status there (HA
//! logs in as an observer: its birth message and Will).
//!
//! A packet that breaks a rule ends the connection: the relay logs it and closes both
//! sides. What credentials are accepted is still the broker's auth hook's decision.

use rabble_shared::NodeId;
use rabble_shared::topic::{self, policy};
use std::sync::Arc;

/// Who a connection is, from its CONNECT's username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Node(NodeId),
    Observer,
    /// Credentials this relay does not know (unknown, revoked, none): its CONNECT goes
    /// on to the broker, which refuses it (and says why); nothing else is let through.
    Unknown(String),
}

/// Why a connection was cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("not MQTT 3.1.1: {0}")]
    Protocol(String),
    #[error("a packet of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("may not publish to {0:?}")]
    Publish(String),
    #[error("may not subscribe to {0:?}")]
    Subscribe(String),
}

/// The length of the first complete packet in `buf`, `None` if more bytes are needed.
pub fn packet_len(buf: &[u8], max: usize) -> Result<Option<usize>, Violation> {
    let mut len: usize = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else { return Ok(None) };
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let total = 1 + i + 1 + len;
            if total > max {
                return Err(Violation::TooLarge(total));
            }
            return Ok((buf.len() >= total).then_some(total));
        }
    }
    Err(Violation::Protocol("remaining length over 4 bytes".into()))
}

/// A cursor over a packet's variable header and payload.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> Result<u8, Violation> {
        let v = *self.b.get(self.at).ok_or_else(|| Violation::Protocol("packet ends early".into()))?;
        self.at += 1;
        Ok(v)
    }
    fn u16(&mut self) -> Result<u16, Violation> {
        Ok(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], Violation> {
        let n = usize::from(self.u16()?);
        let s = self.b.get(self.at..self.at + n).ok_or_else(|| Violation::Protocol("field ends early".into()))?;
        self.at += n;
        Ok(s)
    }
    fn string(&mut self) -> Result<&'a str, Violation> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Violation::Protocol("a string is not UTF-8".into()))
    }
    fn done(&self) -> bool {
        self.at >= self.b.len()
    }
}

/// One connection's state: who it is, once its CONNECT is seen.
#[derive(Debug)]
pub struct Session {
    pub role: Option<Role>,
    /// Home Assistant's discovery prefix, where an observer reads and says its status.
    ha_prefix: Arc<str>,
}

impl Default for Session {
    fn default() -> Self {
        Session::new(policy::HA_PREFIX.into())
    }
}

impl Session {
    pub fn new(ha_prefix: Arc<str>) -> Session {
        Session { role: None, ha_prefix }
    }

    /// Checks one complete packet; `lookup` tells a username's role (`None`: unknown).
    pub fn check(&mut self, packet: &[u8], lookup: impl Fn(&str) -> Option<Role>) -> Result<(), Violation> {
        let kind = packet[0] >> 4;
        let header = packet_len(packet, usize::MAX)?.map_or(0, |total| total - remaining(packet));
        let mut c = Cursor { b: &packet[header..], at: 0 };
        match (kind, &self.role) {
            (1, None) => self.connect(&mut c, lookup),
            (1, Some(_)) => Err(Violation::Protocol("a second CONNECT".into())),
            (_, None) => Err(Violation::Protocol("a packet before CONNECT".into())),
            (3, Some(role)) => {
                let t = c.string()?;
                if may_publish(role, t, &self.ha_prefix) { Ok(()) } else { Err(Violation::Publish(t.to_owned())) }
            }
            (8, Some(role)) => {
                c.u16()?; // packet id
                while !c.done() {
                    let filter = c.string()?;
                    c.u8()?; // requested QoS
                    if !may_subscribe(role, filter, &self.ha_prefix) {
                        return Err(Violation::Subscribe(filter.to_owned()));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn connect(&mut self, c: &mut Cursor<'_>, lookup: impl Fn(&str) -> Option<Role>) -> Result<(), Violation> {
        let name = c.string()?;
        let level = c.u8()?;
        if name != "MQTT" || level != 4 {
            return Err(Violation::Protocol(format!("protocol {name:?} level {level}")));
        }
        let flags = c.u8()?;
        c.u16()?; // keepalive
        c.string()?; // client id: the broker's auth hook binds it to the user
        let will = if flags & 0x04 != 0 {
            let t = c.string()?.to_owned();
            c.bytes()?;
            Some(t)
        } else {
            None
        };
        let user = if flags & 0x80 != 0 { c.string()? } else { "" };
        let role = lookup(user).unwrap_or_else(|| Role::Unknown(user.to_owned()));
        // (An unknown user's CONNECT goes on whatever its Will: the broker refuses it.)
        if let Some(t) = will.filter(|_| !matches!(role, Role::Unknown(_))) {
            let own = match &role {
                Role::Node(n) => t == topic::node_status(n),
                Role::Observer => policy::observer_may_publish(&t, &self.ha_prefix),
                Role::Unknown(_) => false,
            };
            if !own {
                return Err(Violation::Publish(t));
            }
        }
        self.role = Some(role);
        Ok(())
    }
}

/// How many bytes of `packet` follow its fixed header.
fn remaining(packet: &[u8]) -> usize {
    let mut len = 0usize;
    for i in 0..4 {
        let b = packet.get(1 + i).copied().unwrap_or(0);
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
    }
    len
}

/// The policy's answer for a publish (`shared::topic::policy` declares it).
pub fn may_publish(role: &Role, t: &str, ha_prefix: &str) -> bool {
    match role {
        Role::Observer => policy::observer_may_publish(t, ha_prefix),
        Role::Unknown(_) => false,
        Role::Node(n) => policy::node_may_publish(n, t),
    }
}

/// The policy's answer for a subscription.
pub fn may_subscribe(role: &Role, filter: &str, ha_prefix: &str) -> bool {
    match role {
        Role::Unknown(_) => false,
        Role::Observer => policy::observer_may_subscribe(filter, ha_prefix),
        Role::Node(n) => policy::node_may_subscribe(n, filter),
    }
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
