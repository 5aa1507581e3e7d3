//! `pct status <vmid> [--verbose]`

use std::collections::BTreeMap;

use anyhow::Result;

use crate::cli::Parsed;
use crate::lxc;
use crate::paths::Paths;
use crate::propstr;
use crate::validate;

pub fn run(paths: &Paths, p: &Parsed) -> Result<()> {
    let vmid = super::vmid(p);
    let conf = super::load_conf(paths, vmid)?;
    let running = lxc::is_running(&paths.lxc, vmid);
    let status = if running { "running" } else { "stopped" };
    if !p.flag("verbose") {
        println!("status: {status}");
        return Ok(());
    }
    let mut m: BTreeMap<&str, String> = BTreeMap::new();
    let host_cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    m.insert("cpus", conf.get("cores").map(str::to_string).unwrap_or_else(|| host_cpus.to_string()));
    let maxdisk = conf
        .get("rootfs")
        .and_then(|r| propstr::parse(&propstr::ROOTFS, r).ok())
        .and_then(|r| r.get("size").and_then(|s| validate::parse_size(s)))
        .unwrap_or(0);
    for k in ["disk", "diskread", "diskwrite", "netin", "netout", "swap"] {
        m.insert(k, "0".into());
    }
    m.insert("maxdisk", maxdisk.to_string());
    let mem: u64 = conf.get("memory").and_then(|v| v.parse().ok()).unwrap_or(512);
    let swap: u64 = conf.get("swap").and_then(|v| v.parse().ok()).unwrap_or(512);
    m.insert("maxmem", (mem << 20).to_string());
    m.insert("maxswap", (swap << 20).to_string());
    m.insert("mem", "0".into());
    m.insert("name", conf.hostname(vmid));
    m.insert("status", status.into());
    m.insert("type", "lxc".into());
    m.insert("uptime", "0".into());
    m.insert("vmid", vmid.to_string());
    if running {
        if let Some(pid) = lxc::init_pid(&paths.lxc, vmid) {
            m.insert("pid", pid.to_string());
            if let Some(up) = uptime_of(pid) {
                m.insert("uptime", up.to_string());
            }
            if let Some(rss) = rss_of(pid) {
                m.insert("mem", rss.to_string());
            }
        }
    }
    for k in ["lock", "tags", "template"] {
        if let Some(v) = conf.get(k) {
            m.insert(k, v.to_string());
        }
    }
    for (k, v) in m {
        println!("{k}: {v}");
    }
    Ok(())
}

fn uptime_of(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let start_ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let up: f64 = std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
    Some((up as u64).saturating_sub(start_ticks / hz))
}

fn rss_of(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = s.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}
