//! The bundle's `linux.seccomp` profile, compiled on the host with libseccomp (what crun
//! and runc use, so a profile means the same thing) into the classic BPF program the
//! kernel loads. nexcage-init loads it with seccomp(2) as the last step before the
//! program's execve, stacked on LXC's own filter (Proxmox's policy still applies: the
//! kernel runs every filter and the strictest verdict wins). Keeping libseccomp on the
//! host keeps nexcage-init a small static binary.
//!
//! Rules follow runc's reading of the profile: ERRNO without errnoRet is EPERM; syscall
//! names this libseccomp does not know are skipped (profiles list syscalls of newer
//! kernels); a rule whose action is the default action is skipped (libseccomp refuses
//! it); conditions on distinct arguments are one rule (all must hold), several on the
//! same argument become one rule each; SCMP_CMP_MASKED_EQ takes `value` as the mask and
//! `valueTwo` as the datum.

use std::io::{Read, Seek};
use std::str::FromStr;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use nexcage_wire::SeccompProgram;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};

/// A profile that cannot be compiled, with the JSON path at fault.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct SeccompError {
    pub path: String,
    pub problem: String,
}

fn bad(path: impl Into<String>, problem: impl Into<String>) -> SeccompError {
    SeccompError { path: path.into(), problem: problem.into() }
}

const EPERM: u32 = 1;

/// Compile `profile` (`linux.seccomp`) into the program nexcage-init loads.
pub fn compile(profile: &LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    if profile.listener_path().is_some() {
        return Err(bad(
            "linux.seccomp.listenerPath",
            "seccomp notification agents (SCMP_ACT_NOTIFY) are not supported on proxmox-lxc",
        ));
    }
    let default = action(profile.default_action(), profile.default_errno_ret(), "linux.seccomp.defaultAction")?;
    let mut ctx = ScmpFilterContext::new_filter(default).map_err(|e| bad("linux.seccomp", e.to_string()))?;
    for (i, arch) in profile.architectures().iter().flatten().enumerate() {
        let at = format!("linux.seccomp.architectures[{i}]");
        let name = serde_json::to_value(arch).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let a = ScmpArch::from_str(&name)
            .map_err(|_| bad(&at, format!("{name:?} is not an architecture libseccomp knows")))?;
        ctx.add_arch(a).map_err(|e| bad(&at, e.to_string()))?;
    }
    let mut flags = 0u32;
    for flag in profile.flags().iter().flatten() {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => flags |= libc::SECCOMP_FILTER_FLAG_LOG as u32,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => flags |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32,
            // nexcage-init is single-threaded when it loads the filter.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {}
        }
    }
    for (i, rule) in profile.syscalls().iter().flatten().enumerate() {
        let at = format!("linux.seccomp.syscalls[{i}]");
        let act = action(rule.action(), rule.errno_ret(), &format!("{at}.action"))?;
        if act == default {
            continue;
        }
        let args = rule.args().as_deref().unwrap_or_default();
        let conds = conditions(args, &at)?;
        let distinct = {
            let mut seen = std::collections::BTreeSet::new();
            args.iter().all(|a| seen.insert(a.index()))
        };
        for name in rule.names() {
            let Ok(sys) = ScmpSyscall::from_name(name) else {
                log::debug!("{at}: syscall {name:?} unknown to libseccomp, skipped");
                continue;
            };
            let added = if conds.is_empty() {
                ctx.add_rule(act, sys)
            } else if distinct {
                ctx.add_rule_conditional(act, sys, &conds)
            } else {
                conds.iter().try_for_each(|c| ctx.add_rule_conditional(act, sys, std::slice::from_ref(c)))
            };
            added.map_err(|e| bad(&at, format!("syscall {name:?}: {e}")))?;
        }
    }
    let bpf = export(&ctx).map_err(|e| bad("linux.seccomp", format!("cannot export the filter: {e}")))?;
    Ok(SeccompProgram { bpf, flags })
}

/// The architectures of `features::SECCOMP_ARCHS` that a filter built on this host can
/// take (libseccomp wants one byte order per filter, the native one).
pub fn supported_archs() -> Vec<&'static str> {
    crate::backend::lxc::features::SECCOMP_ARCHS
        .iter()
        .copied()
        .filter(|name| {
            let Ok(arch) = ScmpArch::from_str(name) else { return false };
            ScmpFilterContext::new_filter(ScmpAction::Allow).is_ok_and(|mut ctx| ctx.add_arch(arch).is_ok())
        })
        .collect()
}

fn action(a: LinuxSeccompAction, errno: Option<u32>, at: &str) -> Result<ScmpAction, SeccompError> {
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(EPERM) as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno.unwrap_or(EPERM) as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(bad(at, "SCMP_ACT_NOTIFY needs a notification agent, which proxmox-lxc does not support"))
        }
    })
}

fn conditions(args: &[oci_spec::runtime::LinuxSeccompArg], at: &str) -> Result<Vec<ScmpArgCompare>, SeccompError> {
    let mut out = Vec::new();
    for (j, a) in args.iter().enumerate() {
        if a.index() > 5 {
            return Err(bad(
                format!("{at}.args[{j}].index"),
                format!("{} is not a syscall argument (0..5)", a.index()),
            ));
        }
        let (op, datum) = match a.op() {
            LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, a.value()),
            LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, a.value()),
            LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, a.value()),
            LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, a.value()),
            LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, a.value()),
            LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, a.value()),
            LinuxSeccompOperator::ScmpCmpMaskedEq => {
                (ScmpCompareOp::MaskedEqual(a.value()), a.value_two().unwrap_or(0))
            }
        };
        out.push(ScmpArgCompare::new(a.index() as u32, op, datum));
    }
    Ok(out)
}

/// The filter as `struct sock_filter` records (8 bytes each).
fn export(ctx: &ScmpFilterContext) -> std::io::Result<Vec<u8>> {
    let mut file = tempfile_in_memory()?;
    ctx.export_bpf(&mut file).map_err(|e| std::io::Error::other(e.to_string()))?;
    file.rewind()?;
    let mut bpf = Vec::new();
    file.read_to_end(&mut bpf)?;
    Ok(bpf)
}

fn tempfile_in_memory() -> std::io::Result<std::fs::File> {
    let fd = nix::sys::memfd::memfd_create(c"nexcage-seccomp", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)?;
    Ok(std::fs::File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn compiles_a_profile_into_sock_filter_records() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat", "no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}, {"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        }));
        let prog = compile(&p).unwrap();
        assert!(!prog.bpf.is_empty() && prog.bpf.len() % 8 == 0, "{} bytes", prog.bpf.len());
        assert_eq!(prog.flags, libc::SECCOMP_FILTER_FLAG_LOG as u32);
    }

    /// Every action, operator and architecture `features` claims compiles.
    #[test]
    fn what_features_claims_compiles() {
        use crate::backend::lxc::features::{SECCOMP_ACTIONS, SECCOMP_OPERATORS};
        let rules: Vec<_> = SECCOMP_ACTIONS
            .iter()
            .filter(|a| **a != "SCMP_ACT_ALLOW")
            .zip(["getpid", "getppid", "getuid", "geteuid", "getgid", "getegid", "gettid"])
            .map(|(a, name)| serde_json::json!({"names": [name], "action": a, "errnoRet": 5}))
            .chain(SECCOMP_OPERATORS.iter().zip(["read", "write", "close", "dup", "dup2", "pipe", "lseek"]).map(
                |(op, name)| {
                    serde_json::json!({"names": [name], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 1, "valueTwo": 1, "op": op}]})
                },
            ))
            .collect();
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
        assert!(compile(&p).is_ok(), "{:?}", compile(&p).err());
        // One filter takes architectures of one byte order (libseccomp's rule, runc's too):
        // each claimed one, alone.
        let archs = supported_archs();
        assert!(archs.contains(&"SCMP_ARCH_X86_64") || archs.contains(&"SCMP_ARCH_AARCH64"), "{archs:?}");
        for arch in archs {
            let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch],
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}));
            assert!(compile(&p).is_ok(), "{arch}: {:?}", compile(&p).err());
        }
    }

    #[test]
    fn refusals_name_the_field() {
        let e = compile(&profile(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}))).unwrap_err();
        assert_eq!(e.path, "linux.seccomp.defaultAction");
        let e = compile(&profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})))
        .unwrap_err();
        assert_eq!(e.path, "linux.seccomp.syscalls[0].args[0].index");
        let e = compile(&profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}),
        ))
        .unwrap_err();
        assert_eq!(e.path, "linux.seccomp.listenerPath");
    }
}
