//! Templates rendered by the hub for one allocation, on `rabble/node/<node>/templates/<alloc>`
//! (retained): an [`assign::Signed`](crate::assign::Signed) whose body is a
//! [`RenderedMessage`] — the [`AllocTemplates`] `sealed` for the node (rendered files
//! may hold secrets) or, for a node without credentials, `plain`. The node writes the
//! files into the task's directory (a tmpfs) and applies each file's `change_mode` when
//! it changes.

use crate::id::AllocId;
use crate::job::ChangeMode;
use crate::msg::{DecodeError, Payload};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most rendered bytes one allocation takes (they travel in one MQTT message).
pub const MAX_RENDERED: usize = 40 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedFile {
    /// As in the job (`local/app.conf`, `${NOMAD_SECRETS_DIR}/env`).
    pub destination: String,
    pub contents: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub env: bool,
    pub perms: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    pub change_mode: ChangeMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_signal: Option<String>,
    pub splay_ms: u64,
}

/// Every task's rendered files for one allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocTemplates {
    pub alloc: AllocId,
    /// The catalog index it was rendered at: a node ignores an older one.
    pub index: u64,
    pub tasks: BTreeMap<String, Vec<RenderedFile>>,
}

impl AllocTemplates {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    pub fn from_bytes(b: &[u8]) -> Result<AllocTemplates, DecodeError> {
        serde_json::from_slice(b).map_err(|error| DecodeError::Json { what: "rendered templates", error })
    }
}

/// Exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RenderedMessage {
    /// Base64 of sealed [`AllocTemplates::to_bytes`], the topic as associated data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain: Option<AllocTemplates>,
}

impl Payload for RenderedMessage {
    const WHAT: &'static str = "rendered templates";
    fn validate(&self) -> Result<(), DecodeError> {
        match (&self.sealed, &self.plain) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err(DecodeError::Invalid("rendered templates: exactly one of \"sealed\" and \"plain\"".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_and_round_trip() {
        let t = AllocTemplates {
            alloc: AllocId::new("00ff").unwrap(),
            index: 7,
            tasks: [(
                "web".to_owned(),
                vec![RenderedFile {
                    destination: "local/up.conf".into(),
                    contents: "server 10.0.0.1:80;\n".into(),
                    env: false,
                    perms: 0o644,
                    uid: None,
                    gid: None,
                    change_mode: ChangeMode::Signal,
                    change_signal: Some("SIGHUP".into()),
                    splay_ms: 0,
                }],
            )]
            .into(),
        };
        let m = RenderedMessage { sealed: None, plain: Some(t.clone()) };
        let enc = String::from_utf8(crate::msg::encode(&m)).unwrap();
        assert_eq!(
            enc,
            r#"{"v":1,"plain":{"alloc":"00ff","index":7,"tasks":{"web":[{"destination":"local/up.conf","contents":"server 10.0.0.1:80;\n","perms":420,"change_mode":"signal","change_signal":"SIGHUP","splay_ms":0}]}}}"#
        );
        assert_eq!(crate::msg::decode::<RenderedMessage>(enc.as_bytes()).unwrap(), m);
        assert_eq!(AllocTemplates::from_bytes(&t.to_bytes()).unwrap(), t);
        assert!(crate::msg::decode::<RenderedMessage>(br#"{"v":1}"#).is_err());
    }
}
