//! config.md hostname and config-linux.md: namespaces, sysctl, masked and read-only
//! paths, devices, verified from inside by the checker.

use super::{t, Test};
use crate::bundle::{Bundle, CHECKER, EXPECT};
use crate::harness::Case;
use anyhow::Result;
use serde_json::{json, Map, Value};

pub fn tests() -> Vec<Test> {
    vec![
        t("hostname/set", hostname),
        t("linux/namespaces-new", namespaces_new),
        t("linux/namespaces-host-shared", namespaces_shared),
        t("linux/sysctl", sysctl),
        t("linux/masked-paths", masked),
        t("linux/readonly-paths", readonly),
        t("linux/default-devices", default_devices),
        t("linux/devices", devices),
    ]
}

fn checker(c: &mut Case) -> Result<Bundle> {
    c.bundle(&[CHECKER, "check", EXPECT])
}

fn host_ns(c: &Case, names: &[&str]) -> Value {
    let mut m = Map::new();
    for n in names {
        if let Some(ino) = c.ctx.host_ns.get(*n) {
            m.insert(n.to_string(), json!(ino));
        }
    }
    Value::Object(m)
}

fn hostname(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    b.config["hostname"] = json!("rst-hostname-test");
    c.run_checker(&mut b, &json!({ "hostname": "rst-hostname-test" }))
}

fn namespaces_new(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    // The default config: pid, network, ipc, uts, mount.
    let expect = json!({ "ns_new": host_ns(c, &["pid", "net", "ipc", "uts", "mnt"]), "pid1": true });
    c.run_checker(&mut b, &expect)
}

fn namespaces_shared(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    b.config["linux"]["namespaces"] =
        json!([{ "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }]);
    let expect = json!({
        "ns_new": host_ns(c, &["pid", "ipc", "uts", "mnt"]),
        "ns_host": host_ns(c, &["net", "user", "cgroup"]),
    });
    c.run_checker(&mut b, &expect)
}

fn sysctl(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    let s = json!({ "net.ipv4.ip_forward": "1", "kernel.msgmax": "12345", "net.ipv4.ping_group_range": "0\t0" });
    b.config["linux"]["sysctl"] = s.clone();
    c.run_checker(&mut b, &json!({ "sysctl": s }))
}

fn masked(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    std::fs::create_dir_all(b.host_path("/rst-masked-dir"))?;
    std::fs::write(b.host_path("/rst-masked-dir/secret"), "secret")?;
    std::fs::write(b.host_path("/rst-masked-file"), "secret")?;
    let paths = json!([
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/sys/firmware",
        "/rst-masked-dir",
        "/rst-masked-file"
    ]);
    b.config["linux"]["maskedPaths"] = paths.clone();
    c.run_checker(&mut b, &json!({ "masked_paths": paths }))
}

fn readonly(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    std::fs::create_dir_all(b.host_path("/rst-ro-dir"))?;
    std::fs::create_dir_all(b.host_path("/rst-rw-dir"))?;
    std::fs::write(b.host_path("/rst-ro-file"), "x")?;
    let paths = json!(["/proc/sys", "/proc/bus", "/rst-ro-dir", "/rst-ro-file"]);
    b.config["linux"]["readonlyPaths"] = paths.clone();
    c.run_checker(&mut b, &json!({ "readonly_paths": paths, "writable_paths": ["/rst-rw-dir", "/tmp"] }))
}

fn default_devices(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    let devs = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"];
    c.run_checker(&mut b, &json!({ "char_devices": devs }))
}

fn devices(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    b.config["linux"]["devices"] = json!([
        { "path": "/dev/rst-null", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0 }
    ]);
    b.config["linux"]["resources"]["devices"] = json!([
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" }
    ]);
    c.run_checker(&mut b, &json!({ "char_devices": ["/dev/rst-null"], "writable_paths": ["/dev/rst-null"] }))
}
