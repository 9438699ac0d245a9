//! A task's `template` block, as Nomad has it: the template text (rendered on the hub,
//! where the data is), where the result goes in the task's directory, and what a change
//! does to the running task.

use serde::{Deserialize, Serialize};

/// What a re-rendered template does to its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeMode {
    #[default]
    Restart,
    Signal,
    Noop,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSpec {
    /// The template text (`data`).
    pub data: String,
    /// Relative to the task's directory (`local/app.conf`, `secrets/env`), runtime
    /// references kept as written.
    pub destination: String,
    /// The rendered file is `KEY=value` lines for the task's environment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub env: bool,
    #[serde(default)]
    pub change_mode: ChangeMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_signal: Option<String>,
    /// Octal, as written (`0644`).
    pub perms: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    pub left_delimiter: String,
    pub right_delimiter: String,
    /// A change is applied after a random delay up to this (so replicas do not all
    /// restart at once).
    pub splay_ms: u64,
    /// Quiescence: wait at least `min` after a change, at most `max` for changes to stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<(u64, u64)>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error_on_missing_key: bool,
    /// The line of the template's `data` in the job file (for errors that name it).
    #[serde(default)]
    pub line: usize,
}
