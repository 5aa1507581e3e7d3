//! `create` (and `run`): route the bundle to a backend, claim the id with a record, let
//! the backend create the container; drop the record again if that fails.

use anyhow::Result;

use super::Ctx;
use crate::backend::lxc::backend::LxcCreator;
use crate::backend::oci::OciBackend;
use crate::backend::{CreateRequest, Creator, Launch};
use std::path::Path;

use crate::bundle::{Bundle, CONFIG_FILE};
use crate::cli::CreateArgs;
use crate::config::{BackendConfig, Config};
use crate::route::RouteInput;
use crate::state::{now_rfc3339, validate_id, BackendKind, Phase, Record};

/// `create`/`run` make a container from the bundle; `restore` from a checkpoint (the
/// runtime gets the words; refused before anything is made by backends without
/// checkpoint/restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Bundle,
    Checkpoint,
}

pub fn create(ctx: &Ctx, args: &CreateArgs, launch: Launch, from: Source) -> Result<i32> {
    validate_id(&args.id)?;
    let bundle = Bundle::open_with(&args.bundle, args.config.as_deref())?;
    let config = Config::load()?;
    let decision = config
        .router()
        .route(&RouteInput {
            id: &args.id,
            annotations: &bundle.annotations,
            bundle: &bundle.dir,
            flag: ctx.globals.backend.as_deref(),
        })
        .map_err(anyhow::Error::msg)?;
    log::debug!("container {}: {decision}", args.id);
    let backend_config = config.backend(&decision.backend).expect("router returns configured backends");

    let (creator, kind, runtime): (Box<dyn Creator>, _, _) = match backend_config {
        BackendConfig::Oci(oci) => {
            let b = OciBackend::resolve(&decision.backend, &oci.path)?;
            let runtime = Some(b.runtime.clone());
            (Box::new(b), BackendKind::Oci, runtime)
        }
        BackendConfig::ProxmoxLxc(_) if from == Source::Checkpoint => {
            anyhow::bail!(
                "container {}: restore is not supported by backend {} (proxmox-lxc has no checkpoint/restore); \
                 route the container to crun or runc (annotation nexcage.backend) to restore it",
                args.id,
                decision.backend
            )
        }
        BackendConfig::ProxmoxLxc(_) if args.config.as_deref().is_some_and(|c| c != Path::new(CONFIG_FILE)) => {
            anyhow::bail!(
                "container {}: --config is not supported by backend {} (proxmox-lxc reads the bundle's {CONFIG_FILE}); \
                 rename the file to {CONFIG_FILE} or route the container to crun",
                args.id,
                decision.backend
            )
        }
        BackendConfig::ProxmoxLxc(lxc) => (Box::new(LxcCreator { config: lxc.clone() }), BackendKind::ProxmoxLxc, None),
    };

    let mut record = Record {
        id: args.id.clone(),
        backend: decision.backend.clone(),
        kind,
        runtime,
        bundle: bundle.dir.clone(),
        created: now_rfc3339(),
        phase: Phase::Creating,
        data: Default::default(),
    };
    let lock = ctx.store.claim(&record)?;
    crate::fault::point("create:claimed");
    let req = CreateRequest { bundle: &bundle, args, launch };
    let outcome = creator.create(ctx, &req, &mut record);
    crate::fault::point("create:backend-done");
    // `run` in the foreground: the runtime deleted the container when it exited.
    let keep = matches!(outcome, Ok(0)) && launch != Launch::RunForeground;
    if keep {
        record.phase = Phase::Created;
        if let Err(e) = ctx.store.save(&record) {
            drop(lock);
            return Err(e);
        }
        crate::fault::point("create:saved");
    } else {
        ctx.store.remove(&record.id)?;
    }
    drop(lock);
    outcome
}
