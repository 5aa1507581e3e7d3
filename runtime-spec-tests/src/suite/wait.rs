//! Exit status as engines read it: the harness is a child subreaper, the container
//! init (named by the pid file) is reparented to it when `create` exits, and waitpid
//! on that pid yields the program's real exit status (as containerd's shim and conmon).

use super::{exiter, sleeper, t, Test};
use crate::harness::{ensure, Case, Exit, EXIT_TIMEOUT};
use anyhow::{Context, Result};

pub fn tests() -> Vec<Test> {
    vec![
        t("wait/init-is-child-of-caller", init_is_child),
        t("wait/exit-status-0", |c| exit_code(c, 0)),
        t("wait/exit-status-3", |c| exit_code(c, 3)),
        t("wait/sigkill-status", sigkill),
    ]
}

fn init_is_child(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let pid = c.create(&b)?;
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("read /proc/{pid}/stat"))?;
    let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).unwrap_or("?").to_string();
    ensure(ppid == std::process::id().to_string(), || {
        format!(
            "the pid file's process {pid} has parent {ppid}, want the caller {} (a child subreaper)",
            std::process::id()
        )
    })
}

fn exit_code(c: &mut Case, code: i32) -> Result<()> {
    let b = exiter(c, code)?;
    let pid = c.create(&b)?;
    c.start()?;
    let exit = c.wait_exit(pid, EXIT_TIMEOUT)?;
    ensure(exit == Exit::Code(code), || {
        format!("waitpid of the pid file's process gave {exit}, want exit status {code}")
    })
}

fn sigkill(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let pid = c.create(&b)?;
    c.start()?;
    let id = c.id.clone();
    c.run(&["kill", &id, "9"])?.check().context("kill 9 failed")?;
    let exit = c.wait_exit(pid, EXIT_TIMEOUT)?;
    ensure(exit == Exit::Signal(9), || format!("waitpid of the pid file's process gave {exit}, want signal 9"))
}
