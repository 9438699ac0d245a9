//! Why the agent could not start: the one error type the engine and the link share
//! (it lives here so neither depends on the other for it).

use std::path::PathBuf;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("control socket {path}: {error}")]
    Socket { path: PathBuf, error: std::io::Error },
    #[error("TLS to the hub: {0}")]
    Tls(String),
    #[error("lane TLS: {0}")]
    LaneTls(String),
    #[error("{what} address {addr}: {error}")]
    Bind { what: String, addr: std::net::SocketAddr, error: std::io::Error },
}
