//! Shared test harness. By default every test runs the emulator binary with its own
//! `PCT_EMULATOR_ROOT` temp dir. With `PCT=/usr/sbin/pct` the same tests run against a
//! real Proxmox VE host (emulator-only checks are skipped; VMIDs from
//! `PCT_TEST_VMID_BASE`, default 9700, must be free there).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub fn real() -> Option<PathBuf> {
    std::env::var_os("PCT").filter(|p| !p.is_empty()).map(PathBuf::from)
}

pub fn emulated() -> bool {
    real().is_none()
}

/// The storage for root volumes: `local` in the emulator; on a real host
/// `PCT_TEST_STORAGE` (a fresh install's `local` cannot hold containers), given as
/// `--rootfs STORAGE:0` to every `create` that names neither `--rootfs` nor `--storage`
/// (pct's own default, `STORAGE:4`, makes a raw ext4 image with qemu-img on a real host,
/// which the emulator does not model: it always makes a directory).
pub fn storage() -> String {
    match real() {
        Some(_) => std::env::var("PCT_TEST_STORAGE").unwrap_or_else(|_| "local".into()),
        None => "local".into(),
    }
}

/// A test VMID: base + offset (distinct offsets per test).
pub fn vmid(offset: u32) -> u32 {
    let base: u32 = std::env::var("PCT_TEST_VMID_BASE").ok().and_then(|b| b.parse().ok()).unwrap_or(9700);
    base + offset
}

pub fn node() -> String {
    let h = nix::unistd::gethostname().unwrap().into_string().unwrap();
    h.split('.').next().unwrap().to_string()
}

pub struct Env {
    pub root: Option<tempfile::TempDir>,
    pub log: PathBuf,
    _logdir: tempfile::TempDir,
    templates: Vec<PathBuf>,
    vmids: Vec<u32>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    pub fn fails(&self, code: i32, stderr_has: &str) -> &Self {
        assert_eq!(self.code, code, "exit status; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(self.stderr.contains(stderr_has), "stderr lacks {stderr_has:?}:\n{}", self.stderr);
        self
    }
}

impl Env {
    pub fn new() -> Env {
        let root = emulated().then(|| tempfile::Builder::new().prefix("pct-emu-").tempdir().unwrap());
        let logdir = tempfile::tempdir().unwrap();
        Env { root, log: logdir.path().join("calls.log"), _logdir: logdir, templates: Vec::new(), vmids: Vec::new() }
    }

    pub fn pct_path(&self) -> PathBuf {
        real().unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pct-emulator")))
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.pct_path());
        c.args(args);
        if real().is_some()
            && args.first() == Some(&"create")
            && !args.iter().any(|a| *a == "--rootfs" || *a == "--storage")
        {
            c.args(["--rootfs", &format!("{}:0", storage())]);
        }
        if let Some(r) = &self.root {
            c.env("PCT_EMULATOR_ROOT", r.path());
        }
        c.env("PCT_EMULATOR_LOG", &self.log);
        c
    }

    pub fn pct(&self, args: &[&str]) -> Run {
        let out: Output = self.cmd(args).stdin(Stdio::null()).output().expect("run pct");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A path as pct sees it (under the emulator root, or the real one).
    pub fn path(&self, p: &str) -> PathBuf {
        match &self.root {
            Some(r) => r.path().join(p.trim_start_matches('/')),
            None => PathBuf::from(p),
        }
    }

    pub fn conf_path(&self, vmid: u32) -> PathBuf {
        self.path(&format!("/etc/pve/lxc/{vmid}.conf"))
    }

    /// Put a busybox template (optionally with an /etc/os-release) into storage `local`
    /// and return its volume id.
    pub fn template(&mut self, name: &str, os_release: Option<&str>) -> String {
        let rootfs = busybox_rootfs();
        let cache = self.path("/var/lib/vz/template/cache");
        std::fs::create_dir_all(&cache).unwrap();
        let file = cache.join(format!("pct-emu-test-{name}.tar.zst"));
        let staging = tempfile::tempdir().unwrap();
        let tree = staging.path().join("rootfs");
        cp_a(&rootfs, &tree);
        if let Some(text) = os_release {
            std::fs::write(tree.join("etc/os-release"), text).unwrap();
        }
        let st =
            Command::new("tar").arg("--zstd").arg("-cf").arg(&file).arg("-C").arg(&tree).arg(".").status().unwrap();
        assert!(st.success());
        self.templates.push(file);
        format!("local:vztmpl/pct-emu-test-{name}.tar.zst")
    }

    /// Remember a VMID to destroy at the end (real hosts).
    pub fn track(&mut self, vmid: u32) -> u32 {
        self.vmids.push(vmid);
        vmid
    }

    pub fn init_pid(&self, vmid: u32) -> i32 {
        let r = self.pct(&["status", &vmid.to_string(), "--verbose"]);
        r.ok();
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix("pid: "))
            .unwrap_or_else(|| panic!("no pid in {}", r.stdout))
            .parse()
            .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for v in &self.vmids {
            let v = v.to_string();
            let _ = self.cmd(&["stop", &v]).stdout(Stdio::null()).stderr(Stdio::null()).status();
            let _ =
                self.cmd(&["destroy", &v, "--force", "--purge"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        for t in &self.templates {
            let _ = std::fs::remove_file(t);
        }
    }
}

fn cp_a(from: &Path, to: &Path) {
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(st.success());
}

/// One busybox rootfs per test process, built with hack/make-bundle.
pub fn busybox_rootfs() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let d = DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../make-bundle");
        let out = Command::new("bash").arg(script).arg(d.path().join("b")).output().unwrap();
        assert!(out.status.success(), "make-bundle: {}", String::from_utf8_lossy(&out.stderr));
        d
    });
    d.path().join("b/rootfs")
}

/// Parent pid of a process.
pub fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

pub fn ancestors(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    let mut cur = pid;
    while let Some(p) = ppid(cur) {
        if p <= 0 {
            break;
        }
        v.push(p);
        if p == 1 {
            break;
        }
        cur = p;
    }
    v
}
