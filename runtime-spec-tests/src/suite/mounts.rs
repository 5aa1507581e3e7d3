//! config.md#mounts: default filesystems, tmpfs with options, read-only and
//! read-write binds of host directories and files, created destinations, order.

use super::{t, Test};
use crate::bundle::{Bundle, CHECKER, EXPECT};
use crate::harness::Case;
use anyhow::Result;
use serde_json::{json, Value};

pub fn tests() -> Vec<Test> {
    vec![
        t("mounts/default-filesystems", defaults),
        t("mounts/tmpfs-options", tmpfs),
        t("mounts/bind-readonly", bind_ro),
        t("mounts/bind-readwrite", bind_rw),
        t("mounts/bind-file", bind_file),
        t("mounts/destination-created", destination_created),
        t("mounts/order", order),
    ]
}

fn checker(c: &mut Case) -> Result<Bundle> {
    c.bundle(&[CHECKER, "check", EXPECT])
}

fn add_mount(b: &mut Bundle, m: Value) {
    if let Some(a) = b.config["mounts"].as_array_mut() {
        a.push(m);
    }
}

/// A host directory with one file, for bind mounts.
fn host_dir(c: &Case, name: &str, content: &str) -> Result<String> {
    let d = c.dir.join(name);
    std::fs::create_dir_all(&d)?;
    std::fs::write(d.join("hello.txt"), content)?;
    Ok(d.display().to_string())
}

fn defaults(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    let expect = json!({ "mounts": [
        { "destination": "/proc", "fstype": "proc" },
        { "destination": "/dev", "fstype": "tmpfs", "options": ["nosuid"] },
        { "destination": "/dev/pts", "fstype": "devpts", "options": ["nosuid", "noexec"] },
        { "destination": "/dev/shm", "fstype": "tmpfs", "options": ["nosuid", "nodev", "noexec"] },
        { "destination": "/dev/mqueue", "fstype": "mqueue", "options": ["nosuid", "nodev", "noexec"] },
        { "destination": "/sys", "fstype": "sysfs", "options": ["ro", "nosuid", "nodev", "noexec"] },
    ]});
    c.run_checker(&mut b, &expect)
}

fn tmpfs(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    add_mount(
        &mut b,
        json!({ "destination": "/rst-tmpfs", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "mode=700", "size=1m"] }),
    );
    let expect = json!({
        "mounts": [{ "destination": "/rst-tmpfs", "fstype": "tmpfs", "options": ["rw", "nosuid", "nodev", "noexec"],
                     "super_options": ["size=1024k", "mode=700"] }],
        "writable_paths": ["/rst-tmpfs"],
    });
    c.run_checker(&mut b, &expect)
}

fn bind_ro(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    let src = host_dir(c, "host-ro", "read-only bind")?;
    add_mount(&mut b, json!({ "destination": "/mnt/ro", "type": "bind", "source": src, "options": ["rbind", "ro"] }));
    let expect = json!({
        "mounts": [{ "destination": "/mnt/ro", "options": ["ro"] }],
        "readonly_paths": ["/mnt/ro", "/mnt/ro/hello.txt"],
        "files": [{ "path": "/mnt/ro/hello.txt", "content": "read-only bind" }],
    });
    c.run_checker(&mut b, &expect)
}

fn bind_rw(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    let src = host_dir(c, "host-rw", "read-write bind")?;
    add_mount(&mut b, json!({ "destination": "/mnt/rw", "type": "bind", "source": src, "options": ["rbind", "rw"] }));
    let expect = json!({
        "mounts": [{ "destination": "/mnt/rw", "options": ["rw"] }],
        "writable_paths": ["/mnt/rw", "/mnt/rw/hello.txt"],
        "files": [{ "path": "/mnt/rw/hello.txt", "content": "read-write bind" }],
    });
    c.run_checker(&mut b, &expect)
}

fn bind_file(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    let src = c.dir.join("host-file");
    std::fs::write(&src, "a single file")?;
    add_mount(
        &mut b,
        json!({ "destination": "/etc/rst-file", "type": "bind", "source": src, "options": ["bind", "ro"] }),
    );
    let expect = json!({
        "files": [{ "path": "/etc/rst-file", "content": "a single file" }],
        "readonly_paths": ["/etc/rst-file"],
    });
    c.run_checker(&mut b, &expect)
}

fn destination_created(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    add_mount(
        &mut b,
        json!({ "destination": "/rst-new/deep/dir", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"] }),
    );
    c.run_checker(&mut b, &json!({ "mounts": [{ "destination": "/rst-new/deep/dir", "fstype": "tmpfs" }] }))
}

fn order(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    let src = host_dir(c, "host-inner", "inner")?;
    add_mount(
        &mut b,
        json!({ "destination": "/rst-outer", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"] }),
    );
    add_mount(
        &mut b,
        json!({ "destination": "/rst-outer/inner", "type": "bind", "source": src, "options": ["rbind", "ro"] }),
    );
    let expect = json!({
        "mounts": [{ "destination": "/rst-outer", "fstype": "tmpfs" }, { "destination": "/rst-outer/inner", "options": ["ro"] }],
        "files": [{ "path": "/rst-outer/inner/hello.txt", "content": "inner" }],
    });
    c.run_checker(&mut b, &expect)
}
