//! `gc`: remove what crashed or interrupted commands left behind, for this `--root`.
//!
//! - records of creates that died (phase `creating`, lock free): deleted with `--force`
//!   semantics, including what the create made (runtime state, Proxmox container);
//! - records whose container is gone (the runtime no longer knows it; the VMID has no PVE
//!   config or now belongs to someone else): removed;
//! - temporary claim directories (`@new-<pid>-*`) of dead processes;
//! - for every proxmox-lxc backend of the configuration: Proxmox containers tagged
//!   `nexcage` whose description names **this** `--root` and that no record of this root
//!   claims (destroyed), VMID reservations of dead creates, temp templates of dead
//!   builders, run directories without a container.
//!
//! Never touched: records and containers another command holds (busy), containers whose
//! description names another `--root` or none (engines use different roots, e.g.
//! `/run/containerd/runc/<ns>` and `/run/nexcage`: each `gc` reaps only its own),
//! containers pct is creating (`lock:`). `--dry-run` prints the same lines prefixed
//! `would`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;

use super::Ctx;
use crate::backend::lxc::cleanup::{self, Owner};
use crate::backend::lxc::data::LxcData;
use crate::backend::lxc::{create, lifecycle, pct, vmid};
use crate::backend::oci::OciBackend;
use crate::cli::GcArgs;
use crate::config::{BackendConfig, Config};
use crate::state::{validate_id, BackendKind, Phase, Record, StateError};

struct Report {
    dry: bool,
    errors: usize,
}

impl Report {
    fn act(&self, what: &str) {
        println!("{}{what}", if self.dry { "would " } else { "" });
    }
    fn fail(&mut self, what: &str, e: impl std::fmt::Display) {
        self.errors += 1;
        log::error!("gc: cannot {what}: {e}");
    }
}

/// Why a record no longer stands for a container, if it does not.
fn stale_reason(ctx: &Ctx, record: &Record, root: &Path) -> Option<String> {
    if record.phase == Phase::Creating {
        return Some("its create did not finish".into());
    }
    match record.kind {
        BackendKind::Oci => {
            let b = OciBackend::from_record(record).ok()?;
            (!b.has_container(ctx, &record.id)).then(|| format!("{} no longer has it", b.name))
        }
        BackendKind::ProxmoxLxc => {
            let Ok(d) = LxcData::from_record(record) else {
                return Some("its record has no proxmox-lxc data".into());
            };
            match cleanup::owner(&d.pve_root, d.vmid, &record.id, root) {
                Owner::Ours => None,
                Owner::Gone => Some(format!("CT {} no longer exists", d.vmid)),
                Owner::Other(who) => Some(format!("CT {} now belongs to {who}", d.vmid)),
            }
        }
    }
}

pub fn gc(ctx: &Ctx, args: &GcArgs) -> Result<i32> {
    let mut r = Report { dry: args.dry_run, errors: 0 };
    let root = std::path::absolute(ctx.store.root())?;

    for id in ctx.store.ids()? {
        let (record, lock) = match ctx.store.try_load_locked(&id) {
            Ok(Some(found)) => found,
            Ok(None) => continue, // another command is working on it
            Err(_) => continue,   // removed meanwhile, or unreadable (left for delete to report)
        };
        let Some(why) = stale_reason(ctx, &record, &root) else { continue };
        r.act(&format!("delete container {id} ({why})"));
        if r.dry {
            continue;
        }
        let done = match record.kind {
            BackendKind::Oci => OciBackend::from_record(&record).and_then(|b| b.force_delete(ctx, &id)),
            BackendKind::ProxmoxLxc => lifecycle::delete(&record, true, &root),
        };
        match done {
            Ok(0) => {
                if let Err(e) = ctx.store.remove(&id) {
                    r.fail(&format!("remove the record of {id}"), e);
                }
            }
            Ok(code) => r.fail(&format!("delete {id}"), format!("the runtime exited with {code}")),
            Err(e) => r.fail(&format!("delete {id}"), format!("{e:#}")),
        }
        drop(lock);
    }

    for dir in ctx.store.stale_claims() {
        r.act(&format!("remove {} (a create that died while claiming its id)", dir.display()));
        if !r.dry {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                r.fail(&format!("remove {}", dir.display()), e);
            }
        }
    }

    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            r.fail("look for Proxmox containers (configuration)", e);
            return Ok(1);
        }
    };
    let mut seen = BTreeSet::new();
    for (name, backend) in &config.backends {
        let BackendConfig::ProxmoxLxc(cfg) = backend else { continue };
        if !seen.insert(cfg.pve_root.clone()) {
            continue;
        }
        let pct_bin = crate::backend::find_binary(&cfg.pct).unwrap_or_else(|| cfg.pct.clone().into());
        let pct = pct::Pct::new(&pct_bin);
        for c in cleanup::tagged(&cfg.pve_root, None, &root) {
            let claimed = if validate_id(&c.oci_id).is_err() {
                Some(false)
            } else {
                match ctx.store.try_load_locked(&c.oci_id) {
                    Ok(Some((rec, _lock))) => Some(LxcData::from_record(&rec).is_ok_and(|d| d.vmid == c.vmid)),
                    Ok(None) => None, // busy: a create or delete of that id is running
                    Err(e) if StateError::is_not_exist(&e) => Some(false),
                    Err(_) => None,
                }
            };
            if claimed != Some(false) {
                continue;
            }
            r.act(&format!(
                "destroy CT {} (backend {name}: container {:?} of {} has no record)",
                c.vmid,
                c.oci_id,
                root.display()
            ));
            if !r.dry {
                if let Err(e) = cleanup::destroy(&pct, &cfg.pve_root, c.vmid) {
                    r.fail(&format!("destroy CT {} ({})", c.vmid, cleanup::manual_destroy(c.vmid)), e);
                }
            }
        }
        match vmid::reap_stale(&cfg.pve_root, r.dry) {
            Ok(v) => {
                for v in v {
                    r.act(&format!("remove the stale VMID {v} reservation (backend {name})"));
                }
            }
            Err(e) => r.fail("remove stale VMID reservations", e),
        }
        if let Ok(dir) = create::template_dir(cfg) {
            for t in cleanup::dead_temp_templates(&dir) {
                r.act(&format!("remove {} (a template build that died)", t.display()));
                if !r.dry {
                    if let Err(e) = std::fs::remove_file(&t) {
                        r.fail(&format!("remove {}", t.display()), e);
                    }
                }
            }
        }
        for d in cleanup::orphan_run_dirs(&cfg.pve_root) {
            r.act(&format!("remove {} (run directory without a container)", d.display()));
            if !r.dry {
                if let Err(e) = std::fs::remove_dir_all(&d) {
                    r.fail(&format!("remove {}", d.display()), e);
                }
            }
        }
    }
    Ok(if r.errors == 0 { 0 } else { 1 })
}
