//! `pct create <vmid> <ostemplate> [options]`
//!
//! Order as in pve-container: existing-VMID check, template volume parse, then the task:
//! flock (5 s), config holding only `lock: create`, volume allocation, extraction,
//! OS detection, final config. Any error removes what this call created and dies with
//! `unable to create CT <vmid> - <reason>`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::cli::Parsed;
use crate::conf::Conf;
use crate::extract;
use crate::lock::{lock_config, Stream};
use crate::ostype::{self, Detected};
use crate::output::{die, Exit};
use crate::paths::Paths;
use crate::propstr;
use crate::validate;
use crate::volumes;

/// Options that only steer creation and are not stored in the config.
const CREATE_ONLY: &[&str] = &[
    "debug",
    "force",
    "ha-managed",
    "ignore-unpack-errors",
    "lock",
    "password",
    "pool",
    "restore",
    "ssh-public-keys",
    "start",
    "storage",
    "unique",
    "unprivileged",
    "env",
];

/// What this invocation created, removed again on failure.
#[derive(Default)]
struct Created {
    conf: Option<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Created {
    fn undo(&self) {
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir_all(d);
        }
        if let Some(c) = &self.conf {
            let _ = std::fs::remove_file(c);
        }
    }

    fn mkdir(&mut self, d: &Path) -> Result<()> {
        if d.exists() {
            return Ok(());
        }
        // Record the topmost directory this call creates.
        let mut top = d.to_path_buf();
        while let Some(parent) = top.parent() {
            if parent.exists() {
                break;
            }
            top = parent.to_path_buf();
        }
        std::fs::create_dir_all(d).with_context(|| format!("unable to create directory {}", d.display()))?;
        self.dirs.push(top);
        Ok(())
    }
}

pub fn run(paths: &Paths, p: &Parsed) -> Result<()> {
    let vmid = super::vmid(p);
    let ostemplate = &p.args[1];
    paths.ensure_conf_dir()?;
    let conf_path = paths.conf_file(vmid);
    // Exit 2, as real pct 6.1 in the test VM: Perl's die exits with the errno left over
    // from the lookup (ENOENT).
    let exists =
        || anyhow::Error::from(Exit { code: 2, text: format!("CT {vmid} already exists on node '{}'", paths.node) });
    // Real pct checks the whole cluster's guests, QEMU VMs included.
    if let Some((kind, node)) = paths.guest_holding(vmid) {
        return Err(Exit { code: 2, text: format!("{kind} {vmid} already exists on node '{node}'") }.into());
    }
    if p.flag("restore") {
        return Err(die("pct emulator: --restore is not emulated"));
    }
    let archive = volumes::template_path(paths, ostemplate)?;
    let storage = p.get("storage").unwrap_or("local").to_string();
    volumes::storage_path(paths, &storage)?;

    let _lock = lock_config(paths, vmid, Duration::from_secs(5), Stream::Stdout)?;
    let mut f = match OpenOptions::new().write(true).create_new(true).open(&conf_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists()),
        Err(e) => return Err(anyhow!(e).context(format!("unable to create {}", conf_path.display()))),
    };
    let mut created = Created { conf: Some(conf_path.clone()), ..Default::default() };
    f.write_all(b"lock: create\n")?;
    drop(f);

    match build(paths, p, vmid, ostemplate, &archive, &storage, &mut created) {
        Ok(conf) => {
            if let Err(e) = conf.save(&conf_path) {
                created.undo();
                return Err(die(format!("unable to create CT {vmid} - {e:#}")));
            }
        }
        Err(e) => {
            created.undo();
            let msg = format!("{e:#}").replace('\n', " ");
            return Err(die(format!("unable to create CT {vmid} - {}", msg.trim_end())));
        }
    }
    drop(_lock);
    if p.flag("start") {
        let args = crate::cli::Parsed { args: vec![vmid.to_string()], ..Default::default() };
        super::start::run(paths, &args)?;
    }
    Ok(())
}

fn build(
    paths: &Paths,
    p: &Parsed,
    vmid: u32,
    ostemplate: &str,
    archive: &Path,
    storage: &str,
    created: &mut Created,
) -> Result<Conf> {
    let rootfs_opt = p.get("rootfs").map(str::to_string).unwrap_or_else(|| format!("{storage}:4"));
    let mut rootfs = propstr::parse(&propstr::ROOTFS, &rootfs_opt).map_err(|e| anyhow!("rootfs: {e}"))?;
    // A host directory (root only): mounted as it is, the archive extracted into it.
    let bind = rootfs["volume"].starts_with('/').then(|| PathBuf::from(&rootfs["volume"]));
    let (rstorage, size) = match &bind {
        Some(_) => (String::new(), 0),
        None => alloc_spec(&rootfs["volume"])?,
    };
    if bind.is_none() && !volumes::storage_content(paths, &rstorage).iter().any(|c| c == "rootdir") {
        return Err(die(format!("storage '{rstorage}' does not support container directories")));
    }
    // From here on, real pct leaves `/var/lib/lxc/<vmid>/rootfs` (empty) behind a failed
    // create (seen after a missing template and a failed extraction): not tracked in
    // `created`, so the emulator does too.
    let ct_dir = paths.ct_dir(vmid);
    std::fs::create_dir_all(ct_dir.join("rootfs"))?;
    if !archive.is_file() {
        if ostemplate.starts_with('/') {
            bail!("can't find file '{ostemplate}'");
        }
        bail!("volume '{ostemplate}' does not exist");
    }
    let unpriv = p.get("unprivileged") != Some("0");
    let mut conf = Conf::default();

    // Root volume: `STORAGE:SIZE_GiB` allocated as a directory (subvol); a host
    // directory is used in place (PVE: "directory '...' does not exist" from mount_all).
    let root_dir = match bind {
        Some(dir) => {
            if !dir.is_dir() {
                bail!("directory '{}' does not exist", dir.display());
            }
            dir
        }
        None => {
            let (volid, root_dir) = allocate(paths, vmid, &rstorage, 0, unpriv, created)?;
            rootfs.insert("volume".into(), volid);
            rootfs.insert("size".into(), validate::format_size(size));
            root_dir
        }
    };

    let abs = archive.canonicalize().unwrap_or_else(|_| archive.to_path_buf());
    println!("extracting archive '{}'", abs.display());
    extract::extract(&abs, &root_dir, unpriv, p.flag("ignore-unpack-errors"))?;

    let arch = match p.get("arch") {
        Some(a) => a.to_string(),
        None => match ostype::detect_arch(&root_dir) {
            Some(a) => a.to_string(),
            None => {
                println!("Architecture detection failed: unable to read /bin/sh. Falling back to amd64.");
                println!("Use `pct set {vmid} --arch ARCH` to change.");
                "amd64".into()
            }
        },
    };
    let ostype = match p.get("ostype") {
        Some(o) => o.to_string(),
        None => match ostype::detect(&root_dir) {
            Detected::Os(o) => o.to_string(),
            Detected::Unknown => {
                // A plain line of the task output (real pct 6.1: no WARN prefix, not counted).
                println!("/etc/os-release file not found and autodetection failed, falling back to 'unmanaged'");
                "unmanaged".into()
            }
            Detected::Unsupported(id) => bail!("unable to detect OS distribution ('{id}')"),
        },
    };
    let hostname = p.get("hostname").map(str::to_string).unwrap_or_else(|| format!("CT{vmid}"));
    if ostype != "unmanaged" {
        setup_guest(&root_dir, &hostname, unpriv)?;
    }

    // Settings given on the command line.
    let mut disk = 1;
    for (k, v) in &p.opts {
        if CREATE_ONLY.contains(&k.as_str()) || k == "rootfs" {
            continue;
        }
        let v = match k.as_str() {
            "description" => {
                conf.description = v.clone();
                continue;
            }
            "tags" => validate::normalize_tags(v),
            _ if k.starts_with("net") => with_mac(v)?,
            _ if k.starts_with("mp") => {
                let mut mp = propstr::parse(&propstr::MP, v).map_err(|e| anyhow!("{k}: {e}"))?;
                if !mp["volume"].starts_with('/') {
                    let (st, size) = alloc_spec(&mp["volume"])?;
                    let (volid, _) = allocate(paths, vmid, &st, disk, unpriv, created)?;
                    disk += 1;
                    mp.insert("volume".into(), volid);
                    mp.insert("size".into(), validate::format_size(size));
                }
                propstr::format(&propstr::MP, &mp)
            }
            _ => v.clone(),
        };
        conf.keys.insert(k.clone(), v);
    }
    if let Some(env) = p.get("env") {
        for var in env.split('\0').filter(|v| !v.is_empty()) {
            conf.lxc.push(("lxc.environment.runtime".into(), var.to_string()));
        }
    }
    conf.keys.insert("arch".into(), arch);
    conf.keys.insert("hostname".into(), hostname);
    conf.keys.entry("memory".into()).or_insert_with(|| "512".into());
    conf.keys.entry("swap".into()).or_insert_with(|| "512".into());
    conf.keys.insert("ostype".into(), ostype);
    conf.keys.insert("rootfs".into(), propstr::format(&propstr::ROOTFS, &rootfs));
    if unpriv {
        conf.keys.insert("unprivileged".into(), "1".into());
    }
    Ok(conf)
}

/// `STORAGE:SIZE` (GiB, may be fractional; 0 = plain directory).
fn alloc_spec(volume: &str) -> Result<(String, u64)> {
    let (st, size) = volume.split_once(':').filter(|(_, s)| s.parse::<f64>().is_ok()).ok_or_else(|| {
        anyhow!("volume '{volume}' is not a new volume ('STORAGE:SIZE_GiB'); only new volumes are emulated")
    })?;
    let gib: f64 = size.parse().expect("checked");
    if gib < 0.0 {
        bail!("invalid size '{size}'");
    }
    Ok((st.to_string(), (gib * (1u64 << 30) as f64) as u64))
}

/// Allocate `subvol-<vmid>-disk-<n>` on a directory storage.
fn allocate(
    paths: &Paths,
    vmid: u32,
    storage: &str,
    n: u32,
    unpriv: bool,
    created: &mut Created,
) -> Result<(String, PathBuf)> {
    let base = volumes::storage_path(paths, storage)?;
    if !volumes::storage_content(paths, storage).iter().any(|c| c == "rootdir") {
        return Err(die(format!("storage '{storage}' does not support container directories")));
    }
    let name = volumes::subvol_name(vmid, n);
    let dir = base.join("images").join(vmid.to_string()).join(&name);
    if dir.exists() {
        bail!("volume '{storage}:{name}' already exists");
    }
    created.mkdir(&dir)?;
    if unpriv {
        nix::unistd::chown(&dir, Some(100000.into()), Some(100000.into()))?;
    }
    Ok((format!("{storage}:{name}"), dir))
}

/// A `netN` value with PVE's defaults filled in (random BC:24:11 MAC, type=veth).
pub fn with_mac(v: &str) -> Result<String> {
    let mut n = propstr::parse(&propstr::NET, v).map_err(|e| anyhow!("{e}"))?;
    n.entry("hwaddr".into()).or_insert_with(random_mac);
    n.entry("type".into()).or_insert_with(|| "veth".into());
    Ok(propstr::format(&propstr::NET, &n))
}

fn random_mac() -> String {
    let mut b = [0u8; 3];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    format!("BC:24:11:{:02X}:{:02X}:{:02X}", b[0], b[1], b[2])
}

/// Minimal managed-OS setup: /etc/hostname (PVE does much more per distribution).
fn setup_guest(root: &Path, hostname: &str, unpriv: bool) -> Result<()> {
    let etc = root.join("etc");
    let md = std::fs::symlink_metadata(&etc);
    if !md.map(|m| m.is_dir()).unwrap_or(false) {
        return Ok(());
    }
    let f = etc.join("hostname");
    if std::fs::symlink_metadata(&f).map(|m| m.file_type().is_symlink()).unwrap_or(false) {
        std::fs::remove_file(&f)?;
    }
    std::fs::write(&f, format!("{hostname}\n"))?;
    if unpriv {
        nix::unistd::chown(&f, Some(100000.into()), Some(100000.into()))?;
    }
    Ok(())
}
