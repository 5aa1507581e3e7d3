//! DHCP for `host-managed` NICs, as pve-container 6.1 does it (`manage_dhclient`,
//! `kill_dhclients`): after the start, for each host-managed NIC with `ip=dhcp` (`ip6=dhcp`)
//! the host runs `dhclient -1` in the container's network and UTS namespaces through
//! `lxc-attach`, with LXC's own `dhclient-script` and the container's root as `ROOTFS`
//! (for its resolv.conf); pid and lease files live in `<lxcpath>/<vmid>/hook/`. A failed
//! lease is a warning, not a failed start. When the container stops, the clients are
//! killed. (PVE also wraps the client in `aa-exec -p unconfined`; this host has no
//! AppArmor.)

use std::path::Path;
use std::process::{Command, Stdio};

use crate::conf::Conf;
use crate::output::warn;
use crate::paths::Paths;
use crate::propstr;

/// LXC's script that applies a lease inside the container (Debian's lxc package ships it).
const SCRIPT: &str = "/usr/share/lxc/hooks/dhclient-script";

/// Start the DHCP clients of `conf`'s host-managed NICs; `pid` is the container's init.
pub fn start_clients(paths: &Paths, vmid: u32, conf: &Conf, pid: i32) {
    let mut wanted: Vec<(u8, String)> = Vec::new();
    for (_, v) in conf.indexed("net") {
        let Ok(n) = propstr::parse(&propstr::NET, v) else { continue };
        if n.get("host-managed").map(String::as_str) != Some("1") || n.get("link_down").map(String::as_str) == Some("1")
        {
            continue;
        }
        for (version, key) in [(4u8, "ip"), (6, "ip6")] {
            if n.get(key).map(String::as_str) == Some("dhcp") {
                wanted.push((version, n["name"].clone()));
            }
        }
    }
    if wanted.is_empty() {
        return;
    }
    let hook = paths.ct_dir(vmid).join("hook");
    if let Err(e) = std::fs::create_dir_all(&hook) {
        warn(&format!("DHCP failed - mkdir {}: {e}", hook.display()));
        return;
    }
    for (version, eth) in wanted {
        let pf = hook.join(format!("dhclient{version}-{eth}.pid"));
        let lf = hook.join(format!("dhclient{version}-{eth}.leases"));
        let out = Command::new("lxc-attach")
            .arg("-n")
            .arg(vmid.to_string())
            .arg("-P")
            .arg(&paths.lxc)
            .args(["-s", "NETWORK|UTSNAME", "--", "dhclient", "-1"])
            .arg(format!("-{version}"))
            .arg("-pf")
            .arg(&pf)
            .arg("-lf")
            .arg(&lf)
            .arg("-e")
            .arg(format!("ROOTFS=/proc/{pid}/root"))
            .arg("-sf")
            .arg(SCRIPT)
            .arg(&eth)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => warn(&format!(
                "DHCP failed - command 'dhclient -1 -{version} ... {eth}' failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => warn(&format!("DHCP failed - unable to run lxc-attach: {e}")),
        }
    }
}

/// The emulator's LXC post-stop hook (`lxc.hook.post-stop`): as PVE's
/// lxc-pve-poststop-hook (vm_stop_cleanup), it kills the CT's DHCP clients after the
/// container stopped and before lxc-start exits, so whoever waits for lxc-start finds
/// them gone.
pub const POST_STOP_FLAG: &str = "--lxc-post-stop-hook";

/// Run as the post-stop hook: LXC names the container's config in `LXC_CONFIG_FILE`
/// (`<lxcpath>/<vmid>/config`).
pub fn post_stop_hook() -> i32 {
    if let Some(ct_dir) = std::env::var_os("LXC_CONFIG_FILE").as_deref().map(Path::new).and_then(Path::parent) {
        kill_clients(ct_dir);
    }
    0
}

/// Kill every DHCP client of the container `<lxcpath>/<vmid>` (after it stopped).
pub fn kill_clients(ct_dir: &Path) {
    let Ok(dir) = std::fs::read_dir(ct_dir.join("hook")) else { return };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("dhclient") && name.ends_with(".pid")) {
            continue;
        }
        if let Some(pid) = std::fs::read_to_string(e.path()).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(e.path());
    }
}
