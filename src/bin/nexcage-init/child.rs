//! Forking one OCI process: stdio (received fds or a new pty), session, settings
//! (apply.rs), then either waiting at a gate for `Start` (the container's program) or
//! exec'ing at once (exec).
//!
//! Child -> init status pipe (close-on-exec, so exec success reads as end of file), one
//! line per item: `W<text>` warning, `D<field>` a setting left to the host (see
//! apply.rs), `R` prepared and waiting at the gate, `E<text>` error (the child then
//! exits 127). init -> child gate pipe: one byte `G` = go.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use crate::apply;
use crate::wire::{Hook, ProcessSpec};

/// A forked process, prepared (and waiting at the gate) or already exec'd.
pub struct Spawned {
    pub pid: Pid,
    /// Write end of the gate (gated processes only).
    pub gate: Option<OwnedFd>,
    /// Read end of the status pipe (gated processes: read again after `G`).
    pub status: Option<OwnedFd>,
    /// The pty master, for the host (terminal processes only).
    pub master: Option<OwnedFd>,
    pub warnings: Vec<String>,
    pub deferred: Vec<String>,
}

/// What the child needs besides the spec.
pub struct SpawnInput<'a> {
    pub spec: &'a ProcessSpec,
    /// stdin, stdout, stderr (absent with a terminal), then preserved fds.
    pub fds: Vec<OwnedFd>,
    pub preserved: usize,
    pub gated: bool,
    pub hooks: &'a [Hook],
}

/// Fork and prepare. For a gated process returns once it waits at the gate; otherwise
/// once it has exec'd.
pub fn spawn(mut input: SpawnInput) -> Result<Spawned, String> {
    let expected = if input.spec.terminal { input.preserved } else { 3 + input.preserved };
    if input.fds.len() != expected {
        return Err(format!(
            "expected {expected} fds (stdio unless terminal, then preserved), got {}",
            input.fds.len()
        ));
    }
    let mut targets: Vec<RawFd> = input.fds.iter().map(|f| f.as_raw_fd()).collect();
    let mut master = None;
    if input.spec.terminal {
        let (m, slave) = open_pty(input.spec)?;
        let s = slave.as_raw_fd();
        targets.splice(0..0, [s, s, s]);
        // Kept open (in `fds`) until the fork.
        input.fds.push(slave);
        master = Some(m);
    }
    spawn_with(input, targets, master)
}

fn spawn_with(input: SpawnInput, targets: Vec<RawFd>, master: Option<OwnedFd>) -> Result<Spawned, String> {
    let (status_r, status_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let gate = if input.gated { Some(pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?) } else { None };
    // SAFETY: init is single-threaded, so the child may allocate and run ordinary code.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(status_r);
            let gate_r = gate.map(|(r, w)| {
                drop(w);
                r
            });
            let err = child_main(&input, &targets, status_w.as_raw_fd(), gate_r.as_ref().map(|g| g.as_raw_fd()));
            let mut f = std::fs::File::from(status_w);
            let _ = f.write_all(format!("E{}\n", err.replace('\n', " ")).as_bytes());
            // SAFETY: leave without running the parent's destructors or atexit handlers.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop(status_w);
            drop(input.fds);
            let gate_w = gate.map(|(r, w)| {
                drop(r);
                w
            });
            let mut status = std::fs::File::from(status_r);
            match read_status(&mut status, input.gated) {
                Ok(Report { warnings, deferred }) => Ok(Spawned {
                    pid: child,
                    gate: gate_w,
                    status: input.gated.then(|| OwnedFd::from(status)),
                    master,
                    warnings,
                    deferred,
                }),
                Err(e) => {
                    // It exits (127) by itself after an error; reaped by the main loop.
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    Err(e)
                }
            }
        }
    }
}

/// What the child reported besides success.
#[derive(Default)]
pub struct Report {
    pub warnings: Vec<String>,
    pub deferred: Vec<String>,
}

/// Read status lines: until `R` (when `until_ready`) or end of file (exec done).
pub fn read_status(f: &mut std::fs::File, until_ready: bool) -> Result<Report, String> {
    let mut report = Report::default();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[1..line.len() - 1]).into_owned();
            match line[0] {
                b'W' => report.warnings.push(text),
                b'D' => report.deferred.push(text),
                b'E' => return Err(text),
                b'R' if until_ready => return Ok(report),
                _ => {}
            }
        }
        match f.read(&mut chunk) {
            Ok(0) => {
                return if until_ready { Err("the process exited while being prepared".into()) } else { Ok(report) };
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("status pipe: {e}")),
        }
    }
}

fn open_pty(spec: &ProcessSpec) -> Result<(OwnedFd, OwnedFd), String> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("process.terminal: cannot open /dev/ptmx: {e}"))?;
    grantpt(&master).map_err(|e| format!("process.terminal: grantpt: {e}"))?;
    unlockpt(&master).map_err(|e| format!("process.terminal: unlockpt: {e}"))?;
    let name = ptsname_r(&master).map_err(|e| format!("process.terminal: ptsname: {e}"))?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("process.terminal: cannot open {name}: {e}"))?;
    // SAFETY: open returned a new fd we own.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    // SAFETY: the master fd is valid; OwnedFd takes it over from PtyMaster.
    let master = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(master)) };
    if let Some((rows, cols)) = spec.console_size {
        let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: valid fd and pointer.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    // The process owns its terminal (best effort: devpts may refuse in odd setups).
    let _ = nix::unistd::fchown(slave.as_raw_fd(), Some(spec.uid.into()), None);
    Ok((master, slave))
}

/// Runs in the child; returns only with an error message.
fn child_main(input: &SpawnInput, targets: &[RawFd], status_w: RawFd, gate_r: Option<RawFd>) -> String {
    reset_signals();
    // SAFETY: setsid has no preconditions.
    if unsafe { libc::setsid() } < 0 {
        return format!("setsid: {}", std::io::Error::last_os_error());
    }
    // Move every fd we keep above all of them, then into place.
    let floor = targets.iter().chain([&status_w]).chain(gate_r.iter()).copied().max().unwrap_or(2) + 1;
    let floor = floor.max(targets.len() as RawFd);
    let high = |fd: RawFd| fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(floor));
    let Ok(status_w) = high(status_w) else { return "dup status fd".into() };
    let gate_r = match gate_r.map(high).transpose() {
        Ok(g) => g,
        Err(e) => return format!("dup gate fd: {e}"),
    };
    let mut moved = Vec::with_capacity(targets.len());
    for fd in targets {
        match high(*fd) {
            Ok(h) => moved.push(h),
            Err(e) => return format!("dup fd {fd}: {e}"),
        }
    }
    for (i, fd) in moved.iter().enumerate() {
        // SAFETY: both fds are valid; dup2 clears close-on-exec on the target.
        if unsafe { libc::dup2(*fd, i as RawFd) } < 0 {
            return format!("dup2 to fd {i}: {}", std::io::Error::last_os_error());
        }
    }
    // Everything else closes at exec (the status pipe then reads end of file).
    // SAFETY: close_range with the CLOEXEC flag only changes flags.
    unsafe { libc::syscall(libc::SYS_close_range, targets.len() as u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    // SAFETY: status_w is our dup of the status pipe; never closed here (exec closes it).
    let mut status = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(status_w) });
    if input.spec.terminal {
        // SAFETY: fd 0 is the pty slave; we are a session leader without a terminal.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
            return format!("process.terminal: TIOCSCTTY: {}", std::io::Error::last_os_error());
        }
    }

    let apply::Applied { exe, warnings, deferred } = match apply::apply(input.spec) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let argv: Vec<CString> = input.spec.args.iter().filter_map(|a| CString::new(a.as_bytes()).ok()).collect();
    let envp = apply::environment(input.spec);
    let mut report = String::new();
    for w in &warnings {
        report.push_str(&format!("W{}\n", w.replace('\n', " ")));
    }
    for d in &deferred {
        report.push_str(&format!("D{d}\n"));
    }
    if let Some(g) = gate_r {
        report.push_str("R\n");
        let _ = status.write_all(report.as_bytes());
        // SAFETY: g is our gate fd.
        let mut gate = unsafe { std::fs::File::from_raw_fd(g) };
        let mut msg = Vec::new();
        let _ = gate.read_to_end(&mut msg);
        drop(gate);
        if msg.first() != Some(&b'G') {
            // The gate closed without `G`: init is going away (the container is deleted).
            // SAFETY: leave without running destructors.
            unsafe { libc::_exit(0) }
        }
        let state = String::from_utf8_lossy(&msg[1..]).into_owned();
        for hook in input.hooks {
            if let Err(e) = run_hook(hook, &state) {
                return e;
            }
        }
    } else if !report.is_empty() {
        let _ = status.write_all(report.as_bytes());
    }
    // With no_new_privs the filter goes on last (apply loaded it earlier otherwise).
    if let (Some(prog), true) = (&input.spec.seccomp, input.spec.no_new_privileges) {
        if let Err(e) = apply::load_seccomp(prog) {
            return e;
        }
    }
    match nix::unistd::execve(&exe, &argv, &envp) {
        Err(e) => format!("exec {:?}: {e}", exe),
        Ok(never) => match never {},
    }
}

fn reset_signals() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in Signal::iterator() {
        if s != Signal::SIGKILL && s != Signal::SIGSTOP {
            // SAFETY: restoring default dispositions.
            let _ = unsafe { sigaction(s, &dfl) };
        }
    }
    let _ = SigSet::all().thread_unblock();
}

/// Run one startContainer hook with the state on stdin, bounded by its timeout.
fn run_hook(hook: &Hook, state: &str) -> Result<(), String> {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut cmd = Command::new(&hook.path);
    if let Some((first, rest)) = hook.args.split_first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, first);
        cmd.args(rest);
    }
    cmd.env_clear().envs(hook.env.iter().filter_map(|e| e.split_once('='))).stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("startContainer hook {}: {e}", hook.path))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook.timeout.map(|t| Instant::now() + Duration::from_secs(t));
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("startContainer hook {} failed: {st}", hook.path)),
            Ok(None) => {}
            Err(e) => return Err(format!("startContainer hook {}: {e}", hook.path)),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("startContainer hook {} timed out", hook.path));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
