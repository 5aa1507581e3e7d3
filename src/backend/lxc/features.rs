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
//! - seccomp, AppArmor, SELinux: the OCI profiles are not applied (Proxmox's LXC
//!   seccomp and AppArmor profiles apply instead), so they are reported disabled;
//! - mount options: what LXC understands for `lxc.mount.entry` (no id-mapped mounts).

use serde_json::{json, Value};

use crate::OCI_VERSION;

const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "relatime",
    "ro",
    "rprivate",
    "rslave",
    "runbindable",
    "rw",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
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
            "seccomp": { "enabled": false },
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
        assert_eq!(d["linux"]["seccomp"]["enabled"], false);
    }
}
