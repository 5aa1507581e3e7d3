//! nexcage in front of real crun and real runc: everything an engine sees must be the
//! runtime's own (stdio, pid file, exit status, parentage), and nexcage's records must
//! never outlive the containers.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::*;

const BACKENDS: [&str; 2] = ["crun", "runc"];
const WAIT: Duration = Duration::from_secs(20);

/// `create` with stdio going to files in the world (a pipe would stay open as long as the
/// container lives). Returns the create output (stderr read from its file) and the files.
struct Created {
    out: Output,
    stdout: PathBuf,
    stderr: PathBuf,
}

fn create(w: &World, id: &str, bundle: &Path, extra: &[&str]) -> Created {
    let stdout = w.dir.path().join(format!("{id}.out"));
    let stderr = w.dir.path().join(format!("{id}.err"));
    let mut args: Vec<String> = vec!["create".into(), "--bundle".into(), bundle.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(id.into());
    let status = w
        .cmd(&args)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap())
        .status()
        .unwrap();
    let out = Output { status, stdout: std::fs::read(&stdout).unwrap(), stderr: std::fs::read(&stderr).unwrap() };
    Created { out, stdout, stderr }
}

fn pid_file(w: &World, id: &str) -> PathBuf {
    w.dir.path().join(format!("{id}.pid"))
}

fn create_ok(w: &World, id: &str, bundle: &Path) -> (i32, Created) {
    let pf = pid_file(w, id);
    let c = create(w, id, bundle, &["--pid-file", pf.to_str().unwrap()]);
    ok(&c.out);
    (read_pid_file(&pf), c)
}

fn record_exists(w: &World, id: &str) -> bool {
    w.root.join(id).join("record.json").exists()
}

#[test]
fn lifecycle_create_state_start_output_stopped_delete() {
    for backend in BACKENDS {
        let w = World::new(backend);
        let b = w.bundle("b", &["sh", "-c", "echo out-line; echo err-line >&2; exit 3"], &[]);
        let id = format!("life-{backend}");
        let (pid, c) = create_ok(&w, &id, &b);

        let st = w.state(&id);
        assert_eq!(st["status"], "created", "{backend}");
        assert_eq!(st["id"], id.as_str());
        assert_eq!(st["pid"], pid, "{backend}: state pid equals the pid file");
        assert_eq!(st["bundle"], b.to_str().unwrap());
        humantime::parse_rfc3339(st["created"].as_str().unwrap()).unwrap();
        // Parentage: the container process is a descendant of the caller (reparented to
        // us, the subreaper, once the runtime exited), not of some daemon.
        assert_eq!(ppid(pid), std::process::id() as i32, "{backend}: container init reparented to caller");
        // The program has not run yet.
        assert_eq!(text(&std::fs::read(&c.stdout).unwrap()), "", "{backend}: program ran before start");

        ok(&w.nexcage(["start", &id]));
        let (code, sig) = wait_pid(pid, WAIT);
        assert_eq!((code, sig), (Some(3), None), "{backend}: exit status is the program's");
        assert_eq!(text(&std::fs::read(&c.stdout).unwrap()), "out-line\n", "{backend}");
        assert_eq!(text(&std::fs::read(&c.stderr).unwrap()), "err-line\n", "{backend}");
        assert_eq!(w.state(&id)["status"], "stopped", "{backend}");

        ok(&w.nexcage(["delete", &id]));
        assert!(!record_exists(&w, &id), "{backend}: record removed by delete");
        fails_with(&w.nexcage(["state", &id]), "container does not exist");
        assert!(!w.root.join(format!("@{backend}")).join(&id).exists(), "{backend}: runtime state removed");
    }
}

/// A program that reports which signal reached it through its exit status.
const SIGNAL_PROBE: &str =
    "trap 'exit 42' USR1; trap 'exit 43' TERM; trap 'exit 44' HUP; echo ready; while :; do sleep 0.05; done";

#[test]
fn kill_with_named_numeric_and_default_signals() {
    for backend in BACKENDS {
        let w = World::new(backend);
        let b = w.bundle("b", &["sh", "-c", SIGNAL_PROBE], &[]);
        for (i, (signal, want)) in [
            (Some("USR1"), 42),
            (Some("SIGUSR1"), 42),
            (Some("10"), 42),
            (None, 43),
            (Some("SIGHUP"), 44),
            (Some("1"), 44),
        ]
        .into_iter()
        .enumerate()
        {
            let id = format!("kill-{backend}-{i}");
            let (pid, c) = create_ok(&w, &id, &b);
            ok(&w.nexcage(["start", &id]));
            eventually("probe ready", WAIT, || text(&std::fs::read(&c.stdout).unwrap()).contains("ready"));
            let mut args = vec!["kill", id.as_str()];
            args.extend(signal);
            ok(&w.nexcage(&args));
            assert_eq!(wait_pid(pid, WAIT), (Some(want), None), "{backend}: kill {signal:?}");
            ok(&w.nexcage(["delete", &id]));
        }
        // SIGKILL by name and number, with --all as engines send it.
        for (i, args) in [vec!["kill", "--all"], vec!["kill"]].into_iter().enumerate() {
            let id = format!("kill9-{backend}-{i}");
            let (pid, _) = create_ok(&w, &id, &b);
            ok(&w.nexcage(["start", &id]));
            let mut a = args.clone();
            a.push(&id);
            a.push(if i == 0 { "9" } else { "KILL" });
            ok(&w.nexcage(&a));
            assert_eq!(wait_pid(pid, WAIT), (None, Some(9)), "{backend}: SIGKILL");
            ok(&w.nexcage(["delete", &id]));
        }
    }
}

#[test]
fn delete_running_needs_force_and_force_works() {
    for backend in BACKENDS {
        let w = World::new(backend);
        let b = w.bundle("b", &["sleep", "1000"], &[]);
        let id = format!("force-{backend}");
        let (pid, _) = create_ok(&w, &id, &b);
        ok(&w.nexcage(["start", &id]));
        assert_eq!(w.state(&id)["status"], "running");
        let out = w.nexcage(["delete", &id]);
        assert!(!out.status.success(), "{backend}: delete of a running container must fail");
        assert!(record_exists(&w, &id), "{backend}: failed delete keeps the record");
        assert_eq!(w.state(&id)["status"], "running");
        ok(&w.nexcage(["delete", "-f", &id]));
        assert_eq!(wait_pid(pid, WAIT), (None, Some(9)), "{backend}: --force kills with SIGKILL");
        assert!(!record_exists(&w, &id));
        fails_with(&w.nexcage(["state", &id]), "container does not exist");
    }
}

#[test]
fn delete_of_created_container_removes_it() {
    for backend in BACKENDS {
        let w = World::new(backend);
        let b = w.bundle("b", &["sh", "-c", "echo should-not-run"], &[]);
        let id = format!("delcreated-{backend}");
        let (pid, c) = create_ok(&w, &id, &b);
        ok(&w.nexcage(["delete", &id]));
        let _ = wait_pid(pid, WAIT);
        assert!(!record_exists(&w, &id));
        assert_eq!(text(&std::fs::read(&c.stdout).unwrap()), "", "{backend}: program never ran");
    }
}

#[test]
fn duplicate_id_is_refused_and_the_first_survives() {
    for backend in BACKENDS {
        let w = World::new(backend);
        let b = w.bundle("b", &["sleep", "1000"], &[]);
        let id = format!("dup-{backend}");
        create_ok(&w, &id, &b);
        let c = create(&w, &id, &b, &[]);
        fails_with(&c.out, &format!("container with id exists: {id}"));
        assert_eq!(c.out.status.code(), Some(1));
        assert_eq!(w.state(&id)["status"], "created", "{backend}: original untouched");
        ok(&w.nexcage(["delete", "--force", &id]));
    }
}

#[test]
fn unknown_id_does_not_exist_for_every_command() {
    let w = World::new("crun");
    for args in [
        vec!["state", "ghost"],
        vec!["start", "ghost"],
        vec!["kill", "ghost", "KILL"],
        vec!["delete", "ghost"],
        vec!["exec", "ghost", "true"],
        vec!["ps", "ghost"],
        vec!["pause", "ghost"],
        vec!["resume", "ghost"],
    ] {
        let out = w.nexcage(&args);
        fails_with(&out, "container does not exist");
        // As runc: exec's own failures exit 255 ("exec failed: ...").
        let want = if args[0] == "exec" { 255 } else { 1 };
        assert_eq!(out.status.code(), Some(want), "{args:?}");
    }
}

#[test]
fn invalid_ids_are_rejected_before_anything_happens() {
    let w = World::new("crun");
    let b = w.bundle("b", &["true"], &[]);
    for id in ["a/b", "..", ".", "a b", "x\u{e9}"] {
        let out = w.nexcage(["create", "--bundle", b.to_str().unwrap(), id]);
        fails_with(&out, "invalid container id");
        fails_with(&w.nexcage(["state", id]), "invalid container id");
    }
    assert!(!w.root.exists() || std::fs::read_dir(&w.root).unwrap().next().is_none(), "nothing written");
}

#[test]
fn missing_or_broken_bundle_leaves_no_record() {
    let w = World::new("crun");
    let missing = w.dir.path().join("no-such-bundle");
    fails_with(&create(&w, "m1", &missing, &[]).out, "does not exist");
    let empty = w.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails_with(&create(&w, "m2", &empty, &[]).out, "has no config.json");
    let b = w.bundle("broken", &["true"], &[]);
    std::fs::write(b.join("config.json"), "{ \"ociVersion\": ").unwrap();
    fails_with(&create(&w, "m3", &b, &[]).out, "config.json");
    for id in ["m1", "m2", "m3"] {
        assert!(!record_exists(&w, id));
        fails_with(&w.nexcage(["state", id]), "container does not exist");
    }
}

#[test]
fn runtime_failure_at_create_drops_the_record_and_keeps_the_status() {
    for backend in BACKENDS {
        let w = World::new(backend);
        let b = w.bundle("b", &["true"], &[]);
        edit_config(&b, |c| c["root"]["path"] = "does-not-exist".into());
        let id = format!("fail-{backend}");
        let c = create(&w, &id, &b, &[]);
        assert!(!c.out.status.success(), "{backend}: create with a missing rootfs must fail");
        assert!(!record_exists(&w, &id), "{backend}: no stale record after a failed create");
        fails_with(&w.nexcage(["state", &id]), "container does not exist");
    }
}

#[test]
fn broken_nexcage_config_stops_create_with_file_and_path() {
    let w = World::new("crun");
    std::fs::write(&w.config, r#"{"default_backend":"crun","backends":{"crun":{"kind":"oci","path":7}}}"#).unwrap();
    let b = w.bundle("b", &["true"], &[]);
    let c = create(&w, "cfg", &b, &[]);
    fails_with(&c.out, &w.config.display().to_string());
    fails_with(&c.out, "at backends.crun.path");
    assert!(!record_exists(&w, "cfg"));
}

#[test]
fn backend_annotation_and_routes_choose_the_runtime() {
    let w = World::new("crun");
    let b_runc = w.bundle("b1", &["sleep", "1000"], &[("nexcage.backend", "runc")]);
    let b_plain = w.bundle("b2", &["sleep", "1000"], &[]);
    create_ok(&w, "by-annotation", &b_runc);
    create_ok(&w, "route-runc-x", &b_plain);
    create_ok(&w, "by-default", &b_plain);
    assert!(w.root.join("@runc/by-annotation").exists());
    assert!(w.root.join("@runc/route-runc-x").exists());
    assert!(w.root.join("@crun/by-default").exists());

    let bad = w.bundle("b3", &["true"], &[("nexcage.backend", "docker")]);
    let c = create(&w, "bad-backend", &bad, &[]);
    fails_with(&c.out, "unknown backend \"docker\"");
    assert!(!record_exists(&w, "bad-backend"));

    let out = w.nexcage(["route", "--bundle", b_plain.to_str().unwrap(), "route-runc-1"]);
    ok(&out);
    assert!(text(&out.stdout).starts_with("backend runc: chosen by routes[0]"), "{}", text(&out.stdout));
    let out = w.nexcage(["route", "-b", b_runc.to_str().unwrap(), "x"]);
    assert!(text(&out.stdout).contains("chosen by the annotation nexcage.backend=runc"));

    // list covers both backends.
    let out = w.nexcage(["list", "--format", "json"]);
    ok(&out);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["by-annotation", "by-default", "route-runc-x"]);
    assert!(list.iter().all(|s| s["status"] == "created"));
    let out = w.nexcage(["list", "-q"]);
    assert_eq!(text(&out.stdout), "by-annotation\nby-default\nroute-runc-x\n");
    // runc's table; nexcage's own columns (backend, VMID) only with --wide.
    let table = text(&w.nexcage(["list"]).stdout);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], "{table}");
    let row: Vec<&str> = table.lines().find(|l| l.starts_with("by-default ")).unwrap().split_whitespace().collect();
    assert_eq!(row[2..4], ["created", b_plain.to_str().unwrap()], "{table}");
    assert_eq!(row[5], "root", "{table}");
    let wide = text(&w.nexcage(["list", "--wide"]).stdout);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER", "BACKEND", "VMID"], "{wide}");
    let row: Vec<&str> = wide.lines().find(|l| l.starts_with("by-default ")).unwrap().split_whitespace().collect();
    assert_eq!(row[6..], ["crun", "-"], "{wide}");
    let out = w.nexcage(["list", "--wide", "--format", "json"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["backend"], "runc");
    assert!(list[0].get("vmid").is_none());
}

#[test]
fn exec_runs_in_the_container_with_its_exit_status() {
    for backend in BACKENDS {
        let w = World::new(backend);
        let b = w.bundle("b", &["sleep", "1000"], &[]);
        let id = format!("exec-{backend}");
        create_ok(&w, &id, &b);
        ok(&w.nexcage(["start", &id]));
        let out = w.nexcage(["exec", &id, "sh", "-c", "hostname; exit 5"]);
        assert_eq!(out.status.code(), Some(5), "{backend}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "busybox\n");
        let out = w.nexcage(["ps", "--format", "json", &id]);
        ok(&out);
        let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
        assert!(!pids.is_empty());
        ok(&w.nexcage(["pause", &id]));
        assert_eq!(w.state(&id)["status"], "paused");
        ok(&w.nexcage(["resume", &id]));
        assert_eq!(w.state(&id)["status"], "running");
        ok(&w.nexcage(["delete", "--force", &id]));
    }
}

#[test]
fn unknown_global_flags_reach_the_runtime() {
    let w = World::new("runc");
    let b = w.bundle("b", &["true"], &[]);
    // runc does not know this flag: its own error proves nexcage forwarded it.
    let out = w
        .cmd(["--bogus-flag", "create", "--bundle", b.to_str().unwrap(), "fwd"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    fails_with(&out, "bogus-flag");
    assert!(!record_exists(&w, "fwd"));
    // crun knows --cgroup-manager: accepted through nexcage.
    let w = World::new("crun");
    let b = w.bundle("b", &["true"], &[]);
    let stderr = w.dir.path().join("fwd2.err");
    let st = w
        .cmd(["--cgroup-manager", "cgroupfs", "create", "--bundle", b.to_str().unwrap(), "fwd2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).unwrap())
        .status()
        .unwrap();
    assert!(st.success(), "{}", std::fs::read_to_string(&stderr).unwrap());
    ok(&w.nexcage(["delete", "fwd2"]));
}

#[test]
fn delete_force_of_unknown_id_succeeds_as_runc_does() {
    let w = World::new("crun");
    ok(&w.nexcage(["delete", "--force", "never-existed"]));
    fails_with(&w.nexcage(["delete", "never-existed"]), "container does not exist");
}

#[test]
fn json_log_carries_the_error_for_containerd() {
    let w = World::new("crun");
    let log = w.dir.path().join("log.json");
    let out = w.nexcage(["--log", log.to_str().unwrap(), "--log-format", "json", "state", "ghost"]);
    fails_with(&out, "container does not exist");
    let last_error = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("each log line is JSON"))
        .rfind(|v| v["level"] == "error")
        .expect("an error line");
    assert_eq!(last_error["msg"], "container does not exist");
    humantime::parse_rfc3339(last_error["time"].as_str().unwrap()).unwrap();
}

#[test]
fn stale_record_is_cleaned_by_delete() {
    let w = World::new("crun");
    let b = w.bundle("b", &["sleep", "1000"], &[]);
    create_ok(&w, "stale", &b);
    // The runtime loses the container behind nexcage's back.
    let st = std::process::Command::new("crun")
        .arg("--root")
        .arg(w.root.join("@crun"))
        .args(["delete", "--force", "stale"])
        .status()
        .unwrap();
    assert!(st.success());
    ok(&w.nexcage(["delete", "stale"]));
    assert!(!record_exists(&w, "stale"));
}

#[test]
fn features_works_without_global_flags() {
    let w = World::new("runc");
    let out = std::process::Command::new(NEXCAGE).env("NEXCAGE_CONFIG", &w.config).arg("features").output().unwrap();
    ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["ociVersionMax"].is_string());
    assert_eq!(doc["annotations"]["org.nexcage.backends"], "crun,lxc,runc");
    assert_eq!(doc["annotations"]["org.nexcage.default-backend"], "runc");
}

/// `features` claims only what holds on every backend a container can be routed to (the
/// annotation reaches any configured one): with runc and proxmox-lxc, runc's AppArmor,
/// seccomp notification, id-mapped mounts and `rro` are not claimed; with a runtime that cannot report its
/// features (Debian 12's crun 1.8.1), nothing but the OCI versions is.
#[test]
fn features_is_the_intersection_of_the_reachable_backends() {
    let w = World::new("runc");
    let features = |config: &str| -> serde_json::Value {
        std::fs::write(&w.config, config).unwrap();
        let out =
            std::process::Command::new(NEXCAGE).env("NEXCAGE_CONFIG", &w.config).arg("features").output().unwrap();
        ok(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let runc_out = std::process::Command::new("runc").arg("features").output().unwrap();
    let runc: serde_json::Value = serde_json::from_slice(&runc_out.stdout).unwrap();
    assert_eq!(runc["linux"]["seccomp"]["enabled"], true, "the reference claims seccomp");

    let alone = features(r#"{"default_backend":"runc","backends":{"runc":{"kind":"oci","path":"runc"}}}"#);
    assert_eq!(alone["linux"], runc["linux"], "one backend: its own document");
    assert_eq!(alone["mountOptions"], runc["mountOptions"]);

    let both = features(
        r#"{"default_backend":"runc","backends":{"runc":{"kind":"oci","path":"runc"},"lxc":{"kind":"proxmox-lxc"}}}"#,
    );
    // proxmox-lxc applies seccomp profiles, but without notification agents; AppArmor
    // profiles not at all.
    assert_eq!(both["linux"]["seccomp"]["enabled"], true, "{both}");
    let actions = both["linux"]["seccomp"]["actions"].as_array().unwrap();
    assert!(actions.contains(&"SCMP_ACT_ERRNO".into()) && !actions.contains(&"SCMP_ACT_NOTIFY".into()), "{actions:?}");
    assert_eq!(both["linux"]["apparmor"]["enabled"], false, "{both}");
    let opts: Vec<&str> = both["mountOptions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(opts.contains(&"ro") && opts.contains(&"nosuid"), "{opts:?}");
    assert!(!opts.contains(&"rro"), "lxc mounts cannot be recursively read-only: {opts:?}");
    for ns in both["linux"]["namespaces"].as_array().unwrap() {
        assert!(runc["linux"]["namespaces"].as_array().unwrap().contains(ns), "{ns} is not runc's");
    }
    assert_eq!(both["annotations"]["org.nexcage.features"], "intersection of the backends lxc,runc");
    assert!(both["annotations"].get("org.opencontainers.runc.version").is_none(), "runc's own annotations are dropped");

    // crun 1.8.1 has no `features` command (skip where a newer crun has one).
    let crun_reports = std::process::Command::new("crun").arg("features").output().unwrap().status.success();
    if !crun_reports {
        let all = features(
            r#"{"default_backend":"runc","backends":{"runc":{"kind":"oci","path":"runc"},"crun":{"kind":"oci","path":"crun"}}}"#,
        );
        assert!(all.get("linux").is_none() && all.get("mountOptions").is_none(), "{all}");
        assert!(all["ociVersionMax"].is_string(), "{all}");
        let how = all["annotations"]["org.nexcage.features"].as_str().unwrap();
        assert!(how.starts_with("only the OCI versions are reported: the features of crun ("), "{how}");
    }
}

#[test]
fn version_names_the_backends() {
    let w = World::new("crun");
    for args in [["--version"], ["version"]] {
        let out = w.nexcage(args);
        ok(&out);
        let t = text(&out.stdout);
        assert!(t.starts_with(&format!("nexcage version {}", env!("CARGO_PKG_VERSION"))), "{t}");
        assert!(t.contains("backend crun (oci): ") && t.contains("crun version"), "{t}");
        assert!(t.contains("backend runc (oci): ") && t.contains("runc version"), "{t}");
        assert!(t.contains("backend lxc (proxmox-lxc)"), "{t}");
    }
}
