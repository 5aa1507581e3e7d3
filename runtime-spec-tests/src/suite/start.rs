//! `start`: runs the program, only from `created`.

use super::{exiter, expect_failure, sleeper, t, Test};
use crate::bundle::CHECKER;
use crate::harness::{Case, EXIT_TIMEOUT};
use anyhow::Result;
use std::time::Duration;

pub fn tests() -> Vec<Test> {
    vec![
        t("start/runs-program", runs_program),
        t("start/status-running", status_running),
        t("start/twice-fails", twice_fails),
        t("start/stopped-fails", stopped_fails),
    ]
}

fn runs_program(c: &mut Case) -> Result<()> {
    let b = c.bundle(&[CHECKER, "marker-sleep", "/rst/marker"])?;
    let marker = b.host_path("/rst/marker");
    c.create(&b)?;
    c.start()?;
    c.wait_for("the program to write its marker", Duration::from_secs(10), |_| marker.exists())
}

fn status_running(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    c.create(&b)?;
    c.start()?;
    c.expect_status("running")
}

fn twice_fails(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    c.create(&b)?;
    c.start()?;
    let id = c.id.clone();
    let out = c.run(&["start", &id])?;
    expect_failure(&out, "a second start of a running container")?;
    c.expect_status("running")
}

fn stopped_fails(c: &mut Case) -> Result<()> {
    let b = exiter(c, 0)?;
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_exit(pid, EXIT_TIMEOUT)?;
    let id = c.id.clone();
    let out = c.run(&["start", &id])?;
    expect_failure(&out, "start of a stopped container")?;
    c.expect_status("stopped")
}
