//! Shared helpers for integration tests: busybox bundles (built by hack/make-bundle),
//! private state roots and configs, running nexcage, reaping container processes.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

pub const NEXCAGE: &str = env!("CARGO_BIN_EXE_nexcage");

/// The nexcage binary the tests run: `NEXCAGE_TEST_BIN` when set (hack/test-pve copies the
/// binaries onto the test VM's own disk: executables mapped from its 9p share of the
/// checkout crashed after the host rebuilt them), else cargo's.
pub fn nexcage_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("NEXCAGE_TEST_BIN").ok().filter(|b| !b.is_empty()).unwrap_or_else(|| NEXCAGE.into())
    })
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tests drive real runtimes: they need root. Fail loudly rather than skip.
pub fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "integration tests need root (run hack/test as root)");
}

/// Make this test process a child subreaper, as containerd's shim and conmon are, so
/// container processes whose runtime exits are reparented to us and we can wait for them.
pub fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(rc, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
    });
}

/// A private world for one test: state root, config, bundle directory.
pub struct World {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub config: PathBuf,
}

impl World {
    /// Backends crun, runc (oci) and lxc (proxmox-lxc) with `default` as default backend.
    pub fn new(default: &str) -> World {
        require_root();
        become_subreaper();
        let dir = tempfile::Builder::new().prefix("nexcage-test-").tempdir().unwrap();
        let root = dir.path().join("root");
        let config = dir.path().join("nexcage.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"default_backend":"{default}","backends":{{
                "crun":{{"kind":"oci","path":"crun"}},"runc":{{"kind":"oci","path":"runc"}},
                "lxc":{{"kind":"proxmox-lxc"}}}},
                "routes":[{{"id":"route-runc-*","backend":"runc"}}]}}"#
            ),
        )
        .unwrap();
        World { dir, root, config }
    }

    /// Build a busybox bundle running `args`, with optional annotations.
    pub fn bundle(&self, name: &str, args: &[&str], annotations: &[(&str, &str)]) -> PathBuf {
        let b = self.dir.path().join(name);
        let st = Command::new(repo().join("hack/make-bundle")).arg(&b).arg("--").args(args).status().unwrap();
        assert!(st.success(), "hack/make-bundle failed");
        if !annotations.is_empty() {
            edit_config(&b, |c| {
                let ann = c.as_object_mut().unwrap().entry("annotations").or_insert(serde_json::json!({}));
                for (k, v) in annotations {
                    ann[*k] = serde_json::Value::String(v.to_string());
                }
            });
        }
        b
    }

    /// nexcage with this world's root and config; stdio captured, stdin null.
    pub fn nexcage<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(nexcage_bin());
        c.env("NEXCAGE_CONFIG", &self.config).arg("--root").arg(&self.root).args(args);
        c
    }

    pub fn state(&self, id: &str) -> serde_json::Value {
        let out = self.nexcage(["state", id]);
        assert!(out.status.success(), "state {id}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Best effort: no container may outlive its test.
        if let Ok(out) = self.cmd(["list", "-q"]).stdin(Stdio::null()).output() {
            for id in text(&out.stdout).lines() {
                let _ = self.cmd(["delete", "--force", id]).stdin(Stdio::null()).output();
            }
        }
    }
}

pub fn edit_config(bundle: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = bundle.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut c);
    std::fs::write(&p, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Assert success, showing stderr otherwise.
#[track_caller]
pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Assert failure with `needle` on stderr.
#[track_caller]
pub fn fails_with(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected failure, got success; stdout: {}", text(&out.stdout));
    assert!(text(&out.stderr).contains(needle), "stderr lacks {needle:?}: {}", text(&out.stderr));
}

/// Wait (bounded) for a child of ours to exit; returns the raw wait status as
/// (exit code, signal).
pub fn wait_pid(pid: i32, timeout: Duration) -> (Option<i32>, Option<i32>) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use nix::unistd::Pid;
    let deadline = Instant::now() + timeout;
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)).unwrap() {
            WaitStatus::Exited(_, code) => return (Some(code), None),
            WaitStatus::Signaled(_, sig, _) => return (None, Some(sig as i32)),
            _ => {}
        }
        assert!(Instant::now() < deadline, "pid {pid} did not exit within {timeout:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Parent pid of a process, from /proc.
pub fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Read a pid file: decimal, no trailing newline.
pub fn read_pid_file(p: &Path) -> i32 {
    let raw = std::fs::read_to_string(p).unwrap();
    assert!(!raw.ends_with('\n'), "pid file must have no trailing newline: {raw:?}");
    raw.parse().unwrap_or_else(|_| panic!("pid file not decimal: {raw:?}"))
}

/// Poll until `f` is true (bounded).
pub fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
pub mod emu;
pub mod engine;
pub mod upgrade;

/// Whether this process may lower an oom_score_adj or raise hard limits
/// (CAP_SYS_RESOURCE in its effective set). CI sandboxes may lack it.
pub fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap().trim();
    u64::from_str_radix(eff, 16).unwrap() & (1 << CAP_SYS_RESOURCE) != 0
}

/// The first line a client sends to `listener`, waiting at most `limit` for the client.
pub fn receive_line(listener: &std::net::TcpListener, limit: Duration) -> String {
    use std::io::BufRead;
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + limit;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "nobody connected to {:?} within {limit:?}", listener.local_addr());
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stream).read_line(&mut line).unwrap();
    line
}
