//! The suite must be green on both reference runtimes: every test passes, or is
//! skipped for a reason listed in the code (no reference passes it, or a known
//! deviation of that reference).
//!
//! Needs root, runc and crun (hack/setup). Without them the tests say so and pass,
//! unless RST_REQUIRE_REFERENCE=1 (CI) makes that a failure.

use std::process::Command;
use std::sync::Mutex;

/// The runs share the machine's two cores and the checker build; one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn green(name: &str, path: &str) {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let required = std::env::var("RST_REQUIRE_REFERENCE").is_ok_and(|v| v == "1");
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !std::path::Path::new(path).exists() {
        let why = if root { format!("{path} is not installed") } else { "not running as root".into() };
        assert!(!required, "cannot run the suite against {name}: {why}");
        eprintln!("SKIPPED: conformance against {name}: {why} (set RST_REQUIRE_REFERENCE=1 to fail instead)");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_runtime-spec-tests"))
        .args(["--runtime", path])
        .output()
        .expect("run the harness");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(out.status.success(), "the suite is not green on {name}:\n{report}");
    let last = stdout.lines().last().unwrap_or_default();
    let counts: Vec<usize> = last.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
    assert!(counts.len() == 3 && counts[1] == 0 && last.ends_with(" skipped"), "bad summary line {last:?}:\n{report}");
    assert!(stdout.starts_with("TAP version 13\n1.."), "not TAP 13:\n{report}");
    for line in stdout.lines().filter(|l| l.contains("# SKIP")) {
        let listed =
            line.contains("# SKIP no reference passes: ") || line.contains(&format!("# SKIP known {name} deviation: "));
        assert!(listed, "skip without a listed reason on {name}: {line}\n{report}");
    }
    assert!(!stdout.lines().any(|l| l.starts_with("not ok")), "failures on {name}:\n{report}");
}

#[test]
fn runc_is_green() {
    green("runc", "/usr/sbin/runc");
}

#[test]
fn crun_is_green() {
    green("crun", "/usr/bin/crun");
}
