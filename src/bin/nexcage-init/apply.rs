//! Applying an OCI process's settings to the current (forked, not yet exec'd) process,
//! in runc's order: rlimits, oomScoreAdj, I/O priority, capability bounding set, user and
//! groups (keeping capabilities across setuid when a capability set is given), the other
//! capability sets, no_new_privs, umask, cwd (after the user switch, so the user needs
//! access), HOME, and the executable's path (looked up in the process's own PATH).
//!
//! Errors name the OCI field concerned; capabilities the container lacks (LXC drops some
//! for privileged containers) become warnings and are not granted. Rlimits and
//! oomScoreAdj that need privileges over the host (raising a hard limit, lowering the
//! score) are left to nexcage, which applies them from the host once the process is
//! ready (see host_limits.rs).

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::str::FromStr;

use caps::{CapSet, Capability};

use crate::wire::{Capabilities, ProcessSpec, SeccompProgram};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// An errno as Go prints it (`operation not permitted`): strerror, lower case, without
/// Rust's ` (os error N)`.
fn errno_text(e: std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

/// Capability sets parsed and limited to what this container has.
struct CapPlan {
    bounding: HashSet<Capability>,
    effective: HashSet<Capability>,
    inheritable: HashSet<Capability>,
    permitted: HashSet<Capability>,
    ambient: HashSet<Capability>,
}

fn plan_caps(c: &Capabilities, warnings: &mut Vec<String>) -> Result<CapPlan, String> {
    let available =
        caps::read(None, CapSet::Bounding).map_err(|e| format!("cannot read capability bounding set: {e}"))?;
    let mut missing: Vec<String> = Vec::new();
    let mut parse = |names: &[String], set: &str| -> HashSet<Capability> {
        let mut out = HashSet::new();
        for n in names {
            match Capability::from_str(&n.to_ascii_uppercase()) {
                Ok(cap) if available.contains(&cap) => {
                    out.insert(cap);
                }
                Ok(_) => {
                    let m = format!("{n} ({set})");
                    if !missing.contains(&m) {
                        missing.push(m);
                    }
                }
                Err(_) => warnings.push(format!("process.capabilities.{set}: unknown capability {n} ignored")),
            }
        }
        out
    };
    let plan = CapPlan {
        bounding: parse(&c.bounding, "bounding"),
        effective: parse(&c.effective, "effective"),
        inheritable: parse(&c.inheritable, "inheritable"),
        permitted: parse(&c.permitted, "permitted"),
        ambient: parse(&c.ambient, "ambient"),
    };
    if !missing.is_empty() {
        warnings.push(format!(
            "capabilities not available in this container (dropped by its LXC configuration), not granted: {}",
            missing.join(", ")
        ));
    }
    Ok(plan)
}

/// What applying a process produced besides errors.
pub struct Applied {
    pub exe: CString,
    pub warnings: Vec<String>,
    /// Settings that need host privileges (see the module docs).
    pub deferred: Vec<String>,
}

/// Apply everything; or an error naming the field.
pub fn apply(spec: &ProcessSpec) -> Result<Applied, String> {
    let mut warnings = Vec::new();
    let mut deferred = Vec::new();

    for r in &spec.rlimits {
        let lim = libc::rlimit { rlim_cur: r.soft, rlim_max: r.hard };
        // SAFETY: plain syscall with a valid pointer.
        if unsafe { libc::setrlimit(r.resource as _, &lim) } != 0 {
            let e = errno();
            // Raising a hard limit needs CAP_SYS_RESOURCE over the host, which an
            // unprivileged container's root lacks: nexcage sets it from the host
            // (prlimit) right after this process reports ready.
            if e.raw_os_error() != Some(libc::EPERM) {
                return Err(format!("process.rlimits {}: cannot set soft {} hard {}: {e}", r.name, r.soft, r.hard));
            }
            deferred.push(r.name.clone());
        }
    }
    if let Some(adj) = spec.oom_score_adj {
        // Likewise lowering it: nexcage writes it from the host as well.
        if let Err(e) = std::fs::write("/proc/self/oom_score_adj", adj.to_string()) {
            if e.raw_os_error() != Some(libc::EACCES) && e.raw_os_error() != Some(libc::EPERM) {
                return Err(format!("process.oomScoreAdj {adj}: cannot write /proc/self/oom_score_adj: {e}"));
            }
            deferred.push("oomScoreAdj".into());
        }
    }
    if let Some((class, prio)) = spec.io_priority {
        // SAFETY: ioprio_set(IOPRIO_WHO_PROCESS, self, value).
        let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, (class << 13) | prio) };
        if rc != 0 {
            return Err(format!("process.ioPriority: ioprio_set failed: {}", errno()));
        }
    }

    if let Some(s) = &spec.scheduler {
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            policy: u32,
            flags: u64,
            nice: i32,
            priority: u32,
            runtime: u64,
            deadline: u64,
            period: u64,
        }
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: s.policy,
            flags: s.flags,
            nice: s.nice,
            priority: s.priority,
            runtime: s.runtime,
            deadline: s.deadline,
            period: s.period,
        };
        // SAFETY: sched_setattr(self, attr, 0) with a valid struct of the declared size.
        if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
            return Err(format!("process.scheduler: sched_setattr failed: {}", errno()));
        }
    }
    if let Some(cpus) = &spec.cpu_affinity {
        // SAFETY: a zeroed cpu_set_t is valid; CPU_SET only writes inside it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for c in cpus {
            unsafe { libc::CPU_SET(*c, &mut set) };
        }
        // SAFETY: valid pointer and size.
        if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
            return Err(format!("process.execCPUAffinity {cpus:?}: sched_setaffinity failed: {}", errno()));
        }
    }

    let plan = match &spec.capabilities {
        Some(c) => Some(plan_caps(c, &mut warnings)?),
        None => None,
    };
    // The AppArmor profile the host loaded into the CT's namespace, entered at execve (as
    // runc: before seccomp, which may forbid the write, and before the user switch).
    if let Some(name) = &spec.apparmor_profile {
        change_profile_on_exec(name)?;
    }
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN, which the user
    // switch below may drop: load it now (as runc does), so the rest of this setup and
    // the exec run under it. With no_new_privs, the caller loads it right before execve.
    if let (Some(prog), false) = (&spec.seccomp, spec.no_new_privileges) {
        load_seccomp(prog)?;
    }
    if let Some(p) = &plan {
        let current = caps::read(None, CapSet::Bounding).map_err(|e| format!("capabilities: {e}"))?;
        for cap in current.difference(&p.bounding) {
            caps::drop(None, CapSet::Bounding, *cap)
                .map_err(|e| format!("process.capabilities.bounding: cannot drop {cap}: {e}"))?;
        }
        // While still fully privileged: inheritable may then include what permitted lacks.
        caps::set(None, CapSet::Inheritable, &p.inheritable)
            .map_err(|e| format!("process.capabilities.inheritable: {e}"))?;
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    }

    set_user(spec)?;

    if let Some(p) = &plan {
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
        // Effective first (a subset of the old, full, permitted set), then permitted.
        caps::set(None, CapSet::Effective, &p.effective).map_err(|e| format!("process.capabilities.effective: {e}"))?;
        caps::set(None, CapSet::Permitted, &p.permitted)
            .map_err(|e| format!("process.capabilities.permitted: {e} (effective must be a subset of permitted)"))?;
        caps::clear(None, CapSet::Ambient).map_err(|e| format!("process.capabilities.ambient: {e}"))?;
        // As runc: an ambient capability the kernel refuses (it must also be permitted
        // and inheritable; `runc spec` lists three that are not inheritable) is a
        // warning, and the program runs without it.
        for cap in &p.ambient {
            // SAFETY: prctl with integer arguments.
            let rc = unsafe {
                libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, libc::c_ulong::from(cap.index()), 0, 0)
            };
            if rc != 0 {
                warnings.push(format!("can't raise ambient capability {cap}: {}", errno_text(errno())));
            }
        }
    }

    if spec.no_new_privileges {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!("process.noNewPrivileges: {}", errno()));
        }
    }
    if let Some(mask) = spec.umask {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    let cwd = if spec.cwd.is_empty() { "/" } else { spec.cwd.as_str() };
    std::env::set_current_dir(cwd).map_err(|e| format!("process.cwd {cwd}: {e}"))?;
    let exe = find_executable(spec)?;
    Ok(Applied { exe, warnings, deferred })
}

fn set_user(spec: &ProcessSpec) -> Result<(), String> {
    let gids: Vec<libc::gid_t> = spec.additional_gids.iter().map(|g| *g as libc::gid_t).collect();
    // SAFETY: valid pointer and length.
    if unsafe { libc::setgroups(gids.len(), gids.as_ptr()) } != 0 {
        return Err(format!("process.user.additionalGids {:?}: setgroups: {}", spec.additional_gids, errno()));
    }
    // SAFETY: plain syscalls.
    if unsafe { libc::setresgid(spec.gid, spec.gid, spec.gid) } != 0 {
        return Err(format!("process.user.gid {}: {} (is the gid mapped in this container?)", spec.gid, errno()));
    }
    // SAFETY: plain syscall.
    if unsafe { libc::setresuid(spec.uid, spec.uid, spec.uid) } != 0 {
        return Err(format!("process.user.uid {}: {} (is the uid mapped in this container?)", spec.uid, errno()));
    }
    Ok(())
}

/// The environment with HOME added from the container's /etc/passwd when missing (as
/// runc does), as C strings for execve.
pub fn environment(spec: &ProcessSpec) -> Vec<CString> {
    let mut env: Vec<String> = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(spec.uid).unwrap_or_else(|| "/".into())));
    }
    env.into_iter().filter_map(|e| CString::new(e).ok()).collect()
}

fn home_of(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid) && !f[5].is_empty()).then(|| f[5].to_string())
    })
}

/// args[0] as execve wants it: a path as given, or looked up in the process's PATH.
/// Checked before the gate, as runc does (Go's `exec.LookPath`), so a missing or
/// non-executable program fails `create` with runc's message, which engines recognise
/// (Podman answers 127 for "no such file or directory", 126 for "permission denied").
fn find_executable(spec: &ProcessSpec) -> Result<CString, String> {
    let arg0 = spec.args.first().ok_or("process.args is empty")?;
    let cstr = |p: &std::path::Path| CString::new(p.as_os_str().as_bytes()).map_err(|_| "NUL in path".to_string());
    if arg0.contains('/') {
        let c = cstr(std::path::Path::new(arg0))?;
        let meta = std::fs::metadata(arg0).map_err(|e| format!("exec: {arg0:?}: stat {arg0}: {}", go_errno(&e)))?;
        if meta.is_dir() {
            return Err(format!("exec: {arg0:?}: is a directory"));
        }
        // SAFETY: valid C string.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
            return Err(format!("exec: {arg0:?}: permission denied"));
        }
        return Ok(c);
    }
    let path = spec.env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = std::path::Path::new(dir).join(arg0);
        let Ok(c) = cstr(&candidate) else { continue };
        let is_file = std::fs::metadata(&candidate).map(|m| m.is_file()).unwrap_or(false);
        // SAFETY: valid C string.
        if is_file && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 {
            return Ok(c);
        }
    }
    Err(format!("exec: {arg0:?}: executable file not found in $PATH"))
}

/// An OS error as Go prints it (lower case, no "(os error N)").
fn go_errno(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            // SAFETY: strerror returns a static, NUL-terminated string.
            let s = unsafe { std::ffi::CStr::from_ptr(libc::strerror(n)) }.to_string_lossy().into_owned();
            let mut c = s.chars();
            c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or(s)
        }
        None => e.to_string(),
    }
}

/// Have the next execve run under AppArmor profile `name` (of the CT's policy namespace):
/// `exec NAME` on the process's own `attr/apparmor/exec` (`attr/exec` on kernels before
/// the per-LSM directory).
fn change_profile_on_exec(name: &str) -> Result<(), String> {
    use std::io::Write;
    let command = format!("exec {name}");
    let mut last = String::new();
    for path in ["/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"] {
        match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(mut f) => {
                return f
                    .write_all(command.as_bytes())
                    .map_err(|e| format!("process.apparmorProfile {name:?}: cannot change to it at exec: {e}"))
            }
            Err(e) => last = format!("{path}: {e}"),
        }
    }
    Err(format!("process.apparmorProfile {name:?}: cannot change to it at exec: {last}"))
}

/// Install `prog` with seccomp(SECCOMP_SET_MODE_FILTER), stacked on the filters this
/// process already has (LXC's).
pub fn load_seccomp(prog: &SeccompProgram) -> Result<(), String> {
    if prog.bpf.is_empty() || prog.bpf.len() % 8 != 0 || prog.bpf.len() / 8 > u16::MAX as usize {
        return Err(format!("linux.seccomp: a filter of {} bytes is not a BPF program", prog.bpf.len()));
    }
    let filters: Vec<libc::sock_filter> = prog
        .bpf
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let fprog = libc::sock_fprog { len: filters.len() as u16, filter: filters.as_ptr() as *mut libc::sock_filter };
    // SAFETY: seccomp(2) with a valid program that outlives the call.
    let rc =
        unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, prog.flags as libc::c_ulong, &fprog) };
    if rc != 0 {
        return Err(format!("linux.seccomp: loading the filter failed: {}", errno()));
    }
    Ok(())
}
