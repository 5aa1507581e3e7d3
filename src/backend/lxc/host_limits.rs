//! process.rlimits and process.oomScoreAdj applied from the host, to the host pid of a
//! process nexcage-init has prepared (before the program execs) or started (exec).
//!
//! nexcage-init applies them itself, but an unprivileged container's root cannot raise a
//! hard rlimit above what the container started with, nor lower oom_score_adj (both need
//! CAP_SYS_RESOURCE over the host): Kubernetes gives Guaranteed pods an oomScoreAdj of
//! -997, and engines ask for large RLIMIT_NOFILE. init reports those as deferred, and
//! nexcage sets them as host root with prlimit(2) and /proc/<pid>/oom_score_adj (runc
//! too writes oom_score_adj from the runtime). This needs CAP_SYS_RESOURCE on the host;
//! without it the error says so.

use anyhow::{bail, Result};

use super::wire::ProcessSpec;

/// Apply the `deferred` settings (as init reported them) of `spec` to `pid`.
pub fn apply(pid: i32, spec: &ProcessSpec, deferred: &[String]) -> Result<()> {
    for r in spec.rlimits.iter().filter(|r| deferred.contains(&r.name)) {
        let lim = libc::rlimit64 { rlim_cur: r.soft, rlim_max: r.hard };
        // SAFETY: prlimit64 on another process with valid pointers.
        if unsafe { libc::prlimit64(pid, r.resource as _, &lim, std::ptr::null_mut()) } != 0 {
            bail!(
                "process.rlimits {}: soft {} hard {} exceeds what the container may set itself, and setting it \
                 from the host failed: {} (needs CAP_SYS_RESOURCE; or ask for at most the container's hard limit)",
                r.name,
                r.soft,
                r.hard,
                std::io::Error::last_os_error()
            );
        }
    }
    if let Some(adj) = spec.oom_score_adj.filter(|_| deferred.iter().any(|d| d == "oomScoreAdj")) {
        let path = format!("/proc/{pid}/oom_score_adj");
        if let Err(e) = std::fs::write(&path, adj.to_string()) {
            bail!(
                "process.oomScoreAdj {adj}: the container may not lower its OOM score itself, and writing {path} \
                 from the host failed: {e} (needs CAP_SYS_RESOURCE)"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::lxc::wire::Rlimit;

    #[test]
    fn nothing_deferred_nothing_done() {
        let spec = ProcessSpec { oom_score_adj: Some(-1000), ..Default::default() };
        apply(i32::MAX, &spec, &[]).unwrap();
    }

    #[test]
    fn applies_to_another_process() {
        let mut child = std::process::Command::new("sleep").arg("10").spawn().unwrap();
        let pid = child.id() as i32;
        let spec = ProcessSpec {
            rlimits: vec![Rlimit {
                name: "RLIMIT_NOFILE".into(),
                resource: libc::RLIMIT_NOFILE as i32,
                soft: 77,
                hard: 88,
            }],
            oom_score_adj: Some(123),
            ..Default::default()
        };
        apply(pid, &spec, &["RLIMIT_NOFILE".to_string(), "oomScoreAdj".to_string()]).unwrap();
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
        assert!(line.split_whitespace().collect::<Vec<_>>()[3..5] == ["77", "88"], "{line}");
        assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap().trim(), "123");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
