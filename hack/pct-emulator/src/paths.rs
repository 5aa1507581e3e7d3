//! Where things live. `PCT_EMULATOR_ROOT=<dir>` moves every root under `<dir>`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

#[derive(Debug, Clone)]
pub struct Paths {
    /// The emulator root, when `PCT_EMULATOR_ROOT` is set.
    pub root: Option<PathBuf>,
    /// `/etc/pve`
    pub pve: PathBuf,
    /// `/var/lib/vz` (storage `local`)
    pub vz: PathBuf,
    /// `/var/lib/lxc` (the LXC path given to every lxc-* tool with `-P`)
    pub lxc: PathBuf,
    /// `/run/lock/lxc`
    pub lock: PathBuf,
    /// `/run/pve` (per-container stderr of lxc-start, as Proxmox' unit writes it)
    pub run: PathBuf,
    /// The node name (short host name).
    pub node: String,
}

impl Paths {
    pub fn from_env() -> Result<Paths> {
        let root = match std::env::var_os("PCT_EMULATOR_ROOT") {
            Some(r) if !r.is_empty() => {
                let r = PathBuf::from(r);
                let r = if r.is_absolute() { r } else { std::env::current_dir()?.join(r) };
                Some(r)
            }
            _ => None,
        };
        let at = |p: &str| match &root {
            Some(r) => r.join(p.trim_start_matches('/')),
            None => PathBuf::from(p),
        };
        let node = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .map(|h| h.split('.').next().unwrap_or("localhost").to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        Ok(Paths {
            pve: at("/etc/pve"),
            vz: at("/var/lib/vz"),
            lxc: at("/var/lib/lxc"),
            lock: at("/run/lock/lxc"),
            run: at("/run/pve"),
            root,
            node,
        })
    }

    /// The directory of this node's container configs (`/etc/pve/nodes/<node>/lxc`).
    pub fn conf_dir(&self) -> PathBuf {
        self.pve.join("nodes").join(&self.node).join("lxc")
    }

    /// Which guest anywhere in the cluster holds `vmid`, as PVE's vmlist says it
    /// (PVE::Cluster::check_vmid_unused): ("CT" or "VM", node).
    pub fn guest_holding(&self, vmid: u32) -> Option<(&'static str, String)> {
        let nodes = std::fs::read_dir(self.pve.join("nodes")).ok()?;
        for n in nodes.flatten() {
            let node = n.file_name().to_string_lossy().into_owned();
            for (dir, kind) in [("lxc", "CT"), ("qemu-server", "VM")] {
                if n.path().join(dir).join(format!("{vmid}.conf")).exists() {
                    return Some((kind, node));
                }
            }
        }
        None
    }

    pub fn conf_file(&self, vmid: u32) -> PathBuf {
        self.conf_dir().join(format!("{vmid}.conf"))
    }

    /// The name pct uses in messages: `nodes/<node>/lxc/<vmid>.conf`.
    pub fn conf_display(&self, vmid: u32) -> String {
        format!("nodes/{}/lxc/{vmid}.conf", self.node)
    }

    pub fn lock_file(&self, vmid: u32) -> PathBuf {
        self.lock.join(format!("pve-config-{vmid}.lock"))
    }

    pub fn ct_dir(&self, vmid: u32) -> PathBuf {
        self.lxc.join(vmid.to_string())
    }

    pub fn storage_cfg(&self) -> PathBuf {
        self.pve.join("storage.cfg")
    }

    /// Create the config directory and the `/etc/pve/lxc` symlink as on a PVE node.
    pub fn ensure_conf_dir(&self) -> Result<()> {
        let dir = self.conf_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        let link = self.pve.join("lxc");
        if std::fs::symlink_metadata(&link).is_err() {
            let target = Path::new("nodes").join(&self.node).join("lxc");
            let _ = std::os::unix::fs::symlink(target, &link);
        }
        if let Some(root) = &self.root {
            ensure_traversable(root);
        }
        Ok(())
    }
}

/// Unprivileged containers run as uid 100000, which must be able to reach the rootfs:
/// give the emulator root (often a 0700 temp dir) o+x. Its parents are left alone.
fn ensure_traversable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::metadata(dir) {
        let mode = md.permissions().mode();
        if mode & 0o001 == 0 {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o011));
        }
    }
}
