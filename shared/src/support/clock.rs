//! Wall-clock time as the wire carries it (milliseconds since the Unix epoch), and as
//! people read it (`YYYY-MM-DD HH:MM`, UTC).

/// Milliseconds since the Unix epoch; 0 if the clock is before 1970.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM` (UTC), for tables and pages.
pub fn date(ms: u64) -> String {
    let secs = (ms / 1000) % 86_400;
    format!("{} {:02}:{:02}", day(ms), secs / 3600, secs % 3600 / 60)
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC), for events.
pub fn datetime(ms: u64) -> String {
    let secs = (ms / 1000) % 86_400;
    format!("{}:{:02}", date(ms), secs % 60)
}

/// Milliseconds since the epoch as RFC 3339 (`2026-11-30T00:53:20.000Z`), as Nomad's and
/// Go's JSON write times.
pub fn rfc3339(ms: u64) -> String {
    let secs = (ms / 1000) % 86_400;
    format!("{}T{:02}:{:02}:{:02}.{:03}Z", day(ms), secs / 3600, secs % 3600 / 60, secs % 60, ms % 1000)
}

/// Milliseconds since the epoch as `YYYY-MM-DD` (UTC): the civil-from-days algorithm
/// (H. Hinnant).
pub fn day(ms: u64) -> String {
    let z = (ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_read_as_people_write_them() {
        assert_eq!(super::date(0), "1970-01-01 00:00");
        assert_eq!(super::date(1_796_000_000_000), "2026-11-30 00:53");
        assert_eq!(super::date(951_782_400_000), "2000-02-29 00:00");
        assert_eq!(super::day(1_796_000_000_000), "2026-11-30");
        assert_eq!(super::datetime(1_796_000_000_123), "2026-11-30 00:53:20");
        assert_eq!(super::rfc3339(1_796_000_000_123), "2026-11-30T00:53:20.123Z");
    }
}
