//! A typed client for Proxmox VE's `pct` (see pct-contract.md), and pure parsers of its
//! output.
//!
//! Every method runs `pct` exactly once, with an argument vector (never a shell), stdin
//! from `/dev/null`, stdout and stderr captured. pct's failures are classified from the
//! exit status and stderr into [`PctError`] variants whose Display quotes pct's own
//! message. Nothing here makes a call the caller did not ask for, so pct calls can be
//! counted from the call sites.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::pveconf::PveConfig;

/// Options of `pct create` / `pct set`, in the order they are passed: `(key, value)`
/// becomes `--key value`.
pub type CreateOptions = [(String, String)];

/// How to run `pct`.
#[derive(Debug, Clone)]
pub struct Pct {
    bin: PathBuf,
    env: Vec<(OsString, OsString)>,
    /// A create's in-flight file (cleanup::InflightLock): every pct run inherits it, and
    /// names the running pct in it ([`write_running`]).
    inherit: Option<RawFd>,
}

/// In a child between fork and exec: keep `fd` open across exec (clear close-on-exec;
/// fcntl is async-signal-safe).
pub fn inherit(fd: RawFd) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let flags = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD)?);
    fcntl(fd, FcntlArg::F_SETFD(flags - FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// Name the pct that runs now in the in-flight file `fd` ("PID START\n", see
/// procfs::ProcRef), or empty it (`None`). A killed create's pct shares that file's flock
/// with whatever it forked and left running (Proxmox's DHCP client, forked by `pct start`,
/// lives as long as the CT): `delete` waits for the pct named here, not for those.
pub fn write_running(fd: RawFd, pct: Option<super::procfs::ProcRef>) -> io::Result<()> {
    use std::os::fd::BorrowedFd;
    // SAFETY: the caller owns `fd` for the duration of the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    nix::unistd::ftruncate(fd, 0)?;
    if let Some(p) = pct {
        let line = format!("{} {}\n", p.pid, p.start);
        nix::sys::uio::pwrite(fd, line.as_bytes(), 0)?;
    }
    Ok(())
}

/// The pct named in an in-flight file's text, if it still runs.
pub fn running_of(text: &str) -> Option<super::procfs::ProcRef> {
    let mut words = text.split_whitespace();
    let p = super::procfs::ProcRef { pid: words.next()?.parse().ok()?, start: words.next()?.parse().ok()? };
    p.alive().then_some(p)
}

/// A container's run state as `pct status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Stopped,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "running" => Some(Status::Running),
            "stopped" => Some(Status::Stopped),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `pct status <vmid> --verbose`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerboseStatus {
    pub status: Status,
    /// Host pid of the container's init, present when running.
    pub pid: Option<i32>,
    /// Every `key: value` line, including `status` and `pid`.
    pub fields: BTreeMap<String, String>,
}

/// One row of `pct list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    pub vmid: u32,
    pub status: Status,
    /// `create`, `backup`, `mounted`, ... when the config is locked.
    pub lock: Option<String>,
    pub name: String,
}

/// A failed pct call, classified per pct-contract.md. `message` is pct's own stderr
/// text (trimmed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PctError {
    /// `CT <vmid> already exists on node '<node>'`, or `VM <vmid> ...` when a QEMU VM holds
    /// the VMID (create; PVE::Cluster::check_vmid_unused).
    #[error("pct: {message}")]
    AlreadyExists { vmid: u32, message: String },
    /// `Configuration file 'nodes/<node>/lxc/<vmid>.conf' does not exist`.
    #[error("pct: {message}")]
    DoesNotExist { vmid: u32, message: String },
    /// `CT <vmid> not running` (stop, shutdown) or `container '<vmid>' not running!`.
    #[error("pct: {message}")]
    NotRunning { vmid: u32, message: String },
    /// `CT <vmid> already running` (start).
    #[error("pct: {message}")]
    AlreadyRunning { vmid: u32, message: String },
    /// `CT is locked (<lock>)`.
    #[error("pct: {message}")]
    Locked { vmid: u32, lock: String, message: String },
    /// `can't lock file '/run/lock/lxc/pve-config-<vmid>.lock' - got timeout`.
    #[error("pct: {message}")]
    LockTimeout { vmid: u32, message: String },
    /// `unable to destroy CT <vmid> - container is running` (destroy without force).
    #[error("pct: {message}")]
    Running { vmid: u32, message: String },
    /// The pct binary could not be executed.
    #[error("cannot run pct '{}': {reason}; install Proxmox VE's pve-container (pct) or set the proxmox-lxc backend's \"pct\" field in the nexcage config to its path (tests: hack/pct, the emulator)", bin.display())]
    NotFound { bin: PathBuf, reason: String },
    /// Any other failure: the command line, exit status and stderr.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
    /// pct succeeded but printed something this client cannot parse.
    #[error("`{command}`: unexpected output: {problem}")]
    Unparsable { command: String, problem: String },
}

impl PctError {
    /// The VMID the error is about, when pct named one.
    pub fn vmid(&self) -> Option<u32> {
        match self {
            PctError::AlreadyExists { vmid, .. }
            | PctError::DoesNotExist { vmid, .. }
            | PctError::NotRunning { vmid, .. }
            | PctError::AlreadyRunning { vmid, .. }
            | PctError::Locked { vmid, .. }
            | PctError::LockTimeout { vmid, .. }
            | PctError::Running { vmid, .. } => Some(*vmid),
            _ => None,
        }
    }
}

/// Captured result of one pct run.
#[derive(Debug, Clone)]
pub struct PctOutput {
    pub stdout: String,
    pub stderr: String,
}

impl Pct {
    pub fn new(bin: impl Into<PathBuf>) -> Pct {
        Pct { bin: bin.into(), env: Vec::new(), inherit: None }
    }

    /// pct working on the Proxmox root `pve_root` (the backend's `pve_root`). On a Proxmox
    /// host that is `/` and nothing is added. Any other root is the pct emulator's
    /// (hack/pct), which reads it from `PCT_EMULATOR_ROOT`: nexcage sets it from the
    /// configuration (and later from the record), so every command of a container reaches
    /// the same root whatever environment the engine runs nexcage with (Podman runs
    /// `delete` with its own, not conmon's).
    pub fn for_root(bin: impl Into<PathBuf>, pve_root: &Path) -> Pct {
        let pct = Pct::new(bin);
        if pve_root == Path::new("/") {
            pct
        } else {
            pct.env("PCT_EMULATOR_ROOT", pve_root)
        }
    }

    /// Let every pct run inherit `fd` (open, without close-on-exec), and name the running
    /// pct in that file ([`write_running`]).
    pub fn inherit_fd(mut self, fd: RawFd) -> Pct {
        self.inherit = Some(fd);
        self
    }

    /// Add an environment variable for every pct run (e.g. `PCT_EMULATOR_ROOT`).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Pct {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// `pct create <vmid> <ostemplate> --k v ...`.
    pub fn create(&self, vmid: u32, ostemplate_volid: &str, opts: &CreateOptions) -> Result<(), PctError> {
        let mut args = vec!["create".to_string(), vmid.to_string(), ostemplate_volid.to_string()];
        push_options(&mut args, opts);
        self.run(vmid, args).map(|_| ())
    }

    /// `pct start <vmid>`.
    pub fn start(&self, vmid: u32) -> Result<(), PctError> {
        self.run(vmid, vec!["start".into(), vmid.to_string()]).map(|_| ())
    }

    /// `pct stop <vmid>` (immediate kill of the container).
    pub fn stop(&self, vmid: u32) -> Result<(), PctError> {
        self.run(vmid, vec!["stop".into(), vmid.to_string()]).map(|_| ())
    }

    /// `pct shutdown <vmid> --timeout N --forceStop 1`: clean stop, killed after the timeout.
    pub fn shutdown(&self, vmid: u32, timeout_secs: u32) -> Result<(), PctError> {
        let args = vec![
            "shutdown".into(),
            vmid.to_string(),
            "--timeout".into(),
            timeout_secs.to_string(),
            "--forceStop".into(),
            "1".into(),
        ];
        self.run(vmid, args).map(|_| ())
    }

    /// `pct destroy <vmid> [--purge 1] [--force 1]`.
    pub fn destroy(&self, vmid: u32, purge: bool, force: bool) -> Result<(), PctError> {
        let mut args = vec!["destroy".to_string(), vmid.to_string()];
        if purge {
            args.extend(["--purge".into(), "1".into()]);
        }
        if force {
            args.extend(["--force".into(), "1".into()]);
        }
        self.run(vmid, args).map(|_| ())
    }

    /// `pct unlock <vmid>`.
    pub fn unlock(&self, vmid: u32) -> Result<(), PctError> {
        self.run(vmid, vec!["unlock".into(), vmid.to_string()]).map(|_| ())
    }

    /// `pct status <vmid>`.
    pub fn status(&self, vmid: u32) -> Result<Status, PctError> {
        let args = vec!["status".to_string(), vmid.to_string()];
        let command = command_line(&args);
        let out = self.run(vmid, args)?;
        parse_status(&out.stdout).map_err(|problem| PctError::Unparsable { command, problem })
    }

    /// `pct status <vmid> --verbose`.
    pub fn status_verbose(&self, vmid: u32) -> Result<VerboseStatus, PctError> {
        let args = vec!["status".to_string(), vmid.to_string(), "--verbose".into()];
        let command = command_line(&args);
        let out = self.run(vmid, args)?;
        parse_status_verbose(&out.stdout).map_err(|problem| PctError::Unparsable { command, problem })
    }

    /// `pct list`.
    pub fn list(&self) -> Result<Vec<ListRow>, PctError> {
        let args = vec!["list".to_string()];
        let command = command_line(&args);
        let out = self.run(0, args)?;
        parse_list(&out.stdout).map_err(|problem| PctError::Unparsable { command, problem })
    }

    /// `pct config <vmid>` (pending values applied, as pct shows them).
    pub fn config(&self, vmid: u32) -> Result<PveConfig, PctError> {
        let args = vec!["config".to_string(), vmid.to_string()];
        let out = self.run(vmid, args)?;
        Ok(parse_config(&out.stdout))
    }

    /// `pct set <vmid> --k v ...` (`("delete", "a,b")` deletes keys).
    pub fn set(&self, vmid: u32, opts: &CreateOptions) -> Result<(), PctError> {
        let mut args = vec!["set".to_string(), vmid.to_string()];
        push_options(&mut args, opts);
        self.run(vmid, args).map(|_| ())
    }

    /// Run pct once with `args`; `vmid` is what errors are attributed to.
    fn run(&self, vmid: u32, args: Vec<String>) -> Result<PctOutput, PctError> {
        log::debug!("{} {}", self.bin.display(), command_line(&args));
        // pct's output goes to memory files, not pipes: if nexcage is killed, pct must go on
        // (a pipe without a reader would kill it with SIGPIPE half-way through a create).
        let (out_file, err_file) = (output_file(c"pct-stdout")?, output_file(c"pct-stderr")?);
        let mut cmd = Command::new(&self.bin);
        cmd.args(&args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out_file.try_clone().map_err(|e| self.spawn_error(e))?)
            .stderr(err_file.try_clone().map_err(|e| self.spawn_error(e))?);
        if let Some(fd) = self.inherit {
            // SAFETY: the closure only calls fcntl, which is async-signal-safe.
            unsafe { cmd.pre_exec(move || inherit(fd)) };
        }
        let mut child = cmd.spawn().map_err(|e| self.spawn_error(e))?;
        drop(cmd); // its copies of the output files
        let running = self.inherit.and_then(|fd| {
            let pct = super::procfs::ProcRef::of(child.id() as i32)?;
            write_running(fd, Some(pct)).map_err(|e| log::warn!("cannot note the running pct: {e}")).ok()
        });
        // Crash-safety tests: nexcage dies while pct works (pct goes on).
        match args.first().map(String::as_str) {
            Some("create") => crate::fault::point("lxc:pct-create-running"),
            Some("start") => crate::fault::point("lxc:pct-start-running"),
            _ => {}
        }
        let status = child.wait().map_err(|e| self.spawn_error(e))?;
        if let (Some(fd), Some(())) = (self.inherit, running) {
            let _ = write_running(fd, None);
        }
        let stdout = read_output(out_file);
        let stderr = read_output(err_file);
        if status.success() {
            for w in stdout.lines().filter_map(|l| l.strip_prefix("WARN: ")) {
                log::warn!("pct {}: {w}", args.first().map(String::as_str).unwrap_or(""));
            }
            return Ok(PctOutput { stdout, stderr });
        }
        let status = match status.code() {
            Some(c) => format!("exit status {c}"),
            None => format!("{status}"),
        };
        Err(classify(vmid, &command_line(&args), &status, &stderr))
    }

    fn spawn_error(&self, e: io::Error) -> PctError {
        PctError::NotFound { bin: self.bin.clone(), reason: e.to_string() }
    }
}

/// An anonymous in-memory file for pct's stdout or stderr.
fn output_file(name: &std::ffi::CStr) -> Result<std::fs::File, PctError> {
    nix::sys::memfd::memfd_create(name, nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map(std::fs::File::from)
        .map_err(|e| PctError::NotFound { bin: PathBuf::from("memfd_create"), reason: e.to_string() })
}

/// What pct wrote into an output file (lossy UTF-8).
fn read_output(mut f: std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut bytes = Vec::new();
    let _ = f.rewind().and_then(|_| f.read_to_end(&mut bytes));
    String::from_utf8_lossy(&bytes).into_owned()
}

fn push_options(args: &mut Vec<String>, opts: &CreateOptions) {
    for (k, v) in opts {
        if v.is_empty() || v.starts_with('-') {
            // `--key=value` so that a value starting with '-' is never taken for an option.
            args.push(format!("--{k}={v}"));
        } else {
            args.push(format!("--{k}"));
            args.push(v.clone());
        }
    }
}

/// `pct <args>` with arguments containing whitespace or quotes shown quoted (for messages).
pub fn command_line(args: &[String]) -> String {
    let mut s = String::from("pct");
    for a in args {
        s.push(' ');
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == '\\') {
            s.push('\'');
            s.push_str(&a.replace('\'', "'\\''"));
            s.push('\'');
        } else {
            s.push_str(a);
        }
    }
    s
}

/// Classify a failed pct run from its stderr (pct-contract.md §1, §2).
pub fn classify(vmid: u32, command: &str, status: &str, stderr: &str) -> PctError {
    let message = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("trying to acquire lock"))
        .collect::<Vec<_>>()
        .join(" ");
    let has = |s: &str| message.contains(s);
    let named = |prefix: &str, suffix: &str| -> Option<u32> {
        // `<prefix><digits><suffix>` anywhere in the message.
        let mut rest = message.as_str();
        while let Some(i) = rest.find(prefix) {
            let after = &rest[i + prefix.len()..];
            let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
            if !digits.is_empty() && after[digits.len()..].starts_with(suffix) {
                return digits.parse().ok();
            }
            rest = &rest[i + prefix.len()..];
        }
        None
    };
    if let Some(v) = named("CT ", " already exists on node").or_else(|| named("VM ", " already exists on node")) {
        return PctError::AlreadyExists { vmid: v, message };
    }
    if has("Configuration file '") && has("' does not exist") {
        return PctError::DoesNotExist { vmid, message };
    }
    if has("can't lock file '") && has("- got timeout") {
        return PctError::LockTimeout { vmid, message };
    }
    if let Some(i) = message.find("CT is locked (") {
        let after = &message[i + "CT is locked (".len()..];
        let lock = after.split(')').next().unwrap_or("").to_string();
        return PctError::Locked { vmid, lock, message };
    }
    if has("container is running") {
        return PctError::Running { vmid, message };
    }
    if let Some(v) = named("CT ", " already running") {
        return PctError::AlreadyRunning { vmid: v, message };
    }
    if let Some(v) = named("CT ", " not running").or_else(|| named("container '", "' not running")) {
        return PctError::NotRunning { vmid: v, message };
    }
    PctError::Failed { command: command.to_string(), status: status.to_string(), stderr: message }
}

/// `status: running` / `status: stopped` (exactly one line).
pub fn parse_status(out: &str) -> Result<Status, String> {
    let line = out.lines().find(|l| !l.trim().is_empty()).ok_or("no output")?;
    let v = line.trim().strip_prefix("status:").ok_or_else(|| format!("expected 'status: ...', got {line:?}"))?;
    Status::parse(v.trim()).ok_or_else(|| format!("unknown status {:?}", v.trim()))
}

/// `key: value` lines of `pct status --verbose`.
pub fn parse_status_verbose(out: &str) -> Result<VerboseStatus, String> {
    let mut fields = BTreeMap::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line.split_once(':').ok_or_else(|| format!("expected 'key: value', got {line:?}"))?;
        fields.insert(k.trim().to_string(), v.trim().to_string());
    }
    let status = fields.get("status").ok_or("no 'status' line")?;
    let status = Status::parse(status).ok_or_else(|| format!("unknown status {status:?}"))?;
    let pid = match fields.get("pid") {
        Some(p) => Some(p.parse::<i32>().map_err(|_| format!("bad pid {p:?}"))?),
        None => None,
    };
    Ok(VerboseStatus { status, pid, fields })
}

/// The `%-10s %-10s %-12s %-20s` table of `pct list` (empty output: no containers).
/// Name and Lock never contain whitespace, so a row has 3 words (no lock) or 4.
pub fn parse_list(out: &str) -> Result<Vec<ListRow>, String> {
    let mut rows = Vec::new();
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Ok(rows);
    };
    let h: Vec<&str> = header.split_whitespace().collect();
    if h != ["VMID", "Status", "Lock", "Name"] {
        return Err(format!("unexpected header {header:?}"));
    }
    for line in lines {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (vmid, status, lock, name) = match w.as_slice() {
            [v, s, n] => (v, s, None, n),
            [v, s, l, n] => (v, s, Some(l.to_string()), n),
            _ => return Err(format!("unexpected row {line:?}")),
        };
        let vmid = vmid.parse().map_err(|_| format!("bad VMID in row {line:?}"))?;
        let status = Status::parse(status).ok_or_else(|| format!("unknown status in row {line:?}"))?;
        rows.push(ListRow { vmid, status, lock, name: name.to_string() });
    }
    Ok(rows)
}

/// `pct config` output: `key: value` lines (description URL-encoded), then raw `lxc.*`
/// lines in file order.
pub fn parse_config(out: &str) -> PveConfig {
    let mut conf = PveConfig::default();
    for line in out.lines() {
        let line = line.trim_end();
        if line.starts_with("lxc.") {
            if let Some((k, v)) = super::pveconf::split_raw(line) {
                conf.push_raw_lxc(&k, &v);
            }
            continue;
        }
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = v.trim();
        if k == "description" {
            conf.set_description(&super::pveconf::decode_text(v));
        } else {
            conf.set(k, v);
        }
    }
    conf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line() {
        assert_eq!(parse_status("status: running\n"), Ok(Status::Running));
        assert_eq!(parse_status("status: stopped\n"), Ok(Status::Stopped));
        assert!(parse_status("").is_err());
        assert!(parse_status("status: paused\n").unwrap_err().contains("paused"));
    }

    #[test]
    fn status_verbose_lines() {
        let out = "cpus: 4\ndisk: 0\ndiskread: 0\ndiskwrite: 0\nmaxdisk: 0\nmaxmem: 536870912\nmaxswap: 536870912\nmem: 1234\nname: web\nnetin: 0\nnetout: 0\npid: 4242\nstatus: running\nswap: 0\ntags: nexcage\ntype: lxc\nuptime: 3\nvmid: 9000\n";
        let v = parse_status_verbose(out).unwrap();
        assert_eq!(v.status, Status::Running);
        assert_eq!(v.pid, Some(4242));
        assert_eq!(v.fields["name"], "web");
        assert_eq!(v.fields["tags"], "nexcage");
        let stopped = parse_status_verbose("name: CT9000\nstatus: stopped\nvmid: 9000\n").unwrap();
        assert_eq!((stopped.status, stopped.pid), (Status::Stopped, None));
        assert!(parse_status_verbose("name: x\n").is_err());
        assert!(parse_status_verbose("pid: x\nstatus: running\n").is_err());
    }

    #[test]
    fn list_table() {
        assert_eq!(parse_list(""), Ok(vec![]));
        let out = format!(
            "{:<10} {:<10} {:<12} {:<20}\n{:<10} {:<10} {:<12} {:<20}\n{:<10} {:<10} {:<12} {:<20}\n",
            "VMID", "Status", "Lock", "Name", 9000, "running", "", "web", 9001, "stopped", "create", "CT9001"
        );
        let rows = parse_list(&out).unwrap();
        assert_eq!(
            rows,
            vec![
                ListRow { vmid: 9000, status: Status::Running, lock: None, name: "web".into() },
                ListRow { vmid: 9001, status: Status::Stopped, lock: Some("create".into()), name: "CT9001".into() },
            ]
        );
        assert!(parse_list("ID X\n").is_err());
        assert!(parse_list("VMID       Status     Lock         Name\nabc stopped x\n").is_err());
    }

    #[test]
    fn config_output() {
        let out = "arch: amd64\ndescription: nexcage%3A x%0Aline two\nhostname: web\nmemory: 256\nnet0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AB:CD:EF,ip=dhcp,type=veth\ntags: nexcage\nlxc.mount.entry: /a b none bind 0 0\nlxc.cgroup2.pids.max: 33\nlxc.init.cmd = /sbin/x\n";
        let c = parse_config(out);
        assert_eq!(c.get("hostname"), Some("web"));
        assert_eq!(c.get("memory"), Some("256"));
        assert_eq!(c.description(), "nexcage: x\nline two");
        assert_eq!(
            c.raw_lxc(),
            vec![
                ("lxc.mount.entry".to_string(), "/a b none bind 0 0".to_string()),
                ("lxc.cgroup2.pids.max".into(), "33".into()),
                ("lxc.init.cmd".into(), "/sbin/x".into()),
            ]
        );
        assert!(c.get("description").is_none());
    }

    #[test]
    fn classification() {
        let c = |s: &str| classify(9000, "pct x", "exit status 255", s);
        assert!(matches!(
            c("unable to create CT 9001 - CT 9001 already exists on node 'pve'\n"),
            PctError::AlreadyExists { vmid: 9001, .. }
        ));
        assert!(matches!(c("CT 9000 already exists on node 'pve'"), PctError::AlreadyExists { vmid: 9000, .. }));
        // A QEMU VM holding the VMID (PVE::Cluster::check_vmid_unused).
        assert!(matches!(c("VM 9002 already exists on node 'pve'\n"), PctError::AlreadyExists { vmid: 9002, .. }));
        let e = c("Configuration file 'nodes/pve/lxc/9000.conf' does not exist\n");
        assert!(matches!(e, PctError::DoesNotExist { vmid: 9000, .. }));
        assert_eq!(e.to_string(), "pct: Configuration file 'nodes/pve/lxc/9000.conf' does not exist");
        assert!(matches!(c("CT 9000 not running\n"), PctError::NotRunning { vmid: 9000, .. }));
        assert!(matches!(c("container '9000' not running!\n"), PctError::NotRunning { vmid: 9000, .. }));
        assert!(matches!(c("CT 9000 already running\n"), PctError::AlreadyRunning { vmid: 9000, .. }));
        match c("CT is locked (create)\n") {
            PctError::Locked { lock, .. } => assert_eq!(lock, "create"),
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            c("trying to acquire lock...\ncan't lock file '/run/lock/lxc/pve-config-9000.lock' - got timeout\n"),
            PctError::LockTimeout { vmid: 9000, .. }
        ));
        assert!(matches!(
            c("unable to destroy CT 9000 - container is running\n"),
            PctError::Running { vmid: 9000, .. }
        ));
        match c("unable to create CT 9000 - can't find file 'local:vztmpl/x.tar.zst'\n") {
            PctError::Failed { command, status, stderr } => {
                assert_eq!(command, "pct x");
                assert_eq!(status, "exit status 255");
                assert_eq!(stderr, "unable to create CT 9000 - can't find file 'local:vztmpl/x.tar.zst'");
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn option_vectors() {
        let mut args = vec![];
        push_options(
            &mut args,
            &[("hostname".into(), "web".into()), ("description".into(), "-x y".into()), ("tags".into(), "".into())],
        );
        assert_eq!(args, vec!["--hostname", "web", "--description=-x y", "--tags="]);
        assert_eq!(command_line(&["create".into(), "a b".into()]), "pct create 'a b'");
    }

    #[test]
    fn missing_binary() {
        let p = Pct::new("/nonexistent/pct");
        let e = p.status(9000).unwrap_err();
        assert!(matches!(e, PctError::NotFound { .. }));
        assert!(e.to_string().contains("\"pct\" field"), "{e}");
    }

    #[test]
    fn runs_once_with_env_and_argv() {
        // A fake pct that logs its argv and environment.
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let bin = dir.path().join("pct");
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\nprintf '%s|' \"$@\" >> {log}\necho \"$FOO\" >> {log}\ncase \"$1\" in\n status) echo 'status: running';;\n start) echo 'CT 9000 already running' >&2; exit 255;;\nesac\n",
                log = log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = Pct::new(&bin).env("FOO", "bar");
        assert_eq!(p.status(9000).unwrap(), Status::Running);
        assert!(matches!(p.start(9000), Err(PctError::AlreadyRunning { vmid: 9000, .. })));
        p.destroy(9000, true, false).unwrap();
        p.create(9000, "local:vztmpl/t.tar.zst", &[("memory".into(), "64".into())]).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            text,
            "status|9000|bar\nstart|9000|bar\ndestroy|9000|--purge|1|bar\ncreate|9000|local:vztmpl/t.tar.zst|--memory|64|bar\n"
        );
    }

    /// The emulator's root comes from the backend's `pve_root`, never from whatever
    /// `PCT_EMULATOR_ROOT` the engine's environment happens to hold; on `/` (a Proxmox
    /// host) pct gets nothing extra.
    #[test]
    fn pve_root_reaches_the_emulator() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("pct");
        std::fs::write(&bin, "#!/bin/sh\necho \"status: ${PCT_EMULATOR_ROOT-unset}\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("pve");
        let out = Pct::for_root(&bin, &root).run(9000, vec!["status".into(), "9000".into()]).unwrap();
        assert_eq!(out.stdout.trim(), format!("status: {}", root.display()));
        let env = Pct::for_root(&bin, Path::new("/")).env;
        assert!(env.is_empty(), "{env:?}");
    }
}
