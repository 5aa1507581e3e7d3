//! Helpers shared by the engine suites (tests/engines.rs, tests/cri.rs): running engine
//! commands with a bound, what they read of the host (mounts, nexcage's records) and of
//! the containers (a page over HTTP).

use std::fs::File;
use std::io::{Read, Write};
use std::net::ToSocketAddrs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::emu::real_pct;
use super::text;

/// Upper bound for any single engine command or API call. On real pct (hack/test-pve) one
/// container's create, start and destroy are Proxmox's Perl three times over, plus its
/// hooks: about 2 minutes in the Proxmox VE 9 test VM under TCG, so the bound there is ten
/// minutes; with the emulator, seconds.
pub fn cmd_bound() -> Duration {
    Duration::from_secs(if real_pct() { 600 } else { 90 })
}

/// Upper bound for a container to reach a state (same scaling as [`cmd_bound`]).
pub fn wait_bound() -> Duration {
    Duration::from_secs(if real_pct() { 300 } else { 30 })
}

/// A stop timeout for a program that dies of (or handles) SIGTERM: a stop that returns
/// before it did not have to kill. A stop returns once the engine has handled the end,
/// which for Docker and the CRI plugin includes the runtime's `delete`: on real pct that
/// is Proxmox's destroy (18-53 s in the Proxmox VE 9 VM under TCG by hack/bench-pve;
/// Docker's stop took 16.6 s there), so the timeout is larger there. How long a stop
/// takes is not asserted.
pub fn stop_grace() -> Duration {
    Duration::from_secs(if real_pct() { 180 } else { 20 })
}

/// A finished command: exit code (128+N for a signal), both streams, time taken.
pub struct Ran {
    pub what: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Ran {
    #[track_caller]
    pub fn ok(self) -> Ran {
        assert_eq!(self.code, 0, "{}", self.show());
        self
    }
    #[track_caller]
    pub fn code_is(self, want: i32) -> Ran {
        assert_eq!(self.code, want, "{}", self.show());
        self
    }
    pub fn show(&self) -> String {
        format!("{}\nexit {}\nstdout: {}\nstderr: {}", self.what, self.code, self.stdout, self.stderr)
    }
}

pub fn code_of(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Run `cmd` with stdin null and stdout/stderr in files under `dir` (a daemon inheriting
/// them cannot block us), killed after [`cmd_bound`].
#[track_caller]
pub fn run_bounded(cmd: Command, dir: &Path) -> Ran {
    try_run(cmd, dir, cmd_bound()).unwrap_or_else(|e| panic!("{e}"))
}

/// `run_bounded` without panicking (for cleanup in `Drop`): a timeout is an error.
pub fn try_run(mut cmd: Command, dir: &Path, timeout: Duration) -> Result<Ran, String> {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let (out, err) = (dir.join(format!("cmd-{n}.out")), dir.join(format!("cmd-{n}.err")));
    let what = format!("{cmd:?}");
    let files = File::create(&out).and_then(|o| Ok((o, File::create(&err)?)));
    let (o, e) = files.map_err(|e| format!("{what}: cannot create output files: {e}"))?;
    cmd.stdin(Stdio::null()).stdout(o).stderr(e).process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {what}: {e}"))?;
    let read = |p: &Path| text(&std::fs::read(p).unwrap_or_default());
    let Some(status) = wait_child(&mut child, timeout) else {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGKILL);
        let _ = child.wait();
        return Err(format!(
            "{what} did not finish within {timeout:?}\nstdout: {}\nstderr: {}",
            read(&out),
            read(&err)
        ));
    };
    Ok(Ran { what, code: code_of(status), stdout: read(&out), stderr: read(&err), took: start.elapsed() })
}

pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Mount points at or below `dir`, from this process's mountinfo (octal escapes undone).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().filter_map(|l| l.split(' ').nth(4)).map(unescape_mountinfo).filter(|p| p.starts_with(dir)).collect()
}

/// Detach every mount at or below `dir` (deepest first): overlay, bind and netns mounts an
/// engine left behind when a test failed half-way.
pub fn unmount_under(dir: &Path) {
    let mut points = mounts_under(dir);
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for p in points {
        let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn unescape_mountinfo(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

/// The backend nexcage recorded for container `id` under its state root `root`, while
/// the record exists.
pub fn recorded_backend(root: &Path, id: &str) -> Option<String> {
    let raw = std::fs::read(root.join(id).join("record.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    v["backend"].as_str().map(String::from)
}

/// GET / over plain HTTP/1.0 from `addr` (host:port); the body, once the server answers
/// 200 (busybox httpd answers HTTP/1.1 to a 1.0 request).
pub fn http_get(addr: &str) -> Option<String> {
    let to = addr.to_socket_addrs().ok()?.next()?;
    let mut s = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    let status = head.lines().next()?;
    (status.starts_with("HTTP/1.") && status.split(' ').nth(1) == Some("200")).then(|| body.to_string())
}

/// containerd's config.toml (version 2, containerd 1.6/1.7) for a private containerd
/// whose root, state and sockets are in `dir`, with the `nexcage` runtime handler as
/// docs/engines.md gives it. `runc_root`: the runc shim's `Root` for both handlers (where
/// nexcage keeps its records, `<Root>/<namespace>`; default `/run/containerd/runc`).
/// `extra`: more TOML (the CRI plugin's own settings).
pub fn containerd_config(dir: &Path, runc_root: Option<&Path>, extra: &str) -> String {
    let root = runc_root.map(|r| format!("\n    Root = {:?}", r.display().to_string())).unwrap_or_default();
    let runc_options = if root.is_empty() {
        String::new()
    } else {
        format!("\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]{root}")
    };
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"{runc_options}

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nexcage]
  runtime_type = "io.containerd.runc.v2"
  pod_annotations = ["nexcage.*"]
  container_annotations = ["nexcage.*"]
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nexcage.options]
    BinaryName = "{nexcage}"{root}
{extra}"#,
        d = dir.display(),
        nexcage = super::nexcage_bin(),
    )
}
