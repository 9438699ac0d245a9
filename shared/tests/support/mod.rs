//! The golden-file check the golden tests share.

use std::path::PathBuf;

/// Compares `encoded` with `tests/golden/<name>`; `RABBLE_UPDATE_GOLDEN=1` rewrites it.
pub fn golden(name: &str, encoded: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("RABBLE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, encoded).unwrap();
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(String::from_utf8_lossy(encoded), String::from_utf8_lossy(&want), "encoding of {name} changed");
}
