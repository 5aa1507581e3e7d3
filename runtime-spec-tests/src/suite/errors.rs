//! Lifecycle errors: operations on unknown ids, invalid ids, broken bundles.

use super::{expect_failure, sleeper, t, Test};
use crate::harness::{ensure, Case, SkipTest};
use anyhow::Result;

pub fn tests() -> Vec<Test> {
    vec![
        t("errors/duplicate-id", duplicate_id),
        t("errors/state-unknown-id", |c| unknown(c, "state")),
        t("errors/start-unknown-id", |c| unknown(c, "start")),
        t("errors/kill-unknown-id", |c| unknown(c, "kill")),
        t("errors/delete-unknown-id", |c| unknown(c, "delete")),
        t("errors/invalid-id-slash", |c| invalid_id(c, "rst/a")),
        t("errors/invalid-id-dotdot", |c| invalid_id(c, "..")),
        t("errors/invalid-id-dotdot-harmless", dotdot_harmless),
        t("errors/missing-bundle", missing_bundle),
        t("errors/missing-config", missing_config),
        t("errors/invalid-config-json", invalid_config),
        t("errors/missing-rootfs", missing_rootfs),
        t("errors/program-not-found", program_not_found),
    ]
}

fn duplicate_id(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    let pid = c.create(&b)?;
    let b2 = sleeper(c)?;
    let id = c.id.clone();
    let bd = b2.dir.display().to_string();
    let out = c.create_args(&id, &["--bundle", &bd])?;
    expect_failure(&out, "create with the id of an existing container")?;
    let st = c.state()?;
    ensure(st["pid"].as_i64() == Some(pid as i64) && st["status"] == "created", || {
        format!("the existing container changed after the duplicate create: {st}")
    })
}

fn unknown(c: &mut Case, op: &str) -> Result<()> {
    let id = c.other_id("never-created");
    let out = match op {
        "kill" => c.run(&["kill", &id, "KILL"])?,
        _ => c.run(&[op, &id])?,
    };
    expect_failure(&out, &format!("{op} of an unknown id"))
}

fn invalid_id(c: &mut Case, id: &str) -> Result<()> {
    let b = sleeper(c)?;
    let bd = b.dir.display().to_string();
    let pf = c.dir.join("invalid.pid").display().to_string();
    let out = c.create_args(id, &["--bundle", &bd, "--pid-file", &pf])?;
    expect_failure(&out, &format!("create with the invalid id {id:?}"))
}

fn not_created(c: &mut Case, bundle: &str, what: &str) -> Result<()> {
    let id = c.id.clone();
    let out = c.create_args(&id, &["--bundle", bundle])?;
    expect_failure(&out, what)?;
    let out = c.run(&["state", &id])?;
    expect_failure(&out, &format!("state after a failed create ({what})"))
}

fn missing_bundle(c: &mut Case) -> Result<()> {
    let p = c.dir.join("no-such-bundle").display().to_string();
    not_created(c, &p, "create with a missing bundle")
}

fn missing_config(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    std::fs::remove_file(b.dir.join("config.json"))?;
    not_created(c, &b.dir.display().to_string(), "create without config.json")
}

fn invalid_config(c: &mut Case) -> Result<()> {
    let b = sleeper(c)?;
    std::fs::write(b.dir.join("config.json"), "{\"ociVersion\": \"1.0.2\", \"process\": ")?;
    not_created(c, &b.dir.display().to_string(), "create with a config.json that is not JSON")
}

fn missing_rootfs(c: &mut Case) -> Result<()> {
    let mut b = sleeper(c)?;
    b.config["root"]["path"] = "no-such-rootfs".into();
    b.save()?;
    not_created(c, &b.dir.display().to_string(), "create with a missing root.path")
}

fn program_not_found(c: &mut Case) -> Result<()> {
    let b = c.bundle(&["/no/such/program"])?;
    let id = c.id.clone();
    let bd = b.dir.display().to_string();
    let out = c.create_args(&id, &["--bundle", &bd])?;
    if !out.success() {
        return Ok(()); // reported at create: fine
    }
    let out = c.run(&["start", &id])?;
    expect_failure(&out, "create and start of a program that does not exist (one of them)")
}

/// `create ..` must fail, and `delete --force ..` (as an engine's cleanup would
/// send) must not touch anything outside the runtime's root (crun 1.8.1 removes
/// `<root>/..` recursively).
fn dotdot_harmless(c: &mut Case) -> Result<()> {
    let Some(root) = c.ctx.private_root.clone() else {
        return Err(SkipTest("needs the harness's private --root".into()).into());
    };
    let parent = root.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let sentinel = parent.join("sentinel");
    std::fs::write(&sentinel, "keep")?;
    let r = invalid_id(c, "..");
    let _ = c.run(&["delete", "--force", ".."]);
    let kept = sentinel.exists();
    std::fs::create_dir_all(&root)?;
    r?;
    ensure(kept, || format!("`delete --force ..` removed files outside --root ({} is gone)", sentinel.display()))
}
