//! The container's cgroup, found from its init's `/proc/<pid>/cgroup` (LXC puts init in
//! `lxc/<vmid>/ns`; everything in the container lives in that cgroup or below it):
//! freezing for `pause`/`resume` (the v1 freezer where that controller is mounted, as on
//! this hybrid host, else cgroup v2's `cgroup.freeze`) and the process list for `ps`
//! and `kill --all`. Host root needs no pct call for any of it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Cgroup {
    /// A v1 freezer cgroup directory.
    V1Freezer(PathBuf),
    /// A cgroup v2 directory.
    V2(PathBuf),
}

/// Cgroup mounts of this host: (fstype, mount root, mount point, super options).
fn mounts() -> Vec<(String, String, PathBuf, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 || !post[0].starts_with("cgroup") {
            continue;
        }
        out.push((post[0].to_string(), pre[3].to_string(), PathBuf::from(pre[4]), post[2].to_string()));
    }
    out
}

fn join_under(mount: &Path, root: &str, path: &str) -> PathBuf {
    let rel = path.strip_prefix(root).unwrap_or(path).trim_start_matches('/');
    mount.join(rel)
}

impl Cgroup {
    /// The cgroup of process `pid` (the container's init).
    pub fn of(pid: i32) -> Result<Cgroup> {
        let file = format!("/proc/{pid}/cgroup");
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {file}"))?;
        let mounts = mounts();
        let mut v2 = None;
        for line in text.lines() {
            let mut f = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else { continue };
            if ctrls.split(',').any(|c| c == "freezer") {
                if let Some((_, root, mp, _)) =
                    mounts.iter().find(|(t, _, _, o)| t == "cgroup" && o.split(',').any(|x| x == "freezer"))
                {
                    return Ok(Cgroup::V1Freezer(join_under(mp, root, path)));
                }
            }
            if id == "0" && ctrls.is_empty() {
                if let Some((_, root, mp, _)) = mounts.iter().find(|(t, ..)| t == "cgroup2") {
                    v2 = Some(Cgroup::V2(join_under(mp, root, path)));
                }
            }
        }
        v2.ok_or_else(|| anyhow::anyhow!("no freezer (cgroup v1) or cgroup v2 hierarchy found for pid {pid}"))
    }

    pub fn dir(&self) -> &Path {
        match self {
            Cgroup::V1Freezer(p) | Cgroup::V2(p) => p,
        }
    }

    pub fn is_frozen(&self) -> bool {
        match self {
            Cgroup::V1Freezer(d) => {
                std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            }
            Cgroup::V2(d) => std::fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1"),
        }
    }

    /// Freeze (true) or thaw (false), and wait until the kernel says it is done.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        let (file, value) = match self {
            Cgroup::V1Freezer(d) => (d.join("freezer.state"), if frozen { "FROZEN" } else { "THAWED" }),
            Cgroup::V2(d) => (d.join("cgroup.freeze"), if frozen { "1" } else { "0" }),
        };
        std::fs::write(&file, value).with_context(|| format!("cannot write {value} to {}", file.display()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let done = match self {
                Cgroup::V1Freezer(d) => std::fs::read_to_string(d.join("freezer.state"))
                    .is_ok_and(|s| s.trim() == if frozen { "FROZEN" } else { "THAWED" }),
                Cgroup::V2(d) => std::fs::read_to_string(d.join("cgroup.events"))
                    .is_ok_and(|s| s.lines().any(|l| l == if frozen { "frozen 1" } else { "frozen 0" })),
            };
            if done {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{} did not become {value} within 10 s", self.dir().display());
            }
            if frozen {
                // v1 may get stuck in FREEZING; asking again makes it retry.
                let _ = std::fs::write(&file, value);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Every process in the cgroup and its descendants (host pids, sorted).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        let mut stack = vec![self.dir().to_path_buf()];
        while let Some(d) = stack.pop() {
            let procs = d.join("cgroup.procs");
            match std::fs::read_to_string(&procs) {
                Ok(t) => pids.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", procs.display())),
            }
            if let Ok(entries) = std::fs::read_dir(&d) {
                stack.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_is_found_and_lists_us() {
        let cg = Cgroup::of(std::process::id() as i32).unwrap();
        assert!(cg.dir().is_dir(), "{cg:?}");
        let pids = cg.pids().unwrap();
        assert!(pids.contains(&(std::process::id() as i32)), "{cg:?}: {pids:?}");
    }

    #[test]
    fn mount_root_is_stripped() {
        assert_eq!(
            join_under(Path::new("/sys/fs/cgroup/freezer"), "/", "/lxc/1/ns"),
            Path::new("/sys/fs/cgroup/freezer/lxc/1/ns")
        );
        assert_eq!(join_under(Path::new("/sys/fs/cgroup"), "/a", "/a/b"), Path::new("/sys/fs/cgroup/b"));
    }
}
