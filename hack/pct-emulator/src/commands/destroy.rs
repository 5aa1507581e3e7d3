//! `pct destroy <vmid> [--force] [--purge]`: refuse a running CT without --force, free
//! the CT's own volumes, LXC's files of the CT and the config.

use std::time::Duration;

use anyhow::Result;

use crate::cli::Parsed;
use crate::lock::{lock_config, Stream};
use crate::lxc;
use crate::output::die;
use crate::paths::Paths;
use crate::propstr;
use crate::volumes;

pub fn run(paths: &Paths, p: &Parsed) -> Result<()> {
    let vmid = super::vmid(p);
    super::load_conf(paths, vmid)?;
    let force = p.flag("force");
    if lxc::is_running(&paths.lxc, vmid) && !force {
        return Err(die(format!("unable to destroy CT {vmid} - container is running")));
    }
    let _lock = lock_config(paths, vmid, Duration::from_secs(10), Stream::Stdout)?;
    let conf = super::load_conf(paths, vmid)?;
    super::check_lock(&conf, false)?;
    if conf.get("protection") == Some("1") {
        return Err(die(format!("can't remove CT {vmid} - protection mode enabled")));
    }
    if lxc::is_running(&paths.lxc, vmid) {
        println!("forced to stop CT {vmid} before destroying!");
        lxc::kill(&paths.lxc, vmid).map_err(|e| die(format!("{e:#}")))?;
    }
    if p.flag("purge") {
        println!("purging CT {vmid} from related configurations..");
    }
    // Volumes owned by this CT: rootfs, mpN and unusedN on storages.
    let own_prefix = format!("subvol-{vmid}-disk-");
    let mut vols: Vec<String> = Vec::new();
    for (k, v) in &conf.keys {
        let volume = if let Some(schema) = propstr::schema_for(k).filter(|_| k == "rootfs" || k.starts_with("mp")) {
            propstr::parse(schema, v).ok().and_then(|m| m.get("volume").cloned())
        } else if k.starts_with("unused") {
            Some(v.clone())
        } else {
            None
        };
        if let Some(vol) = volume.filter(|v| v.split_once(':').is_some_and(|(_, n)| n.starts_with(&own_prefix))) {
            vols.push(vol);
        }
    }
    for vol in vols {
        if let Some(path) = volumes::volume_path(paths, &vol) {
            let _ = std::fs::remove_dir_all(&path);
            if let Some(parent) = path.parent() {
                let _ = std::fs::remove_dir(parent); // only when empty
            }
        }
    }
    // As pve-container's destroy_lxc_container: the empty rootfs mount point, LXC's config,
    // then the directory only if nothing else is left in it. What LXC and the DHCP
    // clients left (`hook/dhclient4-eth0.leases`) stays, and a later CT of the same VMID
    // finds it (seen on Proxmox VE 9: its dhclient falls back to that lease).
    let ct_dir = paths.ct_dir(vmid);
    let _ = std::fs::remove_dir(ct_dir.join("rootfs"));
    let _ = std::fs::remove_file(ct_dir.join("config"));
    let _ = std::fs::remove_dir(&ct_dir);
    std::fs::remove_file(paths.conf_file(vmid))?;
    Ok(())
}
