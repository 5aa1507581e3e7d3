//! What this host's Proxmox VE accepts, where nexcage can only learn it by asking pct:
//! Proxmox VE 8 lacks properties 9 has (`idmap` on a mount point or root, `host-managed`
//! on a NIC) and refuses them when it checks `pct create`'s parameters, before it takes
//! a lock or writes anything. A refusal is remembered in a file under the run directory
//! base (tmpfs: forgotten at reboot), one line per pct (its path and mtime, so an upgrade
//! of pve-container is noticed; several backends may name different pct binaries, and one
//! must not make nexcage forget another's refusal); until then later creates do not ask
//! again.

use std::path::{Path, PathBuf};

/// How many pct binaries a marker remembers.
const MAX_REMEMBERED: usize = 16;

/// One property pct may refuse.
pub struct PveSupport {
    /// The property's name in pct's schema error (`idmap`, `host-managed`).
    property: &'static str,
    marker: PathBuf,
    key: String,
}

/// `idmap` on a CT root (`rootfs: PATH,idmap=passthrough`).
pub const ROOTFS_IDMAP: (&str, &str) = ("idmap", "rootfs-idmap-refused");
/// `host-managed` on a NIC (`netN: ...,host-managed=1`).
pub const NET_HOST_MANAGED: (&str, &str) = ("host-managed", "net-host-managed-refused");

impl PveSupport {
    /// `what`: one of the constants above.
    pub fn new(run_base: &Path, pct: &Path, what: (&'static str, &str)) -> PveSupport {
        let mtime = std::fs::metadata(pct)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        PveSupport { property: what.0, marker: run_base.join(what.1), key: format!("{} {mtime}", pct.display()) }
    }

    /// False once pct refused it (and pct has not changed since).
    pub fn maybe(&self) -> bool {
        !self.remembered().contains(&self.key)
    }

    fn remembered(&self) -> Vec<String> {
        std::fs::read_to_string(&self.marker).map(|s| s.lines().map(str::to_string).collect()).unwrap_or_default()
    }

    /// Adds this pct to the marker (write and rename). Two creates remembering at once
    /// may lose one line: that pct is then asked once more, nothing worse.
    pub fn remember_refused(&self) {
        let mut lines = self.remembered();
        if lines.contains(&self.key) {
            return;
        }
        lines.push(self.key.clone());
        // Keys of replaced pct binaries pile up only across upgrades: keep the newest few.
        let keep = lines.len().saturating_sub(MAX_REMEMBERED);
        let text: String = lines[keep..].iter().map(|l| format!("{l}\n")).collect();
        if let Some(dir) = self.marker.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = self.marker.with_extension(format!("tmp-{}", std::process::id()));
        if std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.marker)).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// pct's complaint when its schema lacks the property:
    /// `rootfs.idmap: property is not defined in schema ...`.
    pub fn is_refusal(&self, stderr: &str) -> bool {
        stderr.lines().any(|l| {
            l.split_once(": property is not defined in schema")
                .is_some_and(|(name, _)| name.rsplit('.').next() == Some(self.property))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_is_remembered_per_pct_binary_and_property() {
        let d = tempfile::tempdir().unwrap();
        let pct = d.path().join("pct");
        std::fs::write(&pct, "").unwrap();
        let s = PveSupport::new(&d.path().join("run"), &pct, ROOTFS_IDMAP);
        assert!(s.maybe());
        s.remember_refused();
        assert!(!s.maybe());
        let other = PveSupport::new(&d.path().join("run"), &d.path().join("other-pct"), ROOTFS_IDMAP);
        assert!(other.maybe());
        // Another pct's refusal does not make the first one's forgotten.
        other.remember_refused();
        assert!(!other.maybe());
        assert!(!s.maybe());
        assert!(PveSupport::new(&d.path().join("run"), &pct, NET_HOST_MANAGED).maybe());
    }

    #[test]
    fn pve8_refusal_texts() {
        let run = Path::new("/nonexistent");
        let idmap = PveSupport::new(run, Path::new("/usr/sbin/pct"), ROOTFS_IDMAP);
        let hm = PveSupport::new(run, Path::new("/usr/sbin/pct"), NET_HOST_MANAGED);
        let rootfs = "400 Parameter verification failed.\nrootfs: invalid format - format error\nrootfs.idmap: property is not defined in schema and the schema does not allow additional properties\n";
        assert!(idmap.is_refusal(rootfs));
        assert!(!hm.is_refusal(rootfs));
        let net = "400 Parameter verification failed.\nnet0: invalid format - format error\nnet0.host-managed: property is not defined in schema and the schema does not allow additional properties\n";
        assert!(hm.is_refusal(net));
        assert!(!idmap.is_refusal(net));
        assert!(!idmap.is_refusal("unable to create CT 9000 - directory '/x' does not exist"));
    }
}
