//! `pct unlock <vmid>`: remove the config's `lock:` (as PVE's `remove_lock`, under the
//! config lock); what recovers a CT a killed `pct create` left with `lock: create`.

use std::time::Duration;

use anyhow::Result;

use crate::cli::Parsed;
use crate::lock::{lock_config, Stream};
use crate::paths::Paths;

pub fn run(paths: &Paths, p: &Parsed) -> Result<()> {
    let vmid = super::vmid(p);
    super::load_conf(paths, vmid)?;
    let _lock = lock_config(paths, vmid, Duration::from_secs(10), Stream::Stdout)?;
    let mut conf = super::load_conf(paths, vmid)?;
    if conf.keys.remove("lock").is_some() {
        conf.save(&paths.conf_file(vmid))?;
    }
    Ok(())
}
