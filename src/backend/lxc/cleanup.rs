//! Finding and removing what a crashed nexcage left on a Proxmox host: containers tagged
//! `nexcage` that no record claims, stale VMID reservations, temp templates of dead
//! builders, run directories without a container. Used by `delete` (for its own
//! container) and by `gc` (for a whole `--root`).
//!
//! Ownership rule: a Proxmox container belongs to a nexcage `--root` when its description
//! names that root (`nexcage-root:`, written at create). Containers without that line
//! (made by old versions, or rebuilt ones whose description was edited) are never
//! destroyed by `gc`; `delete` of a record destroys its VMID only while the VMID's
//! description still names the record's id (and root, when it names one), so a VMID that
//! was freed and reused by another container is never destroyed by a stale record.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::pct::{self, Pct, PctError};
use super::{pveconf, run_dir, vmid};

/// Remove the container and its run directory after a failed create.
pub fn destroy_quietly(pct: &Pct, vmid: u32, run_dir: &Path) {
    match pct.destroy(vmid, true, true) {
        Ok(()) | Err(PctError::DoesNotExist { .. }) => {}
        Err(e) => log::error!(
            "cleanup after the failed create: {e}; remove CT {vmid} by hand (pct destroy {vmid} --force --purge)"
        ),
    }
    let _ = run_dir::remove(run_dir);
}

/// Who a VMID belongs to now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Its description names this id (and this root, or no root).
    Ours,
    /// No config: the container is gone.
    Gone,
    /// Someone else's (another id, another root, or not a nexcage description).
    Other(String),
}

/// A create's pct commands hold this lock (an flock, taken by create, inherited by every
/// pct it runs), and the file names the pct that runs now (pct::write_running): a killed
/// create leaves its pct running (killing pct mid-way would leave half-made volumes and
/// `lock: create`). `delete` and `gc` wait while the lock is held and the pct it names
/// runs, then clean up what pct made. Daemons a pct forked inherit the lock too (Proxmox's
/// DHCP client, forked by `pct start`, runs as long as the CT): they are not waited for,
/// and a create that ends (well or not: every pct it ran has returned) unlocks the file
/// for them too. Lives in the record's directory.
pub struct InflightLock(File);

const INFLIGHT_FILE: &str = "pct-inflight.lock";

impl InflightLock {
    /// Create and lock the file of container `id` under `state_root` (its record exists).
    pub fn acquire(state_root: &Path, id: &str) -> std::io::Result<InflightLock> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(state_root.join(id).join(INFLIGHT_FILE))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(InflightLock(f))
    }

    /// The descriptor pct inherits.
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl Drop for InflightLock {
    /// Unlock for every sharer of the lock: no pct of this create runs any more (pct calls
    /// are waited for), so only daemons a pct forked still hold it. (A killed create never
    /// gets here, and its pct keeps the lock.)
    fn drop(&mut self) {
        // SAFETY: flock on a descriptor we own.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Wait until no pct of container `id` started by a create holds its lock, up to `limit`.
pub fn wait_inflight_pct(state_root: &Path, id: &str, limit: std::time::Duration) -> Result<(), String> {
    let path = state_root.join(id).join(INFLIGHT_FILE);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot open {}: {e}", path.display())),
    };
    // Free, or held only by what a pct forked and left running: nothing to wait for. Else
    // say why we wait, then poll until the deadline.
    let held = |f: File| match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(_) => None,
        Err((f, _)) => Some(f),
    };
    let running = || std::fs::read_to_string(&path).ok().as_deref().and_then(pct::running_of);
    let Some(mut f) = held(f) else { return Ok(()) };
    let Some(pct) = running() else { return Ok(()) };
    log::warn!("container {id}: waiting for the pct command (pid {}) of a create that did not finish", pct.pid);
    let deadline = std::time::Instant::now() + limit;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(20));
        match held(f) {
            None => return Ok(()),
            Some(g) => f = g,
        }
        if running().is_none() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "a pct command (pid {}) started by the create of container {id}, which did not finish, is still running after {} s (it holds {}); wait for it to end, then delete again",
                pct.pid,
                limit.as_secs(),
                path.display()
            ));
        }
    }
}

/// Read the PVE config of `vmid` (no pct call) and say whose container it is.
pub fn owner(pve_root: &Path, vmid: u32, id: &str, state_root: &Path) -> Owner {
    let conf = match pveconf::read_config(pve_root, vmid) {
        Ok(c) => c,
        Err(pveconf::PveConfError::NotFound { .. }) => return Owner::Gone,
        // Unreadable: do not guess; let pct decide (it reports a missing container).
        Err(_) => return Owner::Ours,
    };
    match pveconf::parse_description(&conf.description()) {
        Some(d) if pveconf::is_copy(&d, vmid) => {
            Owner::Other(format!("a copy of CT {} made by Proxmox (a restore or clone)", d.vmid.unwrap_or_default()))
        }
        Some(d) if d.oci_id == id && d.state_root.as_deref().is_none_or(|r| r == state_root) => Owner::Ours,
        Some(d) => Owner::Other(format!(
            "container {:?} of {}",
            d.oci_id,
            d.state_root.map_or_else(|| "an unrecorded root".to_string(), |r| r.display().to_string())
        )),
        None => Owner::Other("a container without a nexcage description".into()),
    }
}

/// Destroy a container (stopping it first) and its run directory; a missing container is
/// not an error.
pub fn destroy(pct: &Pct, pve_root: &Path, vmid: u32) -> Result<(), PctError> {
    match pct.destroy(vmid, true, true) {
        Ok(()) | Err(PctError::DoesNotExist { .. }) => {}
        Err(e) => return Err(e),
    }
    let _ = run_dir::remove(&run_dir::path(pve_root, vmid));
    Ok(())
}

/// Tagged containers made in an earlier boot of this host (boot.rs) whose description
/// names a `--root` other than `state_root`, or none, and that no pct is creating: after a
/// reboot every engine's root is empty, so `gc` of any root removes them.
pub fn earlier_boots_of_other_roots(pve_root: &Path, state_root: &Path) -> Vec<pveconf::TaggedContainer> {
    unlocked_where(pve_root, |c| c.state_root.as_deref() != Some(state_root) && super::boot::from_earlier_boot(c))
}

/// Tagged containers whose description names `id` (or any id, when `id` is None) and
/// exactly `state_root`, and that no pct command is creating (no `lock:`).
pub fn tagged(pve_root: &Path, id: Option<&str>, state_root: &Path) -> Vec<pveconf::TaggedContainer> {
    unlocked_where(pve_root, |c| c.state_root.as_deref() == Some(state_root) && id.is_none_or(|id| c.oci_id == id))
}

/// This node's nexcage containers without a `lock:` for which `keep` holds.
fn unlocked_where(pve_root: &Path, keep: impl Fn(&pveconf::TaggedContainer) -> bool) -> Vec<pveconf::TaggedContainer> {
    match pveconf::nexcage_containers(pve_root) {
        Ok(all) => all.into_iter().filter(|c| c.lock.is_none() && keep(c)).collect(),
        Err(e) => {
            log::warn!("cannot look for nexcage containers under {}: {e}", pve_root.display());
            Vec::new()
        }
    }
}

/// Temp files of template builds whose process is gone (`.nexcage-tmp-<pid>-...`).
pub fn dead_temp_templates(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(".nexcage-tmp-")) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        if !pid_alive(pid) {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// Run directories (`run/nexcage-lxc/<vmid>`, or only their include file
/// `<vmid>.conf` or relays `<vmid>.binds`) whose container has no PVE config, as run
/// directory paths.
pub fn orphan_run_dirs(pve_root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(run_dir::base(pve_root)) else { return out };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let stem = name.strip_suffix(".conf").or_else(|| name.strip_suffix(".binds")).unwrap_or(name);
        let Some(v) = stem.parse::<u32>().ok() else { continue };
        if !pveconf::conf_path(pve_root, v).exists() {
            out.push(run_dir::path(pve_root, v));
        }
    }
    out.sort();
    out.dedup();
    out
}

pub fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// A CT that `pct create` of this record's create left unfinished: its config still
/// says `lock: create` and carries no nexcage description (PVE writes the description
/// last; a killed `pct create` leaves the lock, and `pct destroy` refuses a locked CT).
/// The record named `vmid` before calling pct create, so it is ours: unlock, destroy.
/// Anything else at that VMID (finished, or another description) is left alone.
pub fn unfinished_create(pct: &Pct, pve_root: &Path, vmid: u32, id: &str) -> Result<bool, PctError> {
    let Ok(conf) = pveconf::read_config(pve_root, vmid) else { return Ok(false) };
    if conf.get("lock") != Some("create") || pveconf::parse_description(&conf.description()).is_some() {
        return Ok(false);
    }
    log::warn!(
        "container {id}: CT {vmid} was left locked by a pct create that did not finish; unlocking and destroying it"
    );
    match pct.unlock(vmid) {
        Ok(()) | Err(PctError::DoesNotExist { .. }) => {}
        Err(e) => return Err(e),
    }
    destroy(pct, pve_root, vmid)?;
    Ok(true)
}

/// Everything a crashed create of `id` may have left, given what it recorded before it
/// made anything: its containers (by description), stale reservations, dead temp
/// templates. Returns the VMIDs destroyed.
pub fn after_crashed_create(pending: &super::data::Pending, id: &str) -> Result<Vec<u32>, PctError> {
    let pct = Pct::for_root(&pending.pct, &pending.pve_root);
    let mut destroyed = Vec::new();
    if let Some(v) = pending.creating {
        if unfinished_create(&pct, &pending.pve_root, v, id)? {
            destroyed.push(v);
        }
    }
    for c in tagged(&pending.pve_root, Some(id), &pending.state_root) {
        log::warn!("container {id}: destroying CT {} left by a create that did not finish", c.vmid);
        destroy(&pct, &pending.pve_root, c.vmid)?;
        destroyed.push(c.vmid);
    }
    if let Err(e) = vmid::reap_stale(&pending.pve_root, false) {
        log::warn!("cannot remove stale VMID reservations: {e}");
    }
    for t in dead_temp_templates(&pending.template_dir) {
        let _ = std::fs::remove_file(t);
    }
    Ok(destroyed)
}

/// For messages: `pct destroy <vmid> --force --purge`.
pub fn manual_destroy(vmid: u32) -> String {
    pct::command_line(&["destroy".into(), vmid.to_string(), "--force".into(), "1".into(), "--purge".into(), "1".into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run directory, an include file or relays alone, of a VMID without a PVE config,
    /// are left-overs `gc` removes; those of a CT that exists are not.
    #[test]
    fn orphan_run_dirs_include_relays() {
        let root = tempfile::tempdir().unwrap();
        let base = run_dir::base(root.path());
        std::fs::create_dir_all(&base).unwrap();
        for n in ["9001", "9002.conf", "9003.binds", "9004.binds", "notes"] {
            std::fs::create_dir(base.join(n)).unwrap();
        }
        let conf = pveconf::conf_path(root.path(), 9004);
        std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
        std::fs::write(&conf, "").unwrap();
        let want: Vec<PathBuf> = [9001, 9002, 9003].iter().map(|v| run_dir::path(root.path(), *v)).collect();
        assert_eq!(orphan_run_dirs(root.path()), want);
        run_dir::remove(&run_dir::path(root.path(), 9003)).unwrap();
        assert!(!base.join("9003.binds").exists());
    }

    #[test]
    fn delete_waits_for_a_pct_holding_the_inflight_lock() {
        use std::os::unix::process::CommandExt;
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("c1")).unwrap();
        assert_eq!(wait_inflight_pct(root.path(), "c1", std::time::Duration::ZERO), Ok(()), "no file: nothing runs");
        let lock = InflightLock::acquire(root.path(), "c1").unwrap();
        let fd = lock.fd();
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("0.5");
        // SAFETY: fcntl only, between fork and exec.
        unsafe { cmd.pre_exec(move || pct::inherit(fd)) };
        let mut child = cmd.spawn().unwrap();
        pct::write_running(fd, crate::backend::lxc::procfs::ProcRef::of(child.id() as i32)).unwrap();
        // The creating process dies (its descriptor closes, no unlock): its child still
        // holds the lock.
        killed(lock);
        let e = wait_inflight_pct(root.path(), "c1", std::time::Duration::from_millis(100)).unwrap_err();
        assert!(e.contains("is still running after 0 s"), "{e}");
        let t0 = std::time::Instant::now();
        assert_eq!(wait_inflight_pct(root.path(), "c1", std::time::Duration::from_secs(20)), Ok(()));
        assert!(child.try_wait().unwrap().is_some(), "returned before the child ended");
        assert!(t0.elapsed() >= std::time::Duration::from_millis(200));
    }

    /// What a pct forked and left running (Proxmox's DHCP client) holds the lock once the
    /// pct named in the file is gone, and after a create that ended: delete does not wait.
    #[test]
    fn delete_does_not_wait_for_daemons_a_pct_left() {
        use std::os::unix::process::CommandExt;
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("c1")).unwrap();
        let spawn_holder = |fd: RawFd| {
            let mut cmd = std::process::Command::new("sleep");
            cmd.arg("30");
            // SAFETY: fcntl only, between fork and exec.
            unsafe { cmd.pre_exec(move || pct::inherit(fd)) };
            cmd.spawn().unwrap()
        };
        let quick = std::time::Duration::from_millis(100);
        // Killed create: the daemon holds the lock, the file names no running pct.
        let lock = InflightLock::acquire(root.path(), "c1").unwrap();
        let mut daemon = spawn_holder(lock.fd());
        // A pct that has ended: no process has this pid with this start time.
        let gone = crate::backend::lxc::procfs::ProcRef { pid: std::process::id() as i32, start: 0 };
        pct::write_running(lock.fd(), Some(gone)).unwrap();
        killed(lock);
        assert!(
            Flock::lock(
                File::open(root.path().join("c1").join(INFLIGHT_FILE)).unwrap(),
                FlockArg::LockExclusiveNonblock
            )
            .is_err(),
            "the daemon holds the lock"
        );
        assert_eq!(wait_inflight_pct(root.path(), "c1", quick), Ok(()));
        // A create that ended: the lock is released for the daemon too.
        std::fs::create_dir(root.path().join("c2")).unwrap();
        let lock = InflightLock::acquire(root.path(), "c2").unwrap();
        let mut daemon2 = spawn_holder(lock.fd());
        drop(lock);
        let file = File::open(root.path().join("c2").join(INFLIGHT_FILE)).unwrap();
        assert!(Flock::lock(file, FlockArg::LockExclusiveNonblock).is_ok(), "unlocked for the daemon too");
        for d in [&mut daemon, &mut daemon2] {
            d.kill().unwrap();
            d.wait().unwrap();
        }
    }

    /// Close the lock's descriptor as a killed process does: without unlocking.
    fn killed(lock: InflightLock) {
        nix::unistd::close(lock.fd()).unwrap();
        std::mem::forget(lock);
    }
}
