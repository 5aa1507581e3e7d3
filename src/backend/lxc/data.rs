//! What a proxmox-lxc container's record keeps (`Record.data`, [`LxcState`]): everything
//! later commands need, snapshotted at create, so that none of them parses the
//! configuration or the bundle again; plus the runtime facts (supervisor, program, init)
//! that `state`, `kill`, `ps` and `pause` read without any pct call.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};

use super::hooks::Hooks;
use super::procfs::ProcRef;
use super::wire::ProcessSpec;
use crate::state::{BackendData, Record};

/// The key of [`LxcData`] in records written before [`LxcState`] (`{"lxc": ...}`).
pub const KEY: &str = "lxc";

/// The proxmox-lxc backend's part of a record (`BackendData::ProxmoxLxc`), tagged by
/// `state`: pending until the container has a VMID, then placed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum LxcState {
    /// Saved by `create` before it makes anything on the host.
    Pending(Pending),
    /// The container has a VMID. `pending` stays from the create that made it (a delete
    /// of a record left in phase `Creating` cleans what that create may have left);
    /// a record rebuilt from Proxmox has none.
    Placed {
        data: Box<LxcData>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pending: Option<Pending>,
    },
}

impl LxcState {
    /// The state in a record's data as written before `LxcState` existed:
    /// `{"lxc": LxcData, "lxc-pending": Pending}`, either key optional (an unreadable
    /// `lxc-pending` was ignored then, and is now). `None`: neither key is there.
    pub fn from_legacy(raw: &BTreeMap<String, serde_json::Value>) -> Option<Result<LxcState, String>> {
        let pending = raw.get(PENDING_KEY).and_then(|v| serde_json::from_value(v.clone()).ok());
        match raw.get(KEY) {
            Some(v) => Some(
                serde_json::from_value(v.clone())
                    .map(|d| LxcState::Placed { data: Box::new(d), pending })
                    .map_err(|e| e.to_string()),
            ),
            None => pending.map(|p| Ok(LxcState::Pending(p))),
        }
    }
}

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
    /// The protocol of the container's nexcage-init (wire::PROTOCOL of its build; 0 for
    /// a container created by a nexcage older than the field): what exec may ask of it.
    #[serde(default)]
    pub init_protocol: u32,
}

impl LxcData {
    /// The record's data, placed: its container has a VMID.
    pub fn of(r: &Record) -> Result<&LxcData> {
        match &r.data {
            BackendData::ProxmoxLxc(LxcState::Placed { data, .. }) => Ok(data),
            BackendData::Unreadable { error, .. } => {
                Err(anyhow!("container {}: corrupt proxmox-lxc record data: {error}", r.id))
            }
            _ => Err(anyhow!("container {}: its record has no proxmox-lxc data", r.id)),
        }
    }

    /// A copy of [`LxcData::of`], to change and [`store`](LxcData::store) back.
    pub fn from_record(r: &Record) -> Result<LxcData> {
        LxcData::of(r).cloned()
    }

    /// Save into the record (placed), keeping the create's [`Pending`].
    pub fn store(&self, r: &mut Record) {
        let pending = Pending::from_record(r);
        r.data = BackendData::ProxmoxLxc(LxcState::Placed { data: Box::new(self.clone()), pending });
    }
}

/// [`LxcState::Pending`] (`"lxc-pending"` in older records): saved by `create` before it makes anything on the host,
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
        match &r.data {
            BackendData::ProxmoxLxc(LxcState::Pending(p)) => Some(p.clone()),
            BackendData::ProxmoxLxc(LxcState::Placed { pending, .. }) => pending.clone(),
            _ => None,
        }
    }

    /// Save into the record: as its state while pending, beside the data once placed.
    pub fn store(&self, r: &mut Record) {
        match &mut r.data {
            BackendData::ProxmoxLxc(LxcState::Placed { pending, .. }) => *pending = Some(self.clone()),
            d => *d = BackendData::ProxmoxLxc(LxcState::Pending(self.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Phase, Store};

    /// A proxmox-lxc record as nexcage wrote it before `LxcState` (data keyed `lxc` and
    /// `lxc-pending`), created and placed.
    const LEGACY: &str = r#"{
  "id": "web",
  "backend": "lxc",
  "kind": "proxmox-lxc",
  "bundle": "/b",
  "created": "2026-01-01T00:00:00Z",
  "phase": "created",
  "data": {
    "lxc": {
      "vmid": 9000,
      "pct": "/usr/sbin/pct",
      "pve_root": "/",
      "template": "nexcage-abc.tar.zst",
      "run_dir": "/run/nexcage-lxc/9000",
      "rootfs": "/b/rootfs",
      "annotations": {"a": "b"},
      "process": {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/", "uid": 0, "gid": 0},
      "hooks": {"poststop": [{"path": "/bin/true"}]},
      "supervisor": {"pid": 10, "start": 11},
      "program": {"pid": 12, "start": 13},
      "init": null,
      "started": true
    },
    "lxc-pending": {
      "pct": "/usr/sbin/pct",
      "pve_root": "/",
      "template_dir": "/var/lib/vz/template/cache",
      "state_root": "/run/nexcage",
      "creating": 9000
    }
  }
}"#;

    fn store_with(text: &str) -> (tempfile::TempDir, Store) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("web")).unwrap();
        std::fs::write(t.path().join("web/record.json"), text).unwrap();
        let s = Store::new(t.path());
        (t, s)
    }

    #[test]
    fn reads_records_in_the_format_before_lxc_state() {
        let (t, s) = store_with(LEGACY);
        let r = s.load("web").unwrap();
        let d = LxcData::from_record(&r).unwrap();
        assert_eq!((d.vmid, d.template.as_str(), d.started), (9000, "nexcage-abc.tar.zst", true));
        assert_eq!(d.process.args, ["sh"]);
        assert_eq!(d.annotations["a"], "b");
        assert_eq!(d.hooks.poststop[0].path, "/bin/true");
        assert_eq!(d.program, Some(ProcRef { pid: 12, start: 13 }));
        let p = Pending::from_record(&r).unwrap();
        assert_eq!((p.creating, p.state_root.to_str()), (Some(9000), Some("/run/nexcage")));

        // Saved again: the typed form, which reads back the same.
        s.save(&r).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(t.path().join("web/record.json")).unwrap()).unwrap();
        assert_eq!(v["data"]["proxmox-lxc"]["state"], "placed");
        assert_eq!(v["data"]["proxmox-lxc"]["data"]["vmid"], 9000);
        assert_eq!(v["data"]["proxmox-lxc"]["pending"]["creating"], 9000);
        let again = s.load("web").unwrap();
        assert_eq!(LxcData::from_record(&again).unwrap().program, d.program);
        assert_eq!(Pending::from_record(&again).unwrap().template_dir, p.template_dir);
    }

    #[test]
    fn reads_a_pending_record_in_the_format_before_lxc_state() {
        let mut v: serde_json::Value = serde_json::from_str(LEGACY).unwrap();
        v["phase"] = "creating".into();
        v["data"].as_object_mut().unwrap().remove(KEY);
        let (_t, s) = store_with(&v.to_string());
        let r = s.load("web").unwrap();
        assert_eq!(r.phase, Phase::Creating);
        assert!(matches!(r.data, BackendData::ProxmoxLxc(LxcState::Pending(_))), "{:?}", r.data);
        assert_eq!(Pending::from_record(&r).unwrap().creating, Some(9000));
        let e = LxcData::from_record(&r).unwrap_err().to_string();
        assert_eq!(e, "container web: its record has no proxmox-lxc data");
    }

    #[test]
    fn unreadable_data_is_reported_and_kept() {
        let mut v: serde_json::Value = serde_json::from_str(LEGACY).unwrap();
        v["data"]["lxc"]["vmid"] = "x".into();
        let (t, s) = store_with(&v.to_string());
        let r = s.load("web").unwrap();
        let e = LxcData::from_record(&r).unwrap_err().to_string();
        assert!(e.starts_with("container web: corrupt proxmox-lxc record data: invalid type"), "{e}");
        s.save(&r).unwrap();
        let back: serde_json::Value =
            serde_json::from_slice(&std::fs::read(t.path().join("web/record.json")).unwrap()).unwrap();
        assert_eq!(back["data"], v["data"]);
    }

    #[test]
    fn pending_then_placed() {
        let (_t, s) = store_with(LEGACY);
        let mut r = s.load("web").unwrap();
        let data = LxcData::from_record(&r).unwrap();
        let mut pending = Pending::from_record(&r).unwrap();
        r.data = BackendData::None;
        assert!(Pending::from_record(&r).is_none());
        pending.creating = None;
        pending.store(&mut r);
        assert!(LxcData::from_record(&r).is_err());
        pending.creating = Some(9001);
        pending.store(&mut r);
        data.store(&mut r);
        assert_eq!(LxcData::from_record(&r).unwrap().vmid, 9000);
        // The create's pending state stays beside the data.
        assert_eq!(Pending::from_record(&r).unwrap().creating, Some(9001));
        let mut data = data;
        data.started = false;
        data.store(&mut r);
        assert!(!LxcData::from_record(&r).unwrap().started);
        assert_eq!(Pending::from_record(&r).unwrap().creating, Some(9001));
    }
}
