//! Crash safety: nexcage killed (SIGKILL, by the test-only `NEXCAGE_FAULT` hook) at every
//! step of create and delete, on crun, runc and proxmox-lxc (pct emulator, real LXC).
//! Afterwards `list` tells the truth, `delete --force ID` (or `gc`) always succeeds, and
//! nothing is left: no record, runtime state, PVE config, VMID reservation, temp
//! template, run directory, LXC container, or process.
//!
//! One #[test] per file section runs its cases in sequence: the test process is a child
//! subreaper and reaps orphaned supervisors and container processes with waitpid(-1),
//! which must not race other tests' children.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::emu::Emu;
use common::*;

const CREATE_STEPS_ALL: &[&str] = &["create:claimed", "create:backend-done", "create:saved"];
const CREATE_STEPS_LXC: &[&str] = &[
    "create:claimed",
    "lxc:pending-saved",
    "lxc:template-built",
    "lxc:vmid-reserved",
    // while `pct create` runs: delete and gc wait for it, then destroy what it made
    "lxc:pct-create-running",
    "lxc:pct-created",
    "lxc:record-saved",
    "lxc:raw-lines-written",
    // while `pct start` runs
    "lxc:pct-start-running",
    "lxc:pct-started",
    "lxc:program-spawned",
    "lxc:supervisor-forked",
    "create:backend-done",
    "create:saved",
];
const DELETE_STEPS_ALL: &[&str] = &["delete:locked", "delete:backend-done"];
const DELETE_STEPS_LXC: &[&str] =
    &["delete:locked", "lxc:delete-killed", "lxc:delete-destroyed", "delete:backend-done"];

/// Reap every exited child (orphans reparented to this subreaper), until none is left
/// or `timeout`; returns the number of children still alive.
fn reap_children(timeout: Duration) -> usize {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let deadline = Instant::now() + timeout;
    loop {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        let alive = children();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive.len();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids whose parent is this process (threads excluded).
fn children() -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| ppid_of(&s) == Some(me)))
        .collect()
}

fn ppid_of(stat: &str) -> Option<i32> {
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

#[track_caller]
fn killed_at(out: &Output, step: &str) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "{step}: nexcage was not killed: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("NEXCAGE_FAULT: killed at {step}")), "{}", text(&out.stderr));
}

fn listed_status(e: &Emu, id: &str) -> Option<String> {
    let out = e.w.nexcage(["list", "--format", "json"]);
    ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // runc's shape: `null` when there is no container.
    v.as_array()?.iter().find(|s| s["id"] == id).map(|s| s["status"].as_str().unwrap().to_string())
}

fn create(e: &Emu, b: &Path, id: &str, fault: Option<&str>) -> Output {
    let env: Vec<(&str, &str)> = fault.map(|f| ("NEXCAGE_FAULT", f)).into_iter().collect();
    e.w.run_detached(&["create", "--bundle", b.to_str().unwrap(), id], &env)
}

#[track_caller]
fn clean(e: &Emu, what: &str) {
    let alive = reap_children(common::emu::wait_limit());
    assert_eq!(alive, 0, "{what}: processes left: {:?}", children());
    e.assert_clean(what);
}

/// The tests of this file run one at a time (they reap any child with waitpid(-1)).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn faults_at_every_step_of_create_and_delete() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut faults = 0;
    // lxc: the rootfs in place; lxc-copy: a copy, for the step only a template build has.
    for (i, backend) in ["crun", "runc", "lxc", "lxc-copy"].iter().enumerate() {
        let copy = *backend == "lxc-copy";
        let extra = if copy { r#","rootfs":"copy""# } else { "" };
        let e = Emu::new(backend.trim_end_matches("-copy"), 7200 + i as u32 * 20, 7219 + i as u32 * 20, extra);
        let b = e.w.bundle("b", &["sleep", "1000"], &[]);
        let lxc = backend.starts_with("lxc");
        let create_steps: Vec<&str> = match (lxc, copy) {
            (false, _) => CREATE_STEPS_ALL.to_vec(),
            (true, false) => CREATE_STEPS_LXC.iter().copied().filter(|s| *s != "lxc:template-built").collect(),
            (true, true) => vec!["lxc:template-built"],
        };
        for (n, step) in create_steps.iter().enumerate() {
            // Alternate the cleanup: delete --force, or gc.
            for by_gc in [false, true] {
                let t0 = Instant::now();
                let id = format!("c{n}{}", if by_gc { "g" } else { "d" });
                let what = format!("{backend}: crash at {step}, then {}", if by_gc { "gc" } else { "delete --force" });
                if *step == "lxc:template-built" {
                    // A rootfs no template exists for yet, so that a build happens.
                    std::fs::write(b.join("rootfs").join(format!("crash-{id}")), &id).unwrap();
                }
                killed_at(&create(&e, &b, &id, Some(step)), step);
                faults += 1;
                // The truth: a create that died is stopped; one that had finished is created.
                let want = if *step == "create:saved" || (!lxc && *step == "create:backend-done") {
                    "created"
                } else {
                    "stopped"
                };
                assert_eq!(listed_status(&e, &id).as_deref(), Some(want), "{what}: list");
                if by_gc {
                    let out = e.w.nexcage(["gc"]);
                    ok(&out);
                    if want == "stopped" {
                        assert!(
                            text(&out.stdout).contains(&format!("delete container {id}")),
                            "{what}: {}",
                            text(&out.stdout)
                        );
                        assert_eq!(listed_status(&e, &id), None, "{what}: gc left the record");
                    }
                }
                ok(&e.w.nexcage(["delete", "--force", &id]));
                clean(&e, &what);
                // The id is usable again.
                ok(&create(&e, &b, &id, None));
                ok(&e.w.nexcage(["delete", "--force", &id]));
                clean(&e, &format!("{what}, then create and delete again"));
                eprintln!("crash: {what}: {:.1} s", t0.elapsed().as_secs_f64());
            }
        }
        let delete_steps = match (lxc, copy) {
            (_, true) => &[][..],
            (true, false) => DELETE_STEPS_LXC,
            (false, _) => DELETE_STEPS_ALL,
        };
        for (n, step) in delete_steps.iter().enumerate() {
            let id = format!("d{n}");
            let what = format!("{backend}: delete crashing at {step}");
            ok(&create(&e, &b, &id, None));
            ok(&e.w.nexcage(["start", &id]));
            let out = e.w.cmd(["delete", "--force", &id]).env("NEXCAGE_FAULT", step).output().unwrap();
            killed_at(&out, step);
            faults += 1;
            let status = listed_status(&e, &id);
            assert!(matches!(status.as_deref(), Some("running" | "stopped")), "{what}: list says {status:?}");
            ok(&e.w.nexcage(["delete", "--force", &id]));
            assert_eq!(listed_status(&e, &id), None, "{what}: still listed");
            clean(&e, &what);
        }
    }
    eprintln!("crash: {faults} faults injected");
}

/// gc reaps only what belongs to its own --root; a stale record never destroys a VMID
/// that another container has been given since.
#[test]
fn gc_respects_roots_and_stale_records_respect_reused_vmids() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = Emu::new("lxc", 7300, 7309, "");
    let b = e.w.bundle("b", &["sleep", "1000"], &[]);
    let other_root = e.w.dir.path().join("other-root");
    let other = |args: &[&str]| {
        let mut c = std::process::Command::new(nexcage_bin());
        c.env("NEXCAGE_CONFIG", &e.w.config).arg("--root").arg(&other_root).args(args);
        let err = e.w.dir.path().join("other.err");
        let status = c
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(e.w.dir.path().join("other.out")).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(e.w.dir.path().join("other.out")).unwrap(),
            stderr: std::fs::read(&err).unwrap(),
        }
    };
    // A container of the other root, and an orphan of ours (record lost).
    ok(&other(&["create", "--bundle", b.to_str().unwrap(), "theirs"]));
    ok(&create(&e, &b, "mine", None));
    std::fs::remove_dir_all(e.w.root.join("mine")).unwrap();
    let out = e.w.nexcage(["gc"]);
    ok(&out);
    let said = text(&out.stdout);
    assert!(said.contains("container \"mine\""), "{said}");
    assert!(!said.contains("theirs"), "gc of one root touched another root's container: {said}");
    let out = other(&["state", "theirs"]);
    ok(&out);
    assert!(text(&out.stdout).contains("\"created\""), "{}", text(&out.stdout));
    assert_eq!(e.confs().len(), 1, "only the other root's container is left");

    // Stale record: its delete died after pct destroy; the VMID is reused by a new container.
    ok(&create(&e, &b, "old", None));
    let vmid_old = vmid_of(&e, "old");
    let out = e.w.cmd(["delete", "--force", "old"]).env("NEXCAGE_FAULT", "lxc:delete-destroyed").output().unwrap();
    killed_at(&out, "lxc:delete-destroyed");
    ok(&create(&e, &b, "new", None));
    assert_eq!(vmid_of(&e, "new"), vmid_old, "the freed VMID is handed out again");
    let calls_before = e.pct_calls().len();
    ok(&e.w.nexcage(["delete", "--force", "old"]));
    assert_eq!(e.pct_calls().len(), calls_before, "no pct call for a stale record's VMID");
    assert_eq!(e.w.state("new")["status"], "created", "the stale delete destroyed another container");
    ok(&e.w.nexcage(["delete", "--force", "new"]));
    ok(&other(&["delete", "--force", "theirs"]));
    clean(&e, "roots");
}

fn vmid_of(e: &Emu, id: &str) -> u64 {
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.w.root.join(id).join("record.json")).unwrap()).unwrap();
    r["data"]["proxmox-lxc"]["data"]["vmid"].as_u64().unwrap()
}
