//! `pct list`: `%-10s %-10s %-12s %-20s` rows sorted by VMID; nothing at all when empty.

use anyhow::Result;

use crate::cli::Parsed;
use crate::conf::Conf;
use crate::lxc;
use crate::paths::Paths;

pub fn run(paths: &Paths, _p: &Parsed) -> Result<()> {
    let mut vmids: Vec<u32> = match std::fs::read_dir(paths.conf_dir()) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".conf")?.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    };
    if vmids.is_empty() {
        return Ok(());
    }
    vmids.sort_unstable();
    let mut out = format!("{:<10} {:<10} {:<12} {:<20}\n", "VMID", "Status", "Lock", "Name");
    for vmid in vmids {
        let Ok(Some(conf)) = Conf::load(&paths.conf_file(vmid)) else {
            continue;
        };
        let status = if lxc::is_running(&paths.lxc, vmid) { "running" } else { "stopped" };
        let name: String = conf.hostname(vmid).chars().filter(|c| !c.is_whitespace()).collect();
        out.push_str(&format!("{:<10} {:<10} {:<12} {:<20}\n", vmid, status, conf.get("lock").unwrap_or(""), name));
    }
    print!("{out}");
    Ok(())
}
