//! The runtime-spec features document of the proxmox-lxc backend (`nexcage features`
//! when it is the default backend; containerd calls it with no global flags). It says
//! what this backend really does, which is less than runc in places:
//! - hooks: all six, at runc's points (see hooks.rs for where each runs);
//! - namespaces: LXC gives every container its own mount, pid, uts, ipc, network and
//!   cgroup namespaces, and a user namespace when unprivileged (joining existing ones
//!   is limited, see docs/mapping.md);
//! - capabilities: every capability the kernel knows (what a container really gets is
//!   also bounded by LXC's configuration);
//! - cgroup: Proxmox manages the container's cgroup (`lxc/<vmid>`); OCI cgroupsPath and
//!   the systemd driver are not used;
//! - seccomp: the bundle's profile is compiled with libseccomp and loaded by nexcage-init
//!   on top of LXC's own filter (seccomp.rs): every action but SCMP_ACT_NOTIFY (no
//!   notification agents), every operator, the architectures a filter can take here;
//! - AppArmor, SELinux: reported disabled. An AppArmor profile with a source in
//!   /etc/apparmor.d is applied inside Proxmox's (apparmor.rs), but the profiles engines
//!   send by default are not (Proxmox's profile confines instead); SELinux labels are not;
//! - mount options: those a container's mounts really get through `lxc.mount.entry`
//!   (tests/lxc.rs `every_mount_option_features_claims_is_applied` mounts one of each):
//!   not the propagation options (LXC leaves every mount `shared`), not `nosymfollow`,
//!   not the superblock flags `sync`, `dirsync`, `lazytime`, `mand`, `iversion` (none is
//!   applied), and none that LXC 6 (Proxmox VE 9) does not know, which it hands to the
//!   filesystem, so that tmpfs refuses the mount and the CT does not start (`loud`,
//!   `silent`, `ratime`, `symfollow`, `noiversion`, `nolazytime`; seen in the test VM:
//!   `tmpfs: Unknown parameter 'loud'`; mount_options.rs now maps them when a bundle
//!   names them, but not always to the option itself); no id-mapped mounts, no `rro`
//!   (refused over an rbind with submounts).

use serde_json::{json, Value};

use crate::OCI_VERSION;

const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "exec",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "rbind",
    "relatime",
    "ro",
    "rw",
    "strictatime",
    "suid",
];

pub const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

pub const SECCOMP_OPERATORS: &[&str] =
    &["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"];

/// The architectures libseccomp knows; `features` claims those it can add to a filter
/// on this host (one byte order per filter: see `seccomp::supported_archs`).
pub const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

pub fn document() -> Value {
    let mut caps: Vec<String> = caps::runtime::thread_all_supported().into_iter().map(|c| c.to_string()).collect();
    caps.sort();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true },
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": super::seccomp::supported_archs()
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "org.nexcage.backend.kind": "proxmox-lxc",
            "org.nexcage.process-model": "supervisor pid + nexcage-init (docs/proxmox-lxc.md)"
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_has_the_required_fields() {
        let d = super::document();
        assert_eq!(d["ociVersionMin"], "1.0.0");
        assert_eq!(d["hooks"].as_array().unwrap().len(), 6);
        assert!(d["linux"]["capabilities"].as_array().unwrap().iter().any(|c| c == "CAP_KILL"));
        assert_eq!(d["linux"]["seccomp"]["enabled"], true);
        assert_eq!(d["linux"]["apparmor"]["enabled"], false);
    }

    /// Every claimed option reaches LXC as itself (mount_options.rs passes it unchanged):
    /// none is one that the mapping leaves out, changes or refuses.
    #[test]
    fn every_claimed_mount_option_is_passed_to_lxc_as_it_is() {
        for o in super::MOUNT_OPTIONS {
            assert_eq!(crate::backend::lxc::mount_options::for_lxc(o, true), Ok(Some(*o)), "{o}");
        }
    }
}
