//! The command lines of the java and qemu drivers, pure, in Nomad's forms: `java
//! [jvm_options] [-cp class_path] -jar jar_path | class [args]`, and `qemu-system-<emulator>
//! -machine type=<machine_type>,accel=<accelerator> -name <task> -m <memory>M -drive
//! file=<image_path>,if=<drive_interface> -nographic [-monitor unix:<sock>,server,nowait]
//! [guest agent] <args> [-netdev user,id=user.0,hostfwd=... -device virtio-net,netdev=user.0]`.

use rabble_shared::alloc::AllocPort;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Nomad's smallest VM.
pub const QEMU_MIN_MEMORY_MB: u32 = 128;

fn string(c: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("config.{key} must be a string, not {other}")),
    }
}

fn strings(c: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => {
            Ok(a.iter().map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string())).collect())
        }
        Some(other) => Err(format!("config.{key} must be a list, not {other}")),
    }
}

/// `java` and its arguments.
pub fn java(c: &Map<String, Value>) -> Result<Vec<String>, String> {
    let mut args = strings(c, "jvm_options")?;
    if let Some(cp) = string(c, "class_path")? {
        args.extend(["-cp".to_owned(), cp]);
    }
    match (string(c, "jar_path")?, string(c, "class")?) {
        (Some(jar), None) => args.extend(["-jar".to_owned(), jar]),
        (None, Some(class)) => args.push(class),
        (Some(_), Some(_)) => return Err("config: set `jar_path` or `class`, not both".into()),
        (None, None) => return Err("config: the java driver needs `jar_path` or `class`".into()),
    }
    args.extend(strings(c, "args")?);
    Ok(args)
}

/// A qemu task's command: the emulator, its arguments, and the monitor socket a graceful
/// shutdown speaks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qemu {
    pub command: String,
    pub args: Vec<String>,
    pub monitor: Option<PathBuf>,
}

/// `kvm`: whether this node can use /dev/kvm. Without an `accelerator`, KVM where it is
/// usable, else TCG; asked for by name, KVM where it is not is an error.
pub fn qemu(
    c: &Map<String, Value>,
    task: &str,
    task_dir: &Path,
    memory_mb: u32,
    ports: &[AllocPort],
    kvm: bool,
) -> Result<Qemu, String> {
    let image = string(c, "image_path")?.ok_or("config: the qemu driver needs `image_path`")?;
    let emulator = string(c, "emulator")?.unwrap_or_else(|| "x86_64".into());
    if emulator.is_empty() || !emulator.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
        return Err(format!("config.emulator {emulator:?} is not an emulator's name (x86_64, aarch64, ...)"));
    }
    let accel = match string(c, "accelerator")?.as_deref() {
        None if kvm => "kvm".to_owned(),
        None => "tcg".to_owned(),
        Some("kvm") if !kvm => return Err("config.accelerator: /dev/kvm is not usable on this node".into()),
        Some(a) => a.to_owned(),
    };
    let machine = string(c, "machine_type")?.unwrap_or_else(|| "pc".into());
    let iface = string(c, "drive_interface")?.unwrap_or_else(|| "ide".into());
    let mut args = vec![
        "-machine".to_owned(),
        format!("type={machine},accel={accel}"),
        "-name".into(),
        task.to_owned(),
        "-m".into(),
        format!("{}M", memory_mb.max(QEMU_MIN_MEMORY_MB)),
        "-drive".into(),
        format!("file={image},if={iface}"),
        "-nographic".into(),
    ];
    let graceful = matches!(c.get("graceful_shutdown"), Some(Value::Bool(true)))
        || string(c, "graceful_shutdown")?.as_deref() == Some("true");
    let monitor = graceful.then(|| task_dir.join("qemu-monitor.sock"));
    if let Some(m) = &monitor {
        args.extend(["-monitor".into(), format!("unix:{},server,nowait", m.display())]);
    }
    let guest_agent =
        matches!(c.get("guest_agent"), Some(Value::Bool(true))) || string(c, "guest_agent")?.as_deref() == Some("true");
    if guest_agent {
        let sock = task_dir.join("qemu-guest-agent.sock");
        args.extend([
            "-chardev".into(),
            format!("socket,path={},server=on,wait=off,id=qga0", sock.display()),
            "-device".into(),
            "virtio-serial".into(),
            "-device".into(),
            "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0".into(),
        ]);
    }
    args.extend(strings(c, "args")?);
    let forwards = forwards(c, ports)?;
    if !forwards.is_empty() {
        let fwd: Vec<String> = forwards
            .iter()
            .flat_map(|(host, guest)| {
                [format!("hostfwd=tcp::{host}-:{guest}"), format!("hostfwd=udp::{host}-:{guest}")]
            })
            .collect();
        args.extend([
            "-netdev".into(),
            format!("user,id=user.0,{}", fwd.join(",")),
            "-device".into(),
            "virtio-net,netdev=user.0".into(),
        ]);
    }
    Ok(Qemu { command: format!("qemu-system-{emulator}"), args, monitor })
}

/// (host port, guest port) pairs: `port_map { label = guest }` (a block or a map), else
/// each group port with a `to`.
fn forwards(c: &Map<String, Value>, ports: &[AllocPort]) -> Result<Vec<(u16, u16)>, String> {
    let maps: Vec<&Map<String, Value>> = match c.get("port_map") {
        None | Some(Value::Null) => vec![],
        Some(Value::Object(m)) => vec![m],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).collect(),
        Some(other) => return Err(format!("config.port_map must be a map of port labels, not {other}")),
    };
    let mut out = Vec::new();
    for (label, guest) in maps.iter().flat_map(|m| m.iter()) {
        let p = ports.iter().find(|p| &p.label == label).ok_or_else(|| {
            format!("config.port_map: {label:?} is not one of the group's ports (network {{ port {label:?} {{}} }})")
        })?;
        let guest = guest
            .as_u64()
            .or_else(|| guest.as_str()?.parse().ok())
            .and_then(|g| u16::try_from(g).ok())
            .ok_or_else(|| format!("config.port_map.{label}: {guest} is not a port"))?;
        out.push((p.value, guest));
    }
    if maps.is_empty() {
        out.extend(ports.iter().filter_map(|p| Some((p.value, p.to?))));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn java_as_nomad_runs_it() {
        let c = obj(json!({"jar_path": "local/app.jar", "jvm_options": ["-Xmx64m"], "args": ["--port", "8080"]}));
        assert_eq!(java(&c).unwrap(), ["-Xmx64m", "-jar", "local/app.jar", "--port", "8080"]);
        let c = obj(json!({"class": "Hello", "class_path": "local/classes"}));
        assert_eq!(java(&c).unwrap(), ["-cp", "local/classes", "Hello"]);
        assert!(java(&obj(json!({}))).unwrap_err().contains("jar_path"));
        assert!(java(&obj(json!({"class": "A", "jar_path": "b"}))).unwrap_err().contains("not both"));
    }

    #[test]
    fn qemu_as_nomad_runs_it() {
        let ports = [AllocPort { label: "http".into(), value: 23080, to: Some(8080) }];
        let c = obj(json!({
            "image_path": "local/disk.img", "emulator": "aarch64", "machine_type": "virt",
            "graceful_shutdown": true, "args": ["-kernel", "local/vmlinuz"], "port_map": [{"http": 80}]
        }));
        let q = qemu(&c, "vm", Path::new("/a/t"), 64, &ports, false).unwrap();
        assert_eq!(q.command, "qemu-system-aarch64");
        assert_eq!(
            q.args.join(" "),
            "-machine type=virt,accel=tcg -name vm -m 128M -drive file=local/disk.img,if=ide -nographic \
             -monitor unix:/a/t/qemu-monitor.sock,server,nowait -kernel local/vmlinuz \
             -netdev user,id=user.0,hostfwd=tcp::23080-:80,hostfwd=udp::23080-:80 -device virtio-net,netdev=user.0"
        );
        assert_eq!(q.monitor.as_deref(), Some(Path::new("/a/t/qemu-monitor.sock")));
        // No port_map: each port's `to`; KVM where usable; refused where asked and not.
        let c = obj(json!({"image_path": "d.img"}));
        let q = qemu(&c, "vm", Path::new("/t"), 512, &ports, true).unwrap();
        assert!(q.args.contains(&"type=pc,accel=kvm".to_owned()) && q.args.contains(&"512M".to_owned()), "{q:?}");
        assert!(q.args.iter().any(|a| a.contains("hostfwd=tcp::23080-:8080")), "{q:?}");
        let e = qemu(&obj(json!({"image_path": "d", "accelerator": "kvm"})), "vm", Path::new("/t"), 0, &[], false);
        assert!(e.unwrap_err().contains("/dev/kvm"));
        let e = qemu(&obj(json!({"image_path": "d", "port_map": {"ssh": 22}})), "vm", Path::new("/t"), 0, &ports, true);
        assert!(e.unwrap_err().contains("\"ssh\" is not one of the group's ports"));
        let e = qemu(&obj(json!({"image_path": "d", "emulator": "x; rm"})), "vm", Path::new("/t"), 0, &[], true);
        assert!(e.is_err());
    }
}
