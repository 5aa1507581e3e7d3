//! `nexcage doctor` on this host: passes when the host is set up (hack/setup: crun, runc,
//! cgroups, subuid/subgid; the pct emulator stands in for Proxmox VE's pct), and fails
//! with the right check and advice when one thing is taken away, each through a temp
//! config (NEXCAGE_CONFIG) and --root.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{repo, require_root, text, NEXCAGE};
use serde_json::{json, Value};

/// A static executable standing in for nexcage-init: the real one when hack/build-init
/// has built it (hack/test does), else busybox-static (installed by hack/setup).
fn static_init() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"));
    let built = target.join("x86_64-unknown-linux-gnu/release/nexcage-init");
    if built.exists() {
        return built;
    }
    let busybox = PathBuf::from("/bin/busybox");
    assert!(busybox.exists(), "need a static binary: run hack/build-init or hack/setup (busybox-static)");
    busybox
}

struct Host {
    dir: tempfile::TempDir,
    root: PathBuf,
    pve_root: PathBuf,
    config: Value,
}

impl Host {
    /// A correctly set up host: both OCI runtimes, the pct emulator, a template cache
    /// under a private PVE root, a static init, a private state root.
    fn new() -> Host {
        require_root();
        let dir = tempfile::Builder::new().prefix("nexcage-doctor-").tempdir().unwrap();
        let pve_root = dir.path().join("pve");
        std::fs::create_dir_all(pve_root.join("var/lib/vz/template/cache")).unwrap();
        let config = json!({
            "default_backend": "lxc",
            "backends": {
                "crun": { "kind": "oci", "path": "crun" },
                "runc": { "kind": "oci", "path": "runc" },
                "lxc": {
                    "kind": "proxmox-lxc",
                    "pct": repo().join("hack/pct"),
                    "pve_root": pve_root,
                    "init": static_init(),
                    "unprivileged": true
                }
            },
            "routes": [{ "name": "sandboxes", "id": "sandbox-*", "backend": "crun" }]
        });
        let root = dir.path().join("root");
        Host { dir, root, pve_root, config }
    }

    fn run(&self, format: &str, wrap: &[&str]) -> Output {
        let config = self.dir.path().join("nexcage.json");
        std::fs::write(&config, serde_json::to_vec_pretty(&self.config).unwrap()).unwrap();
        let mut cmd = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(NEXCAGE);
                c
            }
            None => Command::new(NEXCAGE),
        };
        cmd.env("NEXCAGE_CONFIG", &config)
            .arg("--root")
            .arg(&self.root)
            .args(["doctor", "--format", format])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Run `doctor --format json`; returns the exit code and the report.
    fn json(&self) -> (i32, Value) {
        self.json_wrapped(&[])
    }

    fn json_wrapped(&self, wrap: &[&str]) -> (i32, Value) {
        let out = self.run("json", wrap);
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {}\n{}", text(&out.stdout), text(&out.stderr)));
        (out.status.code().unwrap(), report)
    }
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {report:#}"))
}

/// Assert that check `name` failed, its detail contains `detail` and its fix `fix`,
/// and that doctor exits 1.
#[track_caller]
fn fails(code: i32, report: &Value, name: &str, detail: &str, fix: &str) {
    let c = check(report, name);
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(c["detail"].as_str().unwrap().contains(detail), "detail lacks {detail:?}: {c:#}");
    assert!(c["fix"].as_str().unwrap().contains(fix), "fix lacks {fix:?}: {c:#}");
    assert_eq!(code, 1, "doctor must exit 1 when a check fails");
    assert_eq!(report["ok"], false);
}

#[test]
fn passes_on_a_set_up_host() {
    let h = Host::new();
    let (code, report) = h.json();
    let failed: Vec<&Value> = report["checks"].as_array().unwrap().iter().filter(|c| c["status"] == "fail").collect();
    assert!(failed.is_empty(), "failed checks on a set-up host (run hack/setup): {failed:#?}");
    assert_eq!(code, 0);
    assert_eq!(report["ok"], true);
    assert_eq!(report["failed"], 0);
    for name in [
        "config",
        "cgroups",
        "state root",
        "backend crun",
        "backend runc",
        "backend lxc: pct",
        "backend lxc: template storage",
        "backend lxc: init",
        "backend lxc: subuid/subgid",
        "backend lxc: root storage",
        "backend lxc: lxc",
        "backend lxc: pve-container",
        "backend lxc: apparmor",
        "route default",
        "route routes[0]",
    ] {
        check(&report, name);
    }
    // Versions are shown; the emulator is recognised as such (a warning: not Proxmox VE).
    assert!(check(&report, "backend crun")["detail"].as_str().unwrap().contains("crun version"));
    assert!(check(&report, "backend runc")["detail"].as_str().unwrap().contains("runc version"));
    let pct = check(&report, "backend lxc: pct");
    assert_eq!(pct["status"], "warn", "{pct:#}");
    assert!(pct["detail"].as_str().unwrap().contains("pct emulator"), "{pct:#}");
    assert!(check(&report, "config")["detail"].as_str().unwrap().contains("nexcage.json"));
    // LXC's version as lxc-start prints it; AppArmor as the kernel reports it (this build
    // host has none: a warning; the Proxmox VE test VM has it enforcing).
    let lxc = Command::new("lxc-start").arg("--version").output().unwrap();
    let lxc_check = check(&report, "backend lxc: lxc");
    assert_eq!(lxc_check["detail"], format!("LXC {}", text(&lxc.stdout).trim()), "{lxc_check:#}");
    let aa = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y");
    assert_eq!(check(&report, "backend lxc: apparmor")["status"], if aa { "pass" } else { "warn" });
    // No storage.cfg under this pve_root: PVE's implicit `local`, a directory.
    let root = check(&report, "backend lxc: root storage");
    assert!(root["detail"].as_str().unwrap().starts_with("local (dir at /var/lib/vz, "), "{root:#}");
    // Doctor changes nothing: no probe files left, the state root not created.
    assert_eq!(std::fs::read_dir(h.pve_root.join("var/lib/vz/template/cache")).unwrap().count(), 0);
    assert!(!h.root.exists());

    // The table says the same for people.
    let out = h.run("table", &[]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let t = text(&out.stdout);
    assert!(t.contains("ok    backend crun") && t.contains("WARN  backend lxc: pct"), "{t}");
    assert!(t.contains(", 0 failed: nexcage can run on this host"), "{t}");
}

#[test]
fn missing_backend_binary_fails_with_install_advice() {
    let mut h = Host::new();
    h.config["backends"]["crun"]["path"] = json!("/nonexistent/crun");
    let (code, report) = h.json();
    fails(code, &report, "backend crun", "\"/nonexistent/crun\" does not exist", "backends.crun.path");
    // The route to crun is unusable too; the others are fine.
    fails(code, &report, "route routes[0]", "backend crun, which is not usable", "fix backend crun");
    assert_eq!(check(&report, "backend runc")["status"], "pass");
    assert_eq!(check(&report, "route default")["status"], "pass");
}

#[test]
fn missing_pct_fails() {
    let mut h = Host::new();
    h.config["backends"]["lxc"]["pct"] = json!("pct-not-installed");
    let (code, report) = h.json();
    fails(code, &report, "backend lxc: pct", "\"pct-not-installed\" not found", "Proxmox VE host");
    fails(code, &report, "route default", "backend lxc, which is not usable", "fix backend lxc");
}

#[test]
fn missing_template_dir_fails_with_pve_root_advice() {
    let mut h = Host::new();
    h.config["backends"]["lxc"]["pve_root"] = json!(h.dir.path().join("no-such-pve"));
    let (code, report) = h.json();
    fails(code, &report, "backend lxc: template storage", "does not exist (storage local)", "pve_root");
}

#[test]
fn read_only_template_dir_fails() {
    let h = Host::new();
    let cache = h.pve_root.join("var/lib/vz/template/cache");
    // A read-only tmpfs over the cache, in a private mount namespace of doctor alone.
    let script = r#"mount -t tmpfs -o ro tmpfs "$0" && exec "$@""#;
    let (code, report) = h.json_wrapped(&[
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        cache.to_str().unwrap(),
    ]);
    fails(code, &report, "backend lxc: template storage", "is not writable", "writable by root");
}

#[test]
fn template_storage_that_is_not_a_dir_storage_fails() {
    let mut h = Host::new();
    h.config["backends"]["lxc"]["template_storage"] = json!("local-lvm");
    std::fs::create_dir_all(h.pve_root.join("etc/pve")).unwrap();
    std::fs::write(h.pve_root.join("etc/pve/storage.cfg"), "lvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n")
        .unwrap();
    let (code, report) = h.json();
    fails(code, &report, "backend lxc: template storage", "is not a directory storage", "template_storage");
}

/// A fresh Proxmox VE install on ZFS: `local` holds no containers; doctor says so, and
/// names the storage create will use once one can.
#[test]
fn root_storage_follows_storage_cfg() {
    let h = Host::new();
    std::fs::create_dir_all(h.pve_root.join("etc/pve")).unwrap();
    let cfg = h.pve_root.join("etc/pve/storage.cfg");
    let local = "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n";
    std::fs::write(&cfg, local).unwrap();
    let (code, report) = h.json();
    fails(code, &report, "backend lxc: root storage", "none has rootdir content", "rootdir");
    std::fs::write(&cfg, format!("{local}\nzfspool: local-zfs\n\tpool rpool/data\n\tcontent images,rootdir\n"))
        .unwrap();
    let (_, report) = h.json();
    let c = check(&report, "backend lxc: root storage");
    assert_eq!(c["status"], json!("pass"), "{c}");
    assert!(c["detail"].as_str().unwrap().starts_with("local-zfs (zfspool, rootdir content in "), "{c}");
}

#[test]
fn world_writable_state_root_fails() {
    let h = Host::new();
    std::fs::create_dir(&h.root).unwrap();
    std::fs::set_permissions(&h.root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, report) = h.json();
    fails(code, &report, "state root", "world-writable (mode 0777)", "chmod 0700");
    std::fs::set_permissions(&h.root, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (code, report) = h.json();
    assert_eq!((code, &check(&report, "state root")["status"]), (0, &json!("pass")));
}

#[test]
fn missing_or_dynamic_init_fails() {
    let mut h = Host::new();
    h.config["backends"]["lxc"]["init"] = json!(h.dir.path().join("nexcage-init"));
    let (code, report) = h.json();
    fails(code, &report, "backend lxc: init", "nexcage-init not found at", "hack/build-init");

    // nexcage itself is dynamically linked: it would not run inside a container.
    h.config["backends"]["lxc"]["init"] = json!(NEXCAGE);
    let (code, report) = h.json();
    fails(code, &report, "backend lxc: init", "dynamically linked", "hack/build-init");

    // Not configured: the backend's lookup, next to the nexcage executable, then in the
    // cargo target layout of a static build (hack/build-init).
    h.config["backends"]["lxc"].as_object_mut().unwrap().remove("init");
    let (_, report) = h.json();
    let c = check(&report, "backend lxc: init");
    let exe = Path::new(NEXCAGE);
    let target = exe.parent().unwrap().parent().unwrap();
    let built = ["debug", "release"]
        .iter()
        .map(|p| target.join("x86_64-unknown-linux-gnu").join(p).join("nexcage-init"))
        .any(|p| p.is_file());
    if built || exe.with_file_name("nexcage-init").is_file() {
        assert_eq!(c["status"], "pass", "{c:#}");
    } else {
        assert_eq!(c["status"], "fail", "{c:#}");
        assert!(c["detail"].as_str().unwrap().contains(&format!("not found next to {NEXCAGE}")), "{c:#}");
    }
}

#[test]
fn unreachable_init_fails_for_unprivileged_containers() {
    let mut h = Host::new();
    let private = h.dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    let init = private.join("nexcage-init");
    std::fs::copy(static_init(), &init).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    h.config["backends"]["lxc"]["init"] = json!(init);
    let (code, report) = h.json();
    fails(code, &report, "backend lxc: init", "lacks o+x", "o+x");
    // Privileged containers run it as host root: fine.
    h.config["backends"]["lxc"]["unprivileged"] = json!(false);
    let (_, report) = h.json();
    assert_eq!(check(&report, "backend lxc: init")["status"], "pass");
    assert!(report["checks"].as_array().unwrap().iter().all(|c| c["name"] != "backend lxc: subuid/subgid"));
}

#[test]
fn invalid_config_fails_naming_file_and_path() {
    let mut h = Host::new();
    h.config["routes"][0]["backend"] = json!("crun2");
    let (code, report) = h.json();
    fails(code, &report, "config", "at routes[0].backend: unknown backend \"crun2\"", "JSON path");
    // Host checks still run.
    check(&report, "cgroups");
    check(&report, "state root");

    let out = h.run("table", &[]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out.stdout);
    let fail = t.lines().position(|l| l.starts_with("FAIL  config")).expect(&t);
    assert!(t.lines().nth(fail + 1).unwrap().trim_start().starts_with("fix: "), "{t}");
}

/// Privileged Proxmox containers only by the operator's explicit choice, and shown: doctor
/// names a backend that makes them and every route that leads there; `route` says it
/// for the container at hand (a bundle with a user namespace stays unprivileged).
#[test]
fn privileged_lxc_backend_is_named_with_its_routes() {
    let mut h = Host::new();
    let (_, report) = h.json();
    let p = check(&report, "backend lxc privilege");
    assert_eq!(p["status"], "pass", "{p:#}");
    assert!(p["detail"].as_str().unwrap().contains("unprivileged containers only"), "{p:#}");

    h.config["backends"]["lxc"]["unprivileged"] = json!(false);
    h.config["routes"].as_array_mut().unwrap().push(json!({ "name": "trusted", "id": "trusted-*", "backend": "lxc" }));
    let (code, report) = h.json();
    assert_eq!(code, 0, "a warning, not a failure: {report:#}");
    let p = check(&report, "backend lxc privilege");
    assert_eq!(p["status"], "warn", "{p:#}");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("PRIVILEGED"), "{detail}");
    assert!(
        detail.contains(
            "Reached by: default_backend, routes[1] (\"trusted\"), and any bundle annotated nexcage.backend=lxc"
        ),
        "{detail}"
    );
    assert!(p["fix"].as_str().unwrap().contains("backends.lxc.unprivileged"), "{p:#}");
    assert!(check(&report, "route default")["detail"].as_str().unwrap().contains("(privileged Proxmox containers)"));
    assert!(!check(&report, "route routes[0]")["detail"].as_str().unwrap().contains("privileged"), "crun's route");

    // `route` for one container (the config file doctor just read).
    let bundle = h.dir.path().join("bundle");
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    let route = |namespaces: Value| -> String {
        let doc = json!({
            "ociVersion": "1.0.2", "root": { "path": "rootfs" },
            "process": { "args": ["true"], "cwd": "/" },
            "linux": { "namespaces": namespaces }
        });
        std::fs::write(bundle.join("config.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
        let out = Command::new(NEXCAGE)
            .env("NEXCAGE_CONFIG", h.dir.path().join("nexcage.json"))
            .args(["route", "--bundle"])
            .arg(&bundle)
            .arg("trusted-1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let out = route(json!([{ "type": "pid" }, { "type": "mount" }]));
    assert!(out.starts_with("backend lxc: chosen by routes[1] (trusted)"), "{out}");
    assert!(out.contains("proxmox-lxc container: PRIVILEGED"), "{out}");
    let out = route(json!([{ "type": "pid" }, { "type": "user" }]));
    assert!(out.contains("proxmox-lxc container: unprivileged (the bundle has a user namespace)"), "{out}");
}
