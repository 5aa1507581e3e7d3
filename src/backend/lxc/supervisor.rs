//! The supervisor: the process an engine knows as the container (its pid is in the pid
//! file) for a proxmox-lxc container, and the process behind each `exec`.
//!
//! Engines (containerd's shim, conmon) are child subreapers and learn that a container
//! ended only from SIGCHLD for the pid-file process, and take its exit status as the
//! container's. The container itself runs under systemd (`pct start`), so the program
//! can never be their descendant. The supervisor is: `create` (and `exec --detach`) start
//! it as nexcage itself (`nexcage lxc-supervise`, hidden), in its own session, holding
//! the connection to nexcage-init on fd 3, and exit; it is reparented to the engine. It
//! waits for init's `Exit` report and exits with the same status (the code, or 128+N for
//! signal N). If the connection ends without a report (the container was stopped or
//! destroyed under it) it exits 137, as a SIGKILLed program would. Signals sent to the
//! supervisor are forwarded to the program. If the supervisor dies, init notices the
//! closed connection and stops the container (or kills the exec'd process): the
//! supervisor's life and the program's are bound together.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use super::procfs::ProcRef;
use super::wire::{self, Reply, WireError};
use crate::cli::SuperviseArgs;
use crate::commands::Ctx;

/// The fd the supervisor finds its connection to init on.
pub const CONN_FD: i32 = 3;

/// Signals forwarded to the program (everything an engine or a user might send, except
/// SIGKILL/SIGSTOP, which cannot be caught, and SIGCHLD).
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTERM,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGWINCH,
    Signal::SIGPWR,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
    Signal::SIGURG,
];

/// Start a supervisor for `program` that takes over `conn`. It is our child until we
/// exit; the caller either returns (create: the supervisor is reparented to the engine)
/// or waits for it (foreground `run`).
pub fn spawn(ctx: &Ctx, conn: &OwnedFd, program: ProcRef) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot find the nexcage executable to start the supervisor")?;
    let mut cmd = Command::new(exe);
    if let Some(log) = &ctx.globals.log {
        cmd.arg("--log").arg(log);
    }
    if ctx.globals.log_format == crate::cli::LogFormat::Json {
        cmd.args(["--log-format", "json"]);
    }
    if ctx.globals.debug {
        cmd.arg("--debug");
    }
    cmd.arg("--root").arg(ctx.store.root());
    cmd.args(["lxc-supervise", "--pid", &program.pid.to_string(), "--start", &program.start.to_string()]);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let raw = conn.as_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if raw == CONN_FD {
                let flags = libc::fcntl(raw, libc::F_GETFD);
                libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(raw, CONN_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().context("cannot start the supervisor process")
}

/// `nexcage lxc-supervise`: wait for the program's end and exit with its status.
pub fn run(args: &SuperviseArgs) -> i32 {
    // SAFETY: fd 3 was set up for us by `spawn`.
    let conn = unsafe { OwnedFd::from_raw_fd(CONN_FD) };
    let program = ProcRef { pid: args.pid, start: args.start };
    match supervise(&conn, program) {
        Ok(code) => code,
        Err(e) => {
            log::error!("supervisor of pid {}: {e:#}", args.pid);
            255
        }
    }
}

/// Wait for init's `Exit`, forwarding signals; returns the exit status to use.
pub fn supervise(conn: &OwnedFd, program: ProcRef) -> Result<i32> {
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(*s);
    }
    mask.thread_block().context("sigprocmask")?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).context("signalfd")?;
    loop {
        let mut fds = [PollFd::new(conn.as_fd(), PollFlags::POLLIN), PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
        }
        let conn_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let sig_ready = fds[1].revents().is_some_and(|r| !r.is_empty());
        if sig_ready {
            while let Ok(Some(info)) = signals.read_signal() {
                if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                    if program.alive() {
                        let _ = kill(Pid::from_raw(program.pid), sig);
                    }
                }
            }
        }
        if conn_ready {
            match wire::recv::<Reply>(conn.as_fd()) {
                Ok(r) => {
                    if let Some(code) = r.message.exit_status() {
                        return Ok(code);
                    }
                }
                // The container went away without a report: it was killed.
                Err(WireError::Closed) | Err(WireError::Io(_)) => return Ok(128 + libc::SIGKILL),
                Err(WireError::Invalid(m)) => log::warn!("ignoring a malformed message from nexcage-init: {m}"),
            }
        }
    }
}
