//! The boot partition's FAT file system, through `fatfs` (the Starry-OS fork,
//! `starry-fatfs =0.4.1-preview.2`: fatfs 0.3.6, the newest release, corrupts new
//! directories and FAT32 root growth; the fork carries the fixes, and every write here is
//! checked with `fsck.fat -n` in the tests). Long file names on (cloud-init's
//! `network-config`, our `firstboot.sh`); times in UTC from the system clock.

use super::disk::Part;
use std::io::{Read, Write};

pub type Fs = fatfs::FileSystem<fatfs::StdIoWrapper<Part>, Clock, fatfs::LossyOemCpConverter>;
pub type Dir<'a> = fatfs::Dir<'a, fatfs::StdIoWrapper<Part>, Clock, fatfs::LossyOemCpConverter>;
pub type FatError = fatfs::Error<std::io::Error>;

/// UTC wall-clock time for directory entries (no timezone database on a build box).
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock;

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's).
fn civil(days: i64) -> (i64, u16, u16) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u16;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u16;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

impl fatfs::TimeProvider for Clock {
    fn get_current_date(&self) -> fatfs::Date {
        self.get_current_date_time().date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(315_532_800, |d| d.as_secs() as i64); // 1980-01-01 if the clock is wrong
        let (y, m, d) = civil(secs.div_euclid(86_400));
        let s = secs.rem_euclid(86_400);
        let date = fatfs::Date::new(y.clamp(1980, 2107) as u16, m, d);
        let time = fatfs::Time::new((s / 3600) as u16, (s / 60 % 60) as u16, (s % 60) as u16, 0);
        fatfs::DateTime::new(date, time)
    }
}

/// Opens the FAT file system on the partition (refused when it is not one).
pub fn open(part: Part) -> Result<Fs, FatError> {
    let opts = fatfs::FsOptions::new().time_provider(Clock).update_accessed_date(false);
    fatfs::FileSystem::new(part, opts)
}

/// A file's bytes, `None` when it does not exist.
pub fn read(dir: &Dir<'_>, path: &str) -> Result<Option<Vec<u8>>, FatError> {
    match dir.open_file(path) {
        Ok(mut f) => {
            let mut out = Vec::new();
            f.read_to_end(&mut out).map_err(fatfs::Error::Io)?;
            Ok(Some(out))
        }
        Err(fatfs::Error::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates or replaces `path` with `bytes`.
pub fn write(dir: &Dir<'_>, path: &str, bytes: &[u8]) -> Result<(), FatError> {
    let mut f = dir.create_file(path)?;
    f.truncate()?;
    f.write_all(bytes).map_err(fatfs::Error::Io)?;
    f.flush().map_err(fatfs::Error::Io)?;
    Ok(())
}

/// Every file under `dir`, by path relative to it (`services/web.toml`).
pub fn list(dir: &Dir<'_>) -> Result<Vec<String>, FatError> {
    let mut out = Vec::new();
    for e in dir.iter() {
        let e = e?;
        let name = e.file_name();
        if name == "." || name == ".." {
            continue;
        }
        if e.is_dir() {
            out.extend(list(&e.to_dir())?.into_iter().map(|p| format!("{name}/{p}")));
        } else {
            out.push(name);
        }
    }
    Ok(out)
}

/// Makes `dir` hold exactly `files` (path → bytes; one level of subdirectories): writes
/// what differs, removes what is not wanted, leaves identical files untouched (a second
/// run changes no byte). Returns each file and whether it was written.
pub fn sync(dir: &Dir<'_>, files: &[(String, Vec<u8>)]) -> Result<Vec<(String, usize, bool)>, FatError> {
    for old in list(dir)? {
        if !files.iter().any(|(n, _)| *n == old) {
            dir.remove(&old)?;
        }
    }
    for e in dir.iter().filter_map(Result::ok).filter(|e| e.is_dir()) {
        let name = e.file_name();
        if name != "." && name != ".." && !files.iter().any(|(n, _)| n.starts_with(&format!("{name}/"))) {
            remove_all(dir, &name)?;
        }
    }
    let mut out = Vec::new();
    for (name, bytes) in files {
        if let Some((sub, _)) = name.split_once('/')
            && matches!(dir.open_dir(sub), Err(fatfs::Error::NotFound))
        {
            dir.create_dir(sub)?;
        }
        let same = read(dir, name)?.is_some_and(|old| old == *bytes);
        if !same {
            write(dir, name, bytes)?;
        }
        out.push((name.clone(), bytes.len(), !same));
    }
    Ok(out)
}

/// Removes `name` under `dir` and everything in it; nothing when it is not there.
pub fn remove_all(dir: &Dir<'_>, name: &str) -> Result<(), FatError> {
    let sub = match dir.open_dir(name) {
        Ok(d) => d,
        Err(fatfs::Error::NotFound) => return Ok(()),
        Err(fatfs::Error::InvalidInput) => return dir.remove(name), // a file
        Err(e) => return Err(e),
    };
    let names: Vec<(String, bool)> = sub
        .iter()
        .filter_map(Result::ok)
        .map(|e| (e.file_name(), e.is_dir()))
        .filter(|(n, _)| n != "." && n != "..")
        .collect();
    for (n, is_dir) in names {
        if is_dir { remove_all(&sub, &n)? } else { sub.remove(&n)? }
    }
    dir.remove(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(3652), (1980, 1, 1));
        assert_eq!(civil(20_416), (2025, 11, 24));
        assert_eq!(civil(11_016), (2000, 2, 29));
    }
}
