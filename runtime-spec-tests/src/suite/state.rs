//! `state`: the JSON document of runtime.md#state.

use super::{exiter, rfc3339_epoch, sleeper, t, Test};
use crate::harness::{ensure, Case, EXIT_TIMEOUT};
use anyhow::{Context, Result};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn tests() -> Vec<Test> {
    vec![
        t("state/fields-created", fields_created),
        t("state/fields-running", fields_running),
        t("state/stopped", stopped),
        t("state/created-rfc3339", created_rfc3339),
        t("state/bundle-absolute", bundle_absolute),
        t("state/bundle-relative-made-absolute", bundle_relative),
        t("state/annotations", annotations),
    ]
}

fn check_common(c: &Case, st: &Value, pid: i32, status: &str) -> Result<()> {
    let ov = st["ociVersion"].as_str().unwrap_or("");
    ensure(!ov.is_empty(), || format!("ociVersion missing or empty in {st}"))?;
    ensure(st["id"].as_str() == Some(c.id.as_str()), || format!("id is {}, want {:?}", st["id"], c.id))?;
    ensure(st["status"].as_str() == Some(status), || format!("status is {}, want {status:?}", st["status"]))?;
    ensure(st["pid"].as_i64() == Some(pid as i64), || format!("pid is {}, want {pid} (the pid file's)", st["pid"]))?;
    ensure(st["bundle"].is_string(), || format!("bundle missing in {st}"))?;
    Ok(())
}

fn fields_created(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let pid = c.create(&b)?;
    let st = c.state()?;
    check_common(c, &st, pid, "created")
}

fn fields_running(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let pid = c.create(&b)?;
    c.start()?;
    let st = c.state()?;
    check_common(c, &st, pid, "running")
}

fn stopped(c: &mut Case) -> Result<()> {
    let b = exiter(c, 0)?;
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_exit(pid, EXIT_TIMEOUT)?;
    let mut last = String::new();
    let r = c.wait_for("status stopped", Duration::from_secs(3), |c| {
        last = c.status().unwrap_or_else(|e| format!("{e:#}"));
        last == "stopped"
    });
    r.with_context(|| format!("after the program exited (and was reaped) the status is {last:?}"))
}

fn created_rfc3339(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let before = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    c.create(&b)?;
    let after = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    let st = c.state()?;
    let created = st["created"].as_str().unwrap_or_default().to_string();
    let t = rfc3339_epoch(&created)
        .ok_or_else(|| anyhow::anyhow!("created {:?} is not an RFC 3339 date-time", st["created"]))?;
    // Allow for coarse clocks and rounding: within two seconds of the create call.
    ensure(t >= before - 2.0 && t <= after + 2.0, || {
        format!("created {created} is not the time of create (between {before:.0} and {after:.0} epoch seconds)")
    })
}

fn bundle_absolute(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    c.create(&b)?;
    let st = c.state()?;
    let want = std::fs::canonicalize(&b.dir)?;
    let got = st["bundle"].as_str().unwrap_or_default();
    ensure(got.starts_with('/') && std::fs::canonicalize(got).ok() == Some(want.clone()), || {
        format!("bundle is {:?}, want the absolute path {}", st["bundle"], want.display())
    })
}

fn bundle_relative(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let rel = b.dir.strip_prefix(&c.dir)?.display().to_string();
    let id = c.id.clone();
    c.create_args(&id, &["--bundle", &rel])?.check().context("create with a relative --bundle")?;
    let st = c.state()?;
    let want = std::fs::canonicalize(&b.dir)?;
    let got = st["bundle"].as_str().unwrap_or_default();
    ensure(got.starts_with('/') && std::fs::canonicalize(got).ok() == Some(want.clone()), || {
        format!("bundle is {:?} for --bundle {rel}, want the absolute path {}", st["bundle"], want.display())
    })
}

fn annotations(c: &mut Case) -> Result<()> {
    let mut b = sleeper(c)?;
    b.config["annotations"]["org.example.rst/key"] = Value::from("value with spaces");
    b.save()?;
    c.create(&b)?;
    let st = c.state()?;
    ensure(st["annotations"] == b.config["annotations"], || {
        format!("annotations are {}, want those of config.json: {}", st["annotations"], b.config["annotations"])
    })
}
