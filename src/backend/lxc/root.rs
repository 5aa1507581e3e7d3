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
//! mount-point idmap: there an unprivileged CT gets a copy (see `pve_support.rs`); so
//! does an unprivileged CT whose rootfs is an overlayfs mount (every engine's), which the
//! kernel cannot idmap.
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

    /// Why the rootfs cannot be an idmapped mount, if it cannot: the kernel idmaps
    /// overlayfs *layers* but never an overlayfs mount itself, and an engine's rootfs
    /// (Podman, Docker, containerd) is an overlayfs mount.
    pub fn idmap_refused(&self) -> Option<String> {
        match nix::sys::statfs::statfs(&self.path) {
            Ok(s) if s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC => {
                Some(format!("{} is an overlayfs mount, which the kernel cannot idmap", self.path.display()))
            }
            _ => None,
        }
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

    /// An engine's rootfs is an overlayfs mount, which cannot be idmapped; a directory
    /// can. (Mounting overlayfs needs root; skipped otherwise.)
    #[test]
    fn an_overlayfs_root_cannot_be_idmapped() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(InPlaceRoot::new(d.path(), false).unwrap().idmap_refused(), None);
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        for sub in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir(d.path().join(sub)).unwrap();
        }
        let p = |s: &str| d.path().join(s).display().to_string();
        let data = format!("lowerdir={},upperdir={},workdir={}", p("lower"), p("upper"), p("work"));
        let merged = d.path().join("merged");
        nix::mount::mount(Some("overlay"), &merged, Some("overlay"), nix::mount::MsFlags::empty(), Some(data.as_str()))
            .unwrap();
        let why = InPlaceRoot::new(&merged, false).unwrap().idmap_refused();
        nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH).unwrap();
        assert!(why.is_some_and(|w| w.contains("overlayfs mount")));
    }
}
