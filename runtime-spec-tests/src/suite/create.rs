//! `create`: the container exists in state `created` and the user program has not run.

use super::{sleeper, t, Test};
use crate::bundle::CHECKER;
use crate::harness::{ensure, pid_exists, Case};
use anyhow::Result;
use std::time::Duration;

pub fn tests() -> Vec<Test> {
    vec![
        t("create/succeeds", succeeds),
        t("create/status-created", status_created),
        t("create/program-not-run-before-start", program_not_run),
        t("create/process-exists", process_exists),
    ]
}

fn succeeds(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    c.create(&b)?;
    Ok(())
}

fn status_created(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    c.create(&b)?;
    c.expect_status("created")
}

fn program_not_run(c: &mut Case) -> Result<()> {
    let b = c.bundle(&[CHECKER, "marker", "/rst/marker"])?;
    let marker = b.host_path("/rst/marker");
    c.create(&b)?;
    std::thread::sleep(Duration::from_millis(300));
    ensure(!marker.exists(), || "the user program ran before start (marker file written after create)".into())?;
    c.expect_status("created")?;
    c.start()?;
    c.wait_for("the program to run after start", Duration::from_secs(10), |_| marker.exists())
}

fn process_exists(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let pid = c.create(&b)?;
    ensure(pid_exists(pid), || format!("pid {pid} from the pid file does not exist after create"))
}
