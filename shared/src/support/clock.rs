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

/// RFC 3339 as Go and Alertmanager's clients write it (`2026-11-30T00:53:20Z`,
/// `...20.123456789+01:00`) → milliseconds since the epoch (UTC); `None` if it is not one
/// or is before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = s.get(start..i)?;
        if frac.is_empty() {
            return None;
        }
        ms = format!("{frac:0<3}")[..3].parse().ok()?;
    }
    let offset_min = match s.get(i..)? {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && matches!(&tz[..1], "+" | "-") && &tz[3..4] == ":" => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if tz.starts_with('-') { -m } else { m }
        }
        _ => return None,
    };
    // Days from civil (H. Hinnant), the inverse of `day`.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    u64::try_from(secs * 1000 + ms).ok()
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

    #[test]
    fn rfc3339_reads_back_what_go_writes() {
        use super::parse_rfc3339 as p;
        for ms in [0, 951_782_400_000, 1_796_000_000_123, 4_102_444_799_999] {
            assert_eq!(p(&super::rfc3339(ms)), Some(ms));
        }
        assert_eq!(p("2026-11-30T00:53:20Z"), Some(1_796_000_000_000));
        assert_eq!(p("2026-11-30T01:53:20.123456789+01:00"), Some(1_796_000_000_123));
        assert_eq!(p("2026-11-29T23:53:20.5-01:00"), Some(1_796_000_000_500));
        for bad in [
            "",
            "2026-11-30",
            "2026-13-30T00:53:20Z",
            "2026-11-30T00:53:20",
            "2026-11-30T00:53:20.Z",
            "x026-11-30T00:53:20Z",
            "1969-12-31T23:59:59Z",
            "2026-11-30T00:53:20+0100",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }
}
