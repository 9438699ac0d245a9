//! DNS tools for the tests: the real `dig` (parsed into [`Dig`]) and a real Unbound.

use crate::*;

/// What `dig` said: the status, flags and each section's records as `name TYPE data`.
#[derive(Debug, Default)]
pub struct Dig {
    pub status: String,
    pub flags: Vec<String>,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
}

impl Dig {
    /// The data of the answer records (addresses, SRV targets, TXT).
    pub fn data(&self) -> Vec<String> {
        let mut v: Vec<String> =
            self.answer.iter().map(|r| r.split_whitespace().skip(2).collect::<Vec<_>>().join(" ")).collect();
        v.sort();
        v
    }
}

/// Runs the real `dig` against `port` on loopback; `extra` such as `+tcp`, `+noedns`.
pub fn dig(port: u16, name: &str, qtype: &str, extra: &[&str]) -> Dig {
    let out = Command::new(tool("dig"))
        .args(["@127.0.0.1", "-p", &port.to_string(), name, qtype, "+tries=1", "+time=3", "+ignore"])
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut d = Dig::default();
    let mut section = "";
    for line in text.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            d.status = rest.split(',').next().unwrap_or_default().to_owned();
        }
        if let Some(rest) = line.strip_prefix(";; flags: ") {
            d.flags = rest.split(';').next().unwrap_or_default().split_whitespace().map(str::to_owned).collect();
        }
        if line.starts_with(";; ANSWER SECTION") {
            section = "answer";
        } else if line.starts_with(";; AUTHORITY SECTION") {
            section = "authority";
        } else if line.starts_with(";; ADDITIONAL SECTION") {
            section = "additional";
        } else if line.is_empty() || line.starts_with(';') {
            if line.is_empty() {
                section = "";
            }
        } else {
            // name ttl class type data... -> name type data...
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 5 {
                let rec = format!("{} {} {}", f[0], f[3], f[4..].join(" "));
                match section {
                    "answer" => d.answer.push(rec),
                    "authority" => d.authority.push(rec),
                    "additional" => d.additional.push(rec),
                    _ => {}
                }
            }
        }
    }
    assert!(!d.status.is_empty(), "dig {name} {qtype} {extra:?} got no answer:\n{text}");
    d
}

/// One A query over UDP to `port` on loopback, for a load loop (a `dig` process per query
/// is too slow to ask every 10 ms): the number of answers when the status is NOERROR,
/// `None` when the answer is an error or does not come within `timeout`.
pub fn ask_a(socket: &std::net::UdpSocket, port: u16, name: &str, timeout: Duration) -> Option<u16> {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(1);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.trim_end_matches('.').split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    socket.set_read_timeout(Some(timeout)).ok()?;
    socket.send_to(&q, ("127.0.0.1", port)).ok()?;
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.recv(&mut buf).ok()?;
        // A late answer to an earlier query: skip it.
        if n >= 12 && buf[..2] == id.to_be_bytes() {
            return (buf[3] & 0x0F == 0).then(|| u16::from_be_bytes([buf[6], buf[7]]));
        }
    }
}

/// A real Unbound on a loopback port, configured by the caller's extra lines.
pub struct Unbound {
    pub proc: Proc,
    pub port: u16,
}

impl Unbound {
    /// `server_extra` goes inside `server:`; `zones` after it (stub-zone, ...).
    pub fn start(dir: &Path, name: &str, server_extra: &str, zones: &str) -> Unbound {
        let port = free_port();
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(
            &conf,
            format!(
                "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  \
                 directory: \"{dir}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n  \
                 module-config: \"iterator\"\n  access-control: 127.0.0.0/8 allow\n  do-ip6: no\n  num-threads: 1\n{server_extra}\n{zones}\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(tool("unbound"));
        cmd.arg("-d").arg("-c").arg(&conf);
        let proc = Proc::spawn(name, &mut cmd, dir);
        wait_for("unbound to answer", Duration::from_secs(10), || {
            let out = Command::new(tool("dig"))
                .args(["@127.0.0.1", "-p", &port.to_string(), "version.bind", "CH", "TXT", "+tries=1", "+time=1"])
                .output()
                .map_err(|e| e.to_string())?;
            if String::from_utf8_lossy(&out.stdout).contains("status:") { Ok(()) } else { Err("no answer".into()) }
        });
        Unbound { proc, port }
    }
}
