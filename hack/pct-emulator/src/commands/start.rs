//! `pct start <vmid> [--skiplock]`: regenerate the LXC config, then have the emulator
//! daemon (systemd's stand-in) run `lxc-start -F`, and wait until RUNNING; then the DHCP
//! clients of host-managed NICs (dhcp.rs).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::Parsed;
use crate::daemon;
use crate::lock::{lock_config, Stream};
use crate::lxc;
use crate::lxcconf::{self, CgroupLayout};
use crate::output::{die, warn};
use crate::paths::Paths;
use crate::volumes;

pub fn run(paths: &Paths, p: &Parsed) -> Result<()> {
    let vmid = super::vmid(p);
    super::load_conf(paths, vmid)?;
    if lxc::is_running(&paths.lxc, vmid) {
        return Err(die(format!("CT {vmid} already running")));
    }
    let _lock = lock_config(paths, vmid, Duration::from_secs(10), Stream::Silent)?;
    let conf = super::load_conf(paths, vmid)?;
    super::check_lock(&conf, p.flag("skiplock"))?;
    // Raw keys PVE does not keep (lxc.rootfs.path included) were dropped, with PVE's
    // warning, when the config was read (Conf::parse_for).

    let ct_dir = paths.ct_dir(vmid);
    std::fs::create_dir_all(ct_dir.join("rootfs")).with_context(|| format!("mkdir {}", ct_dir.display()))?;
    let volume = conf
        .get("rootfs")
        .and_then(|r| crate::propstr::parse(&crate::propstr::ROOTFS, r).ok())
        .and_then(|r| match r["volume"].starts_with('/') {
            true => Some(PathBuf::from(&r["volume"])),
            false => volumes::volume_path(paths, &r["volume"]),
        })
        .filter(|v| v.is_dir())
        .ok_or_else(|| die(format!("CT {vmid}: unable to find the root volume")))?;

    let mut conf = conf;
    conf.keys.retain(|k, _| k != "lock");
    let gen = lxcconf::generate(paths, vmid, &conf, &volume, &CgroupLayout::detect());
    for w in &gen.warnings {
        warn(w);
    }
    let text: String = gen.text.lines().filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    crate::conf::write_atomic(&ct_dir.join("config"), text.as_bytes())?;

    let stderr_file = paths.run.join(format!("ct-{vmid}.stderr"));
    if let Err(e) = daemon::request_start(&paths.lxc, vmid, &stderr_file, Duration::from_secs(10)) {
        println!("{e:#}");
        return Err(die(format!("startup for container '{vmid}' failed")));
    }
    if let Some(pid) = lxc::init_pid(&paths.lxc, vmid) {
        crate::dhcp::start_clients(paths, vmid, &conf, pid);
    }
    Ok(())
}
