//! Concurrency: parallel create/start/kill/delete loops (32 on proxmox-lxc through the
//! pct emulator on real LXC, 100 on crun) for a bounded time, with duplicate ids thrown
//! in: every command ends within a timeout (no hang), every duplicate create is refused
//! with "container with id exists", nothing is leaked at the end (records, runtime state,
//! PVE configs, VMID reservations, LXC containers, processes) and no VMID is held by two
//! containers at once (from the records, with timestamps).
//!
//! `NEXCAGE_STRESS_SECS` sets the duration of each run (default 20 s); `NEXCAGE_STRESS_LXC`
//! and `NEXCAGE_STRESS_CRUN` the number of loops (32 and 100).

mod common;

use std::collections::BTreeMap;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::emu::Emu;
use common::*;

/// No command may take longer than this (pct waits at most 10 s for a lock, LXC start 10 s).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The tests of this file run one at a time (they reap orphans with waitpid(-1)).
static SERIAL: Mutex<()> = Mutex::new(());

/// Who held a VMID, from when until when.
type Spans = Vec<(Instant, Instant, String)>;

struct Stats {
    ops: AtomicUsize,
    duplicates: AtomicUsize,
    cycles: AtomicUsize,
    /// vmid -> [(held from, held until)] as seen by the loop that owned it.
    vmids: Mutex<BTreeMap<u64, Spans>>,
}

/// Run one nexcage command with stdio to files, killing it (and failing) after the timeout.
fn bounded(e: &Emu, args: &[&str], n: &str) -> Output {
    let dir = e.w.dir.path().join("io");
    std::fs::create_dir_all(&dir).unwrap();
    let (o, er) = (dir.join(format!("{n}.out")), dir.join(format!("{n}.err")));
    let mut child =
        e.w.cmd(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&er).unwrap())
            .spawn()
            .unwrap();
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hang: nexcage {args:?} did not finish within {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: std::fs::read(&o).unwrap(), stderr: std::fs::read(&er).unwrap() }
}

/// Wait for a pid-file process (our child by reparenting) to end.
fn reap(pid: i32) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) | Err(_) => return,
        }
        assert!(Instant::now() < deadline, "pid {pid} did not end after SIGKILL");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One container's life; `Ok(false)` when the create lost a duplicate race.
fn cycle(e: &Emu, id: &str, tag: &str, s: &Stats, lxc: bool) -> bool {
    let b = e.w.dir.path().join("b");
    let pid_file = e.w.dir.path().join("io").join(format!("{tag}.pid"));
    let create = ["create", "--bundle", b.to_str().unwrap(), "--pid-file", pid_file.to_str().unwrap(), id];
    let out = bounded(e, &create, &format!("{tag}-create"));
    s.ops.fetch_add(1, Ordering::Relaxed);
    if !out.status.success() {
        let err = text(&out.stderr);
        assert!(err.contains(&format!("container with id exists: {id}")), "create {id} failed: {err}");
        s.duplicates.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    let held_from = Instant::now();
    let vmid = lxc.then(|| {
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.w.root.join(id).join("record.json")).unwrap()).unwrap();
        r["data"]["proxmox-lxc"]["data"]["vmid"].as_u64().unwrap()
    });
    // The same id again while it exists: refused cleanly.
    let out = bounded(e, &create, &format!("{tag}-dup"));
    s.ops.fetch_add(1, Ordering::Relaxed);
    fails_with(&out, &format!("container with id exists: {id}"));
    s.duplicates.fetch_add(1, Ordering::Relaxed);
    let pid = read_pid_file(&pid_file);
    for (args, what) in [(vec!["start", id], "start"), (vec!["kill", id, "KILL"], "kill")] {
        let out = bounded(e, &args, &format!("{tag}-{what}"));
        s.ops.fetch_add(1, Ordering::Relaxed);
        ok(&out);
    }
    reap(pid);
    let out = bounded(e, &["delete", id], &format!("{tag}-delete"));
    s.ops.fetch_add(1, Ordering::Relaxed);
    ok(&out);
    if let Some(v) = vmid {
        s.vmids.lock().unwrap().entry(v).or_default().push((held_from, Instant::now(), id.to_string()));
    }
    s.cycles.fetch_add(1, Ordering::Relaxed);
    true
}

fn stress(e: Arc<Emu>, loops: usize, secs: u64, lxc: bool) -> Arc<Stats> {
    let s = Arc::new(Stats {
        ops: AtomicUsize::new(0),
        duplicates: AtomicUsize::new(0),
        cycles: AtomicUsize::new(0),
        vmids: Mutex::new(BTreeMap::new()),
    });
    let end = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..loops)
        .map(|w| {
            let (e, s) = (e.clone(), s.clone());
            std::thread::spawn(move || {
                let mut k = 0;
                while Instant::now() < end {
                    // Every third cycle contends for one id shared by all loops.
                    let id = if k % 3 == 2 { "shared".to_string() } else { format!("w{w}-{k}") };
                    cycle(&e, &id, &format!("w{w}-{k}"), &s, lxc);
                    k += 1;
                }
            })
        })
        .collect();
    let mut failed = None;
    for h in workers {
        if let Err(p) = h.join() {
            failed.get_or_insert(p);
        }
    }
    if let Some(p) = failed {
        std::panic::resume_unwind(p);
    }
    s
}

/// After a run: nothing left, no VMID held twice at once, no process left.
fn check_end(e: &Emu, s: &Stats, what: &str) {
    let list = e.w.nexcage(["list", "-q"]);
    ok(&list);
    assert_eq!(text(&list.stdout), "", "{what}: containers still listed");
    e.assert_clean(what);
    for (vmid, spans) in s.vmids.lock().unwrap().iter_mut() {
        spans.sort_by_key(|(from, _, _)| *from);
        for pair in spans.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1,
                "{what}: VMID {vmid} held by {} and {} at the same time",
                pair[0].2,
                pair[1].2
            );
        }
    }
    // Every supervisor or container process is gone (they were our children by reparenting).
    let me = std::process::id().to_string();
    let strays: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|d| {
            let d = d.ok()?;
            let stat = std::fs::read_to_string(d.path().join("stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            (after.split(' ').nth(1)? == me).then_some(stat)
        })
        .collect();
    assert!(strays.is_empty(), "{what}: processes left: {strays:?}");
    eprintln!(
        "stress {what}: {} operations, {} lifecycles, {} duplicate creates refused, {} VMIDs, 0 leaks",
        s.ops.load(Ordering::Relaxed),
        s.cycles.load(Ordering::Relaxed),
        s.duplicates.load(Ordering::Relaxed),
        s.vmids.lock().unwrap().len()
    );
}

#[test]
fn parallel_lifecycles_on_proxmox_lxc() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = Arc::new(Emu::new("lxc", 7400, 7499, ""));
    e.w.bundle("b", &["sleep", "1000"], &[]);
    let s = stress(e.clone(), env_or("NEXCAGE_STRESS_LXC", 32) as usize, env_or("NEXCAGE_STRESS_SECS", 20), true);
    check_end(&e, &s, "proxmox-lxc");
    assert!(s.cycles.load(Ordering::Relaxed) >= 32, "too few lifecycles completed");
}

#[test]
fn parallel_lifecycles_on_crun() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = Arc::new(Emu::new("crun", 7500, 7509, ""));
    e.w.bundle("b", &["sleep", "1000"], &[]);
    let s = stress(e.clone(), env_or("NEXCAGE_STRESS_CRUN", 100) as usize, env_or("NEXCAGE_STRESS_SECS", 20), false);
    check_end(&e, &s, "crun");
    assert!(s.cycles.load(Ordering::Relaxed) >= 100, "too few lifecycles completed");
}
