//! The files made from the topic policy (`rabble_shared::topic::policy`) are the policy: the
//! shipped Mosquitto `acl_file` and the topic table in docs/mqtt.md. Regenerate both with
//! `RABBLE_UPDATE_GOLDEN=1 cargo test -p rabble-shared --test policy`.

use rabble_shared::topic::policy;
use std::path::PathBuf;

const BEGIN: &str = "<!-- topics: generated from shared/src/topic/policy.rs -->\n";
const END: &str = "<!-- topics: end -->\n";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn check(path: &str, want: &str) {
    let file = repo(path);
    if std::env::var_os("RABBLE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&file, want).unwrap();
    }
    let have = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(have, want, "{path} differs from the topic policy: regenerate it (RABBLE_UPDATE_GOLDEN=1)");
}

#[test]
fn the_shipped_mosquitto_acl_is_the_policy() {
    check("images/etc/mosquitto-acl.conf", &policy::mosquitto_acl());
}

#[test]
fn the_docs_topic_table_is_the_policy() {
    let doc = std::fs::read_to_string(repo("docs/mqtt.md")).unwrap();
    let start = doc.find(BEGIN).expect("docs/mqtt.md has the table's begin marker") + BEGIN.len();
    let end = doc[start..].find(END).expect("docs/mqtt.md has the table's end marker") + start;
    let want = format!("{}{}{}", &doc[..start], policy::markdown_table(), &doc[end..]);
    check("docs/mqtt.md", &want);
}
