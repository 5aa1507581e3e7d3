//! VMID allocation for new containers.
//!
//! A VMID is taken from the configured range when it has no PVE config anywhere in the
//! cluster (`etc/pve/{lxc,qemu-server}/*.conf` and `etc/pve/nodes/*/{lxc,qemu-server}/*.conf`
//! under `pve_root`: containers and VMs share one VMID space) and no live reservation.
//!
//! Choosing is done under a short host-wide lock (`run/lock/lxc/nexcage-vmid.lock`); the
//! choice is then *reserved* with a marker file `run/lock/lxc/nexcage-vmid-<n>.reserved`
//! (created `O_EXCL`, holding the creator's pid and process start time) and the lock is
//! released before the slow `pct create` runs, so concurrent creates do not serialise
//! on each other. The marker is removed when the create returns (the PVE config then
//! speaks for the VMID, or the create failed and it is free again). A marker whose
//! creator is dead (crash, SIGKILL) is stale and reclaimed by the next allocation.
//! When pct answers `already exists` (a config nexcage could not see, e.g. another
//! node's not yet replicated), the next free VMID is tried.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::pct::PctError;
use super::pveconf::{flock_wait, open_lock_file, vmids_in, PveConfError};

/// How long to wait for the host-wide allocation lock (held only while choosing).
pub const HOST_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Smallest and largest VMID Proxmox accepts.
pub const VMID_MIN: u32 = 100;
pub const VMID_MAX: u32 = 999_999_999;

#[derive(Debug, thiserror::Error)]
pub enum VmidError {
    #[error("vmid_range [{lo}, {hi}] is invalid: it must satisfy {VMID_MIN} <= first <= last <= {VMID_MAX}; fix the proxmox-lxc backend's \"vmid_range\" in the nexcage config")]
    InvalidRange { lo: u32, hi: u32 },
    #[error("no free VMID in vmid_range [{lo}, {hi}]: all {count} are used by Proxmox guests or reserved by nexcage creates in progress; widen the proxmox-lxc backend's \"vmid_range\" in the nexcage config, or delete unused containers")]
    Exhausted { lo: u32, hi: u32, count: u64 },
    #[error("VMID allocation lock {}: {problem}", path.display())]
    Lock { path: PathBuf, problem: String },
    // The message includes the io error's: `err` is not a `#[source]`, so that
    // anyhow's `{:#}` (how nexcage prints errors) does not print it twice.
    #[error("VMID allocation: {}: {err}", path.display())]
    Io { path: PathBuf, err: io::Error },
    /// `pct create` failed for another reason than `already exists` (shown as pct's error;
    /// not a `#[source]`, for the same reason).
    #[error("{err}")]
    Create { vmid: u32, err: PctError },
}

fn lock_dir(pve_root: &Path) -> PathBuf {
    pve_root.join("run/lock/lxc")
}

/// `<pve_root>/run/lock/lxc/nexcage-vmid-<n>.reserved`
pub fn reservation_path(pve_root: &Path, vmid: u32) -> PathBuf {
    lock_dir(pve_root).join(format!("nexcage-vmid-{vmid}.reserved"))
}

/// Every VMID with a PVE guest config visible under `pve_root`.
pub fn used_vmids(pve_root: &Path) -> Result<BTreeSet<u32>, VmidError> {
    let pve = pve_root.join("etc/pve");
    let mut dirs = vec![pve.join("lxc"), pve.join("qemu-server")];
    match std::fs::read_dir(pve.join("nodes")) {
        Ok(rd) => {
            for e in rd.flatten() {
                dirs.push(e.path().join("lxc"));
                dirs.push(e.path().join("qemu-server"));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(VmidError::Io { path: pve.join("nodes"), err: e }),
    }
    let mut used = BTreeSet::new();
    for d in dirs {
        used.extend(vmids_in(&d).map_err(|err| VmidError::Io { path: d.clone(), err })?);
    }
    Ok(used)
}

/// Start time (clock ticks since boot) of a live process, `None` when it is gone.
fn process_start(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(19)?.parse().ok()
}

/// `"<pid> <start time>"` of this process.
fn owner_tag() -> String {
    let pid = std::process::id() as i32;
    format!("{pid} {}", process_start(pid).unwrap_or(0))
}

/// Whether a reservation marker's creator is still alive (same pid and start time).
fn reservation_live(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let mut w = text.split_whitespace();
    let (Some(Ok(pid)), Some(Ok(start))) = (w.next().map(str::parse::<i32>), w.next().map(str::parse::<u64>)) else {
        // Being written right now (we hold the host lock, so not by a live allocator)
        // or garbage: stale.
        return false;
    };
    pid > 0 && process_start(pid) == Some(start)
}

/// A reserved VMID; the marker is removed on drop.
#[derive(Debug)]
pub struct Reservation {
    path: PathBuf,
    pub vmid: u32,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Choose and reserve the lowest free VMID of `range`, skipping `skip`. Holds the
/// host-wide lock only while doing so.
pub fn reserve(range: [u32; 2], pve_root: &Path, skip: &BTreeSet<u32>) -> Result<Reservation, VmidError> {
    let [lo, hi] = range;
    if lo < VMID_MIN || hi > VMID_MAX || lo > hi {
        return Err(VmidError::InvalidRange { lo, hi });
    }
    let lock_path = lock_dir(pve_root).join("nexcage-vmid.lock");
    let lock = open_lock_file(&lock_path).map_err(|e| match e {
        PveConfError::Io { path, err } => VmidError::Io { path, err },
        e => VmidError::Lock { path: lock_path.clone(), problem: e.to_string() },
    })?;
    let Some(lock) = flock_wait(lock, HOST_LOCK_TIMEOUT) else {
        return Err(VmidError::Lock {
            path: lock_path,
            problem: format!("not acquired within {}s", HOST_LOCK_TIMEOUT.as_secs()),
        });
    };
    let used = used_vmids(pve_root)?;
    for vmid in lo..=hi {
        if used.contains(&vmid) || skip.contains(&vmid) {
            continue;
        }
        let path = reservation_path(pve_root, vmid);
        if path.exists() {
            if reservation_live(&path) {
                continue;
            }
            log::debug!("reclaiming stale VMID reservation {}", path.display());
            let _ = std::fs::remove_file(&path);
        }
        let mut f = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(VmidError::Io { path, err }),
        };
        let res = Reservation { path: path.clone(), vmid };
        f.write_all(owner_tag().as_bytes()).map_err(|err| VmidError::Io { path, err })?;
        drop(lock);
        return Ok(res);
    }
    Err(VmidError::Exhausted { lo, hi, count: u64::from(hi - lo) + 1 })
}

/// Remove reservation markers whose creator is dead (a create killed between reserving
/// and `pct create` returning), under the host-wide lock as `reserve` does; with
/// `dry_run` only list them. Returns the VMIDs concerned.
pub fn reap_stale(pve_root: &Path, dry_run: bool) -> Result<Vec<u32>, VmidError> {
    let dir = lock_dir(pve_root);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let lock_path = dir.join("nexcage-vmid.lock");
    let lock =
        open_lock_file(&lock_path).map_err(|e| VmidError::Lock { path: lock_path.clone(), problem: e.to_string() })?;
    let Some(_lock) = flock_wait(lock, HOST_LOCK_TIMEOUT) else {
        return Err(VmidError::Lock {
            path: lock_path,
            problem: format!("not acquired within {}s", HOST_LOCK_TIMEOUT.as_secs()),
        });
    };
    let mut out = Vec::new();
    let rd = std::fs::read_dir(&dir).map_err(|err| VmidError::Io { path: dir.clone(), err })?;
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(v) = name
            .to_str()
            .and_then(|n| n.strip_prefix("nexcage-vmid-"))
            .and_then(|n| n.strip_suffix(".reserved"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !reservation_live(&e.path()) {
            if !dry_run {
                let _ = std::fs::remove_file(e.path());
            }
            out.push(v);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Allocate a VMID from `range` and create the container with `create` (which runs
/// `pct create <vmid> ...`). On `AlreadyExists` the next free VMID is tried; any other
/// error is returned as [`VmidError::Create`]. Returns the VMID of the created container.
pub fn allocate_and_create<F>(range: [u32; 2], pve_root: &Path, mut create: F) -> Result<u32, VmidError>
where
    F: FnMut(u32) -> Result<(), PctError>,
{
    let mut taken = BTreeSet::new();
    loop {
        let res = reserve(range, pve_root, &taken)?;
        let vmid = res.vmid;
        let result = create(vmid);
        drop(res);
        match result {
            Ok(()) => return Ok(vmid),
            Err(PctError::AlreadyExists { .. }) => {
                log::debug!("VMID {vmid} already exists; trying the next one");
                taken.insert(vmid);
            }
            Err(err) => return Err(VmidError::Create { vmid, err }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc/pve/nodes/n1/lxc")).unwrap();
        std::fs::create_dir_all(d.path().join("etc/pve/nodes/n2/qemu-server")).unwrap();
        std::os::unix::fs::symlink("nodes/n1/lxc", d.path().join("etc/pve/lxc")).unwrap();
        d
    }

    /// A stand-in for `pct create`: creates the config exclusively, like pct.
    fn fake_create(root: &Path, vmid: u32, delay: Duration) -> Result<(), PctError> {
        let p = root.join(format!("etc/pve/lxc/{vmid}.conf"));
        match OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(mut f) => {
                f.write_all(b"lock: create\n").unwrap();
                std::thread::sleep(delay);
                Ok(())
            }
            Err(_) => Err(PctError::AlreadyExists { vmid, message: format!("CT {vmid} already exists on node 'n1'") }),
        }
    }

    #[test]
    fn skips_used_vmids_everywhere() {
        let r = root();
        std::fs::write(r.path().join("etc/pve/lxc/9000.conf"), "").unwrap();
        std::fs::write(r.path().join("etc/pve/nodes/n2/qemu-server/9001.conf"), "").unwrap();
        std::fs::write(r.path().join("etc/pve/lxc/9002.conf.tmp"), "").unwrap();
        let used = used_vmids(r.path()).unwrap();
        assert_eq!(used.into_iter().collect::<Vec<_>>(), vec![9000, 9001]);
        let v = allocate_and_create([9000, 9010], r.path(), |v| fake_create(r.path(), v, Duration::ZERO)).unwrap();
        assert_eq!(v, 9002);
        assert!(!reservation_path(r.path(), 9002).exists(), "reservation removed after create");
    }

    #[test]
    fn already_exists_is_retried() {
        let r = root();
        let mut calls = vec![];
        let v = allocate_and_create([9000, 9010], r.path(), |v| {
            calls.push(v);
            if v < 9002 {
                // A config on another node that is not visible here yet.
                return Err(PctError::AlreadyExists { vmid: v, message: "CT exists".into() });
            }
            fake_create(r.path(), v, Duration::ZERO)
        })
        .unwrap();
        assert_eq!((v, calls), (9002, vec![9000, 9001, 9002]));
    }

    #[test]
    fn other_errors_end_allocation_and_free_the_vmid() {
        let r = root();
        let e = allocate_and_create([9000, 9010], r.path(), |v| {
            Err(PctError::Failed {
                command: format!("pct create {v}"),
                status: "exit status 255".into(),
                stderr: "boom".into(),
            })
        })
        .unwrap_err();
        assert!(matches!(e, VmidError::Create { vmid: 9000, .. }), "{e}");
        assert!(!reservation_path(r.path(), 9000).exists());
    }

    #[test]
    fn exhausted_and_invalid_ranges() {
        let r = root();
        for v in 9000..=9002 {
            std::fs::write(r.path().join(format!("etc/pve/lxc/{v}.conf")), "").unwrap();
        }
        let e = allocate_and_create([9000, 9002], r.path(), |_| Ok(())).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, VmidError::Exhausted { lo: 9000, hi: 9002, count: 3 }));
        assert!(msg.contains("[9000, 9002]") && msg.contains("\"vmid_range\""), "{msg}");
        // Retried into exhaustion.
        let e = allocate_and_create([9003, 9004], r.path(), |v| {
            Err(PctError::AlreadyExists { vmid: v, message: String::new() })
        })
        .unwrap_err();
        assert!(matches!(e, VmidError::Exhausted { .. }));
        assert!(matches!(reserve([99, 200], r.path(), &BTreeSet::new()), Err(VmidError::InvalidRange { .. })));
        assert!(matches!(reserve([300, 200], r.path(), &BTreeSet::new()), Err(VmidError::InvalidRange { .. })));
    }

    #[test]
    fn live_reservations_are_respected_and_stale_ones_reclaimed() {
        let r = root();
        let held = reserve([9000, 9005], r.path(), &BTreeSet::new()).unwrap();
        assert_eq!(held.vmid, 9000);
        let next = reserve([9000, 9005], r.path(), &BTreeSet::new()).unwrap();
        assert_eq!(next.vmid, 9001);
        // A reservation by a dead process (pid of an exited child) is reclaimed.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        std::fs::write(reservation_path(r.path(), 9002), format!("{pid} 12345")).unwrap();
        std::fs::write(reservation_path(r.path(), 9003), "garbage").unwrap();
        let a = reserve([9002, 9003], r.path(), &BTreeSet::new()).unwrap();
        let b = reserve([9002, 9003], r.path(), &BTreeSet::new()).unwrap();
        assert_eq!((a.vmid, b.vmid), (9002, 9003));
        drop(held);
        assert!(!reservation_path(r.path(), 9000).exists());
    }

    #[test]
    fn concurrent_threads_get_distinct_vmids() {
        let r = root();
        let root_path = Arc::new(r.path().to_path_buf());
        let got = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let root_path = root_path.clone();
                let got = got.clone();
                std::thread::spawn(move || {
                    let v = allocate_and_create([9000, 9099], &root_path, |v| {
                        fake_create(&root_path, v, Duration::from_millis(30))
                    })
                    .unwrap();
                    got.lock().unwrap().push(v);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut got = got.lock().unwrap().clone();
        got.sort_unstable();
        assert_eq!(got, (9000..9016).collect::<Vec<_>>());
    }

    const CHILD_ENV: &str = "NEXCAGE_VMID_TEST_CHILD_ROOT";

    /// Runs as a child process of `concurrent_processes_get_distinct_vmids`: allocates
    /// two VMIDs and prints them.
    #[test]
    fn vmid_child_process_helper() {
        let Some(root) = std::env::var_os(CHILD_ENV) else { return };
        let root = PathBuf::from(root);
        for _ in 0..2 {
            let v =
                allocate_and_create([9000, 9099], &root, |v| fake_create(&root, v, Duration::from_millis(30))).unwrap();
            println!("VMID={v}");
        }
    }

    #[test]
    fn concurrent_processes_get_distinct_vmids() {
        let r = root();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..8)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "backend::lxc::vmid::tests::vmid_child_process_helper",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(CHILD_ENV, r.path())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut got = Vec::new();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            // The harness may print "test ... " before the first line.
            got.extend(
                text.split("VMID=").skip(1).map(|v| v.split_whitespace().next().unwrap().parse::<u32>().unwrap()),
            );
        }
        got.sort_unstable();
        assert_eq!(got, (9000..9016).collect::<Vec<_>>());
    }
}
