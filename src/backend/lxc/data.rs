//! What a proxmox-lxc container's record keeps (`Record.data["lxc"]`): everything later
//! commands need, snapshotted at create, so that none of them parses the configuration
//! or the bundle again; plus the runtime facts (supervisor, program, init) that `state`,
//! `kill`, `ps` and `pause` read without any pct call.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};

use super::hooks::Hooks;
use super::procfs::ProcRef;
use super::wire::ProcessSpec;
use crate::state::Record;

pub const KEY: &str = "lxc";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LxcData {
    pub vmid: u32,
    /// The pct binary (resolved at create).
    pub pct: PathBuf,
    /// Proxmox's root (`/`, or the pct emulator's root).
    pub pve_root: PathBuf,
    /// Template file name (`nexcage-<digest>.tar.zst`) in the template storage.
    #[serde(default)]
    pub template: String,
    pub run_dir: PathBuf,
    /// Absolute rootfs path of the bundle (for `state`).
    #[serde(default)]
    pub rootfs: PathBuf,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The container's process, the base of `exec` without `--process`.
    #[serde(default)]
    pub process: ProcessSpec,
    /// Host-side hooks still to run (poststart by `start`, poststop by `delete`).
    #[serde(default)]
    pub hooks: Hooks,
    /// Runtime facts; absent for a record rebuilt from Proxmox.
    #[serde(default)]
    pub supervisor: Option<ProcRef>,
    #[serde(default)]
    pub program: Option<ProcRef>,
    #[serde(default)]
    pub init: Option<ProcRef>,
    /// `start` has let the program run.
    #[serde(default)]
    pub started: bool,
}

impl LxcData {
    pub fn from_record(r: &Record) -> Result<LxcData> {
        let v = r.data.get(KEY).ok_or_else(|| anyhow!("container {}: its record has no proxmox-lxc data", r.id))?;
        serde_json::from_value(v.clone())
            .map_err(|e| anyhow!("container {}: corrupt proxmox-lxc record data: {e}", r.id))
    }

    pub fn store(&self, r: &mut Record) {
        r.data.insert(KEY.into(), serde_json::to_value(self).expect("serializable"));
    }
}

/// `Record.data["lxc-pending"]`: saved by `create` before it makes anything on the host,
/// so that after a crash (before the VMID is known to the record) `delete` and `gc` can
/// find what the create may have left: containers tagged `nexcage` whose description
/// names this id and state root, stale VMID reservations, temp templates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub pct: PathBuf,
    pub pve_root: PathBuf,
    pub template_dir: PathBuf,
    /// Absolute `--root` of the record (as written to the PVE description).
    pub state_root: PathBuf,
    /// The VMID handed to `pct create` (saved before the call): a `pct create` that was
    /// killed leaves that CT with `lock: create` and no description, which only this
    /// record can prove is ours (cleanup::unfinished_create).
    #[serde(default)]
    pub creating: Option<u32>,
}

pub const PENDING_KEY: &str = "lxc-pending";

impl Pending {
    pub fn from_record(r: &Record) -> Option<Pending> {
        serde_json::from_value(r.data.get(PENDING_KEY)?.clone()).ok()
    }

    pub fn store(&self, r: &mut Record) {
        r.data.insert(PENDING_KEY.into(), serde_json::to_value(self).expect("serializable"));
    }
}
