//! `exec` on proxmox-lxc containers: nexcage-init forks the process inside the container
//! (so it is in every namespace and the cgroup of the container, a child of its init,
//! under the container's seccomp and AppArmor), with the caller's stdio or a pty, and
//! reports its exit status. No pct call, no shell.
//!
//! The pid-file process is a supervisor (as for create): with `--detach` a new
//! `nexcage lxc-supervise` that outlives this command; in the foreground this command
//! itself. Either exits with the process's status; a failure of exec itself exits 255.

use std::os::fd::RawFd;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use super::data::LxcData;
use super::init_conn::InitConn;
use super::lifecycle::{status, Status};
use super::procfs::ProcRef;
use super::wire::{self, Request};
use super::{console, host_limits, process, run_dir, supervisor};
use crate::cli::ExecArgs;
use crate::context::Ctx;
use crate::state::Record;

pub fn exec(ctx: &Ctx, record: &Record, args: &ExecArgs) -> Result<i32> {
    match run(ctx, record, args) {
        Ok(code) => Ok(code),
        Err(e) => {
            log::error!("{e:#}");
            Ok(255)
        }
    }
}

/// The container's init (from the nexcage that created it) can apply `spec`; else say
/// what it cannot do and how to go on (an init older than the field would ignore it).
fn check_protocol(id: &str, init_protocol: u32, spec: &wire::ProcessSpec) -> Result<()> {
    if spec.protocol() <= init_protocol {
        return Ok(());
    }
    let what = match &spec.apparmor_profile {
        Some(p) => format!("apply the AppArmor profile {p:?} to an exec'd process"),
        None => "run this process".to_string(),
    };
    bail!(
        "container {id} was created by an older nexcage, whose nexcage-init (protocol {init_protocol}) cannot {what}; leave --apparmor out, or recreate the container to use it"
    )
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = std::path::absolute(path)?;
    crate::state::write_atomic(&abs, pid.to_string().as_bytes(), 0o644)
        .map_err(|e| anyhow!("cannot write pid file {}: {e}", abs.display()))
}

fn run(ctx: &Ctx, record: &Record, args: &ExecArgs) -> Result<i32> {
    let data = LxcData::of(record)?;
    match status(record, Some(data)).0 {
        Status::Running | Status::Created => {}
        Status::Paused if args.ignore_paused => {}
        Status::Paused => bail!("cannot exec in a paused container (use --ignore-paused to override)"),
        Status::Stopped | Status::Creating => bail!("cannot exec in a stopped container"),
    }
    let apparmor = super::apparmor::HostAppArmor::probe();
    let (spec, warnings) = process::for_exec(args, &data.process, &apparmor)?;
    for w in warnings {
        log::warn!("{w}");
    }
    if spec.terminal && args.console_socket.is_none() {
        bail!("exec --tty needs --console-socket on the proxmox-lxc backend (the pty master is handed to the caller)");
    }
    if !spec.terminal && args.console_socket.is_some() {
        bail!("--console-socket was given but the process has no terminal (use --tty)");
    }
    let init = data.init.ok_or_else(|| anyhow::anyhow!("container not running (no nexcage-init recorded)"))?;
    check_protocol(&record.id, data.init_protocol, &spec)?;
    if let Some(name) = &spec.apparmor_profile {
        super::apparmor::load_into_ct(&apparmor, name, init.pid)
            .map_err(|e| anyhow::Error::new(e).context("the exec's AppArmor profile"))?;
    }
    let conn = InitConn::connect(&run_dir::socket(&data.run_dir), Duration::from_secs(5), Some(init))?;
    let mut fds: Vec<RawFd> = if spec.terminal { Vec::new() } else { vec![0, 1, 2] };
    fds.extend((0..args.preserve_fds as RawFd).map(|i| 3 + i));
    let request = Request::Spawn {
        process: Box::new(spec.clone()),
        gated: false,
        hostname: None,
        start_hooks: Vec::new(),
        preserved: args.preserve_fds as usize,
        protocol: spec.protocol(),
    };
    let spawned = conn.spawn(&request, &fds)?;
    for w in &spawned.warnings {
        log::warn!("{w}");
    }
    // Already running: a process that exited at once needs no limits.
    if let Err(e) = host_limits::apply(spawned.pid, &spec, &spawned.deferred) {
        if super::procfs::ProcRef::of(spawned.pid).is_some() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(spawned.pid), nix::sys::signal::Signal::SIGKILL);
            return Err(e);
        }
    }
    if let (Some(sock), Some(master)) = (&args.console_socket, &spawned.master) {
        console::send_master(sock, master)?;
    }
    drop(spawned.master);
    // A quick process may already be gone; its exit is still reported to us.
    let program = ProcRef::of(spawned.pid).unwrap_or(ProcRef { pid: spawned.pid, start: 0 });
    let fd = conn.into_fd();
    if args.detach {
        let child = supervisor::spawn(ctx, &fd, program, init, None, None)?;
        drop(fd);
        if let Some(p) = &args.pid_file {
            write_pid_file(p, child.id() as i32)?;
        }
        return Ok(0);
    }
    if let Some(p) = &args.pid_file {
        write_pid_file(p, std::process::id() as i32)?;
    }
    // In the foreground nexcage is a command that reports a status, as `runc exec` does.
    let signals = supervisor::forwarded_signals()?;
    supervisor::supervise(&fd, program, &signals).map(|e| e.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container created by an older nexcage (its init speaks protocol 0, which would
    /// ignore the AppArmor field) gets no exec that needs more; a current one does.
    #[test]
    fn exec_asks_no_more_than_the_containers_init_speaks() {
        let plain = wire::ProcessSpec::default();
        let confined = wire::ProcessSpec { apparmor_profile: Some("p".into()), ..Default::default() };
        assert!(check_protocol("c", 0, &plain).is_ok());
        let e = check_protocol("c", 0, &confined).unwrap_err().to_string();
        assert!(
            e.contains("container c was created by an older nexcage, whose nexcage-init (protocol 0) cannot apply the AppArmor profile \"p\""),
            "{e}"
        );
        assert!(check_protocol("c", wire::PROTOCOL, &confined).is_ok());
    }
}
