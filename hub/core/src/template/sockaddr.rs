//! consul-template's `sockaddr` for the address forms homelab jobs use, answered from
//! the allocation's node's facts (templates render on the hub, whose own interfaces
//! would be wrong): go-sockaddr's `GetPrivateIP`, `GetPrivateIPs`, `GetPublicIP`,
//! `GetPublicIPs`, `GetInterfaceIP "eth0"` and `GetInterfaceIPs "eth0"` (the name
//! exact, or a regular expression as go-sockaddr takes it). IPv4 before IPv6, never
//! link-local, as go-sockaddr sorts them; the plural forms are space-separated. Pure.

use std::net::IpAddr;

/// The node's addresses: (interface name, or empty when the agent did not say, address).
pub type Addrs = [(String, IpAddr)];

/// go-sockaddr's private ranges: RFC 1918, RFC 6598 (carrier-grade NAT, Tailscale),
/// and IPv6 unique local addresses.
fn private(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_private() || (v.octets()[0] == 100 && (v.octets()[1] & 0xc0) == 64),
        IpAddr::V6(v) => v.is_unique_local(),
    }
}

fn usable(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => !v.is_loopback() && !v.is_link_local() && !v.is_unspecified(),
        IpAddr::V6(v) => !v.is_loopback() && !v.is_unicast_link_local() && !v.is_unspecified(),
    }
}

/// The addresses `keep` accepts, IPv4 first, each once.
fn pick(addrs: &Addrs, keep: impl Fn(&str, &IpAddr) -> bool) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = addrs.iter().filter(|(n, a)| usable(a) && keep(n, a)).map(|(_, a)| *a).collect();
    out.sort_by_key(|a| (a.is_ipv6(), *a));
    out.dedup();
    out
}

/// `GetInterfaceIP "eth0"` → (`GetInterfaceIP`, Some("eth0")).
fn split(expr: &str) -> Result<(&str, Option<String>), String> {
    let expr = expr.trim();
    let (name, rest) = expr.split_once(char::is_whitespace).unwrap_or((expr, ""));
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok((name, None));
    }
    let arg = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|a| !a.contains('"'))
        .ok_or_else(|| format!("sockaddr {expr:?}: only one quoted argument is understood here (no pipelines)"))?;
    Ok((name, Some(arg.to_owned())))
}

/// Answers `expr` over `addrs`; empty when nothing matches (as go-sockaddr).
pub fn eval(expr: &str, addrs: &Addrs) -> Result<String, String> {
    let (name, arg) = split(expr)?;
    let no_arg = |found: Vec<IpAddr>, one: bool| -> Result<Vec<IpAddr>, String> {
        if arg.is_some() {
            return Err(format!("sockaddr {name} takes no argument"));
        }
        Ok(if one { found.into_iter().take(1).collect() } else { found })
    };
    let found = match name {
        "GetPrivateIP" | "GetPrivateIPs" => no_arg(pick(addrs, |_, a| private(a)), name.ends_with("IP"))?,
        "GetPublicIP" | "GetPublicIPs" => no_arg(pick(addrs, |_, a| !private(a)), name.ends_with("IP"))?,
        "GetInterfaceIP" | "GetInterfaceIPs" => {
            let want = arg.ok_or_else(|| format!("sockaddr {name} needs an interface name: {name} \"eth0\""))?;
            if addrs.iter().all(|(n, _)| n.is_empty()) {
                return Err("the node's agent does not report interface names (upgrade it)".into());
            }
            let re = regex_lite::Regex::new(&format!("^(?:{want})$"))
                .map_err(|e| format!("sockaddr {name} {want:?}: not a name or regular expression: {e}"))?;
            let found = pick(addrs, |n, _| n == want || re.is_match(n));
            if name.ends_with("IP") { found.into_iter().take(1).collect() } else { found }
        }
        other => {
            return Err(format!(
                "sockaddr {other:?} is not supported here: use GetPrivateIP(s), GetPublicIP(s) or \
                 GetInterfaceIP(s) \"<interface>\""
            ));
        }
    };
    Ok(found.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> Vec<(String, IpAddr)> {
        [
            ("eth0", "192.168.1.20"),
            ("eth0", "fe80::1"),
            ("eth0", "2a01:4f8::20"),
            ("wlan0", "10.0.0.7"),
            ("tailscale0", "100.101.102.103"),
            ("tailscale0", "fd7a:115c:a1e0::1"),
            ("eth1", "203.0.113.9"),
            ("eth1", "169.254.3.3"),
        ]
        .into_iter()
        .map(|(n, a)| (n.to_owned(), a.parse().unwrap()))
        .collect()
    }

    #[test]
    fn the_common_forms() {
        let a = addrs();
        assert_eq!(eval("GetPrivateIP", &a).unwrap(), "10.0.0.7");
        assert_eq!(eval("GetPrivateIPs", &a).unwrap(), "10.0.0.7 100.101.102.103 192.168.1.20 fd7a:115c:a1e0::1");
        assert_eq!(eval(" GetPublicIP ", &a).unwrap(), "203.0.113.9");
        assert_eq!(eval("GetPublicIPs", &a).unwrap(), "203.0.113.9 2a01:4f8::20");
        assert_eq!(eval("GetInterfaceIP \"eth0\"", &a).unwrap(), "192.168.1.20");
        assert_eq!(eval("GetInterfaceIPs \"eth0\"", &a).unwrap(), "192.168.1.20 2a01:4f8::20");
        assert_eq!(eval("GetInterfaceIP \"wlan.*\"", &a).unwrap(), "10.0.0.7");
        assert_eq!(eval("GetInterfaceIP \"eth9\"", &a).unwrap(), "");
    }

    #[test]
    fn what_is_not_understood_says_so() {
        let a = addrs();
        let e = eval("GetAllInterfaces | include \"name\" \"eth0\"", &a).unwrap_err();
        assert!(e.contains("one quoted argument"), "{e}");
        assert!(eval("GetDefaultInterfaces", &a).unwrap_err().contains("not supported"));
        assert!(eval("GetInterfaceIP", &a).unwrap_err().contains("needs an interface name"));
        assert!(eval("GetPrivateIP \"x\"", &a).unwrap_err().contains("takes no argument"));
        let unnamed: Vec<(String, IpAddr)> = vec![(String::new(), "10.1.1.1".parse().unwrap())];
        assert_eq!(eval("GetPrivateIP", &unnamed).unwrap(), "10.1.1.1");
        assert!(eval("GetInterfaceIP \"eth0\"", &unnamed).unwrap_err().contains("interface names"));
    }
}
