//! Newtype ids that are safe to put in an MQTT topic level: `[a-z0-9_-]{1,64}`.
//!
//! Names that are not already topic-safe (a hostname `Pi3.lan`, a Consul check id
//! `service:web:1`) are mapped by [`TopicId::from_name`]: ASCII letters are
//! lowercased, every run of other characters becomes one `-`, leading and trailing
//! `-` are dropped, and the result is cut to 64 bytes. The mapping is many-to-one;
//! the agent refuses two names on one node that map to the same id.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest topic id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid topic id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("id is empty")]
    Empty,
    #[error("id {0:?} is longer than {MAX_ID_LEN} bytes")]
    TooLong(String),
    #[error("id {0:?} has a character outside [a-z0-9_-]")]
    BadChar(String),
}

fn validate(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(s.to_owned()));
    }
    if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
        return Err(IdError::BadChar(s.to_owned()));
    }
    Ok(())
}

macro_rules! topic_safe_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `s` as a topic id.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate(&s)?;
                Ok(Self(s))
            }

            /// Maps any name to a topic id (see the module docs); `None` when
            /// nothing topic-safe is left (e.g. the name was all punctuation).
            pub fn from_name(name: &str) -> Option<Self> {
                let mut out = String::with_capacity(name.len().min(MAX_ID_LEN));
                let mut dash = false;
                for c in name.chars() {
                    let c = c.to_ascii_lowercase();
                    if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                        if c == '-' {
                            if !out.is_empty() && !dash {
                                out.push('-');
                            }
                            dash = true;
                            continue;
                        }
                        if dash && !out.is_empty() && !out.ends_with('-') {
                            out.push('-');
                        }
                        dash = false;
                        out.push(c);
                    } else {
                        dash = true;
                    }
                    if out.len() >= MAX_ID_LEN {
                        break;
                    }
                }
                out.truncate(MAX_ID_LEN);
                while out.ends_with('-') {
                    out.pop();
                }
                Self::new(out).ok()
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

topic_safe_id!(
    /// A node's id: the `<node>` level of `rabble/node/<node>/...`.
    NodeId
);
topic_safe_id!(
    /// A service instance's or check's id within one node: the last topic level.
    TopicId
);
topic_safe_id!(
    /// An allocation's id (one placement of a task group on a node): 16 hex digits the
    /// hub draws, the last level of `rabble/node/<node>/alloc/<id>`.
    AllocId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_is_documented_behaviour() {
        let m = |s: &str| TopicId::from_name(s).map(|t| t.0);
        assert_eq!(m("web"), Some("web".into()));
        assert_eq!(m("Pi3.lan"), Some("pi3-lan".into()));
        assert_eq!(m("service:web:1"), Some("service-web-1".into()));
        assert_eq!(m("http ui"), Some("http-ui".into()));
        assert_eq!(m("--a..b--"), Some("a-b".into()));
        assert_eq!(m("snake_case"), Some("snake_case".into()));
        assert_eq!(m("::"), None);
        assert_eq!(m(&"x".repeat(100)).unwrap().len(), MAX_ID_LEN);
    }

    #[test]
    fn validation_rejects_unsafe_ids() {
        assert!(NodeId::new("pi-3").is_ok());
        assert_eq!(NodeId::new(""), Err(IdError::Empty));
        assert!(matches!(NodeId::new("Pi3"), Err(IdError::BadChar(_))));
        assert!(matches!(NodeId::new("a/b"), Err(IdError::BadChar(_))));
        assert!(matches!(NodeId::new("a+"), Err(IdError::BadChar(_))));
        assert!(matches!(NodeId::new("x".repeat(65)), Err(IdError::TooLong(_))));
        let bad: Result<NodeId, _> = serde_json::from_str("\"A#\"");
        assert!(bad.is_err());
    }
}
