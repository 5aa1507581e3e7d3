//! `delete`: from created and stopped, `--force` for running, and what is left after.

use super::{exiter, expect_failure, sleeper, t, Test};
use crate::harness::{ensure, Case, Exit, EXIT_TIMEOUT};
use anyhow::{Context, Result};

pub fn tests() -> Vec<Test> {
    vec![
        t("delete/created", created),
        t("delete/stopped", stopped),
        t("delete/running-without-force-fails", running_without_force),
        t("delete/force-running", force_running),
        t("delete/force-created", force_created),
        t("delete/id-reusable", id_reusable),
        t("delete/force-unknown-id-succeeds", force_unknown),
    ]
}

fn state_gone(c: &mut Case) -> Result<()> {
    let id = c.id.clone();
    let out = c.run(&["state", &id])?;
    expect_failure(&out, "state of a deleted container")
}

fn created(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let pid = c.create(&b)?;
    let id = c.id.clone();
    c.run(&["delete", &id])?.check().context("delete of a created container failed")?;
    state_gone(c)?;
    let exit = c.wait_exit(pid, EXIT_TIMEOUT).context("the container process must be gone after delete")?;
    ensure(matches!(exit, Exit::Signal(_)), || {
        format!("the created container's process ended with {exit}; the program must never have run")
    })
}

fn stopped(c: &mut Case) -> Result<()> {
    let b = exiter(c, 0)?;
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_exit(pid, EXIT_TIMEOUT)?;
    let id = c.id.clone();
    c.run(&["delete", &id])?.check().context("delete of a stopped container failed")?;
    state_gone(c)
}

fn running_without_force(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    c.create(&b)?;
    c.start()?;
    let id = c.id.clone();
    let out = c.run(&["delete", &id])?;
    expect_failure(&out, "delete of a running container without --force")?;
    c.expect_status("running")
}

fn force_running(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let pid = c.create(&b)?;
    c.start()?;
    let id = c.id.clone();
    c.run(&["delete", "--force", &id])?.check().context("delete --force of a running container failed")?;
    state_gone(c)?;
    let exit = c.wait_exit(pid, EXIT_TIMEOUT).context("the container process must be gone after delete --force")?;
    ensure(exit == Exit::Signal(9), || format!("container process ended with {exit}, want SIGKILL"))
}

fn force_created(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let pid = c.create(&b)?;
    let id = c.id.clone();
    c.run(&["delete", "--force", &id])?.check().context("delete --force of a created container failed")?;
    state_gone(c)?;
    c.wait_exit(pid, EXIT_TIMEOUT).context("the container process must be gone after delete --force")?;
    Ok(())
}

fn id_reusable(c: &mut Case) -> Result<()> {
    let b = exiter(c, 0)?;
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_exit(pid, EXIT_TIMEOUT)?;
    let id = c.id.clone();
    c.run(&["delete", &id])?.check().context("delete failed")?;
    let b2 = sleeper(c)?;
    c.create(&b2).context("create with the id of a deleted container")?;
    c.expect_status("created")
}

/// containerd and Podman clean up with `delete --force`; runc answers success for an
/// id that does not exist (any more).
fn force_unknown(c: &mut Case) -> Result<()> {
    let id = c.other_id("never-created");
    c.run(&["delete", "--force", &id])?.check().context("delete --force of an unknown id")?;
    Ok(())
}
