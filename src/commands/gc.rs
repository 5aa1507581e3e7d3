//! `gc`: remove what crashed or interrupted commands left behind, for this `--root`.
//!
//! - records of creates that died (phase `creating`, lock free): deleted with `--force`
//!   semantics, including what the create made (runtime state, Proxmox container);
//! - records whose container is gone (the runtime no longer knows it; the VMID has no PVE
//!   config or now belongs to someone else): removed;
//! - temporary claim directories (`@new-<pid>-*`) of dead processes;
//! - for every proxmox-lxc backend of the configuration: Proxmox containers tagged
//!   `nexcage` whose description names **this** `--root` and that no record of this root
//!   claims (destroyed), and those made in an earlier boot of the host whatever root they
//!   name, unless a record in that root claims them (after a reboot every root is empty:
//!   lxc/boot.rs); VMID reservations of dead creates, temp templates of dead builders,
//!   run directories without a container.
//!
//! Never touched: records and containers another command holds (busy), containers of
//! this boot whose description names another `--root` or none (engines use different
//! roots, e.g. `/run/containerd/runc/<ns>` and `/run/nexcage`: each `gc` reaps only its
//! own), containers pct is creating (`lock:`). `--dry-run` prints the same lines prefixed
//! `would`.

use anyhow::Result;

use super::Ctx;
use crate::backend::{self, Sweeper};
use crate::cli::GcArgs;
use crate::config::Config;
use crate::state::Phase;

struct Report {
    dry: bool,
    errors: usize,
}

impl Sweeper for Report {
    fn act(&mut self, what: &str) -> bool {
        println!("{}{what}", if self.dry { "would " } else { "" });
        !self.dry
    }
    fn fail(&mut self, what: &str, e: &dyn std::fmt::Display) {
        self.errors += 1;
        log::error!("gc: cannot {what}: {e}");
    }
    fn dry(&self) -> bool {
        self.dry
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
        let Ok(b) = backend::for_record(&record) else { continue };
        let why = if record.phase == Phase::Creating {
            Some("its create did not finish".to_string())
        } else {
            b.stale_reason(ctx, &record, &root)
        };
        let Some(why) = why else { continue };
        if !r.act(&format!("delete container {id} ({why})")) {
            continue;
        }
        match b.remove_stale(ctx, &record, &root) {
            Ok(0) => {
                if let Err(e) = ctx.store.remove(&id) {
                    r.fail(&format!("remove the record of {id}"), &e);
                }
            }
            Ok(code) => r.fail(&format!("delete {id}"), &format!("the runtime exited with {code}")),
            Err(e) => r.fail(&format!("delete {id}"), &format!("{e:#}")),
        }
        drop(lock);
    }

    for dir in ctx.store.stale_claims() {
        if r.act(&format!("remove {} (a create that died while claiming its id)", dir.display())) {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                r.fail(&format!("remove {}", dir.display()), &e);
            }
        }
    }

    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            r.fail("look for Proxmox containers (configuration)", &e);
            return Ok(1);
        }
    };
    backend::sweep(ctx, &config, &root, &mut r);
    Ok(if r.errors == 0 { 0 } else { 1 })
}
