//! How pct reports: progress on stdout, errors on stderr, exit codes 0/2/255, task warnings.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// An error that ends the invocation with an exact stderr text and exit status.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub text: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Exit {}

/// A plain `die` (exit 255) with the message as pct prints it.
pub fn die(msg: impl Into<String>) -> anyhow::Error {
    Exit { code: 255, text: msg.into() }.into()
}

/// A `die` caused by a missing file (pct exits 2).
pub fn die_enoent(msg: impl Into<String>) -> anyhow::Error {
    Exit { code: 2, text: msg.into() }.into()
}

/// Print an error the way pct does and return the exit status.
/// Task errors have their newlines folded into spaces.
pub fn report(err: &anyhow::Error) -> i32 {
    if let Some(e) = err.downcast_ref::<Exit>() {
        let text = e.text.trim_end_matches('\n');
        eprintln!("{text}");
        return e.code;
    }
    let text = format!("{err:#}");
    let folded: Vec<&str> = text.lines().map(str::trim_end).collect();
    eprintln!("{}", folded.join(" ").trim_end());
    255
}

static WARNINGS: AtomicUsize = AtomicUsize::new(0);

/// A task warning: printed with the task output (stdout) and counted.
pub fn warn(msg: &str) {
    WARNINGS.fetch_add(1, Ordering::SeqCst);
    println!("WARN: {msg}");
}

/// Called when a task command succeeded: `Task finished with N warning(s)!` on stderr.
pub fn finish_task() {
    let n = WARNINGS.load(Ordering::SeqCst);
    if n > 0 {
        eprintln!("Task finished with {n} warning(s)!");
    }
}
