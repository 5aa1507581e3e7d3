//! The host side of the conversation with nexcage-init (see the nexcage-wire crate).
//!
//! The socket lives in the run directory, which the container's root can write to, so
//! before trusting a connection we check that the path is a socket (not a planted
//! symlink to some host daemon) and that the peer is the init (pid 1) of a nested pid
//! namespace.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::socket::{connect, getsockopt, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};

use super::procfs;
use super::wire::{self, Reply, Request, WireError};

pub struct InitConn {
    fd: OwnedFd,
    /// Host pid of the container's init.
    pub init_pid: i32,
    path: PathBuf,
}

/// A process prepared (or started, for exec) by init.
pub struct Spawned {
    /// Host pid of the process.
    pub pid: i32,
    pub master: Option<OwnedFd>,
    pub warnings: Vec<String>,
    /// Settings init left to the host (host_limits.rs).
    pub deferred: Vec<String>,
}

impl InitConn {
    /// Connect to init's socket, retrying until `timeout` while it does not exist yet
    /// (init creates it right after LXC starts it).
    pub fn connect(path: &Path, timeout: Duration) -> Result<InitConn> {
        let deadline = Instant::now() + timeout;
        loop {
            match Self::try_connect(path) {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() >= deadline => {
                    return Err(
                        e.context(format!("nexcage-init did not answer on {} within {timeout:?}", path.display()))
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn try_connect(path: &Path) -> Result<InitConn> {
        let md = std::fs::symlink_metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
        if !md.file_type().is_socket() {
            bail!("{} is not a socket", path.display());
        }
        let fd = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)?;
        connect(fd.as_raw_fd(), &UnixAddr::new(path)?)
            .with_context(|| format!("cannot connect to {}", path.display()))?;
        let peer = getsockopt(&fd, sockopt::PeerCredentials)?.pid();
        if !procfs::is_namespace_init(peer) {
            bail!("{}: the peer (pid {peer}) is not a container's init; refusing to talk to it", path.display());
        }
        setsockopt(&fd, sockopt::PassCred, &true)?;
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
            Reply::Ready { warnings, deferred } => {
                let pid =
                    r.pid.filter(|p| *p > 0).ok_or_else(|| anyhow!("nexcage-init did not report the process id"))?;
                Ok(Spawned { pid, master: r.fds.into_iter().next(), warnings, deferred })
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
