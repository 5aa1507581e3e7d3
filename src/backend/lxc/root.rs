//! Where a proxmox-lxc container's root filesystem lives.
//!
//! **In place** (the default, `rootfs: "in-place"`): the CT's `rootfs` is the bundle's
//! rootfs directory itself, a Proxmox VE bind-type root (`rootfs: /path/to/rootfs`), so
//! the engine and the program see the same files (same inodes): `podman cp`, `diff`,
//! `commit` work, and create time does not grow with the image. `pct create` still needs a
//! template and extracts it into the root: it gets an *empty* one (no entries), so it
//! writes nothing there. For an unprivileged CT the root gets `idmap=passthrough`
//! (Proxmox VE 9): PVE's prestart hook makes it an idmapped mount with the CT's own map,
//! so the image's uid 0 is the CT's root and nothing is chowned. Proxmox VE 8 has no
//! mount-point idmap: there an unprivileged CT gets a copy (see [`IdmapSupport`]).
//!
//! **Copy** (`rootfs: "copy"`, or a bundle that names a storage with the
//! `nexcage.proxmox.storage` annotation, or a path a PVE property string cannot hold):
//! a template of the rootfs (template cache) extracted by `pct create` into a volume.

use std::path::{Path, PathBuf};

/// A bundle rootfs usable as a bind-type CT root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InPlaceRoot {
    /// Canonical, absolute.
    pub path: PathBuf,
    pub readonly: bool,
}

impl InPlaceRoot {
    /// `rootfs` as Proxmox VE takes it, `None` (with the reason) when it cannot: a
    /// property string splits at `,` and `=`, and PVE refuses `.`/`..` components.
    pub fn new(rootfs: &Path, readonly: bool) -> Result<InPlaceRoot, String> {
        let path = rootfs.canonicalize().map_err(|e| format!("cannot resolve {}: {e}", rootfs.display()))?;
        let Some(s) = path.to_str() else {
            return Err(format!("{} is not UTF-8", path.display()));
        };
        if s.contains([',', '=', '\n']) {
            return Err(format!(
                "{s} contains ',', '=' or a line break, which a Proxmox VE property string cannot hold"
            ));
        }
        Ok(InPlaceRoot { path, readonly })
    }

    /// The `pct create --rootfs` value; `idmap`: the CT's own id map applies to the
    /// mount (unprivileged CTs on Proxmox VE 9).
    pub fn option(&self, idmap: bool) -> String {
        let mut s = self.path.display().to_string();
        if self.readonly {
            s.push_str(",ro=1");
        }
        if idmap {
            s.push_str(",idmap=passthrough");
        }
        s
    }
}

/// The Proxmox architecture name of this host (`pct create --arch`): given for an
/// in-place root, as PVE would otherwise chroot into the engine's rootfs to read its
/// `/bin/sh`.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Whether this host's Proxmox VE takes `idmap` on a CT root. Known only by asking pct:
/// Proxmox VE 8 refuses the property when it checks `pct create`'s parameters (before it
/// takes a lock or writes anything). A refusal is remembered in a file under the run
/// directory base (tmpfs: forgotten at reboot), keyed by pct's path and mtime, so an
/// upgrade of pve-container is noticed.
pub struct IdmapSupport {
    marker: PathBuf,
    key: String,
}

impl IdmapSupport {
    pub fn new(run_base: &Path, pct: &Path) -> IdmapSupport {
        let mtime = std::fs::metadata(pct)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        IdmapSupport { marker: run_base.join("rootfs-idmap-refused"), key: format!("{} {mtime}\n", pct.display()) }
    }

    /// False once pct refused it (and pct has not changed since).
    pub fn maybe(&self) -> bool {
        std::fs::read_to_string(&self.marker).map(|s| s != self.key).unwrap_or(true)
    }

    pub fn remember_refused(&self) {
        if let Some(dir) = self.marker.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = self.marker.with_extension(format!("tmp-{}", std::process::id()));
        if std::fs::write(&tmp, &self.key).and_then(|()| std::fs::rename(&tmp, &self.marker)).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// pct's complaint when its `rootfs` schema has no `idmap` (Proxmox VE 8):
/// `rootfs.idmap: property is not defined in schema ...`.
pub fn is_idmap_refusal(stderr: &str) -> bool {
    stderr.contains("idmap") && stderr.contains("not defined in schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_strings() {
        let d = tempfile::tempdir().unwrap();
        let r = InPlaceRoot::new(d.path(), false).unwrap();
        let p = d.path().canonicalize().unwrap().display().to_string();
        assert_eq!(r.option(false), p);
        let r = InPlaceRoot::new(d.path(), true).unwrap();
        assert_eq!(r.option(true), format!("{p},ro=1,idmap=passthrough"));
    }

    #[test]
    fn paths_a_property_string_cannot_hold() {
        let d = tempfile::tempdir().unwrap();
        for name in ["a,b", "a=b"] {
            std::fs::create_dir(d.path().join(name)).unwrap();
            let e = InPlaceRoot::new(&d.path().join(name), false).unwrap_err();
            assert!(e.contains("property string"), "{e}");
        }
        assert!(InPlaceRoot::new(&d.path().join("missing"), false).unwrap_err().contains("cannot resolve"));
    }

    #[test]
    fn refusal_is_remembered_per_pct_binary() {
        let d = tempfile::tempdir().unwrap();
        let pct = d.path().join("pct");
        std::fs::write(&pct, "").unwrap();
        let s = IdmapSupport::new(&d.path().join("run"), &pct);
        assert!(s.maybe());
        s.remember_refused();
        assert!(!s.maybe());
        assert!(IdmapSupport::new(&d.path().join("run"), &d.path().join("other-pct")).maybe());
    }

    #[test]
    fn pve8_refusal_text() {
        let pve8 = "400 Parameter verification failed.\nrootfs: invalid format - format error\nrootfs.idmap: property is not defined in schema and the schema does not allow additional properties\n";
        assert!(is_idmap_refusal(pve8));
        assert!(!is_idmap_refusal("unable to create CT 9000 - directory '/x' does not exist"));
    }
}
