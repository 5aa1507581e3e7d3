//! Host facts `doctor` reads, as pure parsers (unit-tested on sample text) plus the thin
//! functions that feed them from /proc, /sys and /etc.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::cgroup_mode::{detect as cgroup_mode, CgroupMode};

/// Enabled controllers (`/proc/cgroups`) that no v1 hierarchy (`/proc/self/mounts`) has:
/// on a hybrid host they sit on the v2 side, and crun refuses to run.
pub fn unmounted_v1_controllers(proc_cgroups: &str, mounts: &str) -> Vec<String> {
    let mounted: Vec<&str> = mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[2] == "cgroup").then(|| f[3])
        })
        .flat_map(|opts| opts.split(','))
        .collect();
    proc_cgroups
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[3] == "1").then(|| f[0])
        })
        .filter(|c| !mounted.contains(c))
        .map(String::from)
        .collect()
}

/// Does a subordinate id file (`/etc/subuid` format) give `user` the whole range
/// `[start, start + count)`?
pub fn subid_covers(text: &str, user: &str, start: u64, count: u64) -> bool {
    text.lines().any(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        if f.len() != 3 || (f[0] != user && f[0] != "0") {
            return false;
        }
        match (f[1].parse::<u64>(), f[2].parse::<u64>()) {
            (Ok(s), Ok(n)) => s <= start && start + count <= s + n,
            _ => false,
        }
    })
}

/// Whether the kernel's AppArmor is enabled (`None`: not built in or not readable).
pub fn apparmor_enabled() -> Option<bool> {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").ok().map(|s| s.trim() == "Y")
}

/// The version `lxc-start --version` prints (`6.0.5`), if it looks like one.
pub fn lxc_version(output: &str) -> Option<String> {
    let v = output.lines().next()?.trim();
    let ok = !v.is_empty() && v.starts_with(|c: char| c.is_ascii_digit()) && !v.contains(char::is_whitespace);
    ok.then(|| v.to_string())
}

/// The leading major number of a version string (`6.0.5` -> 6, `6.1.10` -> 6).
pub fn major(version: &str) -> Option<u32> {
    version.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Run a program (stdin null) and return its exit success and its stdout+stderr, killing
/// it after `timeout`.
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<(bool, String), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot execute {}: {e}", program.display()))?;
    // Both streams are read on threads so that neither a full pipe nor a child that hangs
    // can block the deadline.
    let (tx, rx) = std::sync::mpsc::channel();
    let streams: [Box<dyn Read + Send>; 2] =
        [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
    for (i, mut stream) in streams.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stream.read_to_end(&mut s);
            let _ = tx.send((i, s));
        });
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} {} did not finish within {timeout:?}", program.display(), args.join(" ")));
            }
        }
    };
    let mut parts = [Vec::new(), Vec::new()];
    for _ in 0..2 {
        // A descendant that keeps the pipe open must not hang doctor either.
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(200))) {
            Ok((i, s)) => parts[i] = s,
            Err(_) => break,
        }
    }
    let text = [parts[0].as_slice(), parts[1].as_slice()].concat();
    Ok((status.success(), String::from_utf8_lossy(&text).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CGROUPS: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
        cpuset\t3\t10\t1\ncpu\t1\t10\t1\ncpuacct\t2\t10\t1\nhugetlb\t0\t1\t1\nrdma\t0\t1\t0\n";

    #[test]
    fn versions() {
        assert_eq!(lxc_version("6.0.5\n").as_deref(), Some("6.0.5"));
        assert_eq!(lxc_version("lxc-start: unknown option\n"), None);
        assert_eq!(major("6.1.10"), Some(6));
        assert_eq!(major("5.0.2"), Some(5));
        assert_eq!(major("x"), None);
    }

    #[test]
    fn hybrid_controllers_not_on_v1_are_found() {
        let mounts = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
            cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0\n\
            cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0\n\
            cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
        // hugetlb is enabled and unmounted; rdma is disabled, so it does not count.
        assert_eq!(unmounted_v1_controllers(CGROUPS, mounts), ["hugetlb"]);
        let all = format!("{mounts}cgroup /sys/fs/cgroup/hugetlb cgroup rw,hugetlb 0 0\n");
        assert!(unmounted_v1_controllers(CGROUPS, &all).is_empty());
    }

    #[test]
    fn subid_ranges() {
        let t = "lxd:1000000:65536\nroot:100000:65536\n";
        assert!(subid_covers(t, "root", 100000, 65536));
        assert!(!subid_covers(t, "root", 100000, 65537));
        assert!(subid_covers("root:0:4294967295\n", "root", 100000, 65536));
        assert!(!subid_covers("root:200000:65536\n", "root", 100000, 65536));
        assert!(!subid_covers("", "root", 100000, 65536));
        assert!(!subid_covers("root:x:y\n", "root", 100000, 65536));
    }

    #[test]
    fn run_captures_both_streams_and_times_out() {
        let (ok, out) =
            run(Path::new("/bin/sh"), &["-c", "echo out; echo err >&2; exit 3"], Duration::from_secs(5)).unwrap();
        assert!(!ok);
        assert!(out.contains("out") && out.contains("err"), "{out}");
        let e = run(Path::new("/bin/sleep"), &["5"], Duration::from_millis(100)).unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
    }
}
