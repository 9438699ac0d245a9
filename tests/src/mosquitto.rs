//! A real Mosquitto for the tests: the broker (optionally with passwords and Rabble's
//! topic ACL), a `mosquitto_sub` watching `rabble/#`, and `mosquitto_pub`.

use crate::{Proc, free_port, tool, wait_for};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A real Mosquitto broker on a loopback port.
pub struct Mosquitto {
    pub proc: Proc,
    pub port: u16,
}

impl Mosquitto {
    pub fn start(dir: &Path) -> Mosquitto {
        Self::start_with(dir, "allow_anonymous true\n")
    }

    /// A Mosquitto that lets in only these users (a `mosquitto_passwd` file), as Home
    /// Assistant's Mosquitto add-on does.
    pub fn start_with_passwords(dir: &Path, users: &[(&str, &str)]) -> Mosquitto {
        let file = dir.join("mosquitto.passwd");
        std::fs::write(&file, "").unwrap();
        for (user, pass) in users {
            let out = Command::new(tool("mosquitto_passwd")).arg("-b").arg(&file).arg(user).arg(pass).output().unwrap();
            assert!(out.status.success(), "mosquitto_passwd: {}", String::from_utf8_lossy(&out.stderr));
        }
        Self::start_with(dir, &format!("allow_anonymous false\npassword_file {}\n", file.display()))
    }

    /// Passwords as above, and the topic ACL Rabble ships (`images/etc/mosquitto-acl.conf`).
    pub fn start_with_acl(dir: &Path, users: &[(&str, &str)]) -> Mosquitto {
        Self::start_with_acl_and(dir, users, "")
    }

    /// The shipped ACL with `extra` lines after it (observers, as docs/mqtt.md says).
    pub fn start_with_acl_and(dir: &Path, users: &[(&str, &str)], extra: &str) -> Mosquitto {
        let file = dir.join("mosquitto.passwd");
        std::fs::write(&file, "").unwrap();
        for (user, pass) in users {
            let out = Command::new(tool("mosquitto_passwd")).arg("-b").arg(&file).arg(user).arg(pass).output().unwrap();
            assert!(out.status.success(), "mosquitto_passwd: {}", String::from_utf8_lossy(&out.stderr));
        }
        let acl = dir.join("rabble-acl.conf");
        let shipped = std::fs::read_to_string(crate::images("etc/mosquitto-acl.conf")).unwrap();
        std::fs::write(&acl, format!("{shipped}{extra}")).unwrap();
        Self::start_with(
            dir,
            &format!("allow_anonymous false\npassword_file {}\nacl_file {}\n", file.display(), acl.display()),
        )
    }

    fn start_with(dir: &Path, extra: &str) -> Mosquitto {
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\npersistence false\n{extra}")).unwrap();
        let mut cmd = Command::new(tool("mosquitto"));
        cmd.arg("-c").arg(&conf);
        let proc = Proc::spawn("mosquitto", &mut cmd, dir);
        wait_for("mosquitto to listen", Duration::from_secs(5), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).map(|_| ()).map_err(|e| e.to_string())
        });
        Mosquitto { proc, port }
    }
}

/// `mosquitto_sub -t 'rabble/#' -v` writing to a file; read it with [`Subscriber::lines`].
pub struct Subscriber {
    pub proc: Proc,
    path: PathBuf,
}

impl Subscriber {
    pub fn start(dir: &Path, port: u16) -> Subscriber {
        let mut cmd = Command::new(tool("mosquitto_sub"));
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "rabble/#", "-v"]);
        let proc = Proc::spawn("mosquitto_sub", &mut cmd, dir);
        let path = dir.join("mosquitto_sub.log");
        Subscriber { proc, path }
    }

    pub fn lines(&self) -> Vec<String> {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            let _ = f.read_to_string(&mut s);
        }
        s.lines().map(str::to_owned).collect()
    }

    /// Waits until a line starts with `prefix`.
    pub fn wait_line(&self, prefix: &str, timeout: Duration) -> String {
        wait_for(&format!("mosquitto_sub to print {prefix:?}"), timeout, || {
            self.lines()
                .into_iter()
                .find(|l| l.starts_with(prefix))
                .ok_or_else(|| format!("{} lines", self.lines().len()))
        })
    }
}

/// Publishes raw bytes with `mosquitto_pub` (QoS 1, not retained); `Err` holds its stderr.
pub fn mosquitto_pub(port: u16, topic: &str, payload: &[u8]) -> Result<(), String> {
    let mut child = Command::new(tool("mosquitto_pub"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", topic, "-s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("mosquitto_pub {topic}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}
