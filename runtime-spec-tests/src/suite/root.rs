//! config.md#root: the rootfs is the bundle's root.path, read-only when asked.

use super::{t, Test};
use crate::bundle::{CHECKER, EXPECT};
use crate::harness::Case;
use anyhow::Result;
use serde_json::json;

pub fn tests() -> Vec<Test> {
    vec![t("root/is-bundle-rootfs", is_rootfs), t("root/readonly", readonly), t("root/writable", writable)]
}

fn is_rootfs(c: &mut Case) -> Result<()> {
    let mut b = c.bundle(&[CHECKER, "check", EXPECT])?;
    std::fs::write(b.host_path("/rst/rootfs-id"), &c.id)?;
    let expect = json!({ "files": [{ "path": "/rst/rootfs-id", "content": c.id }] });
    c.run_checker(&mut b, &expect)
}

fn readonly(c: &mut Case) -> Result<()> {
    let mut b = c.bundle(&[CHECKER, "check", EXPECT])?;
    b.config["root"]["readonly"] = json!(true);
    let expect = json!({
        "readonly_root": true,
        "mounts": [{ "destination": "/", "options": ["ro"] }],
        "writable_paths": ["/dev/shm"],
    });
    c.run_checker(&mut b, &expect)
}

fn writable(c: &mut Case) -> Result<()> {
    let mut b = c.bundle(&[CHECKER, "check", EXPECT])?;
    b.config["root"]["readonly"] = json!(false);
    c.run_checker(&mut b, &json!({ "readonly_root": false, "writable_paths": ["/", "/rst"] }))
}
