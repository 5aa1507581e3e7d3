//! Host processes by pid, safe against pid reuse: a process is identified by its pid and
//! its start time (field 22 of /proc/<pid>/stat, in clock ticks since boot), and a zombie
//! counts as gone (as runc's `state` treats an exited, not yet reaped init).

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
