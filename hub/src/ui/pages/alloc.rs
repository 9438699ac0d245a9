//! An allocation's tasks (state, restarts, when started and finished, their recent
//! events in the node's words, newest first) and its services' checks with their output.

use super::super::layout::badge;
use super::status_badge;
use maud::{Markup, html};
use rabble_shared::alloc::Allocation;
use rabble_shared::api::InstanceView;
use rabble_shared::support::clock::{date, datetime};

fn state_badge(state: &str, failed: bool) -> Markup {
    match (state, failed) {
        (_, true) => badge("bad", &format!("{state} (failed)")),
        ("running", _) => badge("ok", state),
        ("pending", _) => badge("warn", state),
        _ => badge("off", state),
    }
}

pub fn tasks(a: &Allocation) -> Markup {
    let mut events: Vec<(&String, &rabble_shared::alloc::TaskEvent)> =
        a.tasks.iter().flat_map(|(n, t)| t.events.iter().map(move |e| (n, e))).collect();
    events.sort_by_key(|(_, e)| std::cmp::Reverse(e.at_ms));
    html! {
        @if !a.tasks.is_empty() {
            h2 { "Tasks" }
            div.scroll { table #tasks {
                thead { tr { th { "task" } th { "state" } th { "restarts" } th { "exit code" } th { "started" } th { "finished" } th { "last event" } } }
                tbody { @for (name, t) in &a.tasks {
                    tr {
                        td { (name) } td { (state_badge(&t.state, t.failed)) } td { (t.restarts) }
                        td { (t.exit_code.map(|c| c.to_string()).unwrap_or_default()) }
                        td { (t.started_ms.map(date).unwrap_or_default()) } td { (t.finished_ms.map(date).unwrap_or_default()) }
                        td { (t.events.last().map(|e| e.text.as_str()).unwrap_or_default()) }
                    }
                } }
            } }
            h2 { "Task events" }
            div.scroll { table #task-events {
                thead { tr { th { "time" } th { "task" } th { "event" } } }
                tbody { @for (task, e) in &events {
                    tr { td { (datetime(e.at_ms)) } td { (task) } td { (e.text) } }
                } }
            } }
        }
    }
}

pub fn checks(services: &[InstanceView]) -> Markup {
    html! {
        @if !services.is_empty() {
            h2 { "Service checks" }
            div.scroll { table #alloc-checks {
                thead { tr { th { "service" } th { "address" } th { "check" } th { "status" } th { "output" } } }
                tbody { @for i in services {
                    @if i.checks.is_empty() {
                        tr { td { (i.name) } td.mono { (i.address) ":" (i.port.unwrap_or(0)) } td { "—" } td { (status_badge(i.status)) } td {} }
                    }
                    @for c in &i.checks {
                        tr { td { (i.name) } td.mono { (i.address) ":" (i.port.unwrap_or(0)) } td { (c.name) } td { (status_badge(c.status)) }
                             td.mono { (c.output.lines().next().unwrap_or_default()) } }
                    }
                } }
            } }
        }
    }
}
