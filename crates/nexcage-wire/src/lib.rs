//! The protocol between nexcage (on the host) and nexcage-init (pid 1 in the container).
//!
//! One crate for both sides (nexcage has it as `backend::lxc::wire`, the static
//! nexcage-init links it too), so they always agree.
//!
//! Transport: a `SOCK_SEQPACKET` unix socket that nexcage-init listens on at
//! [`SOCKET_IN_CONTAINER`]; on the host the same inode is `<run dir>/init.sock` (the run
//! dir is bind-mounted into the container). One message = one JSON document in one
//! datagram, with file descriptors (`SCM_RIGHTS`) and credentials (`SCM_CREDENTIALS`)
//! attached where noted. Host processes connect; nexcage-init accepts only peers outside
//! its pid namespace (their pid reads as 0 there), so container processes cannot use it.
//!
//! Conversations:
//! - create: `Spawn { gated: true }` + the caller's stdio fds -> `Ready` (credentials carry
//!   the program's pid, which the kernel translates into the host's pid namespace; with a
//!   terminal the pty master is attached) or `Error`. The connection then stays open:
//!   it later carries `Exit`, and its closing (the supervisor died) makes init stop the
//!   container.
//! - start: a new connection sends `Start` -> `Started` or `Error`.
//! - exec: `Spawn { gated: false }` -> `Ready` (process already exec'd) ... `Exit`.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags, UnixCredentials};
use serde::{Deserialize, Serialize};

/// The protocol this build speaks. nexcage records the protocol of the init it started
/// (`Reply::Ready::protocol`; an init older than the field is 0) and asks a running
/// container's init nothing it cannot do, so containers started before an upgrade keep
/// working; each request says the protocol it needs, and an init refuses a request it is
/// too old for (silently ignoring an unknown field could drop, e.g., a security setting).
/// 0: the protocol before versioning (nexcage up to commit 5c16c15). 1: `protocol` in
/// requests and in `Ready`; [`ProcessSpec::apparmor_profile`].
pub const PROTOCOL: u32 = 1;

/// Where nexcage-init is bind-mounted (read-only) inside the container; `lxc.init.cmd`.
pub const INIT_IN_CONTAINER: &str = "/dev/.nexcage-init";
/// Where the per-container run directory is bind-mounted inside the container.
pub const RUN_DIR_IN_CONTAINER: &str = "/dev/.nexcage";
/// Name of init's socket in the run directory.
pub const SOCKET_NAME: &str = "init.sock";
/// `RUN_DIR_IN_CONTAINER/SOCKET_NAME`.
pub const SOCKET_IN_CONTAINER: &str = "/dev/.nexcage/init.sock";
/// Largest message (a process spec with a very large environment is refused).
pub const MAX_MESSAGE: usize = 192 * 1024;
/// Most fds one message may carry (the kernel's SCM_MAX_FD is 253).
pub const MAX_FDS: usize = 250;

/// The process to run, already validated and resolved on the host (numbers, not names,
/// except capabilities, which init checks against what the container has).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    #[serde(default)]
    pub umask: Option<u32>,
    #[serde(default)]
    pub terminal: bool,
    /// (rows, columns)
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// None: leave the capability sets as init has them.
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// (class, priority) for ioprio_set.
    #[serde(default)]
    pub io_priority: Option<(i32, i32)>,
    /// sched_setattr(2) parameters.
    #[serde(default)]
    pub scheduler: Option<Scheduler>,
    /// CPUs for sched_setaffinity(2) (execCPUAffinity).
    #[serde(default)]
    pub cpu_affinity: Option<Vec<usize>>,
    /// The container's seccomp filter (`linux.seccomp`, compiled on the host), loaded
    /// right before execve; exec'd processes get the container's too.
    #[serde(default)]
    pub seccomp: Option<SeccompProgram>,
    /// The AppArmor profile to enter at execve (`exec NAME` on the process's own
    /// `attr/apparmor/exec`), already loaded into the CT's policy namespace by the host.
    #[serde(default)]
    pub apparmor_profile: Option<String>,
}

impl ProcessSpec {
    /// The protocol an init needs to apply all of this spec (see [`PROTOCOL`]).
    pub fn protocol(&self) -> u32 {
        if self.apparmor_profile.is_some() {
            1
        } else {
            0
        }
    }
}

/// A classic BPF seccomp program: `struct sock_filter` records (8 bytes each, native
/// byte order) and the SECCOMP_FILTER_FLAG_* bits to load it with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompProgram {
    pub bpf: Vec<u8>,
    pub flags: u32,
}

/// `struct sched_attr` fields (numbers already resolved on the host).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scheduler {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rlimit {
    /// OCI name, e.g. RLIMIT_NOFILE (for messages).
    pub name: String,
    pub resource: i32,
    pub soft: u64,
    pub hard: u64,
}

/// Capability names as in OCI (`CAP_KILL`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub inheritable: Vec<String>,
    pub permitted: Vec<String>,
    pub ambient: Vec<String>,
}

/// An OCI hook run inside the container (startContainer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hook {
    pub path: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// The container's mount hardening, applied by nexcage-init as LXC's mount hook
/// (`nexcage-init --lxc-mount-hook RUN_DIR`, which reads it from `RUN_DIR/`
/// [`MOUNT_HOOK_SETUP`]) in runc's order: the sysctls, the `nosuid`, `nodev`, `noexec`, `ro` of the
/// bundle's `/dev` and `/sys` mounts, which LXC mounts with its own options (autodev's
/// /dev has none; an unprivileged container's /sys is read-write), `linux.readonlyPaths`
/// (bind-remounted read-only), `linux.maskedPaths` (`/dev/null` bound over files, an
/// empty read-only tmpfs over directories). Missing paths are skipped, as runc does.
/// File of the run directory holding the [`ContainerSetup`] (JSON) for the mount hook.
pub const MOUNT_HOOK_SETUP: &str = "setup.json";
/// File of the run directory where a failed mount hook says why.
pub const MOUNT_HOOK_ERROR: &str = "mount-hook.error";
/// File of the run directory where nexcage-init says why it could not start serving
/// (its stderr is the CT's console, which nobody reads).
pub const INIT_ERROR: &str = "init.error";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerSetup {
    /// `linux.sysctl` (and `domainname` as `kernel.domainname`): (key with dots, value),
    /// namespaced keys only (the mapping refuses others), written first.
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
    /// (mount point, flags to add).
    #[serde(default)]
    pub remounts: Vec<(String, Vec<String>)>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    #[serde(default)]
    pub masked_paths: Vec<String>,
    /// Bring `lo` up: the container has a network namespace of its own, which nobody
    /// else configures (Proxmox VE leaves `lo` down with `ostype: unmanaged`).
    #[serde(default)]
    pub loopback_up: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Prepare a process. Attached fds: stdin, stdout, stderr, then `preserved` extra fds
    /// (none of the three with a terminal: init makes a pty).
    Spawn {
        process: Box<ProcessSpec>,
        /// Wait for `Start` before exec (the container's program); exec at once otherwise.
        gated: bool,
        /// Set the container's hostname first when it differs (program only).
        #[serde(default)]
        hostname: Option<String>,
        /// startContainer hooks, run by the prepared process right before exec.
        #[serde(default)]
        start_hooks: Vec<Hook>,
        #[serde(default)]
        preserved: usize,
        /// The protocol this request needs ([`ProcessSpec::protocol`]).
        #[serde(default)]
        protocol: u32,
    },
    /// Let the gated program exec; `state` (OCI state JSON) is the startContainer hooks'
    /// stdin.
    Start {
        #[serde(default)]
        state: String,
    },
}

impl Request {
    /// The protocol this request needs.
    pub fn protocol(&self) -> u32 {
        match self {
            Request::Spawn { protocol, .. } => *protocol,
            Request::Start { .. } => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// The process is prepared (gated) or running (exec). Credentials: its pid.
    /// With a terminal, the pty master is attached.
    Ready {
        #[serde(default)]
        warnings: Vec<String>,
        /// Settings the container could not apply for lack of host privileges
        /// (`oomScoreAdj`, or an rlimit's OCI name), left to nexcage on the host.
        #[serde(default)]
        deferred: Vec<String>,
        /// The init's [`PROTOCOL`] (0: an init older than this field).
        #[serde(default)]
        protocol: u32,
    },
    Started,
    Error {
        message: String,
    },
    /// The process ended: exit code, or the signal that killed it.
    Exit {
        #[serde(default)]
        code: Option<i32>,
        #[serde(default)]
        signal: Option<i32>,
    },
}

impl Reply {
    /// The status a shell would report: the code, or 128+N for signal N.
    pub fn exit_status(&self) -> Option<i32> {
        match self {
            Reply::Exit { code: Some(c), .. } => Some(*c),
            Reply::Exit { signal: Some(s), .. } => Some(128 + s),
            Reply::Exit { .. } => Some(255),
            _ => None,
        }
    }
}

/// A received message with what was attached to it.
pub struct Received<T> {
    pub message: T,
    pub fds: Vec<OwnedFd>,
    /// Pid from the credentials, as seen in the receiver's pid namespace (0: not visible).
    pub pid: Option<i32>,
}

#[derive(Debug)]
pub enum WireError {
    /// The peer closed the connection.
    Closed,
    Io(std::io::Error),
    Invalid(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Closed => write!(f, "connection closed"),
            WireError::Io(e) => write!(f, "{e}"),
            WireError::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<nix::Error> for WireError {
    fn from(e: nix::Error) -> Self {
        WireError::Io(std::io::Error::from(e))
    }
}

/// Send one message with optional fds and credentials (`pid` must be the sender's own,
/// or the sender needs CAP_SYS_ADMIN over its pid namespace, as container init has).
pub fn send<T: Serialize>(
    sock: BorrowedFd,
    message: &T,
    fds: &[RawFd],
    creds_pid: Option<i32>,
) -> Result<(), WireError> {
    let body = serde_json::to_vec(message).map_err(|e| WireError::Invalid(e.to_string()))?;
    if body.len() > MAX_MESSAGE {
        return Err(WireError::Invalid(format!(
            "message of {} bytes exceeds the {MAX_MESSAGE}-byte limit (is the process environment that large?)",
            body.len()
        )));
    }
    if fds.len() > MAX_FDS {
        return Err(WireError::Invalid(format!("{} fds to pass; at most {MAX_FDS}", fds.len())));
    }
    let iov = [IoSlice::new(&body)];
    let creds = creds_pid.map(|pid| {
        UnixCredentials::from(libc::ucred {
            pid,
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        })
    });
    let mut cmsgs = Vec::with_capacity(2);
    if !fds.is_empty() {
        cmsgs.push(ControlMessage::ScmRights(fds));
    }
    if let Some(c) = &creds {
        cmsgs.push(ControlMessage::ScmCredentials(c));
    }
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EPIPE) | Err(nix::errno::Errno::ECONNRESET) => return Err(WireError::Closed),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receive one message. Fds arrive close-on-exec.
pub fn recv<T: for<'de> Deserialize<'de>>(sock: BorrowedFd) -> Result<Received<T>, WireError> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS], libc::ucred);
    let (len, fds, pid) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ECONNRESET) => return Err(WireError::Closed),
            Err(e) => return Err(e.into()),
        };
        let mut fds = Vec::new();
        let mut pid = None;
        for c in msg.cmsgs().map_err(WireError::from)? {
            match c {
                ControlMessageOwned::ScmRights(raw) => {
                    // SAFETY: the kernel just installed these fds in this process for us.
                    fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }))
                }
                ControlMessageOwned::ScmCredentials(c) => pid = Some(c.pid()),
                _ => {}
            }
        }
        if msg.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC) {
            return Err(WireError::Invalid("message truncated".into()));
        }
        break (msg.bytes, fds, pid);
    };
    if len == 0 {
        return Err(WireError::Closed);
    }
    let message =
        serde_json::from_slice(&buf[..len]).map_err(|e| WireError::Invalid(format!("malformed message: {e}")))?;
    Ok(Received { message, fds, pid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{setsockopt, socketpair, sockopt, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsFd;

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).unwrap()
    }

    #[test]
    fn request_roundtrip_with_fds_and_credentials() {
        let (a, b) = pair();
        setsockopt(&b, sockopt::PassCred, &true).unwrap();
        let req = Request::Spawn {
            process: Box::new(ProcessSpec { args: vec!["sh".into()], cwd: "/".into(), ..Default::default() }),
            gated: true,
            hostname: Some("h".into()),
            start_hooks: vec![],
            preserved: 0,
            protocol: 1,
        };
        let devnull = std::fs::File::open("/dev/null").unwrap();
        send(a.as_fd(), &req, &[devnull.as_raw_fd()], Some(std::process::id() as i32)).unwrap();
        let got: Received<Request> = recv(b.as_fd()).unwrap();
        assert_eq!(got.message, req);
        assert_eq!(got.fds.len(), 1);
        assert_eq!(got.pid, Some(std::process::id() as i32));
    }

    /// Messages of protocol 0 (before versioning) still parse, as protocol 0; a request
    /// that needs the AppArmor field says so.
    #[test]
    fn protocol_0_messages_parse_and_requirements_are_stated() {
        let old: Request = serde_json::from_str(
            r#"{"type":"spawn","process":{"args":["sh"],"env":[],"cwd":"/","uid":0,"gid":0},"gated":false}"#,
        )
        .unwrap();
        assert_eq!(old.protocol(), 0);
        let ready: Reply = serde_json::from_str(r#"{"type":"ready","warnings":[]}"#).unwrap();
        assert_eq!(ready, Reply::Ready { warnings: vec![], deferred: vec![], protocol: 0 });
        let spec = ProcessSpec { apparmor_profile: Some("p".into()), ..Default::default() };
        assert_eq!((ProcessSpec::default().protocol(), spec.protocol()), (0, 1));
        assert!(spec.protocol() <= PROTOCOL);
    }

    #[test]
    fn socket_path_is_in_the_run_dir() {
        assert_eq!(SOCKET_IN_CONTAINER, format!("{RUN_DIR_IN_CONTAINER}/{SOCKET_NAME}"));
    }

    #[test]
    fn closed_peer_is_reported() {
        let (a, b) = pair();
        drop(a);
        assert!(matches!(recv::<Reply>(b.as_fd()), Err(WireError::Closed)));
    }

    #[test]
    fn exit_status_follows_the_shell() {
        assert_eq!(Reply::Exit { code: Some(3), signal: None }.exit_status(), Some(3));
        assert_eq!(Reply::Exit { code: None, signal: Some(9) }.exit_status(), Some(137));
        assert_eq!(Reply::Started.exit_status(), None);
    }

    #[test]
    fn oversized_message_is_refused() {
        let (a, _b) = pair();
        let big = ProcessSpec { env: vec!["X".repeat(MAX_MESSAGE)], ..Default::default() };
        let e = send(a.as_fd(), &Reply::Error { message: format!("{big:?}") }, &[], None).unwrap_err();
        assert!(e.to_string().contains("exceeds"), "{e}");
    }
}
