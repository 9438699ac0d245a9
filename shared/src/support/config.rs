//! Reading config files and secret files, with errors that name the file, the line or
//! the field. Both processes' `Config::resolve` use these.

use std::path::{Path, PathBuf};

/// A configuration problem, naming the file or flag.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{field}: {message}")]
    Field { field: &'static str, message: String },
}

/// Reads a secret file (a node token, a broker password): its one line, trimmed.
/// Errors name the file.
pub fn read_secret(path: &Path) -> Result<String, ConfigError> {
    let err = |message: String| ConfigError::File { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read token: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            tracing::warn!(path = %path.display(), "the token file is readable by others: chmod 600 it");
        }
    }
    let token = text.trim();
    if token.is_empty() || token.len() > 256 || token.contains(char::is_whitespace) {
        return Err(err(
            "expected one token (from `rabble-hub node add <name>`) or password, on one line, without spaces".into(),
        ));
    }
    Ok(token.to_owned())
}

/// Reads a TOML config file: the given path, else `default` if it exists, else nothing.
/// Errors name the file and, for syntax and unknown keys, the line.
pub fn read_toml<T: serde::de::DeserializeOwned + Default>(
    given: Option<&Path>,
    default: &str,
) -> Result<T, ConfigError> {
    let path = match given {
        Some(p) => p,
        None if Path::new(default).exists() => Path::new(default),
        None => return Ok(T::default()),
    };
    let err = |message: String| ConfigError::File { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    toml::from_str(&text).map_err(|e| err(e.to_string().trim_end().to_owned()))
}
