//! `pct exec <vmid> [--keep-env 0|1] -- <cmd> [args...]`: becomes lxc-attach, so the
//! caller's stdio are the command's and the exit status is the command's own.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::Result;

use crate::cli::Parsed;
use crate::lxc;
use crate::output::die;
use crate::paths::Paths;

pub fn run(paths: &Paths, p: &Parsed) -> Result<()> {
    let vmid = super::vmid(p);
    super::load_conf(paths, vmid)?;
    if !lxc::is_running(&paths.lxc, vmid) {
        return Err(die(format!("container '{vmid}' not running!")));
    }
    if p.extra.is_empty() {
        return Err(die("missing command"));
    }
    let env = if p.get("keep-env") == Some("0") { "--clear-env" } else { "--keep-env" };
    let err = Command::new("lxc-attach")
        .arg("-n")
        .arg(vmid.to_string())
        .arg("-P")
        .arg(&paths.lxc)
        .arg(env)
        .arg("--")
        .args(&p.extra)
        .exec();
    Err(die(format!("unable to run lxc-attach: {err}")))
}
