//! Host processes by pid, safe against pid reuse: a process is identified by its pid and
//! its start time (field 22 of /proc/<pid>/stat, in clock ticks since boot), and a zombie
//! counts as gone (as runc's `state` treats an exited, not yet reaped init).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A process we started or learnt about, identified across pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRef {
    pub pid: i32,
    pub start: u64,
}

struct Stat {
    state: char,
    start: u64,
}

fn stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); start time is field 22.
    Some(Stat { state: fields.first()?.chars().next()?, start: fields.get(19)?.parse().ok()? })
}

impl ProcRef {
    /// The running process `pid` (None if it does not exist or is a zombie).
    pub fn of(pid: i32) -> Option<ProcRef> {
        let s = stat(pid)?;
        (!matches!(s.state, 'Z' | 'X' | 'x')).then_some(ProcRef { pid, start: s.start })
    }

    /// Still the same process, and not a zombie?
    pub fn alive(&self) -> bool {
        ProcRef::of(self.pid).is_some_and(|p| p.start == self.start)
    }
}

/// Parent pid and command name of a process.
pub fn ppid_and_comm(pid: i32) -> Option<(i32, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let ppid = text[close + 2..].split(' ').nth(1)?.parse().ok()?;
    Some((ppid, comm))
}

/// The pid of the `lxc-start` running container `vmid` of `lxcpath` (`-n <vmid>`, and
/// `-P <lxcpath>` or none when `lxcpath` is LXC's default `/var/lib/lxc`), if any.
pub fn lxc_start_of(lxcpath: &Path, vmid: u32) -> Option<i32> {
    let name = vmid.to_string();
    let default = Path::new("/var/lib/lxc");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let argv: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
        if !argv.first()?.ends_with(b"lxc-start") {
            return None;
        }
        let value = |flag: &[u8]| argv.windows(2).find(|w| w[0] == flag).map(|w| w[1]);
        let path = value(b"-P").map(|p| Path::new(std::ffi::OsStr::from_bytes(p)));
        (value(b"-n") == Some(name.as_bytes()) && path.unwrap_or(default) == lxcpath).then_some(pid)
    })
}

/// The processes whose parent is `pid`.
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&c| ppid_and_comm(c).is_some_and(|(ppid, _)| ppid == pid))
        .collect()
}

/// The network namespace of `p`, opened while `p` still was that process.
pub fn open_net_ns(p: ProcRef) -> std::io::Result<std::os::fd::OwnedFd> {
    let ns = std::fs::File::open(format!("/proc/{}/ns/net", p.pid))?;
    if !p.alive() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("process {} has ended", p.pid)));
    }
    Ok(ns.into())
}

/// The pids of `pid` in each pid namespace it belongs to, outermost first (`NSpid`).
pub fn ns_pids(pid: i32) -> Option<Vec<i32>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().map(|p| p.parse().ok()).collect()
}

/// Is `pid` the init (pid 1) of a pid namespace nested in ours?
pub fn is_namespace_init(pid: i32) -> bool {
    ns_pids(pid).is_some_and(|v| v.len() >= 2 && v.last() == Some(&1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_stable() {
        let me = ProcRef::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        assert!(!ProcRef { start: me.start + 1, ..me }.alive(), "another start time is another process");
        assert!(ProcRef::of(0).is_none());
        assert_eq!(ns_pids(std::process::id() as i32).unwrap().last(), Some(&(std::process::id() as i32)));
        assert!(!is_namespace_init(std::process::id() as i32));
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let found = children_of(std::process::id() as i32).contains(&(child.id() as i32));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found);
    }

    #[test]
    fn lxc_start_is_found_by_name_and_lxcpath() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .arg0("lxc-start")
            .args(["-c", "sleep 5", "-F", "-n", "987654", "-P", "/tmp/nexcage-procfs-test/var/lib/lxc"])
            .spawn()
            .unwrap();
        let path = Path::new("/tmp/nexcage-procfs-test/var/lib/lxc");
        let found = (0..200).find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            lxc_start_of(path, 987654)
        });
        assert_eq!(found, Some(child.id() as i32));
        assert_eq!(lxc_start_of(path, 98765), None, "another VMID");
        assert_eq!(lxc_start_of(Path::new("/var/lib/lxc"), 987654), None, "another lxcpath");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(lxc_start_of(path, 987654), None, "gone");
    }

    #[test]
    fn zombie_counts_as_gone() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Wait until it is a zombie (exited, not reaped).
        for _ in 0..500 {
            if stat(pid).is_some_and(|s| s.state == 'Z') {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(ProcRef::of(pid).is_none());
        let mut child = child;
        child.wait().unwrap();
    }
}
