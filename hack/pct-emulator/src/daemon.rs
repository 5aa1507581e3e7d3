//! The emulator daemon: a stand-in for systemd's `pve-container@<vmid>` unit.
//!
//! `pct start` must not make the container a descendant of its caller, even when the
//! caller is a child subreaper (containerd-shim, conmon): orphans of a double fork would
//! be reparented to that subreaper. So the container is started by a long-lived daemon
//! that is nobody's descendant: it runs `lxc-start -F -n <vmid> -P <lxcpath>` as its own
//! child (as the unit does), reports when the container is RUNNING, and reaps it later.
//!
//! Socket: `$PCT_EMULATOR_DAEMON_SOCKET` or `/run/pct-emulator/daemon.sock` (mode 0600).
//! Protocol: one line `START\t<vmid>\t<lxcpath>\t<stderr file>\t<timeout s>\n`, answered
//! with `OK\n` or `ERR <message>\n`.
//! Started by `hack/setup` (`pct-emulator --emulator-daemon`), or lazily by `pct start`:
//! a lazily started daemon is itself an orphan of the first `pct start` and is adopted
//! by that caller's subreaper, if any (documented caveat: start it ahead of time).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::lxc;

pub const DAEMON_FLAG: &str = "--emulator-daemon";

pub fn socket_path() -> PathBuf {
    match std::env::var_os("PCT_EMULATOR_DAEMON_SOCKET") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("/run/pct-emulator/daemon.sock"),
    }
}

fn connect() -> Option<UnixStream> {
    UnixStream::connect(socket_path()).ok()
}

/// Make sure a daemon serves the socket, starting one (detached) if needed.
pub fn ensure_running() -> Result<()> {
    if connect().is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find own executable")?;
    let st = Command::new(exe)
        .arg(DAEMON_FLAG)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .context("unable to start the pct emulator daemon")?;
    if !st.success() || connect().is_none() {
        bail!("unable to start the pct emulator daemon ({})", socket_path().display());
    }
    Ok(())
}

/// Ask the daemon to start a container and wait until it is RUNNING.
pub fn request_start(lxcpath: &Path, vmid: u32, stderr_file: &Path, timeout: Duration) -> Result<()> {
    ensure_running()?;
    let mut s = connect().context("pct emulator daemon not reachable")?;
    for p in [lxcpath, stderr_file] {
        let t = p.to_string_lossy();
        if t.contains(['\t', '\n']) {
            bail!("path contains a tab or newline: {t}");
        }
    }
    writeln!(s, "START\t{vmid}\t{}\t{}\t{}", lxcpath.display(), stderr_file.display(), timeout.as_secs().max(1))?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    let line = line.trim_end();
    if line == "OK" {
        Ok(())
    } else if let Some(msg) = line.strip_prefix("ERR ") {
        bail!("{msg}")
    } else {
        bail!("pct emulator daemon gave no answer")
    }
}

/// `pct-emulator --emulator-daemon [--foreground]`: serve the socket (daemonizing unless
/// --foreground). Returns once the socket answers; exits 0 if a daemon already runs.
pub fn main(args: &[String]) -> i32 {
    if connect().is_some() {
        return 0;
    }
    let foreground = args.iter().any(|a| a == "--foreground");
    if !foreground {
        // SAFETY: single-threaded at this point (called first thing from main).
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                let _ = nix::sys::wait::waitpid(child, None);
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline {
                    if connect().is_some() {
                        return 0;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                eprintln!("pct-emulator: daemon did not come up on {}", socket_path().display());
                return 1;
            }
            Ok(nix::unistd::ForkResult::Child) => {
                let _ = nix::unistd::setsid();
                // SAFETY: still single-threaded.
                match unsafe { nix::unistd::fork() } {
                    Ok(nix::unistd::ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
                    Ok(nix::unistd::ForkResult::Child) => {}
                    Err(_) => unsafe { libc::_exit(1) },
                }
            }
            Err(e) => {
                eprintln!("pct-emulator: fork failed: {e}");
                return 1;
            }
        }
    }
    match serve(!foreground) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pct-emulator daemon: {e:#}");
            1
        }
    }
}

fn serve(detach_stdio: bool) -> Result<()> {
    let sock = socket_path();
    let dir = sock.parent().context("socket path has no parent")?.to_path_buf();
    std::fs::create_dir_all(&dir)?;
    let lock_path = dir.join(format!("{}.lock", sock.file_name().and_then(|n| n.to_str()).unwrap_or("daemon")));
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
    // SAFETY: flock on an owned fd.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(()); // another daemon owns the socket
    }
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).with_context(|| format!("bind {}", sock.display()))?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))?;
    std::fs::write(dir.join("daemon.pid"), format!("{}\n", std::process::id()))?;
    if detach_stdio {
        let log = OpenOptions::new().create(true).append(true).open(dir.join("daemon.log"))?;
        let null = File::open("/dev/null")?;
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
        let _ = nix::unistd::dup2(log.as_raw_fd(), 1);
        let _ = nix::unistd::dup2(log.as_raw_fd(), 2);
    }
    // SAFETY: setting signal dispositions to ignore.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    eprintln!("pct-emulator daemon {} listening on {}", std::process::id(), sock.display());
    let _lock = lock;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        std::thread::spawn(move || handle(conn));
    }
    Ok(())
}

fn handle(conn: UnixStream) {
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut conn = conn;
    let fields: Vec<&str> = line.trim_end_matches('\n').split('\t').collect();
    let ct_dir = match fields.as_slice() {
        ["START", vmid, lxcpath, ..] => Some(Path::new(lxcpath).join(vmid)),
        _ => None,
    };
    let reply = match fields.as_slice() {
        ["START", vmid, lxcpath, stderr_file, timeout] => match (vmid.parse::<u32>(), timeout.parse::<u64>()) {
            (Ok(vmid), Ok(t)) => start(vmid, Path::new(lxcpath), Path::new(stderr_file), Duration::from_secs(t)),
            _ => Err((None, "bad request".to_string())),
        },
        _ => Err((None, "bad request".to_string())),
    };
    let (child, text) = match reply {
        Ok(child) => (Some(child), "OK".to_string()),
        Err((child, msg)) => (child, format!("ERR {}", msg.replace('\n', " "))),
    };
    let _ = writeln!(conn, "{text}");
    drop(conn);
    if let Some(mut child) = child {
        let st = child.wait();
        eprintln!("lxc-start {} exited: {st:?}", child.id());
        // PVE's post-stop cleanup (vm_stop_cleanup) kills the DHCP clients.
        if let Some(d) = ct_dir {
            crate::dhcp::kill_clients(&d);
        }
    }
}

type StartResult = std::result::Result<Child, (Option<Child>, String)>;

fn start(vmid: u32, lxcpath: &Path, stderr_file: &Path, timeout: Duration) -> StartResult {
    if let Some(d) = stderr_file.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let err_out = File::create(stderr_file).map_err(|e| (None, format!("{}: {e}", stderr_file.display())))?;
    let mut child = Command::new("lxc-start")
        .arg("-F")
        .arg("-n")
        .arg(vmid.to_string())
        .arg("-P")
        .arg(lxcpath)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_out)
        .spawn()
        .map_err(|e| (None, format!("unable to run lxc-start: {e}")))?;
    eprintln!("started lxc-start {} for {vmid} in {}", child.id(), lxcpath.display());
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Err((None, format!("lxc-start exited with {st}: {}", tail(stderr_file))));
        }
        if lxc::is_running(lxcpath, vmid) && lxc::state(lxcpath, vmid).as_deref() == Some("RUNNING") {
            // The init may still fail to exec right after RUNNING: give it a moment.
            std::thread::sleep(Duration::from_millis(200));
            match child.try_wait() {
                Ok(Some(st)) if !st.success() => {
                    return Err((None, format!("lxc-start exited with {st}: {}", tail(stderr_file))));
                }
                // Init ran and exited 0 at once: started (and already stopped), as on PVE.
                _ => return Ok(child),
            }
        }
        if Instant::now() >= deadline {
            let _ = Command::new("lxc-stop")
                .arg("-n")
                .arg(vmid.to_string())
                .arg("-P")
                .arg(lxcpath)
                .arg("--kill")
                .stderr(Stdio::null())
                .status();
            return Err((Some(child), "timeout waiting for the container to be RUNNING".into()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines of lxc-start's stderr, for the error message.
fn tail(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(600)));
        let _ = f.read_to_string(&mut s);
    }
    s.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("; ")
}
