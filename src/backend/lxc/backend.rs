//! The proxmox-lxc implementation of [`Backend`]: each OCI command goes to the module
//! that does it (create.rs, lifecycle.rs, exec.rs, ps.rs). See docs/proxmox-lxc.md.

use anyhow::{bail, Result};

use super::create::{self, Created};
use super::data::LxcData;
use super::{exec, lifecycle, maintenance, ps, supervisor, update};
use crate::backend::{Backend, ContainerState, CreateRequest, Creator, Launch};
use crate::cli::{ExecArgs, KillArgs, PsArgs, UpdateArgs};
use crate::config::LxcBackendConfig;
use crate::context::Ctx;
use crate::state::Record;

/// Makes proxmox-lxc containers with one backend configuration.
pub struct LxcCreator {
    pub config: LxcBackendConfig,
}

/// Operates existing proxmox-lxc containers: everything it needs is in the record.
pub struct LxcBackend;

impl Creator for LxcCreator {
    fn create(&self, ctx: &Ctx, req: &CreateRequest, record: &mut Record) -> Result<i32> {
        let created = create::create(ctx, req, record, &self.config, req.launch)?;
        if req.launch == Launch::Create {
            return Ok(0);
        }
        // `run`: start at once.
        let mut data = LxcData::from_record(record)?;
        if let Err(e) = lifecycle::start_program(record, &mut data) {
            lifecycle::remove_after_run(record);
            return Err(e);
        }
        lifecycle::run_poststart(record, &data);
        match created {
            Created::Spawned => Ok(0),
            Created::Inline { conn, program, net } => {
                let code = supervisor::forwarded_signals()
                    .and_then(|signals| supervisor::supervise(&conn, program, &signals))
                    .map(|e| e.code());
                drop(conn);
                if let Some(n) = net {
                    n.give_back();
                }
                let root = std::path::absolute(ctx.store.root()).unwrap_or_else(|_| ctx.store.root().to_path_buf());
                let _ = lifecycle::delete(record, true, &root);
                code
            }
        }
    }
}

impl Backend for LxcBackend {
    fn start(&self, ctx: &Ctx, record: &Record) -> Result<i32> {
        lifecycle::start(ctx, record)
    }
    fn state(&self, ctx: &Ctx, record: &Record) -> Result<i32> {
        lifecycle::state(record, &ctx.store)
    }
    fn kill(&self, _ctx: &Ctx, record: &Record, args: &KillArgs) -> Result<i32> {
        lifecycle::kill(record, args)
    }
    fn delete(&self, ctx: &Ctx, record: &Record, force: bool) -> Result<i32> {
        lifecycle::delete(record, force, &std::path::absolute(ctx.store.root())?)
    }
    fn exec(&self, ctx: &Ctx, record: &Record, args: &ExecArgs) -> Result<i32> {
        exec::exec(ctx, record, args)
    }
    fn ps(&self, _ctx: &Ctx, record: &Record, args: &PsArgs) -> Result<i32> {
        ps::ps(record, args)
    }
    fn pause(&self, _ctx: &Ctx, record: &Record) -> Result<i32> {
        lifecycle::pause(record, true)
    }
    fn resume(&self, _ctx: &Ctx, record: &Record) -> Result<i32> {
        lifecycle::pause(record, false)
    }
    fn update(&self, _ctx: &Ctx, record: &Record, args: &UpdateArgs) -> Result<i32> {
        update::update(record, args)
    }
    fn events(&self, _ctx: &Ctx, record: &Record) -> Result<i32> {
        bail!(
            "container {}: events is not supported by backend {} (proxmox-lxc); its cgroup statistics are \
             those of Proxmox container {}",
            record.id,
            record.backend,
            LxcData::of(record).map_or_else(|_| "(unknown)".to_string(), |d| d.vmid.to_string())
        )
    }
    fn checkpoint(&self, _ctx: &Ctx, record: &Record) -> Result<i32> {
        bail!(
            "container {}: checkpoint is not supported by backend {} (proxmox-lxc has no checkpoint/restore); \
             route containers that need it to crun or runc",
            record.id,
            record.backend
        )
    }
    fn states(&self, ctx: &Ctx, records: &[Record]) -> Result<Vec<ContainerState>> {
        Ok(records.iter().map(|r| lifecycle::container_state(r, &ctx.store)).collect())
    }
    fn vmid(&self, record: &Record) -> Option<u64> {
        LxcData::of(record).ok().map(|d| u64::from(d.vmid))
    }
    fn stale_reason(&self, _ctx: &Ctx, record: &Record, root: &std::path::Path) -> Option<String> {
        maintenance::stale_reason(record, root)
    }
    fn remove_stale(&self, _ctx: &Ctx, record: &Record, root: &std::path::Path) -> Result<i32> {
        maintenance::remove_stale(record, root)
    }
}
