//! The drivers that are programs on the node, fingerprinted: `java` (`java -version`,
//! Nomad's java driver) and `qemu` (the `qemu-system-*` emulators on `PATH`, and whether
//! `/dev/kvm` is usable). A program's version is asked once per binary (path and mtime),
//! not every minute: `java -version` costs a JVM start, too much on a Pi.

#[cfg(any(feature = "java", feature = "qemu"))]
use rabble_shared::msg::DriverFacts;
use std::path::PathBuf;
use std::time::SystemTime;

/// What was learnt about one binary, kept until it changes on disk.
#[derive(Debug, Default)]
pub struct Cache {
    #[cfg_attr(not(any(feature = "java", feature = "qemu")), allow(dead_code))]
    seen: Option<(PathBuf, Option<SystemTime>, String)>,
}

/// The first `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

#[cfg(any(feature = "java", feature = "qemu"))]
fn mtime(p: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

#[cfg(any(feature = "java", feature = "qemu"))]
impl Cache {
    /// `binary args`'s first line of output (stdout and stderr), asked again only when the
    /// binary changed.
    async fn version(&mut self, binary: &std::path::Path, args: &[&str]) -> String {
        let m = mtime(binary);
        if let Some((p, t, v)) = &self.seen
            && p == binary
            && *t == m
        {
            return v.clone();
        }
        // The script checks' runner: already in the binary (a second way to run a program costs ~10 KB).
        let args = [binary.display().to_string()].into_iter().chain(args.iter().map(|a| (*a).to_owned()));
        let out = crate::checks::script::check(&args.collect::<Vec<_>>(), std::time::Duration::from_secs(20)).await;
        let v = out.output.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_owned();
        self.seen = Some((binary.to_owned(), m, v.clone()));
        v
    }
}

/// `openjdk version "17.0.13" 2024-10-15` → `17.0.13`.
pub fn java_version(line: &str) -> Option<&str> {
    line.split('"').nth(1).filter(|v| !v.is_empty())
}

#[cfg(feature = "java")]
pub async fn java(cache: &mut Cache) -> Option<DriverFacts> {
    let bin = which("java")?;
    let line = cache.version(&bin, &["-version"]).await;
    Some(match java_version(&line) {
        Some(v) => DriverFacts { healthy: true, version: v.to_owned(), detail: bin.display().to_string() },
        None => DriverFacts {
            healthy: false,
            version: String::new(),
            detail: format!("{}: `java -version` said {line:?}", bin.display()),
        },
    })
}

/// Whether this process may open `/dev/kvm` read-write (a VM's accelerator).
pub fn kvm_usable() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

/// The emulators on `PATH` (`x86_64` for `qemu-system-x86_64`), sorted.
pub fn emulators() -> Vec<String> {
    let mut out: Vec<String> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("qemu-system-").map(str::to_owned))
        .filter(|e| !e.contains('.'))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(feature = "qemu")]
pub async fn qemu(cache: &mut Cache) -> Option<DriverFacts> {
    let emus = emulators();
    let first = emus.first()?;
    let bin = which(&format!("qemu-system-{first}"))?;
    // `QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u13)`
    let line = cache.version(&bin, &["--version"]).await;
    let version = line.split_whitespace().nth(3).unwrap_or_default().to_owned();
    let kvm = if kvm_usable() { "kvm" } else { "tcg only (/dev/kvm not usable)" };
    Some(DriverFacts { healthy: !version.is_empty(), version, detail: format!("emulators {}; {kvm}", emus.join(",")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_the_programs_print_them() {
        assert_eq!(java_version("openjdk version \"17.0.13\" 2024-10-15"), Some("17.0.13"));
        assert_eq!(java_version("java version \"1.8.0_391\""), Some("1.8.0_391"));
        assert_eq!(java_version("Error: could not find libjava.so"), None);
    }
}
