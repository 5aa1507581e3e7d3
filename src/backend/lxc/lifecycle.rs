//! `start`, `state`, `kill`, `pause`, `resume`, `delete` of proxmox-lxc containers.
//!
//! Status, from the record and the host's process table (no pct call):
//! - `creating`: the record's phase (create has not finished);
//! - `created`: the supervisor lives and `start` has not run;
//! - `running` / `paused`: the supervisor lives, `start` ran; paused when the
//!   container's cgroup is frozen;
//! - `stopped`: the supervisor is gone (or a zombie), or the record was rebuilt from
//!   Proxmox without one.
//!
//! The pid reported is the supervisor's, the pid in the pid file.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use nix::sys::signal::{kill as send, Signal};
use nix::unistd::Pid;

use super::cgroup::Cgroup;
use super::cleanup;
use super::data::{LxcData, Pending};
use super::hooks;
use super::init_conn::InitConn;
use super::pct;
use super::run_dir;
use crate::backend::ContainerState;
use crate::cli::KillArgs;
use crate::context::Ctx;
use crate::state::{Phase, Record, Store};

use crate::OCI_VERSION;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The container's status and the pid to report with it.
pub fn status(record: &Record, data: Option<&LxcData>) -> (Status, i32) {
    if record.phase == Phase::Creating {
        return (Status::Creating, 0);
    }
    let Some(d) = data else { return (Status::Stopped, 0) };
    let Some(sup) = d.supervisor.filter(|s| s.alive()) else { return (Status::Stopped, 0) };
    if !d.started {
        return (Status::Created, sup.pid);
    }
    let frozen = d.init.filter(|i| i.alive()).and_then(|i| Cgroup::of(i.pid).ok()).is_some_and(|c| c.is_frozen());
    (if frozen { Status::Paused } else { Status::Running }, sup.pid)
}

/// The OCI state document (`state`'s output, and hooks' stdin).
pub fn state_json(record: &Record, data: &LxcData, status: &str, pid: i32) -> String {
    serde_json::to_string(&oci_state(record, data, status, pid)).expect("serializable")
}

pub fn oci_state(record: &Record, data: &LxcData, status: &str, pid: i32) -> ContainerState {
    ContainerState {
        oci_version: OCI_VERSION.into(),
        id: record.id.clone(),
        pid,
        status: status.into(),
        bundle: record.bundle.clone(),
        rootfs: data.rootfs.clone(),
        created: record.created.clone(),
        owner: String::new(),
        annotations: data.annotations.clone(),
    }
}

/// The state `state` and `list` report. A record still `creating` whose lock nobody
/// holds belongs to a create that died: it reports `stopped` (delete or gc removes it).
pub fn container_state(record: &Record, store: &Store) -> ContainerState {
    let data = LxcData::of(record).ok();
    let (st, pid) = if record.phase == Phase::Creating && !store.is_busy(&record.id) {
        (Status::Stopped, 0)
    } else {
        status(record, data)
    };
    match &data {
        Some(d) => oci_state(record, d, st.as_str(), pid),
        None => ContainerState {
            oci_version: OCI_VERSION.into(),
            id: record.id.clone(),
            pid,
            status: st.as_str().into(),
            bundle: record.bundle.clone(),
            rootfs: Default::default(),
            created: record.created.clone(),
            owner: String::new(),
            annotations: Default::default(),
        },
    }
}

pub fn state(record: &Record, store: &Store) -> Result<i32> {
    println!("{}", serde_json::to_string_pretty(&container_state(record, store))?);
    Ok(0)
}

pub fn start(ctx: &Ctx, record: &Record) -> Result<i32> {
    let (mut record, _lock) = ctx.store.load_locked(&record.id)?;
    let mut data = LxcData::from_record(&record)?;
    match status(&record, Some(&data)).0 {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running | Status::Paused => bail!("cannot start an already running container"),
        Status::Creating => bail!("cannot start a container that is still being created"),
    }
    start_program(&mut record, &mut data)?;
    ctx.store.save(&record)?;
    run_poststart(&record, &data);
    Ok(0)
}

/// Let the prepared program run (no status check: `run` calls it inside create).
pub fn start_program(record: &mut Record, data: &mut LxcData) -> Result<()> {
    let program = data.program.map(|p| p.pid).unwrap_or(0);
    let init = data.init.ok_or_else(|| anyhow::anyhow!("container not running (no nexcage-init recorded)"))?;
    let conn = InitConn::connect(&run_dir::socket(&data.run_dir), Duration::from_secs(5), Some(init))?;
    conn.start(&state_json(record, data, "created", program))?;
    data.started = true;
    data.store(record);
    Ok(())
}

pub fn run_poststart(record: &Record, data: &LxcData) {
    let program = data.program.map(|p| p.pid).unwrap_or(0);
    hooks::run_warn("poststart", &data.hooks.poststart, &state_json(record, data, "running", program));
}

pub fn kill(record: &Record, args: &KillArgs) -> Result<i32> {
    let sig = crate::signal::parse(args.signal.as_deref())?;
    let signal = Signal::try_from(sig).ok();
    let data = LxcData::of(record)?;
    let (st, _) = status(record, Some(data));
    if matches!(st, Status::Stopped | Status::Creating) {
        bail!("container not running");
    }
    // Realtime signals have no nix::Signal: those go through libc.
    let deliver = |pid: i32| -> nix::Result<()> {
        match signal {
            Some(s) => send(Pid::from_raw(pid), s),
            // SAFETY: kill(2) with plain integers.
            None => nix::errno::Errno::result(unsafe { libc::kill(pid, sig) }).map(drop),
        }
    };
    if args.all {
        for pid in super::ps::pids(record)? {
            let _ = deliver(pid);
        }
    } else {
        match data.program.filter(|p| p.alive()) {
            Some(p) => deliver(p.pid).map_err(|e| anyhow::anyhow!("cannot signal the container's program: {e}"))?,
            None => bail!("container not running"),
        }
    }
    // A frozen v1 cgroup holds even SIGKILL back: thaw so the container can die, as runc does.
    if sig == libc::SIGKILL && st == Status::Paused {
        if let Some(cg) = data.init.and_then(|i| Cgroup::of(i.pid).ok()) {
            let _ = cg.set_frozen(false);
        }
    }
    Ok(0)
}

pub fn pause(record: &Record, freeze: bool) -> Result<i32> {
    let data = LxcData::of(record)?;
    let (st, _) = status(record, Some(data));
    match (freeze, st) {
        (true, Status::Running) | (false, Status::Paused) => {}
        (true, Status::Paused) => bail!("container {} is already paused", record.id),
        (false, Status::Running) => bail!("container {} is not paused", record.id),
        _ => bail!("container not running"),
    }
    let init = data.init.filter(|i| i.alive()).ok_or_else(|| anyhow::anyhow!("container not running"))?;
    Cgroup::of(init.pid)?.set_frozen(freeze)?;
    Ok(0)
}

/// How long delete waits for a killed create's pct (a create of a large template on slow
/// storage takes minutes).
const INFLIGHT_LIMIT: Duration = Duration::from_secs(600);

/// How long delete waits for a container whose program is gone to finish stopping
/// (lxc-start exits after Proxmox's post-stop hook, Perl that loads PVE's modules: 1-2 s
/// on a Proxmox host, over 30 s in the TCG test VM, where a 30 s bound put its warning
/// into `podman run --rm`'s stderr); after it, `pct destroy --force` stops it. The wait
/// ends as soon as lxc-start does.
const LXC_STOP_LIMIT: Duration = Duration::from_secs(120);

/// Wait for `lxc-start` of `vmid` to exit; with `unless_running`, not while the
/// container has a live init (a create that died before its record knew the program, or
/// a container Proxmox started again behind nexcage's back, whose init waits for a
/// supervisor that never comes: it does not stop by itself, `pct destroy --force` stops
/// it).
fn wait_lxc_start_gone(pve_root: &Path, vmid: u32, limit: Duration, unless_running: bool) {
    let lxcpath = pve_root.join("var/lib/lxc");
    let deadline = std::time::Instant::now() + limit;
    while let Some(pid) = super::procfs::lxc_start_of(&lxcpath, vmid) {
        if unless_running && super::procfs::children_of(pid).into_iter().any(super::procfs::is_namespace_init) {
            return;
        }
        if std::time::Instant::now() >= deadline {
            log::warn!("CT {vmid}: lxc-start (pid {pid}) still runs after {limit:?}; destroying it anyway");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Delete a container. `state_root` is the absolute `--root` of the record: the VMID is
/// destroyed only while its PVE description still names this container (cleanup.rs).
pub fn delete(record: &Record, force: bool, state_root: &Path) -> Result<i32> {
    // A create killed while its pct worked: let that pct finish, then clean what it made.
    if record.phase == Phase::Creating {
        cleanup::wait_inflight_pct(state_root, &record.id, INFLIGHT_LIMIT).map_err(|e| anyhow::anyhow!(e))?;
    }
    let Ok(data) = LxcData::of(record) else {
        // A create that died before its record named a VMID: look for what it may have
        // made (by the description every container carries), else only the record exists.
        if let Some(pending) = Pending::from_record(record) {
            cleanup::after_crashed_create(&pending, &record.id)
                .map_err(|e| anyhow::anyhow!("cannot remove what the failed create of {} left: {e}", record.id))?;
        }
        return Ok(0);
    };
    let (st, _) = status(record, Some(data));
    if matches!(st, Status::Running | Status::Paused) && !force {
        bail!("cannot delete running container {}: stop it first (kill), or use delete --force", record.id);
    }
    if st == Status::Paused {
        if let Some(cg) = data.init.and_then(|i| Cgroup::of(i.pid).ok()) {
            let _ = cg.set_frozen(false);
        }
    }
    if let Some(p) = data.program.filter(|p| p.alive()) {
        let _ = send(Pid::from_raw(p.pid), Signal::SIGKILL);
        // Let the supervisor take the exit (as runc's delete waits for the container
        // process) before the container is destroyed.
        if let Some(sup) = data.supervisor {
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while sup.alive() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    crate::fault::point("lxc:delete-killed");
    // Without its program the container stops by itself (nexcage-init exits with it), and
    // LXC runs Proxmox's post-stop hook after it reports STOPPED: a `pct destroy` in that
    // window races the hook, which can write the container's configs back after destroy
    // removed them (seen with real pct, PVE 8). Let lxc-start end first.
    // (Only for a CT that is still ours: a stale record's VMID may run another container.)
    match cleanup::owner(&data.pve_root, data.vmid, &record.id, state_root) {
        cleanup::Owner::Ours => {
            if !data.program.is_some_and(|p| p.alive()) {
                // The recorded init gone and yet a container init running: another
                // start of the CT (Proxmox's UI, `pct start`, `onboot`).
                let restarted = !data.init.is_some_and(|i| i.alive());
                wait_lxc_start_gone(&data.pve_root, data.vmid, LXC_STOP_LIMIT, data.program.is_none() || restarted);
            }
            let pct = pct::Pct::for_root(&data.pct, &data.pve_root);
            match pct.destroy(data.vmid, true, true) {
                Ok(()) | Err(pct::PctError::DoesNotExist { .. }) => {}
                Err(e) => bail!("cannot destroy CT {} of container {}: {e}", data.vmid, record.id),
            }
            crate::fault::point("lxc:delete-destroyed");
        }
        // Already destroyed (a delete that died after `pct destroy`): no pct call.
        cleanup::Owner::Gone => {}
        cleanup::Owner::Other(who) => {
            log::warn!(
                "container {}: CT {} now belongs to {who}; not destroying it (only the record is removed)",
                record.id,
                data.vmid
            );
            return Ok(0);
        }
    }
    // A create that died after `pct create`: its reservation may still be on disk.
    if record.phase == Phase::Creating {
        if let Some(pending) = Pending::from_record(record) {
            cleanup::after_crashed_create(&pending, &record.id)
                .map_err(|e| anyhow::anyhow!("cannot remove what the failed create of {} left: {e}", record.id))?;
        }
    }
    run_dir::remove(&data.run_dir)?;
    if !data.hooks.poststop.is_empty() {
        hooks::run_warn("poststop", &data.hooks.poststop, &state_json(record, data, "stopped", 0));
    }
    Ok(0)
}

/// For `run` in the foreground: the container ended; remove it.
pub fn remove_after_run(record: &Record) {
    if let Ok(data) = LxcData::of(record) {
        cleanup::destroy_quietly(&pct::Pct::for_root(&data.pct, &data.pve_root), data.vmid, &data.run_dir);
    }
}
