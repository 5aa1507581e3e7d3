//! How this host mounts cgroups. It decides which raw keys carry a container's limits:
//! LXC applies `lxc.cgroup2.*` only when cgroup2 is mounted at /sys/fs/cgroup and ignores
//! them on a legacy or hybrid host ("Ignoring cgroup2 limits on legacy cgroup system"),
//! where `lxc.cgroup.*` (v1) keys are needed instead, as Proxmox itself does for its own
//! memory and CPU options (pve-common's cgroup mode 1 vs 2).

use std::path::Path;

/// The cgroup layout at /sys/fs/cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// cgroup2 at /sys/fs/cgroup.
    V2,
    /// v1 hierarchies and a cgroup2 mount at /sys/fs/cgroup/unified.
    Hybrid,
    /// v1 hierarchies only.
    V1,
}

impl CgroupMode {
    /// Do controllers (and so LXC's limit keys) live in v1 hierarchies?
    pub fn controllers_on_v1(self) -> bool {
        self != CgroupMode::V2
    }
}

/// The layout under `root` (normally /sys/fs/cgroup), from the filesystem types.
pub fn detect(root: &Path) -> Result<CgroupMode, String> {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};
    let fs = statfs(root).map_err(|e| format!("cannot statfs {}: {e}", root.display()))?;
    if fs.filesystem_type() == CGROUP2_SUPER_MAGIC {
        return Ok(CgroupMode::V2);
    }
    if fs.filesystem_type() != TMPFS_MAGIC {
        return Err(format!("{} is neither cgroup2 nor a tmpfs of v1 hierarchies", root.display()));
    }
    let unified = statfs(&root.join("unified")).map(|f| f.filesystem_type() == CGROUP2_SUPER_MAGIC);
    Ok(if unified == Ok(true) { CgroupMode::Hybrid } else { CgroupMode::V1 })
}
