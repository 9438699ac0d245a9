//! Entry points for the fuzz targets (`hub/fuzz`, built with the `fuzzing` feature): the
//! hub's parsers that sit behind private modules, each on raw bytes.

/// Every parser a Consul client's request meets: bodies, transactions, query strings, keys.
pub fn consul_request(data: &[u8]) {
    crate::api::consul::fuzz_request(data);
}

/// hub.toml as a user may write it (`path` holds `data`; the config reads a file).
pub fn hub_config(path: &std::path::Path, data: &[u8]) {
    if std::fs::write(path, data).is_ok() {
        let _ = crate::config::Config::resolve(crate::config::Flags {
            config: Some(path.to_owned()),
            ..Default::default()
        });
    }
}
