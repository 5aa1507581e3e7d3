//! `--pid-file`: decimal pid, no trailing newline (go-runc and conmon parse it with
//! atoi, untrimmed), relative to the caller's cwd, replacing an existing file.

use super::{sleeper, t, Test};
use crate::harness::{ensure, Case};
use anyhow::{Context, Result};

pub fn tests() -> Vec<Test> {
    vec![
        t("pidfile/decimal-no-newline", decimal_no_newline),
        t("pidfile/matches-state-pid", matches_state),
        t("pidfile/relative-path", relative_path),
        t("pidfile/replaces-existing", replaces_existing),
    ]
}

fn create_with(c: &mut Case, pid_file: &str) -> Result<String> {
    let b = sleeper(c)?;
    let id = c.id.clone();
    let bd = b.dir.display().to_string();
    c.create_args(&id, &["--bundle", &bd, "--pid-file", pid_file])?.check().context("create failed")?;
    let path = c.dir.join(pid_file);
    let text = std::fs::read_to_string(&path).with_context(|| format!("read pid file {}", path.display()))?;
    if let Ok(pid) = text.trim().parse() {
        c.watch(pid);
    }
    Ok(text)
}

fn decimal_no_newline(c: &mut Case) -> Result<()> {
    let p = c.dir.join("ctr.pid").display().to_string();
    let text = create_with(c, &p)?;
    ensure(!text.is_empty() && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit()), || {
        format!("pid file holds {text:?}, want only decimal digits (no newline, no spaces)")
    })
}

fn matches_state(c: &mut Case) -> Result<()> {
    let p = c.dir.join("ctr.pid").display().to_string();
    let text = create_with(c, &p)?;
    let st = c.state()?;
    ensure(st["pid"].as_i64().map(|p| p.to_string()).as_deref() == Some(text.trim()), || {
        format!("pid file holds {text:?}, state says pid {}", st["pid"])
    })
}

fn relative_path(c: &mut Case) -> Result<()> {
    let text = create_with(c, "relative.pid")?;
    ensure(text.trim().parse::<i32>().is_ok(), || format!("relative pid file holds {text:?}"))
}

fn replaces_existing(c: &mut Case) -> Result<()> {
    let p = c.dir.join("ctr.pid");
    std::fs::write(&p, "999999999 stale contents that are longer than a pid\n")?;
    let text = create_with(c, &p.display().to_string())?;
    let st = c.state()?;
    ensure(st["pid"].as_i64().map(|p| p.to_string()) == Some(text.clone()), || {
        format!("pid file holds {text:?} after replacing a stale one, state says pid {}", st["pid"])
    })
}
