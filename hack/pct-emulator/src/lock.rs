//! The per-container flock `/run/lock/lxc/pve-config-<vmid>.lock`, taken as pct takes it:
//! try once, else print `trying to acquire lock...` and wait up to the timeout.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::output::Exit;
use crate::paths::Paths;

/// Held until dropped (closing the file releases the flock).
pub struct ConfigLock {
    _file: File,
}

/// Where the lock messages go: task commands print to stdout (the task log), others to stderr.
#[derive(Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
    /// Nothing shown: `pct start` waits for the lock without a word (real pct 6.1).
    Silent,
}

fn say(stream: Stream, msg: &str) {
    match stream {
        Stream::Stdout => {
            print!("{msg}");
            let _ = std::io::stdout().flush();
        }
        Stream::Silent => {}
        Stream::Stderr => {
            eprint!("{msg}");
            let _ = std::io::stderr().flush();
        }
    }
}

fn try_flock(f: &File) -> bool {
    // SAFETY: flock on a valid, owned file descriptor.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

pub fn lock_config(paths: &Paths, vmid: u32, timeout: Duration, stream: Stream) -> Result<ConfigLock> {
    std::fs::create_dir_all(&paths.lock).with_context(|| format!("mkdir {}", paths.lock.display()))?;
    let path = paths.lock_file(vmid);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("can't open file '{}'", path.display()))?;
    if try_flock(&file) {
        return Ok(ConfigLock { _file: file });
    }
    say(stream, "trying to acquire lock...");
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        if try_flock(&file) {
            say(stream, " OK\n");
            return Ok(ConfigLock { _file: file });
        }
    }
    say(stream, "\n");
    // Perl's die exits with $!: EINTR (4), from the alarm that ended the wait.
    Err(Exit { code: 4, text: format!("can't lock file '{}' - got timeout", path.display()) }.into())
}
