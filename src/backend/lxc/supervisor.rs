//! The supervisor: the process an engine knows as the container (its pid is in the pid
//! file) for a proxmox-lxc container, and the process behind each `exec`.
//!
//! Engines (containerd's shim, conmon) are child subreapers and learn that a container
//! ended only from SIGCHLD for the pid-file process, and take its exit status as the
//! container's. The container itself runs under systemd (`pct start`), so the program
//! can never be their descendant. The supervisor is: `create` (and `exec --detach`) start
//! it as nexcage itself (`nexcage lxc-supervise`, hidden), in its own session, holding
//! the connection to nexcage-init on fd 3, and exit; it is reparented to the engine. It
//! waits for init's `Exit` report and ends the same way: it exits with the program's
//! code, or dies of the signal that killed the program (engines report 128+N for both,
//! and the raw wait status is runc's). If the connection ends without a report (the
//! container was stopped or destroyed under it) it dies of SIGKILL, as the program did. Signals sent to the
//! supervisor are forwarded to the program. If the supervisor dies, init notices the
//! closed connection and stops the container (or kills the exec'd process): the
//! supervisor's life and the program's are bound together.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use super::netmove::NetReturn;
use super::procfs::ProcRef;
use super::wire::{self, Reply, WireError};
use crate::cli::SuperviseArgs;
use crate::context::Ctx;

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
/// `run_dir` labels a container's supervisor (not an exec's), see [`find_container_supervisor`].
/// `inside`: a live process of the container (its program, or its init for an exec,
/// whose process may be gone already), whose network namespace the supervisor joins.
pub fn spawn(
    ctx: &Ctx,
    conn: &OwnedFd,
    program: ProcRef,
    inside: ProcRef,
    run_dir: Option<&Path>,
    net: Option<&NetReturn>,
) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot find the nexcage executable to start the supervisor")?;
    let mut cmd = Command::new(exe);
    if let Some(log) = &ctx.globals.log {
        cmd.arg("--log").arg(std::path::absolute(log).unwrap_or_else(|_| log.clone()));
    }
    if ctx.globals.log_format == crate::cli::LogFormat::Json {
        cmd.args(["--log-format", "json"]);
    }
    if ctx.globals.debug {
        cmd.arg("--debug");
    }
    cmd.arg("--root").arg(std::path::absolute(ctx.store.root()).unwrap_or_else(|_| ctx.store.root().to_path_buf()));
    cmd.args(["lxc-supervise", "--pid", &program.pid.to_string(), "--start", &program.start.to_string()]);
    if let Some(d) = run_dir {
        cmd.arg("--run-dir").arg(d);
    }
    // A copy above the fds the child sets up, so that no dup2 below overwrites it.
    let net_copy = match net {
        Some(n) => {
            cmd.arg("--net-return").arg(&n.engine);
            cmd.arg("--net-moved").arg(serde_json::to_string(&n.moved)?);
            // SAFETY: fcntl on an open fd; the dup is owned here.
            let d = unsafe { libc::fcntl(n.ct.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
            if d < 0 {
                return Err(std::io::Error::last_os_error()).context("dup of the container's network namespace");
            }
            Some(unsafe { OwnedFd::from_raw_fd(d) })
        }
        None => None,
    };
    let net_raw = net_copy.as_ref().map(|f| f.as_raw_fd());
    // Engines know the container by the supervisor's pid (pid file, `state`), so the
    // supervisor lives in the container's network namespace: what an engine does with
    // /proc/<pid>/ns/net (`ctr run --cni` runs its CNI plugins there, `nsenter --net
    // -t <pid>`) then reaches the container's network and never the host's. Nothing of
    // the supervisor's own needs the host's: its connection to init is an open socket,
    // and giving interfaces back names both namespaces explicitly (netmove).
    let container_net = super::procfs::open_net_ns(inside)
        .with_context(|| format!("cannot open the container's network namespace (pid {})", inside.pid))?;
    let container_net_raw = container_net.as_raw_fd();
    // The caller's stdout/stderr when they are pipes: the supervisor keeps a copy and,
    // before it exits, waits until the engine has read what the program wrote. The
    // engine learns of the exit from the supervisor; without this, containerd can
    // tear down the pipe copy while the program's last bytes are still in the pipe.
    // With a terminal the program writes to the pty, and the caller's pipes carry only
    // the runtime's own messages: holding them would delay the caller's EOF.
    let terminal = ctx.words.iter().any(|w| w.to_str().is_some_and(|w| w.starts_with("--console-socket")));
    let drains: Vec<(OwnedFd, RawFd)> = [1, 2]
        .into_iter()
        .filter(|_| !terminal)
        .zip(DRAIN_FDS)
        .filter(|(fd, _)| is_pipe(*fd))
        .filter_map(|(fd, target)| {
            // SAFETY: fd 1/2 are open (is_pipe checked); the dup is owned here.
            let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
            (d >= 0).then(|| (unsafe { OwnedFd::from_raw_fd(d) }, target))
        })
        .collect();
    for (_, target) in &drains {
        cmd.arg("--drain").arg(target.to_string());
    }
    let drain_raw: Vec<(RawFd, RawFd)> = drains.iter().map(|(fd, t)| (fd.as_raw_fd(), *t)).collect();
    // Like runc's container process, hold on to nothing of the caller's: no stdio (init
    // has it), and not its working directory (which it may want to remove or unmount).
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).current_dir("/");
    let raw = conn.as_raw_fd();
    // The forwarded signals are blocked from the start (the mask survives exec), so that a
    // signal sent the moment create returns waits for the supervisor to forward it.
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(*s);
    }
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // First: the dup2s below may reuse its fd number.
            if libc::setns(container_net_raw, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::pthread_sigmask(libc::SIG_BLOCK, mask.as_ref(), std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if raw == CONN_FD {
                let flags = libc::fcntl(raw, libc::F_GETFD);
                libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(raw, CONN_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for (from, to) in &drain_raw {
                if libc::dup2(*from, *to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(fd) = net_raw {
                if libc::dup2(fd, NET_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().context("cannot start the supervisor process")
}

/// The live supervisor of the container whose run directory is `run_dir`, and its
/// program, found by their command lines (for state rebuilt after `--root` was lost).
pub fn find_container_supervisor(run_dir: &Path) -> Option<(ProcRef, ProcRef)> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
        let Some(at) = args.iter().position(|a| *a == b"lxc-supervise") else { continue };
        let value = |flag: &[u8]| {
            args[at..].iter().position(|a| *a == flag).and_then(|i| args.get(at + i + 1)).map(|v| v.to_vec())
        };
        if value(b"--run-dir").as_deref() != Some(run_dir.as_os_str().as_encoded_bytes()) {
            continue;
        }
        let num = |flag: &[u8]| value(flag).and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse::<u64>().ok());
        let (Some(p), Some(s)) = (num(b"--pid"), num(b"--start")) else { continue };
        let program = ProcRef { pid: p as i32, start: s };
        if let Some(sup) = ProcRef::of(pid) {
            return Some((sup, program));
        }
    }
    None
}

/// How the supervised process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Killed(i32),
}

impl Ended {
    /// As a shell reports it: the code, or 128+N for signal N.
    pub fn code(self) -> i32 {
        match self {
            Ended::Exited(c) => c,
            Ended::Killed(s) => 128 + s,
        }
    }
}

/// `nexcage lxc-supervise`: wait for the program's end and end the same way: exit with
/// its code, or die of the signal that killed it (so the engine's waitpid sees exactly
/// what it would see for runc's container process; engines report 128+N either way).
pub fn run(args: &SuperviseArgs) -> i32 {
    // SAFETY: fd 3 was set up for us by `spawn`.
    let conn = unsafe { OwnedFd::from_raw_fd(CONN_FD) };
    let program = ProcRef { pid: args.pid, start: args.start };
    // Signals first: an engine may signal the pid-file process as soon as it exists.
    let signals = match forwarded_signals() {
        Ok(s) => s,
        Err(e) => {
            log::error!("supervisor of pid {}: {e:#}", args.pid);
            return 255;
        }
    };
    let net = args.net_return.as_ref().map(|engine| {
        let moved = args.net_moved.as_deref().and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
        // SAFETY: fd 6 was set up for us by `spawn` along with --net-return.
        NetReturn::new(unsafe { OwnedFd::from_raw_fd(NET_FD) }, engine.clone(), moved)
    });
    let ended = supervise(&conn, program, &signals);
    drop(conn);
    // Before the engine learns of the end (our exit), which starts its network teardown.
    if let Some(n) = net {
        n.give_back();
    }
    drain_outputs(&args.drain, DRAIN_TIMEOUT);
    match ended {
        Ok(Ended::Exited(code)) => code,
        Ok(Ended::Killed(sig)) => die_of(sig),
        Err(e) => {
            log::error!("supervisor of pid {}: {e:#}", args.pid);
            255
        }
    }
}

/// Where the supervisor finds its copies of the caller's stdout and stderr.
const DRAIN_FDS: [RawFd; 2] = [4, 5];
/// Where the supervisor finds the container's network namespace (`--net-return`).
const NET_FD: RawFd = 6;
/// How long the supervisor waits for the engine to read the program's last output.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

fn is_pipe(fd: RawFd) -> bool {
    // SAFETY: fstat into a zeroed struct; fd may be closed (then it is not a pipe).
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFIFO
    }
}

/// Wait (bounded) until nothing the program wrote is left unread in these pipes, then
/// close them. FIONREAD on a pipe counts the bytes in its buffer, from either end.
pub fn drain_outputs(fds: &[RawFd], timeout: std::time::Duration) {
    let deadline = std::time::Instant::now() + timeout;
    for &fd in fds.iter().filter(|fd| is_pipe(**fd)) {
        loop {
            let mut unread: libc::c_int = 0;
            // SAFETY: FIONREAD writes one int.
            let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut unread) };
            if rc != 0 || unread == 0 || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // SAFETY: the descriptor was handed to us for this and is not used elsewhere.
        unsafe { libc::close(fd) };
    }
}

/// Terminate by signal `sig` (without a core dump); 128+sig if it does not kill us.
fn die_of(sig: i32) -> i32 {
    // SAFETY: plain syscalls on this process; no core file, default action, unblocked.
    unsafe {
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
    }
    128 + sig
}

/// Block the signals a supervisor forwards and read them from a signalfd instead.
pub fn forwarded_signals() -> Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(*s);
    }
    mask.thread_block().context("sigprocmask")?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).context("signalfd")
}

/// Wait for init's `Exit`, forwarding signals, and say how the process ended.
pub fn supervise(conn: &OwnedFd, program: ProcRef, signals: &SignalFd) -> Result<Ended> {
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
                Ok(r) => match r.message {
                    Reply::Exit { signal: Some(s), .. } => return Ok(Ended::Killed(s)),
                    Reply::Exit { code, .. } => return Ok(Ended::Exited(code.unwrap_or(255))),
                    _ => {}
                },
                // The container went away without a report: it was killed.
                Err(WireError::Closed) | Err(WireError::Io(_)) => return Ok(Ended::Killed(libc::SIGKILL)),
                Err(WireError::Invalid(m)) => log::warn!("ignoring a malformed message from nexcage-init: {m}"),
            }
        }
    }
}
