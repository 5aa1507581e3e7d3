//! The per-run context (runtime, assets, reaped exit statuses) and the per-test case
//! (temp dir, container ids, lifecycle helpers that turn runtime errors into messages).
//!
//! The harness makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), exactly as
//! containerd's shim and conmon do: the container init, forked by `runtime create`,
//! is reparented to the harness when `create` exits, and the harness reads its real
//! exit status with waitpid on the pid from the pid file.

use crate::bundle::{self, Bundle};
use crate::runtime::{scaled, Output, Runtime, Stdio3, COMMAND_TIMEOUT};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a container process may take to exit when the test expects it to.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a reaped container process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// Error type for a test that cannot run here (not a failure).
#[derive(Debug)]
pub struct SkipTest(pub String);

impl std::fmt::Display for SkipTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for SkipTest {}

/// State shared by all tests of a run.
pub struct Ctx {
    pub runtime: Runtime,
    pub annotations: Vec<(String, String)>,
    /// Temp dir of the run (removed at the end).
    pub run_dir: PathBuf,
    pub busybox: PathBuf,
    pub checker: PathBuf,
    /// Inodes of the harness's own namespaces, by /proc/self/ns name.
    pub host_ns: BTreeMap<String, u64>,
    /// The runtime's --root when the harness chose it (a private temp dir).
    pub private_root: Option<PathBuf>,
    /// Exit statuses of reaped container processes.
    exits: HashMap<i32, Exit>,
    /// Container pids not reaped yet.
    watched: Vec<i32>,
    seq: usize,
}

impl Ctx {
    pub fn new(
        runtime: Runtime,
        annotations: Vec<(String, String)>,
        run_dir: PathBuf,
        busybox: PathBuf,
        checker: PathBuf,
    ) -> Result<Ctx> {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            bail!("PR_SET_CHILD_SUBREAPER: {}", std::io::Error::last_os_error());
        }
        let mut host_ns = BTreeMap::new();
        for ns in ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"] {
            if let Ok(m) = std::fs::metadata(format!("/proc/self/ns/{ns}")) {
                host_ns.insert(ns.to_string(), std::os::unix::fs::MetadataExt::ino(&m));
            }
        }
        Ok(Ctx {
            runtime,
            annotations,
            run_dir,
            busybox,
            checker,
            host_ns,
            private_root: None,
            exits: HashMap::new(),
            watched: Vec::new(),
            seq: 0,
        })
    }

    /// Reap any watched container process that has exited (never blocks).
    pub fn reap_watched(&mut self) {
        let mut i = 0;
        while i < self.watched.len() {
            let pid = self.watched[i];
            let mut status = 0;
            // SAFETY: waitpid with a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                let exit = if libc::WIFSIGNALED(status) {
                    Exit::Signal(libc::WTERMSIG(status))
                } else {
                    Exit::Code(libc::WEXITSTATUS(status))
                };
                self.exits.insert(pid, exit);
                self.watched.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Reap every exited child that is not watched (stray processes reparented to us).
    /// Only called between tests, when no runtime command is running.
    fn reap_strays(&mut self) {
        self.reap_watched();
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid out-pointer.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if r <= 0 {
                break;
            }
        }
    }

    /// Start a test case with its own temp dir and container id.
    pub fn case(&mut self, name: &str) -> Result<Case<'_>> {
        self.seq += 1;
        let dir = self.run_dir.join(format!("t{:03}", self.seq));
        std::fs::create_dir_all(&dir)?;
        let id = format!("rst-{}-{}", std::process::id(), self.seq);
        for f in ["stdin", "ctr.out", "ctr.err", "cmd.out", "cmd.err"] {
            std::fs::write(dir.join(f), b"")?;
        }
        Ok(Case { ctx: self, dir, id, ids: Vec::new(), bundles: 0, name: name.to_string() })
    }
}

/// One test: its temp dir, its containers, and helpers for the OCI operations.
pub struct Case<'a> {
    pub ctx: &'a mut Ctx,
    pub dir: PathBuf,
    /// The default container id of this test.
    pub id: String,
    ids: Vec<String>,
    bundles: usize,
    pub name: String,
}

impl Case<'_> {
    /// A new bundle running `args` (default config, the run's annotations).
    pub fn bundle(&mut self, args: &[&str]) -> Result<Bundle> {
        self.bundles += 1;
        let dir = self.dir.join(format!("bundle{}", self.bundles));
        std::fs::create_dir_all(&dir)?;
        let mut ann = vec![("org.opencontainers.rst.test".to_string(), self.name.clone())];
        ann.extend(self.ctx.annotations.iter().cloned());
        bundle::create(&dir, &self.ctx.busybox, &self.ctx.checker, args, &ann)
    }

    /// Another container id, unique in the run.
    pub fn other_id(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.id)
    }

    fn stdio_cmd(&self) -> Stdio3 {
        Stdio3 { stdin: self.dir.join("stdin"), stdout: self.dir.join("cmd.out"), stderr: self.dir.join("cmd.err") }
    }

    fn stdio_container(&self) -> Stdio3 {
        Stdio3 { stdin: self.dir.join("stdin"), stdout: self.dir.join("ctr.out"), stderr: self.dir.join("ctr.err") }
    }

    /// Run a runtime command with its output captured in files of the test dir.
    pub fn run(&mut self, args: &[&str]) -> Result<Output> {
        let io = self.stdio_cmd();
        let rt = self.ctx.runtime.clone();
        let ctx = &mut *self.ctx;
        rt.run(args, &self.dir, &io, scaled(COMMAND_TIMEOUT), &mut || ctx.reap_watched())
    }

    /// `create` with explicit arguments; the container's stdio are the files
    /// `stdin`, `ctr.out` and `ctr.err` of the test dir. Records `id` for cleanup.
    pub fn create_args(&mut self, id: &str, args: &[&str]) -> Result<Output> {
        if !self.ids.iter().any(|i| i == id) {
            self.ids.push(id.to_string());
        }
        let io = self.stdio_container();
        let mut full = vec!["create"];
        full.extend_from_slice(args);
        full.push(id);
        let rt = self.ctx.runtime.clone();
        let ctx = &mut *self.ctx;
        rt.run(&full, &self.dir, &io, scaled(COMMAND_TIMEOUT), &mut || ctx.reap_watched())
    }

    /// `create --bundle B --pid-file DIR/<id>.pid ID`, which must succeed; returns the
    /// pid from the pid file (now watched for its exit status).
    pub fn create_id(&mut self, b: &Bundle, id: &str) -> Result<i32> {
        let pid_file = self.dir.join(format!("{id}.pid"));
        let bdir = b.dir.display().to_string();
        let pf = pid_file.display().to_string();
        self.create_args(id, &["--bundle", &bdir, "--pid-file", &pf])?.check().context("create failed")?;
        let text = std::fs::read_to_string(&pid_file).with_context(|| format!("read pid file {pf}"))?;
        let pid: i32 = text.trim().parse().with_context(|| format!("pid file holds {text:?}"))?;
        self.watch(pid);
        Ok(pid)
    }

    /// `create` of the default container id.
    pub fn create(&mut self, b: &Bundle) -> Result<i32> {
        let id = self.id.clone();
        self.create_id(b, &id)
    }

    pub fn watch(&mut self, pid: i32) {
        if pid > 0 && !self.ctx.watched.contains(&pid) && !self.ctx.exits.contains_key(&pid) {
            self.ctx.watched.push(pid);
        }
    }

    pub fn start_id(&mut self, id: &str) -> Result<Output> {
        self.run(&["start", id])?.check().context("start failed")
    }

    pub fn start(&mut self) -> Result<Output> {
        let id = self.id.clone();
        self.start_id(&id)
    }

    /// `state ID` parsed as JSON; an error when the command fails.
    pub fn state_id(&mut self, id: &str) -> Result<Value> {
        let out = self.run(&["state", id])?.check().context("state failed")?;
        serde_json::from_str(&out.stdout).with_context(|| format!("state output is not JSON: {:?}", out.stdout))
    }

    pub fn state(&mut self) -> Result<Value> {
        let id = self.id.clone();
        self.state_id(&id)
    }

    /// The `status` field of `state`.
    pub fn status(&mut self) -> Result<String> {
        let st = self.state()?;
        st["status"].as_str().map(String::from).ok_or_else(|| anyhow!("state has no string status: {st}"))
    }

    pub fn expect_status(&mut self, want: &str) -> Result<()> {
        let got = self.status()?;
        if got != want {
            bail!("state status is {got:?}, want {want:?}");
        }
        Ok(())
    }

    /// Wait (bounded) until the watched process `pid` has exited and been reaped by
    /// the harness; returns how it ended.
    pub fn wait_exit(&mut self, pid: i32, timeout: Duration) -> Result<Exit> {
        let timeout = scaled(timeout);
        self.watch(pid);
        let deadline = Instant::now() + timeout;
        loop {
            self.ctx.reap_watched();
            if let Some(e) = self.ctx.exits.get(&pid) {
                return Ok(*e);
            }
            if Instant::now() > deadline {
                // SAFETY: kill with signal 0 only checks existence.
                let alive = unsafe { libc::kill(pid, 0) } == 0;
                let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| s.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1).map(String::from)))
                    .unwrap_or_else(|| "?".into());
                if alive && ppid != std::process::id().to_string() {
                    bail!("container process {pid} is not a child of the harness (parent {ppid}): it was not reparented to the subreaper, so its exit status cannot be read");
                }
                bail!("container process {pid} did not exit within {timeout:?} (alive: {alive})");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Poll `f` until it returns true or the timeout passes.
    pub fn wait_for(&mut self, what: &str, timeout: Duration, mut f: impl FnMut(&mut Self) -> bool) -> Result<()> {
        let timeout = scaled(timeout);
        let deadline = Instant::now() + timeout;
        loop {
            if f(self) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
            self.ctx.reap_watched();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The container's stdout (the file given to `create`).
    pub fn container_stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("ctr.out")).unwrap_or_default()
    }

    pub fn container_stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("ctr.err")).unwrap_or_default()
    }

    /// Run the checker with `expect` in bundle `b` through create, start and exit,
    /// and fail unless every check passed. `b`'s args must start with the checker
    /// (set to `rst-checker check /rst/expect.json` when they do not).
    pub fn run_checker(&mut self, b: &mut Bundle, expect: &Value) -> Result<()> {
        let args = b.config["process"]["args"].clone();
        if args.get(0).and_then(Value::as_str) != Some(bundle::CHECKER)
            || args.get(1).and_then(Value::as_str) != Some("check")
        {
            b.set_args(&[bundle::CHECKER, "check", bundle::EXPECT]);
        }
        b.write_expect(expect)?;
        b.save()?;
        let pid = self.create(b)?;
        self.start()?;
        let exit = self.wait_exit(pid, EXIT_TIMEOUT)?;
        let out = self.container_stdout();
        let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("not ok")).collect();
        let passed = out.lines().filter(|l| l.starts_with("ok ")).count();
        let plan: Option<usize> = out.lines().find_map(|l| l.strip_prefix("1..").and_then(|n| n.trim().parse().ok()));
        let err = self.container_stderr();
        if !failed.is_empty() {
            bail!("checks failed inside the container:\n{}", failed.join("\n"));
        }
        if plan.is_none() || plan != Some(passed) || exit != Exit::Code(0) {
            bail!("checker did not complete ({exit}); stdout:\n{out}\nstderr:\n{err}");
        }
        Ok(())
    }

    /// Delete every container of this test (`delete --force`), reap, and remove files.
    pub fn cleanup(mut self) {
        let ids = std::mem::take(&mut self.ids);
        // Never clean up with an invalid id: crun 1.8.1 `delete --force ..` removes
        // the parent of its --root.
        for id in ids.iter().rev().filter(|id| valid_id(id)) {
            let _ = self.run(&["delete", "--force", id]);
        }
        // Anything still alive that we watch: kill it (the runtime failed to).
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            self.ctx.reap_watched();
            if self.ctx.watched.is_empty() || Instant::now() > deadline {
                break;
            }
            for &pid in &self.ctx.watched {
                // SAFETY: kill of a pid the harness watches (reparented container init).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.ctx.watched.clear();
        self.ctx.reap_strays();
        let _ = remove_tree(&self.dir);
    }
}

/// Remove a test dir; rootfs directories made read-only by a test are made writable first.
pub fn remove_tree(dir: &Path) -> std::io::Result<()> {
    if std::fs::remove_dir_all(dir).is_ok() {
        return Ok(());
    }
    let _ = std::process::Command::new("chmod").args(["-R", "u+rwX"]).arg(dir).status();
    std::fs::remove_dir_all(dir)
}

/// runc's container id rule: letters, digits, `_ + - .`, and not `.` or `..`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
}

/// Fail with `msg` unless `cond`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        bail!("{}", msg())
    }
}

/// Whether the process exists (a zombie counts as existing).
pub fn pid_exists(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rule() {
        for ok in ["a", "rst-1-2", "A_b+c.d", "..a", "a.."] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\n"] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn exit_display() {
        assert_eq!(Exit::Code(3).to_string(), "exit status 3");
        assert_eq!(Exit::Signal(9).to_string(), "killed by signal 9");
    }
}
