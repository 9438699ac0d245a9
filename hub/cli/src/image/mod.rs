//! `rabble image`: puts the agent on a Raspberry Pi card image without mounting it. It
//! reads the MBR (`disk`), p2's `/etc/fstab` and `/bin/sh` through ext4-view (read only:
//! where the boot partition is mounted, which CPU the image runs), then writes only p1's
//! FAT (`fat`): a `rabble/` folder (`card`) and the first-boot hook in `cmdline.txt`
//! (`boot`). `.img.xz` in, `.img` out.

pub mod boot;
pub mod card;
pub mod device;
pub mod disk;
pub mod fat;
mod xz;

use boot::Arch;
use rabble_shared::api::{JoinRequest, JoinToken};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Why `rabble image` stopped; each names the file or the part of the image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("{0}: {1}")]
    Layout(PathBuf, String),
    #[error("{path}: the boot partition (p{part}): {error}")]
    Fat { path: PathBuf, part: u8, error: String },
    #[error("{0}")]
    Usage(String),
    #[error("asking the hub for a join token: {0}")]
    Hub(#[from] crate::CliError),
}

/// What `rabble image` was asked to do.
#[derive(Debug, Clone, clap::Args)]
pub struct ImageArgs {
    /// A Raspberry Pi OS image (`.img`, or `.img.xz`: written out as `.img`).
    pub image: PathBuf,
    /// The node's name.
    #[arg(long)]
    pub name: String,
    /// The hub's MQTT address, e.g. mqtts://hub.lan:8883; repeat it for every hub of a cluster.
    #[arg(long, required = true)]
    pub hub: Vec<String>,
    /// The hub's CA (`rabble-hub tls init` made it), for mqtts://.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Ask the hub (--addr / RABBLE_ADDR) for a join token for this node (and its hub_key).
    #[arg(long, conflicts_with_all = ["token_file", "join_token_file"])]
    pub join: bool,
    /// A join token (`rabble-hub node add <name> --join`): single use and short-lived; the
    /// node trades it for its own token at its first connect. Preferred to --token-file.
    #[arg(long, conflicts_with = "token_file")]
    pub join_token_file: Option<PathBuf>,
    /// The node's long-lived token (`rabble-hub node add <name>`): it stays valid after first
    /// boot, so a card lost before then leaks it.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The hub's public key (`rabble-hub key`): the node runs only work signed with it.
    #[arg(long)]
    pub hub_key: Option<String>,
    /// A static agent build (repeatable: the aarch64 one, and the 32-bit ARM one for armhf
    /// images). Default: rabble-agent-aarch64 and rabble-agent-arm beside this program.
    #[arg(long = "agent")]
    pub agents: Vec<PathBuf>,
    /// The node's class (node_class).
    #[arg(long)]
    pub class: Option<String>,
    #[arg(long)]
    pub datacenter: Option<String>,
    /// Node metadata, key=value (repeatable).
    #[arg(long = "meta", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// The node's service files (`*.toml`, `*.json`, `*.hcl`), copied to /etc/rabble/services.d.
    #[arg(long)]
    pub services_dir: Option<PathBuf>,
    /// Write the result here instead of changing the image in place: a file, or the card
    /// itself (`/dev/sdX`: written in 4 MiB chunks with progress, synced, read back).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Do not ask before writing to a device.
    #[arg(long)]
    pub yes: bool,
    /// Write to a device that is not removable (never one that is mounted or holds /).
    #[arg(long)]
    pub force: bool,
}

/// Whether `p` is a block device.
fn is_device(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device())
}

/// The device's description, refused or confirmed.
fn check_device(p: &Path, args: &ImageArgs, what: &str) -> Result<(), ImageError> {
    let name = std::fs::canonicalize(p).map_err(io(p))?.display().to_string();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let d = device::describe(Path::new("/sys"), &mounts, &device::disk_name(&name)).map_err(ImageError::Usage)?;
    if let Some(why) = device::refuse(&d, args.force) {
        return Err(ImageError::Usage(why));
    }
    let removable = if d.removable { "removable" } else { "NOT removable" };
    eprintln!("{what} /dev/{}: {} {}, {removable}.", d.name, d.model, device::size(d.bytes));
    if !args.yes {
        eprint!("Everything else on it stays, but check it is the card. Type yes to go on: ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).map_err(io(Path::new("stdin")))?;
        if answer.trim() != "yes" {
            return Err(ImageError::Usage("not confirmed; nothing written".into()));
        }
    }
    Ok(())
}

/// Opens a device for writing, exclusively: the kernel refuses (EBUSY) if anything has
/// it mounted or open exclusively.
fn open_device(p: &Path) -> Result<std::fs::File, ImageError> {
    use std::os::unix::fs::OpenOptionsExt;
    const O_EXCL: i32 = 0o200; // the same on every Linux architecture (asm-generic)
    OpenOptions::new().read(true).write(true).custom_flags(O_EXCL).open(p).map_err(io(p))
}

/// Flashes the prepared image onto the device at `--out`, with a progress line.
fn flash_to(img: &Path, dev: &Path) -> Result<u64, ImageError> {
    let mut f = open_device(dev)?;
    let started = tokio::time::Instant::now();
    let bytes = device::flash(img, &mut f, |done, total| {
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let left = (total.saturating_sub(done)) as f64 / rate.max(1.0);
        eprint!("\r  {} of {}, {:.1} MB/s, {left:.0} s left   ", device::size(done), device::size(total), rate / 1e6);
    })
    .map_err(|e| ImageError::Layout(dev.to_owned(), e))?;
    eprintln!("\n  written and verified in {:.1} s", started.elapsed().as_secs_f64());
    drop(f);
    // The kernel re-reads the new partition table (util-linux's blockdev; a failure only
    // means the old one shows until the card is re-inserted).
    let _ = std::process::Command::new("blockdev").arg("--rereadpt").arg(dev).status();
    Ok(bytes)
}

fn parse_meta(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?}: use key=value"))
}

/// What was done, for the summary.
#[derive(Debug)]
pub struct Report {
    pub image: PathBuf,
    pub boot_mount: String,
    pub arch: Arch,
    /// Each file, its size, and whether it was written (false: already there).
    pub files: Vec<(String, usize, bool)>,
    pub cmdline: String,
}

/// The summary `rabble image` prints.
pub fn print(r: &Report) {
    println!("{}: boot partition mounted at {} ({} image)", r.image.display(), r.boot_mount, r.arch.suffix());
    for (name, size, written) in &r.files {
        println!("  {}/{name}  {size} bytes{}", boot::DIR, if *written { "" } else { " (unchanged)" });
    }
    let total: usize = r.files.iter().map(|f| f.1).sum();
    println!("  {} files, {total} bytes on the card", r.files.len());
    println!("cmdline.txt: {}", r.cmdline.trim_end());
    println!("Flash it (or boot it): the first boot installs the agent and reboots; the node then joins the hub.");
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ImageError + '_ {
    move |e| ImageError::Io(path.to_owned(), e)
}

/// The agents to put on the card, each with the CPU its ELF header names.
fn agents(args: &ImageArgs) -> Result<Vec<(Arch, Vec<u8>)>, ImageError> {
    let mut paths = args.agents.clone();
    if paths.is_empty()
        && let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_owned))
    {
        paths =
            ["rabble-agent-aarch64", "rabble-agent-arm"].iter().map(|n| dir.join(n)).filter(|p| p.exists()).collect();
    }
    if paths.is_empty() {
        return Err(ImageError::Usage(
            "no agent to put on the card: give --agent PATH (the static aarch64 build: cargo build --profile \
             agent-release --target aarch64-unknown-linux-musl -p rabble-agent)"
                .into(),
        ));
    }
    let mut out = Vec::new();
    for p in paths {
        let bytes = std::fs::read(&p).map_err(io(&p))?;
        let arch = boot::elf_arch(&bytes)
            .ok_or_else(|| ImageError::Layout(p.clone(), "not a little-endian ELF executable".into()))?;
        if out.iter().any(|(a, _)| *a == arch) {
            return Err(ImageError::Usage(format!("two agents for {}", arch.suffix())));
        }
        out.push((arch, bytes));
    }
    Ok(out)
}

/// Reads the node's files from the command line's paths (and asks the hub for a join
/// token with --join).
fn node(args: &ImageArgs, hub: &crate::Client) -> Result<card::Node, ImageError> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(io(p));
    let mut services = Vec::new();
    if let Some(dir) = &args.services_dir {
        for e in std::fs::read_dir(dir).map_err(io(dir))? {
            let e = e.map_err(io(dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().map_err(io(dir))?.is_file() && [".toml", ".json", ".hcl"].iter().any(|x| name.ends_with(x))
            {
                services.push((name, read(&e.path())?));
            }
        }
        services.sort();
    }
    let secret = |p: &Option<PathBuf>| -> Result<Option<String>, ImageError> {
        match p {
            Some(p) => Ok(Some(String::from_utf8_lossy(&read(p)?).trim().to_owned())),
            None => Ok(None),
        }
    };
    let (token, mut join_token) = (secret(&args.token_file)?, secret(&args.join_token_file)?);
    let mut hub_key = args.hub_key.clone();
    if args.join {
        let m: JoinToken = hub.post(&format!("/api/v1/nodes/{}/join", args.name), &JoinRequest::default())?;
        join_token = Some(m.join_token);
        hub_key = hub_key.or(Some(m.hub_key));
    }
    Ok(card::Node {
        name: args.name.clone(),
        hub: args.hub.clone(),
        datacenter: args.datacenter.clone(),
        class: args.class.clone(),
        meta: args.meta.clone(),
        hub_key,
        ca: args.ca.as_ref().map(read).transpose()?,
        token,
        join_token,
        services,
        agents: agents(args)?,
    })
}

/// The image to change: the input itself, a copy at `--out`, or the `.xz` decompressed
/// (for a device at `--out`: a temporary copy, flashed afterwards).
fn working_copy(args: &ImageArgs) -> Result<PathBuf, ImageError> {
    let input = &args.image;
    let xz = input.extension().is_some_and(|e| e == "xz");
    let out = match (&args.out, xz) {
        (Some(o), _) if is_device(o) => std::env::temp_dir().join(format!("rabble-image-{}.img", std::process::id())),
        (Some(o), _) => o.clone(),
        (None, true) => input.with_extension(""),
        (None, false) => return Ok(input.clone()),
    };
    if &out == input {
        return Err(ImageError::Usage(format!("--out {} is the input", out.display())));
    }
    if xz {
        xz::decompress(input, &out)?;
    } else {
        std::fs::copy(input, &out).map_err(io(&out))?;
    }
    Ok(out)
}

/// Does the work on an image file.
pub fn run(args: &ImageArgs, hub: &crate::Client) -> Result<Report, ImageError> {
    let node = node(args, hub)?;
    let to_device = args.out.as_deref().filter(|o| is_device(o));
    if is_device(&args.image) {
        if args.out.is_some() {
            return Err(ImageError::Usage("a card is changed in place: no --out".into()));
        }
        check_device(&args.image, args, "Changing the boot partition of")?;
    }
    if let Some(dev) = to_device {
        check_device(dev, args, "Writing the image to")?;
    }
    let path = working_copy(args)?;
    let report = edit(node, &path);
    if let Some(dev) = to_device {
        let flashed = report.and_then(|r| flash_to(&path, dev).map(|_| Report { image: dev.to_owned(), ..r }));
        let _ = std::fs::remove_file(&path);
        return flashed;
    }
    report
}

/// Edits the boot partition of the image (or card) at `path`.
fn edit(node: card::Node, path: &Path) -> Result<Report, ImageError> {
    let path = path.to_owned();
    // Opened once (a device exclusively); the partitions use clones of that one handle.
    let mut file = if is_device(&path) {
        open_device(&path)?
    } else {
        OpenOptions::new().read(true).write(true).open(&path).map_err(io(&path))?
    };
    let handle = file.try_clone().map_err(io(&path))?;
    let open = || handle.try_clone().map_err(io(&path));
    let mut sector = [0u8; 512];
    file.read_exact(&mut sector).map_err(io(&path))?;
    let mbr = disk::parse_mbr(&sector).map_err(|e| ImageError::Layout(path.clone(), e))?;
    let len = file.seek(SeekFrom::End(0)).map_err(io(&path))?;
    for p in &mbr.partitions {
        if p.start + p.len > len {
            let msg = format!("partition {} ends past the image's end (a truncated download?)", p.number);
            return Err(ImageError::Layout(path.clone(), msg));
        }
    }
    let boot_part = mbr
        .partitions
        .iter()
        .find(|p| p.is_fat())
        .copied()
        .ok_or_else(|| ImageError::Layout(path.clone(), "no FAT partition: not a Raspberry Pi OS image".into()))?;
    let root_part = mbr.partitions.iter().find(|p| p.kind == 0x83).copied();
    let (boot_mount, image_arch) = match root_part {
        Some(p) => root_facts(disk::Part::new(open()?, &p)).map_err(|e| ImageError::Layout(path.clone(), e))?,
        None => return Err(ImageError::Layout(path.clone(), "no Linux root partition (type 83)".into())),
    };
    let agents: Vec<(Arch, Vec<u8>)> = node
        .agents
        .iter()
        .filter(|(a, _)| *a == image_arch || (image_arch == Arch::Arm && *a == Arch::Aarch64))
        .cloned()
        .collect();
    if agents.is_empty() {
        let given: Vec<&str> = node.agents.iter().map(|(a, _)| a.suffix()).collect();
        return Err(ImageError::Usage(format!(
            "the image runs {} binaries; the agents given are for {}",
            image_arch.suffix(),
            given.join(", ")
        )));
    }
    let node = card::Node { agents, ..node };
    let fat_err =
        |e: fat::FatError| ImageError::Fat { path: path.clone(), part: boot_part.number, error: e.to_string() };
    let fs = fat::open(disk::Part::new(file, &boot_part)).map_err(fat_err)?;
    let root = fs.root_dir();
    let cmdline = fat::read(&root, "cmdline.txt").map_err(fat_err)?.ok_or_else(|| ImageError::Fat {
        path: path.clone(),
        part: boot_part.number,
        error: "no cmdline.txt: not a Raspberry Pi boot partition".into(),
    })?;
    let cmdline = String::from_utf8_lossy(&cmdline).into_owned();
    let script = boot::script_path(&boot_mount, &cmdline);
    let (new_cmdline, added) = boot::with_hook(&cmdline, &script);
    let files = card::files(&node, &added);
    let dir = match root.open_dir(boot::DIR) {
        Ok(d) => d,
        Err(fatfs::Error::NotFound) => root.create_dir(boot::DIR).map_err(fat_err)?,
        Err(e) => return Err(fat_err(e)),
    };
    let written = fat::sync(&dir, &files).map_err(fat_err)?;
    if new_cmdline != cmdline {
        fat::write(&root, "cmdline.txt", new_cmdline.as_bytes()).map_err(fat_err)?;
    }
    drop(dir);
    drop(root);
    fs.unmount().map_err(fat_err)?;
    open()?.sync_all().map_err(io(&path))?;
    Ok(Report { image: path, boot_mount, arch: image_arch, files: written, cmdline: new_cmdline })
}

/// From the root file system: where it mounts the boot partition, and its CPU.
fn root_facts(part: disk::Part) -> Result<(String, Arch), String> {
    let fs = ext4_view::Ext4::load(Box::new(part)).map_err(|e| format!("the root partition (ext4): {e}"))?;
    let fstab = fs.read_to_string("/etc/fstab").unwrap_or_default();
    let mount = boot::boot_mount(&fstab).unwrap_or_else(|| {
        // No fstab line: the directory the image has (Bookworm and later: /boot/firmware).
        if fs.exists("/boot/firmware").unwrap_or(false) { "/boot/firmware".into() } else { "/boot".into() }
    });
    let arch = ["/bin/sh", "/usr/bin/sh", "/bin/busybox", "/usr/bin/dash", "/bin/dash"]
        .iter()
        .find_map(|p| fs.read(*p).ok().and_then(|b| boot::elf_arch(&b)))
        .ok_or("cannot tell the image's CPU: no /bin/sh in the root file system")?;
    Ok((mount, arch))
}
