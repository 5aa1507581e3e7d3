//! Proxmox storages (`etc/pve/storage.cfg`): which one takes a container's root volume,
//! and whether `pct create --rootfs STORAGE:SIZE` needs a size there.
//!
//! What pve-storage and pve-container do, as this module relies on it:
//! - a section without a `content` line has its type's default content (`dir` and
//!   `btrfs`: images and rootdir; `lvmthin` and `zfspool`: images and rootdir; `nfs`,
//!   `cifs`, `lvm`, `rbd`: images only);
//! - storage `local` always exists and is the directory `/var/lib/vz`; when storage.cfg
//!   does not define it, its content includes rootdir (a fresh install defines it with
//!   `iso,vztmpl,backup` only, so `--rootfs local:0` is refused there);
//! - size 0 makes a plain directory (subvolume) on storages with a path and on `zfspool`;
//!   any other storage (lvmthin, lvm, rbd, ...) allocates a raw volume and needs a size.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// One section of storage.cfg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageDef {
    pub id: String,
    pub kind: String,
    pub path: Option<PathBuf>,
    /// Content types, with the type's default applied when the section has no `content`.
    pub content: BTreeSet<String>,
    pub disabled: bool,
    /// `nodes` restriction (`None`: every node).
    pub nodes: Option<Vec<String>>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StorageError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("storage {id:?} is not defined in {path}")]
    Unknown { id: String, path: PathBuf },
    #[error(
        "storage {id:?} cannot hold container root volumes: its content in {path} lacks rootdir; \
         add it (pvesm set {id} --content rootdir,...) or choose another storage"
    )]
    NoRootdir { id: String, path: PathBuf },
    #[error("storage {id:?} is disabled in {path}")]
    Disabled { id: String, path: PathBuf },
    #[error("storage {id:?} is not available on node {node:?} (nodes {nodes} in {path})")]
    OtherNodes { id: String, node: String, nodes: String, path: PathBuf },
    #[error(
        "no storage in {path} can hold container root volumes on node {node:?} (none has rootdir content): \
         give one rootdir content (e.g. pvesm set local --content rootdir,vztmpl,iso,backup) \
         or set \"storage\" in the proxmox-lxc backend's configuration"
    )]
    NoneForContainers { path: PathBuf, node: String },
}

fn default_content(kind: &str) -> &'static [&'static str] {
    match kind {
        "dir" | "btrfs" | "lvmthin" | "zfspool" => &["images", "rootdir"],
        "pbs" => &["backup"],
        "cephfs" => &["backup"],
        "esxi" => &["import"],
        _ => &["images"],
    }
}

/// Parse storage.cfg, adding PVE's implicit `local` when it is missing.
pub fn parse(text: &str) -> Vec<StorageDef> {
    let mut out: Vec<StorageDef> = Vec::new();
    let mut content_given = false;
    let finish = |out: &mut Vec<StorageDef>, given: bool| {
        if let Some(s) = out.last_mut() {
            if !given {
                s.content = default_content(&s.kind).iter().map(|c| c.to_string()).collect();
            }
            // Network file systems are mounted at /mnt/pve/<id> unless a path is given.
            if s.path.is_none() && ["nfs", "cifs", "cephfs", "glusterfs"].contains(&s.kind.as_str()) {
                s.path = Some(PathBuf::from(format!("/mnt/pve/{}", s.id)));
            }
        }
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            finish(&mut out, content_given);
            content_given = false;
            if let Some((kind, id)) = trimmed.split_once(':') {
                out.push(StorageDef {
                    id: id.trim().to_string(),
                    kind: kind.trim().to_string(),
                    path: None,
                    content: BTreeSet::new(),
                    disabled: false,
                    nodes: None,
                });
            }
            continue;
        }
        let Some(s) = out.last_mut() else { continue };
        let (key, value) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
        let value = value.trim();
        match key {
            "path" => s.path = Some(PathBuf::from(value)),
            "content" => {
                content_given = true;
                s.content = value.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
            }
            "disable" => s.disabled = value != "0",
            "nodes" => s.nodes = Some(value.split(',').map(|n| n.trim().to_string()).collect()),
            _ => {}
        }
    }
    finish(&mut out, content_given);
    match out.iter_mut().find(|s| s.id == "local") {
        Some(local) => {
            // PVE: `local` is always the dir /var/lib/vz, on every node.
            local.kind = "dir".into();
            local.path = Some(PathBuf::from("/var/lib/vz"));
            local.nodes = None;
        }
        None => out.insert(
            0,
            StorageDef {
                id: "local".into(),
                kind: "dir".into(),
                path: Some(PathBuf::from("/var/lib/vz")),
                content: ["backup", "images", "iso", "rootdir", "snippets", "vztmpl"].map(String::from).into(),
                disabled: false,
                nodes: None,
            },
        ),
    }
    out
}

/// The storages of the host under `pve_root` (none defined: PVE's implicit `local`).
pub fn load(pve_root: &Path) -> Result<Storages, StorageError> {
    let path = cfg_path(pve_root);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(StorageError::Unreadable { path, reason: e.to_string() }),
    };
    Ok(Storages { defs: parse(&text), path, node: node_name() })
}

pub fn cfg_path(pve_root: &Path) -> PathBuf {
    pve_root.join("etc/pve/storage.cfg")
}

/// This node's name as Proxmox uses it: the short host name.
pub fn node_name() -> String {
    let n = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    n.split('.').next().unwrap_or_default().to_string()
}

/// The parsed storage.cfg of one node.
#[derive(Debug, Clone)]
pub struct Storages {
    pub defs: Vec<StorageDef>,
    pub path: PathBuf,
    pub node: String,
}

impl StorageDef {
    pub fn has(&self, content: &str) -> bool {
        self.content.contains(content)
    }

    fn on_node(&self, node: &str) -> bool {
        self.nodes.as_ref().is_none_or(|n| n.iter().any(|n| n == node))
    }

    /// Whether `--rootfs <id>:0` works here (a directory or subvolume), or the root
    /// volume needs a size (a raw volume: lvmthin, lvm, rbd, ...).
    pub fn needs_size(&self) -> bool {
        !(self.kind == "zfspool" || (self.path.is_some() && self.has("rootdir")))
    }
}

impl Storages {
    /// A storage that can hold a root volume on this node: `id`, or when `None` the first
    /// one in storage.cfg (file order; the implicit `local` first) with rootdir content,
    /// enabled and available on this node.
    pub fn for_root(&self, id: Option<&str>) -> Result<&StorageDef, StorageError> {
        let path = self.path.clone();
        let Some(id) = id else {
            return self
                .defs
                .iter()
                .find(|s| s.has("rootdir") && !s.disabled && s.on_node(&self.node))
                .ok_or(StorageError::NoneForContainers { path, node: self.node.clone() });
        };
        let s = self.get(id)?;
        if !s.has("rootdir") {
            return Err(StorageError::NoRootdir { id: id.into(), path });
        }
        if s.disabled {
            return Err(StorageError::Disabled { id: id.into(), path });
        }
        if !s.on_node(&self.node) {
            let nodes = s.nodes.clone().unwrap_or_default().join(",");
            return Err(StorageError::OtherNodes { id: id.into(), node: self.node.clone(), nodes, path });
        }
        Ok(s)
    }

    pub fn get(&self, id: &str) -> Result<&StorageDef, StorageError> {
        self.defs.iter().find(|s| s.id == id).ok_or(StorageError::Unknown { id: id.into(), path: self.path.clone() })
    }
}

/// A root volume size for a rootfs: what its files take (4 KiB blocks, one more block
/// per inode for the filesystem's metadata), plus a quarter and 256 MiB for the program's
/// own writes, in whole GiB, at least 1. Symlinks are not followed.
pub fn root_size_gib(rootfs: &Path) -> u64 {
    fn walk(dir: &Path, total: &mut u64) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let Ok(md) = e.path().symlink_metadata() else { continue };
            *total += md.len().div_ceil(4096) * 4096 + 4096;
            if md.is_dir() {
                walk(&e.path(), total);
            }
        }
    }
    const GIB: u64 = 1 << 30;
    let mut used = 0;
    walk(rootfs, &mut used);
    (used + used / 4 + (256 << 20)).div_ceil(GIB).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH_LVM: &str = "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\nlvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n\tcontent rootdir,images\n";

    #[test]
    fn a_fresh_lvm_install_puts_containers_on_local_lvm_with_a_size() {
        let s = Storages { defs: parse(FRESH_LVM), path: "/etc/pve/storage.cfg".into(), node: "pve".into() };
        let root = s.for_root(None).unwrap();
        assert_eq!(root.id, "local-lvm");
        assert!(root.needs_size());
        let e = s.for_root(Some("local")).unwrap_err();
        assert!(matches!(e, StorageError::NoRootdir { .. }), "{e}");
        assert!(e.to_string().contains("pvesm set local --content rootdir"), "{e}");
        assert!(matches!(s.for_root(Some("nope")), Err(StorageError::Unknown { .. })));
    }

    #[test]
    fn defaults_implicit_local_disabled_and_nodes() {
        // No storage.cfg: PVE's implicit local, with rootdir, no size needed.
        let s = Storages { defs: parse(""), path: "/x".into(), node: "pve".into() };
        let local = s.for_root(None).unwrap();
        assert_eq!((local.id.as_str(), local.needs_size()), ("local", false));
        // Type defaults when `content` is absent; disabled and node-restricted storages
        // are skipped; zfspool takes size 0.
        let text = "dir: local\n\tcontent iso\nnfs: share\n\tpath /mnt/pve/share\n\
                    dir: off\n\tpath /off\n\tdisable\nlvmthin: elsewhere\n\tnodes n2,n3\n\tthinpool t\n\
                    zfspool: local-zfs\n\tpool rpool/data\n";
        let s = Storages { defs: parse(text), path: "/x".into(), node: "n1".into() };
        assert!(!s.get("share").unwrap().has("rootdir"), "nfs defaults to images only");
        assert!(s.get("off").unwrap().has("rootdir") && s.get("off").unwrap().disabled);
        assert!(matches!(s.for_root(Some("off")), Err(StorageError::Disabled { .. })));
        assert!(matches!(s.for_root(Some("elsewhere")), Err(StorageError::OtherNodes { .. })));
        let z = s.for_root(None).unwrap();
        assert_eq!((z.id.as_str(), z.needs_size()), ("local-zfs", false));
        // Nothing with rootdir: the error says how to fix it.
        let s = Storages { defs: parse("dir: local\n\tcontent iso,vztmpl\n"), path: "/x".into(), node: "n1".into() };
        let e = s.for_root(None).unwrap_err();
        assert!(e.to_string().contains("pvesm set local --content rootdir"), "{e}");
    }

    #[test]
    fn local_is_always_var_lib_vz() {
        let s = parse("lvm: local\n\tvgname x\n\tcontent rootdir\n");
        assert_eq!(s[0].kind, "dir");
        assert_eq!(s[0].path.as_deref(), Some(Path::new("/var/lib/vz")));
        assert!(!s[0].needs_size());
    }

    #[test]
    fn root_size_covers_the_rootfs() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(root_size_gib(d.path()), 1);
        let f = std::fs::File::create(d.path().join("big")).unwrap();
        f.set_len(2 << 30).unwrap();
        // 2 GiB (+ a block for its inode) + a quarter + 256 MiB -> 3 GiB.
        assert_eq!(root_size_gib(d.path()), 3);
    }
}
