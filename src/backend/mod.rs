//! Backends: who actually runs a container. The record written at `create` names the
//! backend; every later command goes to the same one.

pub mod lxc;
pub(crate) mod oci;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::cli::{ExecArgs, KillArgs, PsArgs, UpdateArgs};
use crate::context::Ctx;
use crate::state::Record;

/// OCI state of a container, as `state` prints it and `list --format json` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// Empty when unknown (a record rebuilt from a Proxmox container whose description
    /// does not say): then left out, never invented.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created: String,
    /// Before `owner`, as runc orders them.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty", default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    pub owner: String,
}

/// How a container is launched: `create` (the program waits for `start`), `run -d` or
/// `restore -d` (started, nexcage returns), `run` / `restore` in the foreground (nexcage
/// waits for the program, exits with its status and removes the container).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    Create,
    RunDetached,
    RunForeground,
}

impl Launch {
    pub fn run(detach: bool) -> Launch {
        if detach {
            Launch::RunDetached
        } else {
            Launch::RunForeground
        }
    }
}

/// Makes containers: one per backend configuration, used by `create`, `run` and
/// `restore` only. Every later command gets a [`Backend`] from the record instead.
pub trait Creator {
    /// Create the container. The record is claimed (phase `Creating`) and locked; the
    /// backend may add data to it. On error or non-zero status the caller removes it.
    fn create(&self, ctx: &Ctx, req: &CreateRequest, record: &mut Record) -> Result<i32>;
}

/// What `create` hands to a backend.
pub struct CreateRequest<'a> {
    pub bundle: &'a crate::bundle::Bundle,
    pub args: &'a crate::cli::CreateArgs,
    pub launch: Launch,
}

/// One backend's implementation of the OCI commands. Methods return the exit status
/// nexcage must exit with (passthrough backends may never return: they exec).
pub trait Backend {
    fn start(&self, ctx: &Ctx, record: &Record) -> Result<i32>;
    fn state(&self, ctx: &Ctx, record: &Record) -> Result<i32>;
    fn kill(&self, ctx: &Ctx, record: &Record, args: &KillArgs) -> Result<i32>;
    /// Delete the container. `Ok(0)` means it is gone and the record may be removed.
    fn delete(&self, ctx: &Ctx, record: &Record, force: bool) -> Result<i32>;
    fn exec(&self, ctx: &Ctx, record: &Record, args: &ExecArgs) -> Result<i32>;
    fn ps(&self, ctx: &Ctx, record: &Record, args: &PsArgs) -> Result<i32>;
    fn pause(&self, ctx: &Ctx, record: &Record) -> Result<i32>;
    fn resume(&self, ctx: &Ctx, record: &Record) -> Result<i32>;
    fn update(&self, ctx: &Ctx, record: &Record, args: &UpdateArgs) -> Result<i32>;
    fn events(&self, ctx: &Ctx, record: &Record) -> Result<i32>;
    fn checkpoint(&self, ctx: &Ctx, record: &Record) -> Result<i32>;
    /// States of the given records (all owned by this backend), for `list`.
    fn states(&self, ctx: &Ctx, records: &[Record]) -> Result<Vec<ContainerState>>;
    /// The Proxmox VMID of a container, for backends that make Proxmox containers
    /// (`list --wide`).
    fn vmid(&self, _record: &Record) -> Option<u64> {
        None
    }
    /// For `gc`: why a record (not being created) no longer stands for a container, if
    /// it does not. `root` is the absolute state root.
    fn stale_reason(&self, ctx: &Ctx, record: &Record, root: &Path) -> Option<String>;
    /// For `gc`: remove what a stale or crashed-create record stands for; `Ok(0)` when
    /// nothing is left and the record may go.
    fn remove_stale(&self, ctx: &Ctx, record: &Record, root: &Path) -> Result<i32>;
}

/// How `gc` hears of what a backend's sweep finds and does.
pub trait Sweeper {
    /// Report an action; true when it is to be done (not a dry run).
    fn act(&mut self, what: &str) -> bool;
    fn fail(&mut self, what: &str, error: &dyn std::fmt::Display);
    fn dry(&self) -> bool;
}

/// `gc`'s sweep of every backend's own leftovers beyond the records (proxmox-lxc:
/// Proxmox containers of this root without a record, VMID reservations, temp templates,
/// run directories), each Proxmox root once.
pub fn sweep(ctx: &Ctx, config: &crate::config::Config, root: &Path, s: &mut dyn Sweeper) {
    let mut seen = std::collections::BTreeSet::new();
    for (name, backend) in &config.backends {
        if let crate::config::BackendConfig::ProxmoxLxc(cfg) = backend {
            if seen.insert(cfg.pve_root.clone()) {
                lxc::maintenance::sweep(ctx, name, cfg, root, s);
            }
        }
    }
}

/// Give containers whose records were lost (a wiped `--root`) their records back, for
/// backends that can find them (proxmox-lxc, from Proxmox's configs); `list` calls it.
pub fn adopt_lost(ctx: &Ctx) {
    lxc::rebuild::adopt_lost(ctx);
}

/// Find an executable: a name with a `/` is taken as a path, a bare name is searched in
/// `$PATH`.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable =
        |p: &Path| p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then(|| std::path::absolute(&p).unwrap_or(p));
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| executable(p))
}

/// The backend that owns a record.
pub fn for_record(record: &Record) -> Result<Box<dyn Backend>> {
    match record.kind {
        crate::state::BackendKind::Oci => Ok(Box::new(oci::OciBackend::from_record(record)?)),
        crate::state::BackendKind::ProxmoxLxc => Ok(Box::new(lxc::backend::LxcBackend)),
    }
}
