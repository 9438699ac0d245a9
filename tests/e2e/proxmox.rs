//! images/proxmox/rabble-hub-lxc.sh, the line a homelab user pastes into the Proxmox host's
//! shell. There is no Proxmox here: `pct`, `pveam` and `pvesh` are recording stand-ins
//! (they log their arguments and answer like the real ones: a template list, a next free
//! ID, container state in files), and the test checks the exact commands — a new
//! container, then a re-run that updates it in place — and that the script passes
//! shellcheck.

use rabble_tests::{bin, tool};
use std::path::Path;
use std::process::Command;

const PCT: &str = r#"#!/bin/bash
echo "pct $*" >> "$STANDIN/log"
case "$1" in
  list) echo "VMID       Status     Lock         Name"
        for f in "$STANDIN"/ct.*; do [ -f "$f" ] && echo "${f##*.}        running                 $(cat "$f")"; done ;;
  config) [ -f "$STANDIN/ct.$2" ] && printf 'hostname: %s\ntags: rabble\n' "$(cat "$STANDIN/ct.$2")" ;;
  status) [ -f "$STANDIN/ct.$2" ] || exit 2; echo "status: running" ;;
  create) shift 2; while [ $# -gt 0 ]; do [ "$1" = --hostname ] && h=$2; shift; done
          echo "$h" > "$STANDIN/ct.105" ;;
  exec) case "$*" in *"rabble-hub.new install"*) echo "installed /usr/local/bin/rabble-hub";; esac ;;
esac
exit 0
"#;

const PVEAM: &str = r#"#!/bin/bash
echo "pveam $*" >> "$STANDIN/log"
case "$1" in
  available) printf 'system          debian-11-standard_11.7-1_amd64.tar.zst\nsystem          debian-12-standard_12.7-1_amd64.tar.zst\nsystem          debian-13-standard_13.1-2_amd64.tar.zst\nsystem          ubuntu-24.04-standard_24.04-2_amd64.tar.zst\n' ;;
  list) echo "NAME                                                         SIZE" ;;
esac
"#;

const PVESH: &str = "#!/bin/bash\necho \"pvesh $*\" >> \"$STANDIN/log\"\necho 105\n";

fn script() -> std::path::PathBuf {
    rabble_tests::images("proxmox/rabble-hub-lxc.sh")
}

fn run(standin: &Path) -> Vec<String> {
    let _ = std::fs::remove_file(standin.join("log"));
    let path = format!("{}:{}", standin.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg(script())
        .env("PATH", path)
        .env("STANDIN", standin)
        .env("RABBLE_HUB_BIN", bin("rabble-hub"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    std::fs::read_to_string(standin.join("log")).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn the_proxmox_script_creates_then_updates_the_container() {
    let shellcheck = Command::new(tool("shellcheck")).arg(script()).output().unwrap();
    assert!(shellcheck.status.success(), "{}", String::from_utf8_lossy(&shellcheck.stdout));

    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    std::fs::create_dir_all(s.join("bin")).unwrap();
    for (name, text) in [("pct", PCT), ("pveam", PVEAM), ("pvesh", PVESH)] {
        let p = s.join("bin").join(name);
        std::fs::write(&p, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let hub = bin("rabble-hub").display().to_string();
    let template = "debian-13-standard_13.1-2_amd64.tar.zst";
    let create = format!(
        "pct create 105 local:vztmpl/{template} --hostname rabble-hub --unprivileged 1 --features nesting=1 \
         --cores 1 --memory 512 --swap 512 --rootfs local-lvm:4 --net0 name=eth0,bridge=vmbr0,ip=dhcp --onboot 1 \
         --tags rabble --ostype debian"
    );
    let install = [
        "pct exec 105 -- sh -c ip -4 -o addr show scope global | grep -q inet".to_owned(),
        format!("pct push 105 {hub} /usr/local/bin/rabble-hub.new --perms 0755"),
        "pct exec 105 -- /usr/local/bin/rabble-hub.new install --name rabble-hub".to_owned(),
        "pct exec 105 -- rm -f /usr/local/bin/rabble-hub.new".to_owned(),
    ];
    let mut want = vec![
        "pct list".to_owned(),
        "pvesh get /cluster/nextid".to_owned(),
        "pveam update".to_owned(),
        "pveam available --section system".to_owned(),
        "pveam list local".to_owned(),
        format!("pveam download local {template}"),
        create,
        "pct start 105".to_owned(),
    ];
    want.extend(install.iter().cloned());
    assert_eq!(run(s), want, "a new container from the newest Debian template");

    // Again: the container tagged rabble with the hub's name is updated, not created.
    let mut want = vec!["pct list".to_owned(), "pct config 105".to_owned(), "pct status 105".to_owned()];
    want.push("pct status 105".to_owned());
    want.extend(install.iter().cloned());
    assert_eq!(run(s), want, "an update in place");
}
