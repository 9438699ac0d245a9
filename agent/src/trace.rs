//! The agent's log lines: a small tracing subscriber printing each event as one line on
//! stderr in tracing-subscriber's plain format (`<UTC time> <LEVEL> <target>: <message>
//! k=v`), filtered by `RABBLE_LOG` directives as `Targets` reads them (`info`,
//! `info,rumqttc=debug`, `warn,rabble_agent::proxy=trace`). Spans are not kept: the agent
//! opens none. Its own code because tracing-subscriber's registry and formatter cost the
//! size budget 20 KB.

use std::fmt::Write as _;
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, span};

/// Which events print: a default level and per-target ones (the longest prefix wins).
#[derive(Debug, Clone, PartialEq)]
pub struct Lines {
    default: LevelFilter,
    targets: Vec<(String, LevelFilter)>,
}

impl std::str::FromStr for Lines {
    type Err = String;

    fn from_str(s: &str) -> Result<Lines, String> {
        let mut out = Lines { default: LevelFilter::OFF, targets: Vec::new() };
        for d in s.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let level = |l: &str| {
                l.parse::<LevelFilter>()
                    .map_err(|_| format!("{l:?} is not a level (trace, debug, info, warn, error, off)"))
            };
            match d.split_once('=') {
                Some((target, l)) => out.targets.push((target.to_owned(), level(l)?)),
                None => match level(d) {
                    Ok(l) => out.default = l,
                    // A bare target: everything it logs, as tracing-subscriber's `Targets`.
                    Err(_) => out.targets.push((d.to_owned(), LevelFilter::TRACE)),
                },
            }
        }
        Ok(out)
    }
}

impl Lines {
    fn level_for(&self, target: &str) -> LevelFilter {
        let within = |t: &str| target.strip_prefix(t).is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
        let best = self.targets.iter().filter(|(t, _)| within(t)).max_by_key(|(t, _)| t.len());
        best.map_or(self.default, |(_, l)| *l)
    }

    /// The line an event prints (without its newline), at `unix_micros`.
    fn line(&self, e: &Event<'_>, unix_micros: u64) -> String {
        let m = e.metadata();
        let mut line = format!("{} {:>5} {}: ", timestamp(unix_micros), m.level().as_str(), m.target());
        e.record(&mut Fields(&mut line));
        line
    }
}

/// `2026-12-06T19:57:42.140250Z` (UTC).
fn timestamp(unix_micros: u64) -> String {
    let (secs, micros) = (unix_micros / 1_000_000, unix_micros % 1_000_000);
    let day = rabble_shared::support::clock::day(secs * 1000);
    let s = secs % 86_400;
    format!("{day}T{:02}:{:02}:{:02}.{micros:06}Z", s / 3600, s / 60 % 60, s % 60)
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, f: &Field, value: &dyn std::fmt::Debug) {
        let _ = match f.name() {
            "message" => write!(self.0, "{value:?}"),
            name => write!(self.0, " {name}={value:?}"),
        };
    }
}

impl tracing::Subscriber for Lines {
    fn register_callsite(&self, m: &'static Metadata<'static>) -> Interest {
        if self.enabled(m) { Interest::always() } else { Interest::never() }
    }

    fn enabled(&self, m: &Metadata<'_>) -> bool {
        *m.level() <= self.level_for(m.target())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.targets.iter().map(|(_, l)| *l).fold(self.default, LevelFilter::max))
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, e: &Event<'_>) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let mut line = self.line(e, now.as_micros() as u64);
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::Subscriber as _;

    #[test]
    fn directives_pick_the_longest_target_and_bad_levels_are_named() {
        let l: Lines = "info,rumqttc=debug,rabble_agent::proxy=off, hyper".parse().unwrap();
        assert_eq!(l.level_for("rabble_agent::engine"), LevelFilter::INFO);
        assert_eq!(l.level_for("rumqttc::state"), LevelFilter::DEBUG);
        assert_eq!(l.level_for("rumqttcx"), LevelFilter::INFO, "a prefix ends at a path separator");
        assert_eq!(l.level_for("rabble_agent::proxy::serve"), LevelFilter::OFF);
        assert_eq!(l.level_for("hyper"), LevelFilter::TRACE);
        assert_eq!(l.max_level_hint(), Some(LevelFilter::TRACE));
        assert!("info,x=loud".parse::<Lines>().unwrap_err().contains("\"loud\" is not a level"));
        assert_eq!(timestamp(1_796_587_062_140_250), "2026-12-06T19:57:42.140250Z");
        assert_eq!(timestamp(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
    }

    /// Writes the lines an event makes into a buffer (the subscriber's own path, minus stderr).
    struct Capture(Lines, Arc<Mutex<Vec<String>>>);

    impl tracing::Subscriber for Capture {
        fn enabled(&self, m: &Metadata<'_>) -> bool {
            self.0.enabled(m)
        }
        fn new_span(&self, a: &span::Attributes<'_>) -> span::Id {
            self.0.new_span(a)
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, e: &Event<'_>) {
            self.1.lock().unwrap().push(self.0.line(e, 0));
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }

    #[test]
    fn events_print_as_tracing_subscribers_plain_lines() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sub = Capture("info".parse().unwrap(), got.clone());
        tracing::subscriber::with_default(sub, || {
            let alloc = "b27fa4bc";
            tracing::info!(alloc = %alloc, task = "server", code = 3, "task started");
            tracing::debug!("not printed");
            tracing::warn!(error = ?Some(1), "odd");
        });
        let got = got.lock().unwrap();
        let target = module_path!();
        assert_eq!(
            *got,
            [
                format!(
                    "1970-01-01T00:00:00.000000Z  INFO {target}: task started alloc=b27fa4bc task=\"server\" code=3"
                ),
                format!("1970-01-01T00:00:00.000000Z  WARN {target}: odd error=Some(1)"),
            ]
        );
    }
}
