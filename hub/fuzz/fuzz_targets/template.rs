//! Fuzzes the template language (lexer, parser, executor: `rabble_core::template`) on
//! any text, rendered against a small catalog (services, KV). Never a panic, and a
//! render never grows past the executor's output limit.
//!
//! Run: `bash tests/fuzz.sh template 60`

#![no_main]

use libfuzzer_sys::fuzz_target;
use rabble_core::catalog::Catalog;
use rabble_core::template::Template;
use rabble_core::template::source::CatalogSource;
use rabble_shared::support::seal::SealKey;
use std::sync::OnceLock;

fn catalog() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| {
        use rabble_core::catalog::{Update, kv::KvUpdate};
        let mut c = Catalog::default();
        rabble_core::dns::fixture::add(&mut c, "n0", "192.168.1.1", "web", &["a"], None, rabble_shared::Status::Passing);
        c.apply(Update::Kv(KvUpdate::Set { key: "app/db".into(), value: b"postgres".to_vec(), flags: 0, cas: None }));
        c
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = Template::parse("fuzz", &text, "{{", "}}") {
        let seal = SealKey::from_bytes(&[7; 32]);
        let source = CatalogSource::new(catalog(), &seal, "job", "group", "task", &[]);
        let _ = t.render(&source);
    }
});
