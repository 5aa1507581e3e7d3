//! `pct set <vmid> [options] [--delete a,b] [--revert a,b]`: synchronous and silent.
//! On a running container hot-pluggable keys are written at once (the emulator does not
//! touch the running container's cgroups), everything else is queued in `[pve:pending]`.

use std::time::Duration;

use anyhow::Result;

use crate::cli::Parsed;
use crate::lock::{lock_config, Stream};
use crate::lxc;
use crate::output::{die, Exit};
use crate::paths::Paths;
use crate::validate;

const NOT_SETTABLE: &[&str] = &["delete", "revert", "digest", "debug", "lock"];
const HOTPLUG: &[&str] =
    &["memory", "swap", "cores", "cpulimit", "cpuunits", "description", "tags", "onboot", "protection"];
const REQUIRED: &[&str] = &["memory", "rootfs", "ostype"];

fn hotplug(k: &str) -> bool {
    HOTPLUG.contains(&k) || k.starts_with("net") || k.starts_with("mp")
}

fn param_error(usage: &str, k: &str, msg: &str) -> anyhow::Error {
    Exit { code: 255, text: format!("400 Parameter verification failed.\n{k}: {msg}\n{usage}") }.into()
}

pub fn run(paths: &Paths, p: &Parsed) -> Result<()> {
    let vmid = super::vmid(p);
    let usage = crate::cli::spec("set").expect("set").usage();
    let changes: Vec<(&String, &String)> = p.opts.iter().filter(|(k, _)| !NOT_SETTABLE.contains(&k.as_str())).collect();
    let deletes: Vec<String> =
        p.get("delete").map(|d| validate::split_tags(d).map(str::to_string).collect()).unwrap_or_default();
    let reverts: Vec<String> =
        p.get("revert").map(|d| validate::split_tags(d).map(str::to_string).collect()).unwrap_or_default();
    if changes.is_empty() && deletes.is_empty() && reverts.is_empty() {
        // A parameter exception (HTTP 400) in PVE: exit 2.
        return Err(Exit { code: 2, text: "no options specified".into() }.into());
    }
    if changes.iter().any(|(k, _)| k.as_str() == "unprivileged") {
        return Err(param_error(&usage, "unprivileged", "unable to modify read-only option: 'unprivileged'"));
    }
    if let Some(k) = deletes.iter().find(|k| REQUIRED.contains(&k.as_str())) {
        return Err(param_error(&usage, "delete", &format!("unable to delete required option '{k}'")));
    }
    let _lock = lock_config(paths, vmid, Duration::from_secs(10), Stream::Stderr)?;
    let mut conf = super::load_conf(paths, vmid)?;
    super::check_lock(&conf, false)?;
    let running = lxc::is_running(&paths.lxc, vmid);
    for k in &reverts {
        conf.pending.remove(k);
    }
    for (k, v) in changes {
        let v = match k.as_str() {
            "tags" => validate::normalize_tags(v),
            _ if k.starts_with("net") => super::create::with_mac(v).map_err(|e| die(format!("{k}: {e:#}")))?,
            _ if k.starts_with("mp") && !v.starts_with('/') && !v.contains("volume=/") => {
                return Err(die(format!("{k}: allocating new volumes with 'pct set' is not emulated")));
            }
            _ => v.clone(),
        };
        if running && !hotplug(k) {
            conf.pending.insert(k.clone(), v);
        } else if k == "description" {
            conf.description = v;
        } else {
            conf.keys.insert(k.clone(), v);
        }
    }
    let mut pending_deletes = Vec::new();
    for k in deletes {
        if running && !hotplug(&k) {
            pending_deletes.push(k);
        } else if k == "description" {
            conf.description.clear();
        } else {
            conf.keys.remove(&k);
            conf.lxc.retain(|(rk, _)| *rk != k);
        }
    }
    if !pending_deletes.is_empty() {
        conf.pending.insert("delete".into(), pending_deletes.join(","));
    }
    conf.save(&paths.conf_file(vmid))
}
