//! Has a file changed? `Stamp` is what the hub and the agent compare to decide whether
//! to re-read a file they watch (credentials, TLS certificates): modification time, size and
//! inode, so an atomic replace (write + rename, as `rabble-hub node` and certbot do) is
//! seen even within one tick of a coarse clock (Windows has no inode in std's metadata:
//! its creation time stands in, which a replace changes too).

use std::path::Path;
use std::time::SystemTime;

pub type Stamp = (SystemTime, u64, u64);

/// `None` when the file is missing or unreadable.
pub fn of(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let id = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(windows)]
    let id = m.created().ok()?.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    Some((m.modified().ok()?, m.len(), id))
}
