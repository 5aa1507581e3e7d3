//! The OCI `process` object (config.json at create, `exec --process` file, or `exec`
//! flags) turned into what nexcage-init applies ([`ProcessSpec`]). Everything that can be
//! checked on the host is checked here, with the JSON path in the message; fields
//! nexcage-init cannot honour are warnings naming the field and the reason.

use std::collections::BTreeSet;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::apparmor::HostAppArmor;
use super::wire::{Capabilities, ProcessSpec, Rlimit, Scheduler};
use crate::cli::ExecArgs;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciProcess {
    #[serde(default)]
    pub terminal: bool,
    #[serde(default)]
    pub console_size: Option<ConsoleSize>,
    #[serde(default)]
    pub user: OciUser,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub command_line: Option<String>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub capabilities: Option<OciCapabilities>,
    #[serde(default)]
    pub rlimits: Option<Vec<OciRlimit>>,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default)]
    pub apparmor_profile: Option<String>,
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    #[serde(default)]
    pub selinux_label: Option<String>,
    #[serde(default)]
    pub io_priority: Option<IoPriority>,
    #[serde(default)]
    pub scheduler: Option<OciScheduler>,
    #[serde(default, rename = "execCPUAffinity")]
    pub exec_cpu_affinity: Option<ExecCpuAffinity>,
}

#[derive(Debug, Default, Deserialize)]
pub struct OciScheduler {
    pub policy: String,
    #[serde(default)]
    pub nice: i32,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    #[serde(default)]
    pub runtime: u64,
    #[serde(default)]
    pub deadline: u64,
    #[serde(default)]
    pub period: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct ExecCpuAffinity {
    #[serde(default)]
    pub initial: Option<String>,
    #[serde(default, rename = "final")]
    pub final_: Option<String>,
}

/// A CPU list such as `0-3,7`.
fn parse_cpu_list(s: &str, at: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = match (a.trim().parse(), b.trim().parse()) {
            (Ok(a), Ok(b)) if a <= b && b < 8192 => (a, b),
            _ => bail!("{at}: invalid CPU list {s:?} (use e.g. 0-3,7)"),
        };
        out.extend(a..=b);
    }
    if out.is_empty() {
        bail!("{at}: empty CPU list");
    }
    Ok(out)
}

fn scheduler(s: &OciScheduler, at: &str) -> Result<Scheduler> {
    let policy = match s.policy.as_str() {
        "SCHED_OTHER" => 0,
        "SCHED_FIFO" => 1,
        "SCHED_RR" => 2,
        "SCHED_BATCH" => 3,
        "SCHED_ISO" => 4,
        "SCHED_IDLE" => 5,
        "SCHED_DEADLINE" => 6,
        other => bail!("{at}.policy: unknown policy {other:?}"),
    };
    let mut flags = 0;
    for f in s.flags.iter().flatten() {
        flags |= match f.as_str() {
            "SCHED_FLAG_RESET_ON_FORK" => 0x01,
            "SCHED_FLAG_RECLAIM" => 0x02,
            "SCHED_FLAG_DL_OVERRUN" => 0x04,
            "SCHED_FLAG_KEEP_POLICY" => 0x08,
            "SCHED_FLAG_KEEP_PARAMS" => 0x10,
            "SCHED_FLAG_UTIL_CLAMP_MIN" => 0x20,
            "SCHED_FLAG_UTIL_CLAMP_MAX" => 0x40,
            other => bail!("{at}.flags: unknown flag {other:?}"),
        };
    }
    if !(-20..=19).contains(&s.nice) {
        bail!("{at}.nice {} is outside -20..19", s.nice);
    }
    if s.priority < 0 {
        bail!("{at}.priority {} is negative", s.priority);
    }
    Ok(Scheduler {
        policy,
        flags,
        nice: s.nice,
        priority: s.priority as u32,
        runtime: s.runtime,
        deadline: s.deadline,
        period: s.period,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct ConsoleSize {
    pub height: u32,
    pub width: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciUser {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub umask: Option<u32>,
    #[serde(default)]
    pub additional_gids: Option<Vec<u32>>,
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct OciCapabilities {
    #[serde(default)]
    pub bounding: Option<Vec<String>>,
    #[serde(default)]
    pub effective: Option<Vec<String>>,
    #[serde(default)]
    pub inheritable: Option<Vec<String>>,
    #[serde(default)]
    pub permitted: Option<Vec<String>>,
    #[serde(default)]
    pub ambient: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub struct OciRlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Deserialize)]
pub struct IoPriority {
    pub class: String,
    #[serde(default)]
    pub priority: i32,
}

/// Linux resource numbers of the OCI rlimit names.
fn rlimit_resource(name: &str) -> Option<i32> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    } as i32)
}

/// Parse `process` from a JSON value; `at` is its JSON path for messages.
pub fn parse(value: &serde_json::Value, at: &str) -> Result<OciProcess> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner.is_empty() || inner == "." { at.to_string() } else { format!("{at}.{inner}") };
        anyhow::anyhow!("{path}: {}", e.into_inner())
    })
}

/// Known capability names, checked on the host so that a typo is reported once, here.
fn check_caps(names: &Option<Vec<String>>, at: &str, warnings: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for n in names.iter().flatten() {
        let upper = n.to_ascii_uppercase();
        let upper = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
        if caps::Capability::from_str(&upper).is_ok() {
            if !out.contains(&upper) {
                out.push(upper);
            }
        } else {
            warnings.push(format!("{at}: unknown capability {n:?} ignored"));
        }
    }
    out
}

/// Convert and validate. `at` is the JSON path (`process`) for messages.
pub fn to_spec(p: &OciProcess, at: &str) -> Result<(ProcessSpec, Vec<String>)> {
    let mut warnings = Vec::new();
    let args = p.args.clone().unwrap_or_default();
    if args.is_empty() {
        if p.command_line.is_some() {
            bail!("{at}.commandLine is for Windows; give {at}.args");
        }
        bail!("{at}.args is empty: it must name the program to run");
    }
    if !p.cwd.starts_with('/') {
        bail!("{at}.cwd {:?} must be an absolute path", p.cwd);
    }
    for (i, e) in p.env.iter().flatten().enumerate() {
        if !e.contains('=') {
            bail!("{at}.env[{i}] {e:?} is not NAME=value");
        }
    }
    let mut rlimits = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, r) in p.rlimits.iter().flatten().enumerate() {
        let Some(resource) = rlimit_resource(&r.kind) else {
            bail!("{at}.rlimits[{i}].type: unknown rlimit {:?} (use RLIMIT_NOFILE, RLIMIT_NPROC, ...)", r.kind);
        };
        if !seen.insert(r.kind.clone()) {
            bail!("{at}.rlimits[{i}]: {} given twice", r.kind);
        }
        if r.soft > r.hard {
            bail!("{at}.rlimits[{i}]: soft limit {} exceeds hard limit {} for {}", r.soft, r.hard, r.kind);
        }
        rlimits.push(Rlimit { name: r.kind.clone(), resource, soft: r.soft, hard: r.hard });
    }
    let capabilities = p.capabilities.as_ref().map(|c| {
        let f = |v: &Option<Vec<String>>, set: &str, w: &mut Vec<String>| {
            check_caps(v, &format!("{at}.capabilities.{set}"), w)
        };
        Capabilities {
            bounding: f(&c.bounding, "bounding", &mut warnings),
            effective: f(&c.effective, "effective", &mut warnings),
            inheritable: f(&c.inheritable, "inheritable", &mut warnings),
            permitted: f(&c.permitted, "permitted", &mut warnings),
            ambient: f(&c.ambient, "ambient", &mut warnings),
        }
    });
    let io_priority = match &p.io_priority {
        None => None,
        Some(io) => {
            let class = match io.class.as_str() {
                "IOPRIO_CLASS_RT" => 1,
                "IOPRIO_CLASS_BE" => 2,
                "IOPRIO_CLASS_IDLE" => 3,
                other => bail!("{at}.ioPriority.class: unknown class {other:?}"),
            };
            if !(0..=7).contains(&io.priority) {
                bail!("{at}.ioPriority.priority {} is outside 0..7", io.priority);
            }
            Some((class, io.priority))
        }
    };
    if let Some(l) = &p.selinux_label {
        warnings.push(format!("{at}.selinuxLabel {l:?} ignored: SELinux labels are not supported on Proxmox VE"));
    }
    let sched = p.scheduler.as_ref().map(|s| scheduler(s, &format!("{at}.scheduler"))).transpose()?;
    // The process starts inside the container's cgroup already: `final` applies (else
    // `initial`).
    let cpu_affinity = match &p.exec_cpu_affinity {
        Some(a) => match (&a.final_, &a.initial) {
            (Some(f), _) => Some(parse_cpu_list(f, &format!("{at}.execCPUAffinity.final"))?),
            (None, Some(i)) => Some(parse_cpu_list(i, &format!("{at}.execCPUAffinity.initial"))?),
            (None, None) => None,
        },
        None => None,
    };
    if p.user.username.is_some() {
        warnings.push(format!("{at}.user.username ignored (Windows only)"));
    }
    let spec = ProcessSpec {
        args,
        env: p.env.clone().unwrap_or_default(),
        cwd: p.cwd.clone(),
        uid: p.user.uid,
        gid: p.user.gid,
        additional_gids: p.user.additional_gids.clone().unwrap_or_default(),
        umask: p.user.umask,
        terminal: p.terminal,
        console_size: p
            .console_size
            .as_ref()
            .map(|c| (c.height.min(u16::MAX as u32) as u16, c.width.min(u16::MAX as u32) as u16)),
        rlimits,
        capabilities,
        no_new_privileges: p.no_new_privileges,
        oom_score_adj: p.oom_score_adj,
        io_priority,
        scheduler: sched,
        cpu_affinity,
        // linux.seccomp, not process: set by the caller (create::bundle_facts).
        seccomp: None,
        // Needs the host's AppArmor: set by the caller (create::bundle_facts, for_exec).
        apparmor_profile: None,
    };
    Ok((spec, warnings))
}

/// The process of `exec`: the `--process` file, or the container's own process changed
/// by the flags (runc's rules: args from the command line, `--env` appended, `--cwd`,
/// `--user uid[:gid]`, `--additional-gids` appended, `--cap` added to the bounding,
/// effective and permitted sets, `--tty`, `--no-new-privs`, `--apparmor`). The seccomp
/// filter and AppArmor profile are the container's unless the process file or
/// `--apparmor` names a profile (`host`: what AppArmor offers).
pub fn for_exec(args: &ExecArgs, container: &ProcessSpec, host: &HostAppArmor) -> Result<(ProcessSpec, Vec<String>)> {
    if let Some(path) = &args.process {
        let text = std::fs::read(path).with_context(|| format!("cannot read --process file {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_slice(&text).with_context(|| format!("--process file {} is not JSON", path.display()))?;
        let p = parse(&value, "process").with_context(|| format!("invalid --process file {}", path.display()))?;
        let (mut spec, mut warnings) =
            to_spec(&p, "process").with_context(|| format!("invalid --process file {}", path.display()))?;
        // As runc: an exec'd process runs under the container's seccomp filter, and under
        // the container's AppArmor profile unless the file names one.
        spec.seccomp = container.seccomp.clone();
        spec.apparmor_profile = match &p.apparmor_profile {
            Some(name) => host
                .choose(name, "process.apparmorProfile", &mut warnings)
                .with_context(|| format!("invalid --process file {}", path.display()))?,
            None => container.apparmor_profile.clone(),
        };
        return Ok((spec, warnings));
    }
    if args.command.is_empty() {
        bail!("exec needs a command (or --process FILE)");
    }
    let mut warnings = Vec::new();
    let mut p = container.clone();
    p.args = args.command.clone();
    if let Some(cwd) = &args.cwd {
        if !cwd.starts_with('/') {
            bail!("--cwd {cwd:?} must be an absolute path");
        }
        p.cwd = cwd.clone();
    }
    for e in &args.env {
        if !e.contains('=') {
            bail!("--env {e:?} is not NAME=value");
        }
        p.env.push(e.clone());
    }
    if let Some(u) = &args.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        p.uid = uid.parse().with_context(|| format!("--user {u:?}: uid must be a number"))?;
        if let Some(g) = gid {
            p.gid = g.parse().with_context(|| format!("--user {u:?}: gid must be a number"))?;
        }
    }
    for g in &args.additional_gids {
        p.additional_gids.push(g.parse().with_context(|| format!("--additional-gids {g:?} must be a number"))?);
    }
    if !args.cap.is_empty() {
        let caps = p.capabilities.get_or_insert_with(Default::default);
        for c in check_caps(&Some(args.cap.clone()), "--cap", &mut warnings) {
            for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted] {
                if !set.contains(&c) {
                    set.push(c.clone());
                }
            }
        }
    }
    p.terminal = args.tty;
    p.console_size = None;
    if args.no_new_privs {
        p.no_new_privileges = true;
    }
    if let Some(a) = &args.apparmor {
        p.apparmor_profile = host.choose(a, "--apparmor", &mut warnings)?;
    }
    if let Some(l) = &args.process_label {
        warnings.push(format!("--process-label {l:?} ignored: SELinux labels are not supported on Proxmox VE"));
    }
    if let Some(c) = args.cgroup.first() {
        bail!(
            "--cgroup {c:?} is not supported on proxmox-lxc: exec'd processes join the container's cgroup \
             (Proxmox manages it); leave --cgroup out"
        );
    }
    Ok((p, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec_of(v: serde_json::Value) -> Result<(ProcessSpec, Vec<String>)> {
        to_spec(&parse(&v, "process")?, "process")
    }

    #[test]
    fn full_process_converts() {
        let (s, w) = spec_of(json!({
            "terminal": true, "consoleSize": {"height": 24, "width": 80},
            "user": {"uid": 1000, "gid": 100, "umask": 18, "additionalGids": [5, 6]},
            "args": ["sh", "-c", "true"], "env": ["PATH=/bin", "A=b"], "cwd": "/tmp",
            "capabilities": {"bounding": ["CAP_KILL", "cap_chown"], "effective": ["CAP_KILL"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}],
            "noNewPrivileges": true, "oomScoreAdj": 500,
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
            "apparmorProfile": "docker-default"
        }))
        .unwrap();
        assert_eq!(s.args, ["sh", "-c", "true"]);
        assert_eq!((s.uid, s.gid, s.umask), (1000, 100, Some(18)));
        assert_eq!(s.additional_gids, [5, 6]);
        assert_eq!(s.console_size, Some((24, 80)));
        assert_eq!(s.rlimits[0].resource, libc::RLIMIT_NOFILE as i32);
        assert_eq!(s.capabilities.as_ref().unwrap().bounding, ["CAP_KILL", "CAP_CHOWN"]);
        assert_eq!(s.io_priority, Some((2, 4)));
        assert!(s.no_new_privileges && s.terminal);
        // apparmorProfile needs the host's AppArmor: the caller decides (apparmor.rs).
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.apparmor_profile, None);
    }

    #[test]
    fn errors_name_the_field() {
        for (v, want) in [
            (json!({"args": [], "cwd": "/"}), "process.args is empty"),
            (json!({"args": ["x"], "cwd": "rel"}), "process.cwd \"rel\" must be an absolute path"),
            (json!({"args": ["x"], "cwd": "/", "env": ["NOEQUALS"]}), "process.env[0]"),
            (
                json!({"args": ["x"], "cwd": "/", "rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}),
                "process.rlimits[0].type",
            ),
            (
                json!({"args": ["x"], "cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]}),
                "exceeds hard",
            ),
            (json!({"args": ["x"], "cwd": "/", "user": {"uid": -1}}), "process.user.uid"),
            (json!({"args": ["x"], "cwd": "/", "ioPriority": {"class": "X"}}), "process.ioPriority.class"),
            (json!({"args": ["x"], "cwd": "/", "scheduler": {"policy": "SCHED_X"}}), "process.scheduler.policy"),
            (json!({"args": ["x"], "cwd": "/", "execCPUAffinity": {"final": "3-1"}}), "process.execCPUAffinity.final"),
        ] {
            let e = format!("{:#}", spec_of(v).unwrap_err());
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }

    #[test]
    fn scheduler_and_affinity() {
        let (s, w) = spec_of(json!({"args": ["x"], "cwd": "/",
            "scheduler": {"policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
            "execCPUAffinity": {"initial": "0-1", "final": "0,2-3"}}))
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.scheduler, Some(Scheduler { policy: 3, flags: 1, nice: 5, ..Default::default() }));
        assert_eq!(s.cpu_affinity, Some(vec![0, 2, 3]));
    }

    #[test]
    fn unknown_capability_is_a_warning() {
        let (s, w) =
            spec_of(json!({"args": ["x"], "cwd": "/", "capabilities": {"bounding": ["CAP_NOPE", "CAP_KILL"]}}))
                .unwrap();
        assert_eq!(s.capabilities.unwrap().bounding, ["CAP_KILL"]);
        assert!(w[0].contains("process.capabilities.bounding") && w[0].contains("CAP_NOPE"), "{w:?}");
    }

    fn exec_args(words: &[&str]) -> ExecArgs {
        let mut all = vec!["exec"];
        all.extend_from_slice(words);
        let os: Vec<std::ffi::OsString> = all.iter().map(Into::into).collect();
        match crate::cli::parse_command(&os).unwrap().command {
            crate::cli::Command::Exec(e) => e,
            _ => unreachable!(),
        }
    }

    #[test]
    fn exec_flags_follow_runc() {
        let base = ProcessSpec {
            args: vec!["init".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            terminal: true,
            ..Default::default()
        };
        let a =
            exec_args(&["-e", "X=1", "--cwd", "/tmp", "-u", "7:8", "-g", "9", "--cap", "CAP_KILL", "c", "ls", "-l"]);
        let base = ProcessSpec { apparmor_profile: Some("ct-profile".into()), ..base };
        let no_apparmor = HostAppArmor { enabled: false, dir: "/nonexistent".into(), loaded: Some(Default::default()) };
        let (p, _) = for_exec(&a, &base, &no_apparmor).unwrap();
        assert_eq!(p.apparmor_profile.as_deref(), Some("ct-profile"), "the container's profile, as runc");
        assert_eq!(p.args, ["ls", "-l"]);
        assert_eq!(p.env, ["PATH=/bin", "X=1"]);
        assert_eq!((p.cwd.as_str(), p.uid, p.gid), ("/tmp", 7, 8));
        assert_eq!(p.additional_gids, [9]);
        assert!(!p.terminal, "--tty is off unless given");
        assert_eq!(p.capabilities.unwrap().effective, ["CAP_KILL"]);
        let e = for_exec(&exec_args(&["c"]), &base, &no_apparmor).unwrap_err().to_string();
        assert!(e.contains("needs a command"), "{e}");
        let (p, w) = for_exec(&exec_args(&["--apparmor", "other", "c", "ls"]), &base, &no_apparmor).unwrap();
        assert_eq!(p.apparmor_profile, None);
        assert_eq!(w, ["--apparmor \"other\" ignored: AppArmor is not enabled on this host"]);
    }
}
