//! Task output on demand (`rabble alloc logs`): the hub asks a node for one task's
//! stdout or stderr with a signed [`LogsRequest`] on `rabble/node/<node>/logs`, and the
//! node answers with [`LogChunk`]s on `rabble/node/<node>/logs/<session>` (QoS 0, not
//! retained: output is streamed, never stored by the broker).
//!
//! A follow session is a lease: the hub repeats the request (same session) while its
//! reader is there, and sends `cancel` when the reader goes; a node ends a session
//! whose lease ran out. Sessions per node and bytes per chunk are bounded.

use crate::id::{AllocId, NodeId};
use crate::msg::{DecodeError, Payload};
use serde::{Deserialize, Serialize};

/// A follow session ends this long after the last renewal.
pub const LEASE_MS: u64 = 15_000;
/// The hub renews a follow session this often.
pub const RENEW_MS: u64 = 5_000;
/// A node refuses a request issued further than this from its own clock (a replay
/// of an old request starts nothing).
pub const MAX_SKEW_MS: u64 = 5 * 60_000;
/// The most output one chunk carries.
pub const MAX_CHUNK: usize = 16 * 1024;
/// The most concurrent sessions a node serves.
pub const MAX_SESSIONS: usize = 4;

/// Which stream of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    #[default]
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// What travels on `rabble/node/<node>/logs`: the request as signed, and the signature
/// (base64 ed25519 of `body`'s bytes, with the same key as assignments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRequest {
    pub body: String,
    pub sig: String,
}

impl Payload for SignedRequest {
    const WHAT: &'static str = "signed logs request";
}

/// One task's output, asked for by the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    pub node: NodeId,
    /// Lower-case hex, 1–32 characters: the last level of the answer's topic.
    pub session: String,
    pub alloc: AllocId,
    pub task: String,
    pub stream: LogStream,
    /// Keep sending new output until the lease ends or `cancel`.
    pub follow: bool,
    /// Only the last this-many lines / bytes of what is there already (both: the
    /// smaller). Neither: everything the node has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u32>,
    pub issued_ms: u64,
    /// Ends the session (the reader went away).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel: bool,
}

/// Whether `s` can be a session id (and so a topic level).
pub fn valid_session(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A piece of output, node → hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
    pub session: String,
    /// 0, 1, 2, ... per session: a gap means chunks were lost on the way.
    pub seq: u64,
    /// The output (UTF-8; invalid bytes replaced, characters never split).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data: String,
    /// Bytes of output that were dropped before this chunk (the task wrote faster than
    /// the node keeps, or the reader was too slow).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
    /// The session is over (nothing more comes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub eof: bool,
    /// Why the session ended early or could not start (no such task, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Payload for LogChunk {
    const WHAT: &'static str = "log chunk";
    fn validate(&self) -> Result<(), DecodeError> {
        if !valid_session(&self.session) {
            return Err(DecodeError::Invalid(format!("session {:?} is not 1-32 hex digits", self.session)));
        }
        if self.data.len() > MAX_CHUNK {
            return Err(DecodeError::Invalid(format!("{} bytes of data; at most {MAX_CHUNK}", self.data.len())));
        }
        Ok(())
    }
}

/// Cuts `buf` into text: the longest prefix that ends on a character boundary, lossy
/// for invalid bytes; returns the text and how many bytes it used (a multi-byte
/// character cut at the end is left for the next call).
pub fn take_text(buf: &[u8]) -> (String, usize) {
    let mut end = buf.len();
    // An incomplete character at the end: at most 3 bytes of it.
    for back in 1..=3.min(buf.len()) {
        let b = buf[buf.len() - back];
        if b & 0xC0 != 0x80 {
            let need = if b >= 0xF0 {
                4
            } else if b >= 0xE0 {
                3
            } else if b >= 0xC0 {
                2
            } else {
                1
            };
            if need > back {
                end = buf.len() - back;
            }
            break;
        }
    }
    (String::from_utf8_lossy(&buf[..end]).into_owned(), end)
}

/// The last `lines` lines of `text` (a trailing newline does not count as a line).
pub fn last_lines(text: &[u8], lines: u32) -> &[u8] {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0u32;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == lines {
                return &text[i + 1..];
            }
        }
    }
    if lines == 0 { &text[text.len()..] } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_on_character_boundaries() {
        let s = "añ€😀".as_bytes();
        for cut in 0..=s.len() {
            let (text, used) = take_text(&s[..cut]);
            assert!(s[..used].len() <= cut && "añ€😀".starts_with(&text), "cut {cut}: {text:?}");
            let (rest, used2) = take_text(&s[used..]);
            assert_eq!(format!("{text}{rest}"), "añ€😀");
            assert_eq!(used + used2, s.len());
        }
        assert_eq!(take_text(b"ok\xff\xfe!").0, "ok\u{fffd}\u{fffd}!");
    }

    #[test]
    fn last_lines_counts_like_tail() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines(b"a\nb\n", 0), b"");
    }

    #[test]
    fn sessions_are_short_hex() {
        assert!(valid_session("0f3a"));
        for bad in ["", "G1", "../x", "+", &"a".repeat(33)] {
            assert!(!valid_session(bad), "{bad}");
        }
    }
}
