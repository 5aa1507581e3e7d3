//! Rebuilding lost state: `--root` usually lives on a tmpfs (`/run`), so a reboot (or an
//! operator) can empty it while Proxmox still holds the containers. Every container
//! nexcage creates carries the `nexcage` tag and a description with its OCI id, bundle
//! and state root (pveconf.rs). `list` calls [`adopt_lost`] first: each such container
//! of a configured proxmox-lxc backend that belongs to this `--root` (or names none) and
//! has no record gets one again, so that `list`, `state` and `delete` know it. Reading
//! the PVE config files makes no pct call.
//!
//! A container made in an earlier boot of the host is not adopted (boot.rs): nothing of
//! it is left but the CT, as with runc after a reboot; the engine's create of the same
//! id replaces it, and `gc` destroys the others. If only `--root` was wiped, the
//! supervisor still runs and is found again by its command line (it names the
//! container's run directory), with the program and nexcage-init, so status, pid,
//! `kill` and `exec` work as before.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::data::LxcData;
use super::{pveconf, run_dir};
use crate::config::{BackendConfig, Config};
use crate::context::Ctx;
use crate::state::{validate_id, BackendKind, Phase, Record};

/// The rootfs a bundle names (for `state`), best effort.
fn bundle_rootfs(bundle: &Path) -> PathBuf {
    let root = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
        .and_then(|v| v.pointer("/root/path").and_then(|p| p.as_str()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    bundle.join(root)
}

/// If the container's supervisor still runs (the state was wiped, the host was not
/// rebooted), find it and the program again: the program's parent is nexcage-init, and a
/// program still waiting at the gate is a fork of nexcage-init (same command name), so
/// `started` can be told too.
fn recover_runtime(data: &mut LxcData) {
    let Some((sup, program)) = super::supervisor::find_container_supervisor(&data.run_dir) else { return };
    data.supervisor = Some(sup);
    if !program.alive() {
        data.started = true;
        return;
    }
    data.program = Some(program);
    if let Some((init_pid, comm)) = super::procfs::ppid_and_comm(program.pid) {
        data.init = super::procfs::ProcRef::of(init_pid).filter(|_| super::procfs::is_namespace_init(init_pid));
        let init_comm = super::procfs::ppid_and_comm(init_pid).map(|(_, c)| c);
        data.started = init_comm.as_deref() != Some(comm.as_str());
    }
}

/// Give every lost container of this root a record again; returns the ids adopted.
pub fn adopt_lost(ctx: &Ctx) -> Vec<String> {
    let mut adopted = Vec::new();
    let Ok(config) = Config::load() else { return adopted };
    let Ok(root) = std::path::absolute(ctx.store.root()) else { return adopted };
    let mut scanned = BTreeSet::new();
    for (name, backend) in &config.backends {
        let BackendConfig::ProxmoxLxc(cfg) = backend else { continue };
        if !scanned.insert(cfg.pve_root.clone()) {
            continue;
        }
        let containers = match pveconf::nexcage_containers(&cfg.pve_root) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("backend {name}: cannot look for lost containers: {e}");
                continue;
            }
        };
        for c in containers {
            // Being created right now (its creator holds a record), another root's, from
            // an earlier boot, or not a valid id: not ours to adopt.
            if c.lock.is_some()
                || c.state_root.as_ref().is_some_and(|r| r != &root)
                || super::boot::from_earlier_boot(&c)
                || validate_id(&c.oci_id).is_err()
                || ctx.store.dir(&c.oci_id).exists()
            {
                continue;
            }
            let mut data = LxcData {
                vmid: c.vmid,
                pct: crate::backend::find_binary(&cfg.pct).unwrap_or_else(|| PathBuf::from(&cfg.pct)),
                pve_root: cfg.pve_root.clone(),
                template: String::new(),
                run_dir: run_dir::path(&cfg.pve_root, c.vmid),
                rootfs: bundle_rootfs(&c.bundle),
                annotations: Default::default(),
                process: Default::default(),
                hooks: Default::default(),
                supervisor: None,
                program: None,
                init: None,
                started: false,
                // Unknown: the init may be an older nexcage's; exec asks only protocol 0.
                init_protocol: 0,
            };
            // The bundle usually still exists: its process (exec's defaults), hooks and
            // annotations come back from it.
            if let Ok(facts) = super::create::read_bundle(&c.bundle) {
                data.rootfs = facts.rootfs;
                data.annotations = facts.annotations;
                data.process = facts.process;
                data.hooks.poststart = facts.hooks.poststart;
                data.hooks.poststop = facts.hooks.poststop;
            }
            recover_runtime(&mut data);
            let mut record = Record {
                id: c.oci_id.clone(),
                backend: name.clone(),
                kind: BackendKind::ProxmoxLxc,
                runtime: None,
                bundle: c.bundle.clone(),
                // When create made it, from the description; unknown (empty, left out
                // of `state`) for containers whose description does not say.
                created: c.created.clone().unwrap_or_default(),
                phase: Phase::Created,
                data: Default::default(),
            };
            data.store(&mut record);
            match ctx.store.claim(&record) {
                Ok(_lock) => {
                    log::warn!(
                        "container {} (CT {}) had no state in {}; rebuilt from Proxmox",
                        c.oci_id,
                        c.vmid,
                        root.display()
                    );
                    adopted.push(c.oci_id);
                }
                Err(e) => log::debug!("not adopting {}: {e:#}", c.oci_id),
            }
        }
    }
    adopted
}
