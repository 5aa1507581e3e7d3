//! `kill`: signal names and numbers, the default signal, and which states accept it.

use super::{exiter, expect_failure, sleeper, t, Test};
use crate::bundle::CHECKER;
use crate::harness::{ensure, Case, Exit, EXIT_TIMEOUT};
use anyhow::{Context, Result};
use std::time::Duration;

pub fn tests() -> Vec<Test> {
    vec![
        t("kill/default-sigterm", default_sigterm),
        t("kill/numeric", numeric),
        t("kill/name", name),
        t("kill/sig-prefixed-name", sig_prefixed),
        t("kill/lowercase-name", lowercase),
        t("kill/sigkill-running", sigkill_running),
        t("kill/created", created),
        t("kill/all-flag", all_flag),
        t("kill/stopped-fails", stopped_fails),
        t("kill/invalid-signal-fails", invalid_signal),
    ]
}

/// Run a container that reports the first signal it receives, send `kill [sig]`
/// and check it reported `want`.
fn delivers(c: &mut Case, sig: Option<&str>, want: i32) -> Result<()> {
    let b = c.bundle(&[CHECKER, "signals"])?;
    let ready = b.host_path("/rst/ready");
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_for("the program to block signals", Duration::from_secs(10), |_| ready.exists())?;
    let id = c.id.clone();
    let mut args = vec!["kill", id.as_str()];
    args.extend(sig);
    c.run(&args)?.check().context("kill failed")?;
    // The program exits as soon as any signal arrives; a few seconds is plenty.
    let exit = c.wait_exit(pid, Duration::from_secs(3))?;
    let out = c.container_stdout();
    ensure(out.trim() == format!("signal {want}"), || {
        format!("the program received {:?} ({exit}), want signal {want}", out.trim())
    })
}

fn default_sigterm(c: &mut Case) -> Result<()> {
    delivers(c, None, libc::SIGTERM)
}

fn numeric(c: &mut Case) -> Result<()> {
    delivers(c, Some("10"), libc::SIGUSR1)
}

fn name(c: &mut Case) -> Result<()> {
    delivers(c, Some("USR1"), libc::SIGUSR1)
}

fn sig_prefixed(c: &mut Case) -> Result<()> {
    delivers(c, Some("SIGUSR2"), libc::SIGUSR2)
}

fn lowercase(c: &mut Case) -> Result<()> {
    delivers(c, Some("hup"), libc::SIGHUP)
}

fn sigkill_running(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let pid = c.create(&b)?;
    c.start()?;
    let id = c.id.clone();
    c.run(&["kill", &id, "KILL"])?.check().context("kill KILL failed")?;
    let exit = c.wait_exit(pid, EXIT_TIMEOUT)?;
    ensure(exit == Exit::Signal(9), || format!("container process ended with {exit}, want signal 9"))?;
    c.expect_status("stopped")
}

fn created(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let pid = c.create(&b)?;
    let id = c.id.clone();
    c.run(&["kill", &id, "9"])?.check().context("kill of a created container failed")?;
    let exit = c.wait_exit(pid, EXIT_TIMEOUT)?;
    ensure(exit == Exit::Signal(9), || format!("container process ended with {exit}, want signal 9"))?;
    c.expect_status("stopped")
}

fn all_flag(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let pid = c.create(&b)?;
    c.start()?;
    let id = c.id.clone();
    c.run(&["kill", "--all", &id, "9"])?.check().context("kill --all failed")?;
    let exit = c.wait_exit(pid, EXIT_TIMEOUT)?;
    ensure(exit == Exit::Signal(9), || format!("container process ended with {exit}, want signal 9"))
}

fn stopped_fails(c: &mut Case) -> Result<()> {
    let b = exiter(c, 0)?;
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_exit(pid, EXIT_TIMEOUT)?;
    c.wait_for("status stopped", Duration::from_secs(3), |c| c.status().is_ok_and(|s| s == "stopped"))?;
    let id = c.id.clone();
    let out = c.run(&["kill", &id, "KILL"])?;
    expect_failure(&out, "kill of a stopped container")
}

fn invalid_signal(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    c.create(&b)?;
    c.start()?;
    let id = c.id.clone();
    let out = c.run(&["kill", &id, "SIGNOTASIGNAL"])?;
    expect_failure(&out, "kill with an unknown signal name")?;
    c.expect_status("running")
}
