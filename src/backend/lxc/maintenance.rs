//! proxmox-lxc's part of `gc` (commands/gc.rs decides what to do with the answers):
//! whether a record still stands for a Proxmox container, removing a stale one, and the
//! sweep of one Proxmox root (containers of this `--root` without a record, VMID
//! reservations of dead creates, temp templates of dead builders, run directories
//! without a container).

use std::path::Path;

use anyhow::Result;

use super::cleanup::{self, Owner};
use super::data::LxcData;
use super::{host, lifecycle, pct, run_dir, vmid};
use crate::backend::Sweeper;
use crate::config::LxcBackendConfig;
use crate::context::Ctx;
use crate::state::{validate_id, Record, StateError, Store};

/// Why this record no longer stands for a Proxmox container, if it does not.
pub fn stale_reason(record: &Record, root: &Path) -> Option<String> {
    let Ok(d) = LxcData::of(record) else {
        return Some("its record has no proxmox-lxc data".into());
    };
    match cleanup::owner(&d.pve_root, d.vmid, &record.id, root) {
        Owner::Ours => None,
        Owner::Gone => Some(format!("CT {} no longer exists", d.vmid)),
        Owner::Other(who) => Some(format!("CT {} now belongs to {who}", d.vmid)),
    }
}

/// Remove what a stale record stands for (delete --force semantics).
pub fn remove_stale(record: &Record, root: &Path) -> Result<i32> {
    lifecycle::delete(record, true, root)
}

/// Sweep the Proxmox root of backend `name`.
pub fn sweep(ctx: &Ctx, name: &str, cfg: &LxcBackendConfig, root: &Path, s: &mut dyn Sweeper) {
    let pct_bin = crate::backend::find_binary(&cfg.pct).unwrap_or_else(|| cfg.pct.clone().into());
    let pct = pct::Pct::for_root(&pct_bin, &cfg.pve_root);
    let mut leftovers = cleanup::tagged(&cfg.pve_root, None, root);
    leftovers.extend(cleanup::earlier_boots_of_other_roots(&cfg.pve_root, root));
    for c in leftovers {
        // The store of the root the container names (after a reboot usually empty).
        let other_store = c.state_root.as_deref().filter(|r| *r != root).map(Store::new);
        let store = other_store.as_ref().unwrap_or(&ctx.store);
        let claimed = if validate_id(&c.oci_id).is_err() {
            Some(false)
        } else {
            match store.try_load_locked(&c.oci_id) {
                Ok(Some((rec, _lock))) => Some(LxcData::of(&rec).is_ok_and(|d| d.vmid == c.vmid)),
                Ok(None) => None, // busy: a create or delete of that id is running
                Err(e) if StateError::is_not_exist(&e) => Some(false),
                Err(_) => None,
            }
        };
        if claimed != Some(false) {
            continue;
        }
        let of_root = c.state_root.as_deref().unwrap_or(root);
        let why = if super::boot::from_earlier_boot(&c) {
            "was made in an earlier boot of this host"
        } else {
            "has no record"
        };
        let what =
            format!("destroy CT {} (backend {name}: container {:?} of {} {why})", c.vmid, c.oci_id, of_root.display());
        if s.act(&what) {
            if let Err(e) = cleanup::destroy(&pct, &cfg.pve_root, c.vmid) {
                s.fail(&format!("destroy CT {} ({})", c.vmid, cleanup::manual_destroy(c.vmid)), &e);
            }
        }
    }
    match vmid::reap_stale(&cfg.pve_root, s.dry()) {
        Ok(v) => {
            for v in v {
                s.act(&format!("remove the stale VMID {v} reservation (backend {name})"));
            }
        }
        Err(e) => s.fail("remove stale VMID reservations", &e),
    }
    if let Ok(dir) = host::template_dir(cfg) {
        for t in cleanup::dead_temp_templates(&dir) {
            if s.act(&format!("remove {} (a template build that died)", t.display())) {
                if let Err(e) = std::fs::remove_file(&t) {
                    s.fail(&format!("remove {}", t.display()), &e);
                }
            }
        }
    }
    for d in cleanup::orphan_run_dirs(&cfg.pve_root) {
        if s.act(&format!("remove {} (run directory without a container)", d.display())) {
            if let Err(e) = run_dir::remove(&d) {
                s.fail(&format!("remove {}", d.display()), &format!("{e:#}"));
            }
        }
    }
}
