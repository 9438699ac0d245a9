//! Fuzzes the config files a user writes: hub.toml (`rabble_hub::fuzzing::hub_config`) and
//! agent.toml (`rabble_agent::config::Config::resolve`), each read from a file in /dev/shm
//! as the processes read them. Never a panic. The first byte picks the file.
//!
//! Run: `bash tests/fuzz.sh config_file 60`

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        PathBuf::from(format!("{dir}/rabble-fuzz-config-{}.toml", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    if which % 2 == 0 {
        rabble_hub::fuzzing::hub_config(path(), rest);
    } else if std::fs::write(path(), rest).is_ok() {
        let flags = rabble_agent::config::Flags { config: Some(path().clone()), ..Default::default() };
        let _ = rabble_agent::config::Config::resolve(flags);
    }
});
