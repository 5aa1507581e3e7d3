//! One module per pct command.

pub mod config;
pub mod create;
pub mod destroy;
pub mod exec;
pub mod list;
pub mod set;
pub mod start;
pub mod status;
pub mod stop;
pub mod unlock;

use anyhow::Result;

use crate::conf::Conf;
use crate::output::{die, die_enoent};
use crate::paths::Paths;

/// Load a container's config; a missing one is pct's exit-2 error.
pub fn load_conf(paths: &Paths, vmid: u32) -> Result<Conf> {
    match Conf::load(&paths.conf_file(vmid))? {
        Some(c) => Ok(c),
        None => Err(die_enoent(format!("Configuration file '{}' does not exist", paths.conf_display(vmid)))),
    }
}

/// `CT is locked (<lock>)` unless skipped.
pub fn check_lock(conf: &Conf, skiplock: bool) -> Result<()> {
    match conf.get("lock") {
        Some(l) if !skiplock => Err(die(format!("CT is locked ({l})"))),
        _ => Ok(()),
    }
}

pub fn vmid(p: &crate::cli::Parsed) -> u32 {
    p.args[0].parse().expect("vmid was verified")
}
