//! The proxmox-lxc implementation of [`Backend`]: each OCI command goes to the module
//! that does it (create.rs, lifecycle.rs, exec.rs, ps.rs). See docs/proxmox-lxc.md.

use anyhow::{bail, Result};

use super::create::{self, Created};
use super::data::LxcData;
use super::{exec, lifecycle, maintenance, ps, supervisor, update};
use crate::backend::{Backend, ContainerState, CreateRequest, Launch};
use crate::cli::{ExecArgs, KillArgs, PsArgs};
use crate::config::LxcBackendConfig;
use crate::context::Ctx;
use crate::state::Record;

pub struct LxcBackend {
    /// The backend's configuration: only `create` needs it (later commands read the
    /// record).
    config: Option<LxcBackendConfig>,
}

impl LxcBackend {
    pub fn new(config: LxcBackendConfig) -> LxcBackend {
        LxcBackend { config: Some(config) }
    }

    pub fn from_record(_record: &Record) -> LxcBackend {
        LxcBackend { config: None }
    }
}

impl Backend for LxcBackend {
    fn create(&self, ctx: &Ctx, req: &CreateRequest, record: &mut Record) -> Result<i32> {
        let Some(cfg) = &self.config else { bail!("internal error: create without the backend configuration") };
        let created = create::create(ctx, req, record, cfg, req.launch)?;
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
            Created::Inline { conn, program } => {
                let code = supervisor::forwarded_signals()
                    .and_then(|signals| supervisor::supervise(&conn, program, &signals))
                    .map(|e| e.code());
                drop(conn);
                let root = std::path::absolute(ctx.store.root()).unwrap_or_else(|_| ctx.store.root().to_path_buf());
                let _ = lifecycle::delete(record, true, &root);
                code
            }
        }
    }
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
    fn update(&self, ctx: &Ctx, record: &Record) -> Result<i32> {
        match crate::cli::parse_command(&ctx.words).map(|c| c.command) {
            Ok(crate::cli::Command::Update(args)) => update::update(record, &args),
            _ => bail!("internal error: update without its arguments"),
        }
    }
    fn events(&self, _ctx: &Ctx, record: &Record) -> Result<i32> {
        bail!(
            "container {}: events is not supported by backend {} (proxmox-lxc); its cgroup statistics are \
             those of Proxmox container {}",
            record.id,
            record.backend,
            LxcData::from_record(record).map_or_else(|_| "(unknown)".to_string(), |d| d.vmid.to_string())
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
        LxcData::from_record(record).ok().map(|d| u64::from(d.vmid))
    }
    fn stale_reason(&self, _ctx: &Ctx, record: &Record, root: &std::path::Path) -> Option<String> {
        maintenance::stale_reason(record, root)
    }
    fn remove_stale(&self, _ctx: &Ctx, record: &Record, root: &std::path::Path) -> Result<i32> {
        maintenance::remove_stale(record, root)
    }
}
