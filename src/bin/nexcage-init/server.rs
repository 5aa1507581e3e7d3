//! init's event loop: the listening socket, one connection per host request, signals
//! (SIGCHLD: reap and report; termination signals: forward to the program).

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    accept4, bind, getsockopt, listen, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::child::{self, SpawnInput};
use crate::wire::{self, Reply, Request, WireError};

/// Signals init forwards to the program (SIGPWR, LXC's halt signal, becomes SIGTERM).
const FORWARDED: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGPWR,
];

struct Conn {
    id: u64,
    fd: OwnedFd,
}

struct Program {
    pid: Pid,
    conn: u64,
    gate: Option<OwnedFd>,
    status: Option<OwnedFd>,
}

pub struct Server {
    listener: OwnedFd,
    signals: SignalFd,
    conns: Vec<Conn>,
    next_id: u64,
    program: Option<Program>,
    /// Exec'd processes: pid -> connection id.
    execs: HashMap<i32, u64>,
}

extern "C" fn ignore(_: libc::c_int) {}

impl Server {
    pub fn new() -> Result<Server, String> {
        // Close what LXC leaves open beyond stdio (the console stays on 0-2).
        // SAFETY: close_range on fds we do not use.
        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        // A pid namespace's init only receives signals it has a handler for: install one
        // (never called, the signals are blocked and read from the signalfd).
        let handler = SigAction::new(SigHandler::Handler(ignore), SaFlags::SA_RESTART, SigSet::empty());
        for s in FORWARDED.iter().chain([&Signal::SIGCHLD]) {
            mask.add(*s);
            // SAFETY: installing a handler that does nothing.
            unsafe { sigaction(*s, &handler) }.map_err(|e| format!("sigaction {s}: {e}"))?;
        }
        let pipe = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: ignoring SIGPIPE.
        unsafe { sigaction(Signal::SIGPIPE, &pipe) }.map_err(|e| format!("sigaction SIGPIPE: {e}"))?;
        mask.thread_block().map_err(|e| format!("sigprocmask: {e}"))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| format!("signalfd: {e}"))?;

        let path = wire::SOCKET_IN_CONTAINER;
        let _ = std::fs::remove_file(path);
        let listener =
            socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)
                .map_err(|e| format!("socket: {e}"))?;
        let addr = UnixAddr::new(path).map_err(|e| format!("{path}: {e}"))?;
        // Only root (of this container, and host root) may connect.
        // SAFETY: umask cannot fail.
        let old = unsafe { libc::umask(0o177) };
        let bound = bind(listener.as_raw_fd(), &addr);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        bound.map_err(|e| {
            format!("cannot bind {path}: {e} (is the run directory mounted at {}?)", wire::RUN_DIR_IN_CONTAINER)
        })?;
        listen(&listener, Backlog::new(64).expect("valid backlog")).map_err(|e| format!("listen: {e}"))?;
        Ok(Server { listener, signals, conns: Vec::new(), next_id: 1, program: None, execs: HashMap::new() })
    }

    /// Serve until the program has exited (or its connection closed); returns init's
    /// exit status.
    pub fn run(mut self) -> Result<i32, String> {
        loop {
            let mut fds = vec![
                PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            ];
            let ids: Vec<u64> = self.conns.iter().map(|c| c.id).collect();
            for c in &self.conns {
                // SAFETY: the fd lives in self.conns for the duration of this poll.
                fds.push(PollFd::new(unsafe { BorrowedFd::borrow_raw(c.fd.as_raw_fd()) }, PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(format!("poll: {e}")),
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            let sig_ready = ready(&fds[1]);
            let listen_ready = ready(&fds[0]);
            let conn_ready: Vec<u64> = fds[2..].iter().zip(&ids).filter(|(f, _)| ready(f)).map(|(_, id)| *id).collect();
            drop(fds);
            if sig_ready {
                if let Some(code) = self.handle_signals() {
                    return Ok(code);
                }
            }
            if listen_ready {
                self.accept();
            }
            for id in conn_ready {
                if let Some(code) = self.handle_conn(id) {
                    return Ok(code);
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            let fd = match accept4(self.listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                // SAFETY: accept4 returned a new fd we own.
                Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            };
            // Peers inside the container have a pid here; host processes read as 0.
            match getsockopt(&fd, sockopt::PeerCredentials) {
                Ok(c) if c.pid() == 0 => {}
                _ => continue,
            }
            let id = self.next_id;
            self.next_id += 1;
            self.conns.push(Conn { id, fd });
        }
    }

    fn conn_fd(&self, id: u64) -> Option<BorrowedFd<'_>> {
        self.conns.iter().find(|c| c.id == id).map(|c| c.fd.as_fd())
    }

    fn close(&mut self, id: u64) {
        self.conns.retain(|c| c.id != id);
    }

    fn reply(&self, id: u64, r: &Reply, fds: &[RawFd], pid: Option<i32>) {
        if let Some(fd) = self.conn_fd(id) {
            let _ = wire::send(fd, r, fds, pid);
        }
    }

    /// Handle one readable connection; Some(code) when init must exit.
    fn handle_conn(&mut self, id: u64) -> Option<i32> {
        let fd = self.conn_fd(id)?;
        let received = wire::recv::<Request>(fd);
        match received {
            Err(WireError::Closed) | Err(WireError::Io(_)) => self.disconnected(id),
            Err(WireError::Invalid(m)) => {
                self.reply(id, &Reply::Error { message: m }, &[], None);
                self.close(id);
                None
            }
            Ok(r) if r.message.protocol() > wire::PROTOCOL => {
                let message = format!(
                    "this container's nexcage-init speaks protocol {} (it is older than this nexcage), and the request needs protocol {}: leave out what needs it, or recreate the container",
                    wire::PROTOCOL,
                    r.message.protocol()
                );
                self.reply(id, &Reply::Error { message }, &[], None);
                self.close(id);
                None
            }
            Ok(r) => {
                match r.message {
                    Request::Spawn { process, gated, hostname, start_hooks, preserved, .. } => {
                        if gated && self.program.is_some() {
                            let message = "the container's program is already prepared".to_string();
                            self.reply(id, &Reply::Error { message }, &[], None);
                            return None;
                        }
                        if let Some(h) = hostname.filter(|h| !h.is_empty()) {
                            if nix::unistd::gethostname().ok().and_then(|c| c.into_string().ok()).as_deref()
                                != Some(h.as_str())
                            {
                                if let Err(e) = nix::unistd::sethostname(&h) {
                                    let message = format!("hostname {h:?}: {e}");
                                    self.reply(id, &Reply::Error { message }, &[], None);
                                    return None;
                                }
                            }
                        }
                        let input = SpawnInput { spec: &process, fds: r.fds, preserved, gated, hooks: &start_hooks };
                        match child::spawn(input) {
                            Ok(s) => {
                                let master: Vec<RawFd> = s.master.iter().map(|m| m.as_raw_fd()).collect();
                                self.reply(
                                    id,
                                    &Reply::Ready {
                                        warnings: s.warnings,
                                        deferred: s.deferred,
                                        protocol: wire::PROTOCOL,
                                    },
                                    &master,
                                    Some(s.pid.as_raw()),
                                );
                                if gated {
                                    self.program =
                                        Some(Program { pid: s.pid, conn: id, gate: s.gate, status: s.status });
                                } else {
                                    self.execs.insert(s.pid.as_raw(), id);
                                }
                            }
                            Err(message) => self.reply(id, &Reply::Error { message }, &[], None),
                        }
                    }
                    Request::Start { state } => {
                        let reply = self.start(&state);
                        self.reply(id, &reply, &[], None);
                        self.close(id);
                    }
                }
                None
            }
        }
    }

    fn start(&mut self, state: &str) -> Reply {
        let Some(p) = self.program.as_mut() else {
            return Reply::Error { message: "no program prepared in this container".into() };
        };
        let (Some(gate), Some(status)) = (p.gate.take(), p.status.take()) else {
            return Reply::Error { message: "the container's program was already started".into() };
        };
        let mut gate = std::fs::File::from(gate);
        // `G`, then the state for the startContainer hooks, then end of file.
        if gate.write_all(b"G").and_then(|()| gate.write_all(state.as_bytes())).is_err() {
            return Reply::Error { message: "the container's program is gone".into() };
        }
        drop(gate);
        let mut status = std::fs::File::from(status);
        match child::read_status(&mut status, false) {
            Ok(_) => Reply::Started,
            Err(message) => Reply::Error { message },
        }
    }

    fn disconnected(&mut self, id: u64) -> Option<i32> {
        self.close(id);
        if self.program.as_ref().is_some_and(|p| p.conn == id) {
            // The supervisor on the host is gone: nobody can report the program's end.
            return Some(self.terminate(None));
        }
        if let Some((&pid, _)) = self.execs.iter().find(|(_, c)| **c == id) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        None
    }

    fn handle_signals(&mut self) -> Option<i32> {
        let mut reap = false;
        while let Ok(Some(info)) = self.signals.read_signal() {
            let signo = info.ssi_signo as i32;
            if signo == libc::SIGCHLD {
                reap = true;
            } else if let Some(p) = &self.program {
                let sig = if signo == libc::SIGPWR { Signal::SIGTERM } else { Signal::try_from(signo).ok()? };
                let _ = kill(p.pid, sig);
            }
        }
        if reap {
            return self.reap();
        }
        None
    }

    /// Collect exited children; report the program's and exec'd processes' ends.
    fn reap(&mut self) -> Option<i32> {
        loop {
            let st = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return None,
                Ok(st) => st,
            };
            let Some((pid, reply)) = exit_reply(st) else { continue };
            if self.program.as_ref().is_some_and(|p| p.pid == pid) {
                let conn = self.program.as_ref().map(|p| p.conn).unwrap_or(0);
                self.reply(conn, &reply, &[], None);
                return Some(self.terminate(reply.exit_status()));
            }
            if let Some(conn) = self.execs.remove(&pid.as_raw()) {
                self.reply(conn, &reply, &[], None);
                self.close(conn);
            }
        }
    }

    /// The program is done (or its supervisor gone): kill everything else, report the
    /// exec'd processes, and let the container stop.
    fn terminate(&mut self, status: Option<i32>) -> i32 {
        if let Some(p) = &self.program {
            let _ = kill(p.pid, Signal::SIGKILL);
        }
        // pid 1 sending to -1 reaches every other process of the pid namespace.
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        loop {
            match waitpid(None, None) {
                Ok(st) => {
                    if let Some((pid, reply)) = exit_reply(st) {
                        if let Some(conn) = self.execs.remove(&pid.as_raw()) {
                            self.reply(conn, &reply, &[], None);
                        }
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        status.unwrap_or(137)
    }
}

fn exit_reply(st: WaitStatus) -> Option<(Pid, Reply)> {
    match st {
        WaitStatus::Exited(pid, code) => Some((pid, Reply::Exit { code: Some(code), signal: None })),
        WaitStatus::Signaled(pid, sig, _) => Some((pid, Reply::Exit { code: None, signal: Some(sig as i32) })),
        _ => None,
    }
}
