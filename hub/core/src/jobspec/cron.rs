//! Cron schedules as Nomad reads them (its cronexpr library): 5 fields (minute hour
//! day-of-month month day-of-week), 6 fields (the same plus a **year**), 7 fields
//! (seconds first, then those six), `@hourly`-style shortcuts, lists, ranges, steps,
//! month and weekday names, `?` for "any". Times are UTC seconds since the epoch.
//! Pure: `next_after` is what the periodic launcher asks.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    seconds: u64,                   // bit set 0..60
    minutes: u64,                   // 0..60
    hours: u32,                     // 0..24
    days: u32,                      // 1..=31
    months: u16,                    // 1..=12
    weekdays: u8,                   // 0..7, Sunday = 0
    years: Option<(u32, u32, u32)>, // first, last, step
    /// Both day fields restricted: a day matches either (cron's rule).
    day_or: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError(String);

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(text: &str, lo: u32, hi: u32, names: &[&str], name_base: u32) -> Result<u64, CronError> {
    let bad = |why: &str| CronError(format!("{text:?}: {why}"));
    let value = |s: &str| -> Result<u32, CronError> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(i as u32 + name_base);
        }
        let n: u32 = s.parse().map_err(|_| bad(&format!("{s:?} is not a number")))?;
        // 7 is Sunday too in the weekday field.
        let n = if names.len() == 7 && n == 7 { 0 } else { n };
        if n < lo || n > hi {
            return Err(bad(&format!("{n} is outside {lo}..{hi}")));
        }
        Ok(n)
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| bad("bad step"))?),
            None => (part, 1),
        };
        let (a, b) = match range {
            "*" | "?" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(r)?, hi),
                None => (value(r)?, value(r)?),
            },
        };
        if a > b {
            return Err(bad(&format!("range {a}-{b} runs backwards")));
        }
        for v in (a..=b).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Schedule, CronError> {
        let expanded = match expr.trim() {
            "@yearly" | "@annually" => "0 0 0 1 1 * *",
            "@monthly" => "0 0 0 1 * * *",
            "@weekly" => "0 0 0 * * 0 *",
            "@daily" | "@midnight" => "0 0 0 * * * *",
            "@hourly" => "0 0 * * * * *",
            other if other.starts_with('@') => return Err(CronError(format!("{other:?} is not a known shortcut"))),
            other => other,
        };
        if expanded.contains(['L', 'W', '#']) {
            return Err(CronError("L, W and # are not supported".into()));
        }
        let f: Vec<&str> = expanded.split_whitespace().collect();
        // Normalise to seconds, minutes, hours, dom, month, dow, year.
        let f: Vec<&str> = match f.len() {
            5 => [&["0"], &f[..], &["*"]].concat(),
            6 => [&["0"], &f[..]].concat(),
            7 => f,
            n => return Err(CronError(format!("{n} fields: expected 5, 6 (with year) or 7 (with seconds and year)"))),
        };
        let years = match f[6] {
            "*" | "?" => None,
            y => {
                let (range, step) = y.split_once('/').map_or((y, 1), |(r, s)| (r, s.parse().unwrap_or(0)));
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                match (a.parse::<u32>(), b.parse::<u32>()) {
                    (Ok(a), Ok(b)) if (1970..=2099).contains(&a) && a <= b && step > 0 => Some((a, b, step)),
                    _ => return Err(CronError(format!("year {y:?}: expected a year or range within 1970-2099"))),
                }
            }
        };
        Ok(Schedule {
            seconds: field(f[0], 0, 59, &[], 0)?,
            minutes: field(f[1], 0, 59, &[], 0)?,
            hours: field(f[2], 0, 23, &[], 0)? as u32,
            days: field(f[3], 1, 31, &[], 0)? as u32,
            months: field(f[4], 1, 12, &MONTHS, 1)? as u16,
            weekdays: field(f[5], 0, 6, &DAYS, 0)? as u8,
            years,
            day_or: !matches!(f[3], "*" | "?") && !matches!(f[5], "*" | "?"),
        })
    }

    fn day_matches(&self, y: i64, m: u32, d: u32) -> bool {
        let dom = self.days & (1 << d) != 0;
        let dow = self.weekdays & (1 << weekday(y, m, d)) != 0;
        if self.day_or { dom || dow } else { dom && dow }
    }

    fn year_matches(&self, y: i64) -> bool {
        self.years.is_none_or(|(a, b, s)| y >= a as i64 && y <= b as i64 && (y - a as i64) % s as i64 == 0)
    }

    /// The first time strictly after `t` (UTC seconds) the schedule fires, if any
    /// within the next 100 years.
    pub fn next_after(&self, t: i64) -> Option<i64> {
        let mut t = t + 1;
        let limit = t + 100 * 366 * 86_400;
        while t < limit {
            let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
            let (y, m, d) = civil(days);
            if !self.year_matches(y) {
                t = (days_from_civil(y + 1, 1, 1)) * 86_400;
                continue;
            }
            if self.months & (1 << m) == 0 {
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                t = days_from_civil(ny, nm, 1) * 86_400;
                continue;
            }
            if !self.day_matches(y, m, d) {
                t = (days + 1) * 86_400;
                continue;
            }
            let (h, mi, s) = ((secs / 3600) as u32, ((secs / 60) % 60) as u32, (secs % 60) as u32);
            if self.hours & (1 << h) == 0 {
                t = days * 86_400 + (h as i64 + 1) * 3600;
                continue;
            }
            if self.minutes & (1 << mi) == 0 {
                t = days * 86_400 + h as i64 * 3600 + (mi as i64 + 1) * 60;
                continue;
            }
            if self.seconds & (1 << s) == 0 {
                t += 1;
                continue;
            }
            return Some(t);
        }
        None
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + if m <= 2 { 1 } else { 0 }, m, d)
}

/// 0 = Sunday.
fn weekday(y: i64, m: u32, d: u32) -> u32 {
    (days_from_civil(y, m, d) + 4).rem_euclid(7) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: u32, d: u32, h: i64, mi: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60
    }

    #[test]
    fn calendar_round_trips() {
        for days in [-1000, 0, 59, 60, 365, 11_016, 19_723, 30_000] {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(weekday(2026, 11, 24), 2, "24 Nov 2026 is a Tuesday");
    }

    #[test]
    fn five_six_and_seven_fields() {
        let s = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(s.next_after(at(2026, 11, 24, 10, 7)), Some(at(2026, 11, 24, 10, 15)));
        // Six fields: the last is the year (Nomad's cronexpr), not seconds.
        let s = Schedule::parse("0 3 * * * 2027").unwrap();
        assert_eq!(s.next_after(at(2026, 11, 24, 10, 0)), Some(at(2027, 1, 1, 3, 0)));
        let s = Schedule::parse("30 0 3 * * * *").unwrap();
        assert_eq!(s.next_after(at(2026, 11, 24, 10, 0)), Some(at(2026, 11, 25, 3, 0) + 30));
        let s = Schedule::parse("0 4 * * sun").unwrap();
        assert_eq!(s.next_after(at(2026, 11, 24, 10, 0)), Some(at(2026, 11, 29, 4, 0)));
        let s = Schedule::parse("@daily").unwrap();
        assert_eq!(s.next_after(at(2026, 12, 31, 23, 59)), Some(at(2027, 1, 1, 0, 0)));
        let s = Schedule::parse("0 0 29 feb *").unwrap();
        assert_eq!(s.next_after(at(2026, 11, 24, 0, 0)), Some(at(2028, 2, 29, 0, 0)));
        // Day of month and day of week both given: either matches.
        let s = Schedule::parse("0 0 1 * mon").unwrap();
        assert_eq!(s.next_after(at(2026, 11, 24, 0, 0)), Some(at(2026, 11, 30, 0, 0)));
    }

    #[test]
    fn bad_schedules_are_explained() {
        for bad in ["* * *", "61 * * * *", "* * * 13 *", "*/0 * * * *", "5-1 * * * *", "@often", "0 0 L * *"] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Schedule::parse("0 0 1 1 * 2020").unwrap().next_after(at(2026, 1, 1, 0, 0)), None);
    }
}
