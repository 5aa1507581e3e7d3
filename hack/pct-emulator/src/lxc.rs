//! Talking to LXC: running state, init pid, stop. Every tool gets `-P <lxcpath>`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use std::path::Path;

/// The abstract name of a container's LXC command socket, as LXC 5 binds it:
/// `@<lxcpath>/<name>/command` (verified in /proc/net/unix on LXC 5.0.2).
pub fn command_socket_name(lxcpath: &Path, vmid: u32) -> String {
    format!("@{}/{vmid}/command", lxcpath.display())
}

/// Running means the command socket exists (what pct's check_running looks at).
pub fn is_running(lxcpath: &Path, vmid: u32) -> bool {
    let want = command_socket_name(lxcpath, vmid);
    let Ok(text) = std::fs::read_to_string("/proc/net/unix") else {
        return false;
    };
    text.lines().skip(1).any(|l| l.split_whitespace().nth(7) == Some(want.as_str()))
}

fn lxc_cmd(tool: &str, lxcpath: &Path, vmid: u32) -> Command {
    let mut c = Command::new(tool);
    c.arg("-n").arg(vmid.to_string()).arg("-P").arg(lxcpath);
    c
}

/// Host pid of the container's init.
pub fn init_pid(lxcpath: &Path, vmid: u32) -> Option<i32> {
    let out = lxc_cmd("lxc-info", lxcpath, vmid).args(["-p", "-H"]).stderr(Stdio::null()).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// LXC's own state name (RUNNING, STOPPED, ...).
pub fn state(lxcpath: &Path, vmid: u32) -> Option<String> {
    let out = lxc_cmd("lxc-info", lxcpath, vmid).args(["-s", "-H"]).stderr(Stdio::null()).output().ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Wait until the monitor is gone (command socket closed).
pub fn wait_stopped(lxcpath: &Path, vmid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !is_running(lxcpath, vmid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `lxc-stop --kill`: immediate stop.
pub fn kill(lxcpath: &Path, vmid: u32) -> Result<()> {
    let st = lxc_cmd("lxc-stop", lxcpath, vmid).arg("--kill").status().context("unable to run lxc-stop")?;
    if !st.success() && is_running(lxcpath, vmid) {
        bail!("lxc-stop failed with {st}");
    }
    if !wait_stopped(lxcpath, vmid, Duration::from_secs(10)) {
        bail!("container did not stop");
    }
    Ok(())
}

/// `lxc-stop --nokill --timeout N`: clean shutdown; false when it timed out.
pub fn shutdown(lxcpath: &Path, vmid: u32, timeout: u64) -> Result<bool> {
    let st = lxc_cmd("lxc-stop", lxcpath, vmid)
        .args(["--nokill", "--timeout", &timeout.to_string()])
        .stderr(Stdio::null())
        .status()
        .context("unable to run lxc-stop")?;
    Ok(st.success() && wait_stopped(lxcpath, vmid, Duration::from_secs(5)))
}
