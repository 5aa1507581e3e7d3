//! `process.apparmorProfile` (and `exec --apparmor`) on proxmox-lxc.
//!
//! Every Proxmox CT runs under the profile pve-container has LXC generate, stacked with an
//! AppArmor policy namespace of the CT's own (`:lxc-<vmid>_<-var-lib-lxc>:`), in which the
//! CT's processes are `unconfined`. The generated profile lets them change to a profile of
//! that namespace, and of no other: a profile of the host's namespace cannot be named
//! from inside. So a profile the bundle names is loaded into the CT's namespace, from its
//! source `/etc/apparmor.d/<name>`, with `apparmor_parser`, after `pct start`; nexcage-init
//! enters it (`exec <name>` on its own `attr/apparmor/exec`) when it executes the program,
//! which then runs under Proxmox's profile stacked with the bundle's. LXC removes the
//! namespace, and with it the loaded profile, when the CT stops.
//!
//! A profile loaded on the host without a source there (the engines' default profiles:
//! Docker's `docker-default` and Podman's `containers-default-*` are generated in memory)
//! cannot be entered: a warning, and the program stays under Proxmox's profile, which
//! confines it as those defaults would. Refusing would refuse every Docker and Podman
//! container. A name that is neither is refused, as crun and runc fail to enter a profile
//! that does not exist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where profiles that can be loaded into a CT's namespace come from (AppArmor's own
/// directory: a profile file there is what `apparmor_parser` and the distribution load).
pub const PROFILE_DIR: &str = "/etc/apparmor.d";

const SECURITYFS: &str = "/sys/kernel/security/apparmor";

/// What the host offers: whether AppArmor is on, where profile sources live, and the
/// profiles loaded in the host's namespace (`None`: read from the kernel if a choice
/// needs them, so an `exec` that names no profile does not read the list).
#[derive(Debug, Clone)]
pub struct HostAppArmor {
    pub enabled: bool,
    pub dir: PathBuf,
    pub loaded: Option<BTreeSet<String>>,
}

/// Why a profile could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum AppArmorError {
    #[error("{at} {name:?}: no such AppArmor profile: none of that name is loaded on this host and there is no {}; install the profile there (nexcage loads it into the container's AppArmor namespace), or leave the field out", .file.display())]
    Unknown { at: String, name: String, file: PathBuf },
    #[error("{name:?}: the CT's init (pid {pid}) has the AppArmor label {label:?}, with no policy namespace of the CT's own to load the profile into (is the CT's lxc.apparmor.profile changed?)")]
    NoNamespace { name: String, pid: i32, label: String },
    #[error("{name:?}: cannot read the AppArmor label of the CT's init (pid {pid}): {err}")]
    Label { name: String, pid: i32, err: std::io::Error },
    #[error("{name:?}: loading {} into the CT's AppArmor namespace {ns} failed: {why}", .file.display())]
    Load { name: String, file: PathBuf, ns: String, why: String },
}

impl HostAppArmor {
    /// This host, as the kernel reports it.
    pub fn probe() -> HostAppArmor {
        let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y");
        HostAppArmor { enabled, dir: PathBuf::from(PROFILE_DIR), loaded: None }
    }

    /// Is `name` loaded in the host's namespace?
    fn is_loaded(&self, name: &str) -> bool {
        match &self.loaded {
            Some(set) => set.contains(name),
            None => std::fs::read_to_string(Path::new(SECURITYFS).join("profiles"))
                .is_ok_and(|t| loaded_names(&t).contains(name)),
        }
    }

    /// The profile nexcage-init is to enter for `name` (`at`: the field, for messages),
    /// or None with a warning pushed (not applied); an error for a profile that does not
    /// exist.
    pub fn choose(&self, name: &str, at: &str, warnings: &mut Vec<String>) -> Result<Option<String>, AppArmorError> {
        if name == "unconfined" {
            warnings.push(format!(
                "{at} \"unconfined\" ignored: the program stays under Proxmox's AppArmor profile for the CT (a CT's process cannot leave it)"
            ));
            return Ok(None);
        }
        if !self.enabled {
            warnings.push(format!("{at} {name:?} ignored: AppArmor is not enabled on this host"));
            return Ok(None);
        }
        if let Some(source) = self.source(name) {
            if source.is_file() {
                return Ok(Some(name.to_string()));
            }
        }
        if self.is_loaded(name) {
            warnings.push(format!(
                "{at} {name:?} is not applied: it is loaded on the host without a source in {} (as the engines' default profiles are), and a CT can only enter profiles loaded into its own AppArmor namespace; the program runs under Proxmox's profile for the CT",
                self.dir.display()
            ));
            return Ok(None);
        }
        Err(AppArmorError::Unknown { at: at.to_string(), name: name.to_string(), file: self.dir.join(name) })
    }

    /// `<dir>/<name>`, for a name that is a plain file name.
    pub fn source(&self, name: &str) -> Option<PathBuf> {
        (!name.is_empty() && name != "." && name != ".." && !name.contains('/')).then(|| self.dir.join(name))
    }
}

/// Profile names of securityfs's `profiles` list (`NAME (MODE)` lines).
fn loaded_names(text: &str) -> BTreeSet<String> {
    text.lines().filter_map(|l| l.rsplit_once(" (").map(|(n, _)| n.to_string())).collect()
}

/// The CT's own policy namespace in the AppArmor label of its init: the stacked part
/// after `//&:`, up to the next `:` (`lxc-<vmid>_</var/lib/lxc>//&:lxc-<vmid>_<-var-lib-lxc>:unconfined`).
fn namespace_of_label(label: &str) -> Option<&str> {
    let rest = &label[label.find("//&:")? + 4..];
    let ns = &rest[..rest.find(':')?];
    (!ns.is_empty()).then_some(ns)
}

/// The AppArmor label of `pid` (the LSM-specific file where the kernel has it).
fn label_of(pid: i32) -> std::io::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/attr/apparmor/current"))
        .or_else(|_| std::fs::read_to_string(format!("/proc/{pid}/attr/current")))
        .map(|s| s.trim_end_matches(['\n', '\0']).to_string())
}

/// Whether the policy namespace `ns` already holds a profile `name`.
fn loaded_in(ns: &str, name: &str) -> bool {
    let profiles = Path::new(SECURITYFS).join("policy/namespaces").join(ns).join("profiles");
    std::fs::read_dir(profiles).is_ok_and(|d| {
        d.flatten().any(|e| std::fs::read_to_string(e.path().join("name")).is_ok_and(|n| n.trim() == name))
    })
}

/// Load profile `name` (from `host`'s directory) into the AppArmor namespace of the CT
/// whose init is `init_pid`, unless it is there already.
pub fn load_into_ct(host: &HostAppArmor, name: &str, init_pid: i32) -> Result<(), AppArmorError> {
    let label =
        label_of(init_pid).map_err(|err| AppArmorError::Label { name: name.to_string(), pid: init_pid, err })?;
    let ns = namespace_of_label(&label).ok_or_else(|| AppArmorError::NoNamespace {
        name: name.to_string(),
        pid: init_pid,
        label: label.clone(),
    })?;
    if loaded_in(ns, name) {
        return Ok(());
    }
    let file = host.source(name).unwrap_or_else(|| host.dir.join(name));
    let load_error =
        |why: String| AppArmorError::Load { name: name.to_string(), file: file.clone(), ns: ns.to_string(), why };
    // --skip-cache: nothing of a CT's namespace goes into the host's policy cache.
    let out = Command::new("apparmor_parser")
        .args(["--replace", "--skip-cache", "--namespace", ns])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| load_error(format!("cannot run apparmor_parser: {e}")))?;
    if !out.status.success() {
        return Err(load_error(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    if !loaded_in(ns, name) {
        return Err(load_error(format!("the file defines no profile named {name:?}")));
    }
    log::debug!("AppArmor profile {name:?} loaded into {ns}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(enabled: bool, loaded: &[&str]) -> (tempfile::TempDir, HostAppArmor) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("with-source"), "profile with-source {}\n").unwrap();
        let h = HostAppArmor {
            enabled,
            dir: dir.path().to_path_buf(),
            loaded: Some(loaded.iter().map(|s| s.to_string()).collect()),
        };
        (dir, h)
    }

    #[test]
    fn a_profile_with_a_source_is_applied_others_warn_or_fail() {
        let (_d, h) = host(true, &["docker-default", "with-source"]);
        let mut w = Vec::new();
        assert_eq!(h.choose("with-source", "process.apparmorProfile", &mut w).unwrap().as_deref(), Some("with-source"));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(h.choose("docker-default", "process.apparmorProfile", &mut w).unwrap(), None);
        assert!(w[0].contains("\"docker-default\" is not applied: it is loaded on the host without a source"), "{w:?}");
        assert_eq!(h.choose("unconfined", "--apparmor", &mut w).unwrap(), None);
        assert!(w[1].starts_with("--apparmor \"unconfined\" ignored"), "{w:?}");
        let e = h.choose("nope", "process.apparmorProfile", &mut w).unwrap_err().to_string();
        assert!(e.starts_with("process.apparmorProfile \"nope\": no such AppArmor profile"), "{e}");
        assert!(e.contains("/nope; install the profile there"), "{e}");
        // Not a file name: only a loaded profile could match.
        assert!(h.choose("../with-source", "process.apparmorProfile", &mut w).is_err());
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn without_apparmor_every_profile_is_a_warning() {
        let (_d, h) = host(false, &[]);
        let mut w = Vec::new();
        assert_eq!(h.choose("with-source", "process.apparmorProfile", &mut w).unwrap(), None);
        assert_eq!(h.choose("nope", "process.apparmorProfile", &mut w).unwrap(), None);
        assert_eq!(w.len(), 2);
        assert!(w[1].ends_with("ignored: AppArmor is not enabled on this host"), "{w:?}");
    }

    #[test]
    fn securityfs_names_and_the_cts_namespace() {
        let names =
            loaded_names("docker-default (enforce)\nlxc-container-default-cgns (enforce)\n/usr/bin/man (complain)\n");
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["/usr/bin/man", "docker-default", "lxc-container-default-cgns"]
        );
        assert_eq!(
            namespace_of_label("lxc-9600_</var/lib/lxc>//&:lxc-9600_<-var-lib-lxc>:unconfined (enforce)"),
            Some("lxc-9600_<-var-lib-lxc>")
        );
        assert_eq!(namespace_of_label("lxc-9600_</var/lib/lxc> (enforce)"), None);
        assert_eq!(namespace_of_label("unconfined"), None);
    }
}
