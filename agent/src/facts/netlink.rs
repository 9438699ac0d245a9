//! The node's addresses by interface, asked of the kernel over rtnetlink (`RTM_GETADDR`,
//! a dump): what `ip addr` shows. The reply's parser is pure and tested on bytes.

use std::collections::BTreeMap;
use std::net::IpAddr;

const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// Interface index → its addresses, as the kernel lists them (empty on failure).
pub fn addresses() -> BTreeMap<u32, Vec<IpAddr>> {
    ask().unwrap_or_default()
}

fn ask() -> std::io::Result<BTreeMap<u32, Vec<IpAddr>>> {
    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, netlink};
    // Protocol 0 is NETLINK_ROUTE.
    let fd = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)?;
    // nlmsghdr (len, type, flags, seq, pid) + ifaddrmsg (family: any, the rest zero).
    let mut req = Vec::with_capacity(24);
    req.extend_from_slice(&24u32.to_ne_bytes());
    req.extend_from_slice(&RTM_GETADDR.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&[0u8; 8]);
    rustix::net::sendto(&fd, &req, SendFlags::empty(), &netlink::SocketAddrNetlink::new(0, 0))?;
    let mut out = BTreeMap::new();
    let mut buf = vec![0u8; 16 * 1024];
    // A dump of a machine with many addresses spans several reads; 64 is far more than any node needs.
    for _ in 0..64 {
        let (n, _) = rustix::net::recv(&fd, &mut buf, RecvFlags::empty())?;
        if parse(&buf[..n], &mut out) {
            return Ok(out);
        }
    }
    Ok(out)
}

/// Adds one read's addresses to `out`; true when the dump is over.
pub fn parse(mut b: &[u8], out: &mut BTreeMap<u32, Vec<IpAddr>>) -> bool {
    let u16_at = |b: &[u8], i: usize| b.get(i..i + 2).map(|x| u16::from_ne_bytes([x[0], x[1]]));
    let u32_at = |b: &[u8], i: usize| b.get(i..i + 4).map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]));
    while b.len() >= 16 {
        let (Some(len), Some(kind)) = (u32_at(b, 0), u16_at(b, 4)) else { return true };
        let len = len as usize;
        if len < 16 || len > b.len() {
            return true;
        }
        let msg = &b[16..len];
        match kind {
            NLMSG_DONE | NLMSG_ERROR => return true,
            RTM_NEWADDR if msg.len() >= 8 => {
                let family = msg[0];
                let index = u32_at(msg, 4).unwrap_or(0);
                let (mut local, mut address) = (None, None);
                let mut attrs = &msg[8..];
                while attrs.len() >= 4 {
                    let (alen, akind) = (u16_at(attrs, 0).unwrap_or(0) as usize, u16_at(attrs, 2).unwrap_or(0));
                    if alen < 4 || alen > attrs.len() {
                        break;
                    }
                    let data = &attrs[4..alen];
                    let ip = match (family, data.len()) {
                        (AF_INET, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(data).unwrap_or_default())),
                        (AF_INET6, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(data).unwrap_or_default())),
                        _ => None,
                    };
                    match akind {
                        IFA_LOCAL => local = ip,
                        IFA_ADDRESS => address = ip,
                        _ => {}
                    }
                    attrs = &attrs[alen.next_multiple_of(4).min(attrs.len())..];
                }
                // IPv4's own address is IFA_LOCAL (IFA_ADDRESS is the peer's on a point-to-point link).
                if let Some(ip) = local.or(address) {
                    out.entry(index).or_default().push(ip);
                }
            }
            _ => {}
        }
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    false
}

/// Interface index → name, from /sys/class/net.
pub fn names() -> BTreeMap<u32, String> {
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let index = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).ok()?;
                Some((index.trim().parse().ok()?, name))
            })
            .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn attr(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(data);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn addr(family: u8, index: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![family, 24, 0, 0];
        b.extend_from_slice(&index.to_ne_bytes());
        for a in attrs {
            b.extend_from_slice(a);
        }
        msg(RTM_NEWADDR, &b)
    }

    #[test]
    fn a_dump_as_the_kernel_sends_it() {
        let mut dump = addr(
            AF_INET,
            2,
            &[attr(IFA_ADDRESS, &[10, 0, 0, 9]), attr(IFA_LOCAL, &[192, 168, 1, 5]), attr(3, b"eth0\0")],
        );
        let v6: [u8; 16] = "2001:db8::5".parse::<std::net::Ipv6Addr>().unwrap().octets();
        dump.extend(addr(AF_INET6, 2, &[attr(IFA_ADDRESS, &v6)]));
        dump.extend(addr(AF_INET, 1, &[attr(IFA_LOCAL, &[127, 0, 0, 1])]));
        let mut out = BTreeMap::new();
        assert!(!parse(&dump, &mut out), "no DONE yet");
        assert!(parse(&msg(NLMSG_DONE, &[0; 4]), &mut out));
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(out[&2], [a("192.168.1.5"), a("2001:db8::5")]);
        assert_eq!(out[&1], [a("127.0.0.1")]);
        // Truncated or hostile lengths end the read; nothing panics.
        let mut out = BTreeMap::new();
        assert!(parse(&dump[..30], &mut out));
        let mut bad = dump.clone();
        bad[0] = 3;
        assert!(parse(&bad, &mut BTreeMap::new()));
    }

    #[test]
    fn this_machine_has_loopback() {
        let names = names();
        let addrs = addresses();
        let lo = names.iter().find(|(_, n)| *n == "lo").map(|(i, _)| *i).unwrap();
        assert!(addrs.get(&lo).is_some_and(|a| a.iter().any(|ip| ip.is_loopback())), "{addrs:?}");
    }
}
