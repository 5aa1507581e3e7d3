//! `ps`: the container's processes as host pids, from its cgroup (no pct call).
//! nexcage-init itself is left out: it is the runtime's, not the user's. The table
//! format runs ps(1) on the host and keeps the header and the container's rows, as runc
//! does.

use std::process::Command;

use anyhow::{bail, Context, Result};

use super::cgroup::Cgroup;
use super::data::LxcData;
use super::lifecycle::{status, Status};
use crate::cli::{Format, PsArgs};
use crate::state::Record;

pub fn pids(record: &Record) -> Result<Vec<i32>> {
    let data = LxcData::of(record)?;
    if matches!(status(record, Some(data)).0, Status::Stopped | Status::Creating) {
        bail!("container not running");
    }
    let init = data.init.filter(|i| i.alive()).ok_or_else(|| anyhow::anyhow!("container not running"))?;
    Ok(Cgroup::of(init.pid)?.pids()?.into_iter().filter(|p| *p != init.pid).collect())
}

pub fn ps(record: &Record, args: &PsArgs) -> Result<i32> {
    let pids = pids(record)?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let ps_args: Vec<String> = if args.ps_args.is_empty() { vec!["-ef".into()] } else { args.ps_args.clone() };
    let out = Command::new("ps").args(&ps_args).output().context("cannot run ps")?;
    if !out.status.success() {
        bail!("ps {}: {}", ps_args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header.split_whitespace().position(|c| c == "PID").context("ps output has no PID column")?;
    println!("{header}");
    for l in lines {
        if l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
            println!("{l}");
        }
    }
    Ok(0)
}
