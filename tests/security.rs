//! One test per defence listed in SECURITY.md.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::emu::Emu;
use common::*;

/// Source files of the runtime without their test modules.
fn runtime_sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") && p.file_name().unwrap() != "tests.rs" {
                let text = std::fs::read_to_string(&p).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap().to_string();
                out.push((p, code));
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("src"), &mut out);
    assert!(out.len() > 20, "sources not found");
    out
}

#[test]
fn no_user_data_through_a_shell() {
    let patterns = [
        "Command::new(\"sh\")",
        "Command::new(\"/bin/sh\")",
        "Command::new(\"bash\")",
        "\"-c\"",
        "sh -c",
        "libc::system",
        "popen",
    ];
    let mut found = Vec::new();
    for (p, code) in runtime_sources() {
        for pat in patterns {
            if code.contains(pat) {
                found.push(format!("{}: {pat}", p.display()));
            }
        }
    }
    assert!(found.is_empty(), "a shell in the runtime: {found:?}");
}

/// Shell metacharacters, newlines and commas in an annotation and in the bundle path are
/// inert: nothing runs, no PVE config line or pct option is added, the description keeps
/// the exact bytes.
#[test]
fn hostile_annotations_and_bundle_paths_are_inert() {
    let e = Emu::new("lxc", 7600, 7609, "");
    let marker = e.w.dir.path().join("pwned");
    let evil = format!("$(touch {m})`touch {m}`;touch {m}\nlxc.init.cmd: /bin/sh,ro=1", m = marker.display());
    let name = "b,x=1;$(touch nexcage-pwned)`touch nexcage-pwned`\nlxc.apparmor.profile: unconfined".to_string();
    let b = e.w.bundle("base", &["true"], &[]);
    let hostile = e.w.dir.path().join(&name);
    std::fs::create_dir(&hostile).unwrap();
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    c["root"]["path"] = b.join("rootfs").display().to_string().into();
    c["annotations"] = serde_json::json!({"org.example.note": evil, "nexcage.proxmox.tags": evil});
    std::fs::write(hostile.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
    ok(&e.w.run_detached(&["create", "--bundle", hostile.to_str().unwrap(), "h"], &[]));
    let vmid = 7600;
    let conf = std::fs::read_to_string(e.pve.join(format!("etc/pve/lxc/{vmid}.conf"))).unwrap();
    for line in conf.lines().filter(|l| !l.starts_with('#')) {
        assert!(!line.contains("apparmor") && line != "lxc.init.cmd: /bin/sh,ro=1", "injected line {line:?}:\n{conf}");
    }
    let raw: Vec<&str> = conf.lines().filter(|l| l.starts_with("lxc.")).collect();
    assert!(
        raw.iter().all(|l| l.starts_with("lxc.mount.entry")
            || l.starts_with("lxc.init.cmd: /dev/.nexcage-init")
            || l.starts_with("lxc.cgroup2")
            || l.starts_with("lxc.environment")
            || l.starts_with(&format!("lxc.log.file: {}/run/nexcage-lxc/{vmid}/lxc.log", e.pve.display()))
            || *l == "lxc.log.level: ERROR"
            // LXC runs hooks through a shell: only the init path and the run directory.
            || *l == format!(
                "lxc.hook.mount: {} --lxc-mount-hook {}/run/nexcage-lxc/{vmid}",
                common::emu::tools().init.display(),
                e.pve.display()
            )),
        "{raw:?}"
    );
    // pct got the description as one argument (the emulator logs one line per call).
    let calls = e.pct_calls();
    let create = calls.iter().find(|c| c.starts_with("pct create")).unwrap();
    assert!(!create.contains("--unconfined") && !create.contains("--lxc"), "{create}");
    let d = nexcage::backend::lxc::pveconf::parse_description(
        &nexcage::backend::lxc::pveconf::read_config(&e.pve, vmid).unwrap().description(),
    )
    .unwrap();
    assert_eq!(d.bundle, hostile, "the description keeps the bundle path exactly");
    ok(&e.w.nexcage(["delete", "--force", "h"]));
    assert!(!marker.exists(), "a shell ran user data");
    for dir in [repo(), e.w.dir.path().to_path_buf(), PathBuf::from("/"), e.pve.clone()] {
        assert!(!dir.join("nexcage-pwned").exists(), "a shell ran user data in {}", dir.display());
    }
    e.assert_clean("hostile annotations");
}

/// --root and every record directory are 0700 (records 0600), on every backend; so are
/// passthrough runtime roots and proxmox-lxc run directories.
#[test]
fn state_directories_are_private() {
    let e = Emu::new("crun", 7610, 7619, "");
    let b = e.w.bundle("b", &["true"], &[]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for backend in ["crun", "runc", "lxc"] {
        let bb = e.w.bundle(&format!("b-{backend}"), &["true"], &[("nexcage.backend", backend)]);
        let id = format!("p-{backend}");
        ok(&e.w.run_detached(&["create", "--bundle", bb.to_str().unwrap(), &id], &[]));
        assert_eq!(mode(&e.w.root), 0o700, "--root");
        assert_eq!(mode(&e.w.root.join(&id)), 0o700, "{backend} record dir");
        assert_eq!(mode(&e.w.root.join(&id).join("record.json")), 0o600, "{backend} record");
        if backend != "lxc" {
            assert_eq!(mode(&e.w.root.join(format!("@{backend}"))) & 0o077, 0, "{backend} runtime root");
        } else {
            let run = e.pve.join("run/nexcage-lxc/7610");
            assert_eq!(mode(&run), 0o700, "run dir");
        }
        ok(&e.w.nexcage(["delete", "--force", &id]));
    }
    let _ = b;
    e.assert_clean("modes");
}

/// Symlinks and `..` cannot make nexcage read or write outside the bundle: a rootfs
/// symlink out of the bundle is refused; a symlink inside the rootfs is archived as a
/// symlink (never followed); bind sources that resolve outside the bundle and the allowed
/// host directories are refused; destinations with `..` are refused.
#[test]
fn symlink_and_dotdot_tricks() {
    let allowed = tempfile::Builder::new().prefix("nexcage-allowed-").tempdir().unwrap();
    std::fs::set_permissions(allowed.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A copy: the template archiver must keep symlinks as symlinks (in place, the
    // rootfs's symlinks resolve inside the CT's root, as with runc).
    let extra = format!(r#","allowed_host_mounts":["{}"],"rootfs":"copy""#, allowed.path().display());
    let e = Emu::new("lxc", 7620, 7629, &extra);
    let b = e.w.bundle("b", &["true"], &[]);
    std::os::unix::fs::symlink("/etc/shadow", b.join("rootfs/evil")).unwrap();
    std::os::unix::fs::symlink("/etc", b.join("out")).unwrap();
    std::os::unix::fs::symlink("/etc", allowed.path().join("escape")).unwrap();
    let with_mount = |name: &str, m: serde_json::Value| {
        let d = e.w.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
        c["root"]["path"] = b.join("rootfs").display().to_string().into();
        c["mounts"].as_array_mut().unwrap().push(m);
        std::fs::write(d.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
        d
    };
    let bind = |src: &str, dst: &str| serde_json::json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind"]});
    for (name, m, needle) in [
        ("host", bind("/etc", "/x"), "mounts[6]"),
        ("via-bundle-symlink", bind(&b.join("out").display().to_string(), "/x"), "mounts[6]"),
        ("via-allowed-symlink", bind(&allowed.path().join("escape").display().to_string(), "/x"), "mounts[6]"),
        ("dotdot-source", bind(&format!("{}/../../etc", allowed.path().display()), "/x"), "mounts[6]"),
        ("dotdot-destination", bind(&allowed.path().display().to_string(), "/../../x"), "mounts[6].destination"),
    ] {
        let d = with_mount(name, m);
        let out = e.w.run_detached(&["create", "--bundle", d.to_str().unwrap(), "m"], &[]);
        fails_with(&out, needle);
        e.assert_clean(name);
    }
    // Allowed: a directory under allowed_host_mounts.
    let d = with_mount("allowed", bind(&allowed.path().display().to_string(), "/data"));
    ok(&e.w.run_detached(&["create", "--bundle", d.to_str().unwrap(), "ok"], &[]));
    // The template holds the symlink itself, not the host's /etc/shadow.
    let tpl = std::fs::read_dir(e.template_dir())
        .unwrap()
        .flatten()
        .find(|t| t.file_name().to_string_lossy().ends_with(".tar.zst"))
        .unwrap();
    let out = std::process::Command::new("tar").args(["-I", "zstd", "-tvf"]).arg(tpl.path()).output().unwrap();
    let listing = text(&out.stdout);
    assert!(listing.lines().any(|l| l.starts_with('l') && l.contains("evil -> /etc/shadow")), "{listing}");
    ok(&e.w.nexcage(["delete", "--force", "ok"]));
    e.assert_clean("symlinks");
}

/// Environment values never reach a log or stderr, with --debug, on every backend.
#[test]
fn env_values_are_never_logged() {
    let e = Emu::new("crun", 7630, 7639, "");
    let secret = format!("s3cr3t-{}", std::process::id());
    for backend in ["crun", "runc", "lxc"] {
        let b = e.w.bundle(&format!("b-{backend}"), &["sleep", "100"], &[("nexcage.backend", backend)]);
        edit_config(&b, |c| c["process"]["env"].as_array_mut().unwrap().push(format!("TOKEN={secret}").into()));
        let log = e.w.dir.path().join(format!("{backend}.log"));
        let l = log.to_str().unwrap();
        let id = format!("e-{backend}");
        let mut stderr = String::new();
        for args in [
            vec!["--debug", "--log", l, "create", "--bundle", b.to_str().unwrap(), &id],
            vec!["--debug", "--log", l, "start", &id],
            vec!["--debug", "--log", l, "state", &id],
            vec!["--debug", "--log", l, "list"],
            vec!["--debug", "--log", l, "delete", "--force", &id],
        ] {
            let out = e.w.run_detached(&args, &[]);
            ok(&out);
            stderr.push_str(&text(&out.stderr));
        }
        // A failing create, whose error must not quote the environment either.
        let huge = e.w.bundle(&format!("h-{backend}"), &["true"], &[("nexcage.backend", backend)]);
        edit_config(&huge, |c| {
            c["process"]["env"] = serde_json::json!([format!("TOKEN={secret}{}", "x".repeat(140_000))])
        });
        let out = e.w.run_detached(&["--debug", "--log", l, "create", "--bundle", huge.to_str().unwrap(), "bad"], &[]);
        assert!(!out.status.success());
        stderr.push_str(&text(&out.stderr));
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(logged.contains("level=debug"), "{backend}: --debug logged nothing: {logged}");
        assert!(!logged.contains(&secret), "{backend}: secret in the log:\n{logged}");
        assert!(!stderr.contains(&secret), "{backend}: secret on stderr:\n{stderr}");
    }
    e.assert_clean("env");
}
