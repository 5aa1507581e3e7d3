//! Test-only fault injection for crash-safety tests.
//!
//! `NEXCAGE_FAULT=<step>[,<step>...]` makes nexcage kill itself with SIGKILL when it
//! reaches a named step (see [`STEPS`]): no destructor runs, no lock file or temp file
//! is cleaned up, exactly as if the host had killed it (OOM killer, `kill -9`, a power
//! cut minus the reboot). Only with the cargo feature `fault-injection` (hack/test turns
//! it on for the test builds); without it, as in release builds and the Debian package,
//! [`point`] does nothing and the variable is never read. Before dying it prints
//! `nexcage: NEXCAGE_FAULT: killed at <step>` on stderr so tests can tell an injected
//! death from a real crash. Documented in docs/troubleshooting.md#crash-safety.

use std::sync::OnceLock;

/// The environment variable naming the steps to die at.
pub const ENV: &str = "NEXCAGE_FAULT";

/// Every step a fault can be injected at, in the order a create / delete reaches them.
pub const STEPS: &[&str] = &[
    // create, every backend
    "create:claimed",
    // proxmox-lxc create
    "lxc:pending-saved",
    "lxc:template-built",
    "lxc:vmid-reserved",
    "lxc:pct-create-running",
    "lxc:pct-created",
    "lxc:record-saved",
    "lxc:raw-lines-written",
    "lxc:pct-start-running",
    "lxc:pct-started",
    "lxc:program-spawned",
    "lxc:supervisor-forked",
    // create, every backend
    "create:backend-done",
    "create:saved",
    // delete, every backend
    "delete:locked",
    // proxmox-lxc delete
    "lxc:delete-killed",
    "lxc:delete-destroyed",
    // delete, every backend
    "delete:backend-done",
];

fn armed() -> Option<&'static str> {
    static FAULTS: OnceLock<Option<String>> = OnceLock::new();
    FAULTS.get_or_init(|| std::env::var(ENV).ok().filter(|s| !s.is_empty())).as_deref()
}

/// Die here if `NEXCAGE_FAULT` names `step`.
pub fn point(step: &'static str) {
    debug_assert!(STEPS.contains(&step), "undeclared fault step {step}");
    if !cfg!(feature = "fault-injection") {
        return;
    }
    let Some(list) = armed() else { return };
    if list.split(',').any(|s| s.trim() == step) {
        eprintln!("nexcage: {ENV}: killed at {step}");
        // SAFETY: plain syscalls; SIGKILL cannot be caught, _exit is the fallback.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
            libc::_exit(137);
        }
    }
}
