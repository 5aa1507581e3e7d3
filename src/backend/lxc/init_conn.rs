//! The host side of the conversation with nexcage-init (see the nexcage-wire crate).
//!
//! The socket lives in the run directory, which the container's root can write to, so
//! before trusting a connection we open the path without following a symlink (`O_PATH |
//! O_NOFOLLOW`), check that what we opened is a socket, and connect to that very inode
//! (through `/proc/self/fd/N`, so the path cannot be swapped in between). The peer
//! (SO_PEERCRED) must then be the init this container recorded (same pid and start time)
//! once there is one (start, exec), and the init (pid 1) of a nested pid namespace when
//! create connects for the first time: a socket of another container planted in the run
//! directory (a hard link) reaches that container's init, which is not ours.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::sys::socket::{connect, getsockopt, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{fstat, Mode, SFlag};

use super::procfs::{self, ProcRef};
use super::wire::{self, Reply, Request, WireError};

pub struct InitConn {
    fd: OwnedFd,
    /// Host pid of the container's init.
    pub init_pid: i32,
    path: PathBuf,
}

/// Why a connection attempt failed: worth retrying (init has not made its socket yet), or
/// refused for good.
enum Attempt {
    NotYet(anyhow::Error),
    Refused(anyhow::Error),
}

/// A process prepared (or started, for exec) by init.
pub struct Spawned {
    /// Host pid of the process.
    pub pid: i32,
    pub master: Option<OwnedFd>,
    pub warnings: Vec<String>,
    /// Settings init left to the host (host_limits.rs).
    pub deferred: Vec<String>,
    /// The init's protocol (wire::PROTOCOL of its build).
    pub protocol: u32,
}

impl InitConn {
    /// Connect to init's socket, retrying until `timeout` while it does not exist yet
    /// (init creates it right after LXC starts it). `recorded`: the init this container
    /// recorded (None only for create's first connection, before there is one).
    pub fn connect(path: &Path, timeout: Duration, recorded: Option<ProcRef>) -> Result<InitConn> {
        Self::connect_watching(path, timeout, recorded, &|| None)
    }

    /// [`connect`](Self::connect), giving up early when `failed` (polled every 100 ms
    /// while the socket is not there) says why init never will answer.
    pub fn connect_watching(
        path: &Path,
        timeout: Duration,
        recorded: Option<ProcRef>,
        failed: &dyn Fn() -> Option<String>,
    ) -> Result<InitConn> {
        let start = Instant::now();
        let mut polled = start;
        loop {
            match Self::try_connect(path, recorded) {
                Ok(c) => return Ok(c),
                // Not a socket, or not our init: waiting does not change that.
                Err(Attempt::Refused(e)) => return Err(e),
                Err(Attempt::NotYet(e)) => {
                    if polled.elapsed() >= Duration::from_millis(100) || start.elapsed() >= timeout {
                        polled = Instant::now();
                        if let Some(why) = failed() {
                            return Err(e.context(format!("nexcage-init did not answer on {}: {why}", path.display())));
                        }
                    }
                    if start.elapsed() >= timeout {
                        return Err(
                            e.context(format!("nexcage-init did not answer on {} within {timeout:?}", path.display()))
                        );
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    fn try_connect(path: &Path, recorded: Option<ProcRef>) -> Result<InitConn, Attempt> {
        let not_yet = |e: anyhow::Error| Attempt::NotYet(e);
        let node = open(path, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
            .with_context(|| format!("cannot open {}", path.display()))
            .map_err(not_yet)?;
        let st = fstat(node.as_raw_fd()).with_context(|| format!("cannot stat {}", path.display())).map_err(not_yet)?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
            return Err(Attempt::Refused(anyhow!("{} is not a socket; refusing to use it", path.display())));
        }
        let fd = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)
            .map_err(|e| not_yet(e.into()))?;
        let at = UnixAddr::new(&PathBuf::from(format!("/proc/self/fd/{}", node.as_raw_fd())))
            .map_err(|e| not_yet(e.into()))?;
        connect(fd.as_raw_fd(), &at)
            .with_context(|| format!("cannot connect to {}", path.display()))
            .map_err(not_yet)?;
        let peer = getsockopt(&fd, sockopt::PeerCredentials).map_err(|e| not_yet(e.into()))?.pid();
        let refused = match recorded {
            Some(init) if init.pid != peer || !init.alive() => {
                Some(format!("the peer (pid {peer}) is not this container's nexcage-init (pid {})", init.pid))
            }
            None if !procfs::is_namespace_init(peer) => {
                Some(format!("the peer (pid {peer}) is not a container's init"))
            }
            _ => None,
        };
        if let Some(why) = refused {
            return Err(Attempt::Refused(anyhow!("{}: {why}; refusing to talk to it", path.display())));
        }
        setsockopt(&fd, sockopt::PassCred, &true).map_err(|e| not_yet(e.into()))?;
        Ok(InitConn { fd, init_pid: peer, path: path.to_path_buf() })
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    fn recv(&self) -> Result<wire::Received<Reply>> {
        wire::recv(self.fd.as_fd()).map_err(|e| match e {
            WireError::Closed => anyhow!("nexcage-init closed the connection (the container stopped?)"),
            e => anyhow!("reading from nexcage-init at {}: {e}", self.path.display()),
        })
    }

    fn send(&self, r: &Request, fds: &[RawFd]) -> Result<()> {
        wire::send(self.fd.as_fd(), r, fds, None)
            .map_err(|e| anyhow!("writing to nexcage-init at {}: {e}", self.path.display()))
    }

    /// Ask init to prepare (gated) or run a process with these fds (stdio, preserved).
    pub fn spawn(&self, request: &Request, fds: &[RawFd]) -> Result<Spawned> {
        self.send(request, fds)?;
        let r = self.recv()?;
        match r.message {
            Reply::Ready { warnings, deferred, protocol } => {
                let pid =
                    r.pid.filter(|p| *p > 0).ok_or_else(|| anyhow!("nexcage-init did not report the process id"))?;
                Ok(Spawned { pid, master: r.fds.into_iter().next(), warnings, deferred, protocol })
            }
            Reply::Error { message } => Err(anyhow!(message)),
            other => bail!("unexpected answer from nexcage-init: {other:?}"),
        }
    }

    /// Let the prepared program exec (it runs the startContainer hooks first, with
    /// `state` on their stdin).
    pub fn start(&self, state: &str) -> Result<()> {
        self.send(&Request::Start { state: state.to_string() }, &[])?;
        match self.recv()?.message {
            Reply::Started => Ok(()),
            Reply::Error { message } => Err(anyhow!(message)),
            other => bail!("unexpected answer from nexcage-init: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_init_that_says_it_failed_is_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("init.sock");
        let t0 = Instant::now();
        let e = InitConn::connect_watching(&sock, Duration::from_secs(30), None, &|| {
            (t0.elapsed() > Duration::from_millis(200)).then(|| "nexcage-init: socket: EACCES".to_string())
        })
        .err()
        .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(5), "gave up early: {:?}", t0.elapsed());
        assert!(format!("{e:#}").contains("did not answer on") && format!("{e:#}").contains("socket: EACCES"), "{e:#}");
        let e = InitConn::connect(&sock, Duration::from_millis(50), None).err().unwrap();
        assert!(format!("{e:#}").contains("within 50ms"), "{e:#}");
    }
}
