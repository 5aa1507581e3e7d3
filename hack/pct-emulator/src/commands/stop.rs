//! `pct stop` (lxc-stop --kill) and `pct shutdown` (clean, with timeout / --forceStop).

use std::time::Duration;

use anyhow::Result;

use crate::cli::Parsed;
use crate::conf::Conf;
use crate::lock::{lock_config, Stream};
use crate::lxc;
use crate::output::die;
use crate::paths::Paths;

fn not_running(vmid: u32) -> anyhow::Error {
    die(format!("CT {vmid} not running"))
}

pub fn stop(paths: &Paths, p: &Parsed) -> Result<()> {
    let vmid = super::vmid(p);
    if !lxc::is_running(&paths.lxc, vmid) {
        return Err(not_running(vmid));
    }
    let _lock = lock_config(paths, vmid, Duration::from_secs(10), Stream::Stdout)?;
    if let Some(conf) = Conf::load(&paths.conf_file(vmid))? {
        super::check_lock(&conf, p.flag("skiplock"))?;
    }
    lxc::kill(&paths.lxc, vmid).map_err(|e| die(format!("{e:#}")))
}

pub fn shutdown(paths: &Paths, p: &Parsed) -> Result<()> {
    let vmid = super::vmid(p);
    let conf = super::load_conf(paths, vmid)?;
    if !lxc::is_running(&paths.lxc, vmid) {
        return Err(not_running(vmid));
    }
    let _lock = lock_config(paths, vmid, Duration::from_secs(10), Stream::Stdout)?;
    super::check_lock(&conf, false)?;
    let timeout: u64 = p.get("timeout").and_then(|t| t.parse().ok()).unwrap_or(60);
    if lxc::shutdown(&paths.lxc, vmid, timeout)? {
        return Ok(());
    }
    if p.flag("forceStop") {
        return lxc::kill(&paths.lxc, vmid).map_err(|e| die(format!("{e:#}")));
    }
    Err(die("container did not stop"))
}
