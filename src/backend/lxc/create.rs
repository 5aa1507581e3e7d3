//! `create` on the proxmox-lxc backend: bundle -> template -> `pct create` -> raw LXC
//! lines -> `pct start` -> nexcage-init prepares the program -> hooks -> supervisor.
//!
//! Two pct calls. Returns once the program is prepared and waiting for `start`, with the
//! supervisor's pid in the pid file. Any failure after the VMID was allocated destroys
//! the container again (`pct destroy --force --purge`) and removes the run directory, so
//! nothing is left: no PVE config, no VMID, no state (the caller drops the record). The
//! template stays in the shared cache.

use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::Spec;

use super::bind_relay;
use super::data::{LxcData, Pending};
use super::hooks::{self, Hooks};
use super::init_conn::InitConn;
use super::netmove;
use super::procfs::ProcRef;
use super::pve_support::{self, PveSupport};
use super::template::{resolve_rootfs, Template, TemplateCache};
use super::wire::{ContainerSetup, ProcessSpec, Request};
use super::{boot, cleanup, host, pct, pveconf, spec, storage, vmid};
use super::{console, host_limits, lifecycle, process, run_dir, supervisor};
use crate::backend::{CreateRequest, Launch};
use crate::config::LxcBackendConfig;
use crate::context::Ctx;
use crate::state::Record;

/// How long init gets to answer after `pct start` returned: seconds at most when the
/// host is idle, but 10 s were not enough under CI's heaviest load (tests/stress.rs's 32
/// lifecycles at once on 2 CPUs beside the test VM). An init that failed says so at once
/// (run_dir::init_error).
const INIT_TIMEOUT: Duration = Duration::from_secs(60);

/// What the bundle's config.json says that the process model needs (the rest is
/// spec.rs's business).
pub struct BundleFacts {
    pub process: ProcessSpec,
    pub hooks: Hooks,
    pub rootfs: PathBuf,
    pub hostname: Option<String>,
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Read `<bundle>/config.json` for its [`BundleFacts`]: for a container found without
/// its record (rebuild). `create` takes them from the document `Bundle::open` parsed.
pub fn read_bundle(bundle: &Path) -> Result<BundleFacts> {
    let path = bundle.join(crate::bundle::CONFIG_FILE);
    let text = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
    bundle_facts(bundle, &path, &v)
}

/// The [`BundleFacts`] of config.json (`path`, for messages) parsed as `v`.
pub fn bundle_facts(bundle: &Path, path: &Path, v: &serde_json::Value) -> Result<BundleFacts> {
    let proc_v = v.get("process").filter(|p| !p.is_null()).ok_or_else(|| {
        anyhow!(
            "{}: process is missing: the proxmox-lxc backend needs process.args to know what to run",
            path.display()
        )
    })?;
    let oci = process::parse(proc_v, "process").with_context(|| format!("invalid {}", path.display()))?;
    let (mut process, mut warnings) =
        process::to_spec(&oci, "process").with_context(|| format!("invalid {}", path.display()))?;
    if let Some(name) = &oci.apparmor_profile {
        process.apparmor_profile = super::apparmor::HostAppArmor::probe()
            .choose(name, "process.apparmorProfile", &mut warnings)
            .with_context(|| format!("invalid {}", path.display()))?;
    }
    if let Some(profile) = v.pointer("/linux/seccomp").filter(|s| !s.is_null()) {
        let profile: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(profile.clone())
            .with_context(|| format!("invalid {}: linux.seccomp", path.display()))?;
        process.seccomp =
            Some(super::seccomp::compile(&profile).with_context(|| format!("invalid {}", path.display()))?);
    }
    for w in warnings {
        log::warn!("{w}");
    }
    let hooks = hooks::parse(v.get("hooks")).with_context(|| format!("invalid {}", path.display()))?;
    let root = v
        .pointer("/root/path")
        .and_then(|p| p.as_str())
        .ok_or_else(|| anyhow!("{}: root.path is missing: it must name the rootfs directory", path.display()))?;
    let rootfs = resolve_rootfs(bundle, Path::new(root))?;
    let hostname = v.get("hostname").and_then(|h| h.as_str()).map(str::to_string);
    let annotations = v
        .get("annotations")
        .and_then(|a| a.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    Ok(BundleFacts { process, hooks, rootfs, hostname, annotations })
}

/// What nexcage-init applies to the container's mounts (wire::ContainerSetup): the
/// flags of the bundle's `/dev` and `/sys` mounts (which LXC makes with its own
/// options), `linux.readonlyPaths`, `linux.maskedPaths` (absolute paths only).
pub fn container_setup(spec: &Spec) -> ContainerSetup {
    let absolute = |l: Option<&Vec<String>>| -> Vec<String> {
        l.into_iter().flatten().filter(|s| s.starts_with('/')).cloned().collect()
    };
    let mut remounts = Vec::new();
    for (dst, types) in [("/dev", &["tmpfs", "devtmpfs"][..]), ("/sys", &["sysfs"][..])] {
        // The standard mount spec.rs leaves to LXC (the last one at that destination).
        let m = spec
            .mounts()
            .iter()
            .flatten()
            .rev()
            .find(|m| m.destination().as_os_str().to_str().map(|d| d.trim_end_matches('/')) == Some(dst));
        let Some(m) = m.filter(|m| m.typ().as_deref().is_some_and(|t| types.contains(&t))) else {
            continue;
        };
        let mut flags: Vec<String> = Vec::new();
        for opt in m.options().iter().flatten() {
            if let o @ ("nosuid" | "nodev" | "noexec" | "ro") = opt.as_str() {
                if !flags.iter().any(|x| x == o) {
                    flags.push(o.to_string());
                }
            }
        }
        if !flags.is_empty() {
            remounts.push((dst.to_string(), flags));
        }
    }
    let linux = spec.linux().as_ref();
    ContainerSetup {
        // From the mapping, which validates them (spec.rs).
        sysctls: Vec::new(),
        remounts,
        readonly_paths: absolute(linux.and_then(|l| l.readonly_paths().as_ref())),
        masked_paths: absolute(linux.and_then(|l| l.masked_paths().as_ref())),
        loopback_up: false,
    }
}

/// The container root's host uid/gid: from a raw `lxc.idmap` for id 0, else Proxmox's
/// default map for unprivileged containers (100000), else 0.
fn root_owner(unprivileged: bool, raw: &[(String, String)]) -> (u32, u32) {
    let mut uid = if unprivileged { 100000 } else { 0 };
    let mut gid = uid;
    for (k, v) in raw.iter().filter(|(k, _)| k == "lxc.idmap") {
        let _ = k;
        let f: Vec<&str> = v.split_whitespace().collect();
        if f.len() == 4 && f[1] == "0" {
            if let Ok(h) = f[2].parse() {
                match f[0] {
                    "u" => uid = h,
                    "g" => gid = h,
                    _ => {}
                }
            }
        }
    }
    (uid, gid)
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = std::path::absolute(path)?;
    crate::state::write_atomic(&abs, pid.to_string().as_bytes(), 0o644)
        .with_context(|| format!("cannot write pid file {}", abs.display()))
}

/// The result of a successful create.
pub enum Created {
    Spawned,
    /// The connection to init and the program, for the caller to supervise.
    Inline {
        conn: OwnedFd,
        program: ProcRef,
        /// The engine's interfaces, to give back when the program has ended.
        net: Option<netmove::NetReturn>,
    },
}

/// The CTs this container (id and `--root`) left in earlier boots of the host: an engine
/// makes its containers again after a reboot (boot.rs), and the new one replaces them,
/// as runc's container replaces what a reboot erased. Only CTs nothing is creating. The
/// new CT does not need the old one gone (another VMID), so a failure is only a warning
/// (`gc` tries again).
fn replace_earlier_boots(pct: &pct::Pct, pve_root: &Path, id: &str, state_root: &Path) {
    for c in cleanup::tagged(pve_root, Some(id), state_root).into_iter().filter(boot::from_earlier_boot) {
        match cleanup::destroy(pct, pve_root, c.vmid) {
            Ok(()) => log::info!("CT {} was container {id} in an earlier boot of this host: destroyed", c.vmid),
            Err(e) => log::warn!(
                "CT {} is left from an earlier boot as container {id} and could not be destroyed: {e} ({})",
                c.vmid,
                cleanup::manual_destroy(c.vmid)
            ),
        }
    }
}

pub fn create(
    ctx: &Ctx,
    req: &CreateRequest,
    record: &mut Record,
    cfg: &LxcBackendConfig,
    launch: Launch,
) -> Result<Created> {
    let args = req.args;
    let bundle = req.bundle;
    let facts = bundle_facts(&bundle.dir, &bundle.config_path, bundle.config.value())?;
    if facts.process.terminal && args.console_socket.is_none() {
        bail!("process.terminal is true but no --console-socket was given: the pty master has nowhere to go");
    }
    if !facts.process.terminal && args.console_socket.is_some() {
        bail!("--console-socket was given but process.terminal is false");
    }
    let pct_bin = crate::backend::find_binary(&cfg.pct).ok_or_else(|| {
        anyhow!(
            "pct binary {:?} not found: install pve-container or set `pct` in the proxmox-lxc backend's configuration",
            cfg.pct
        )
    })?;
    let init = host::find_init(cfg)?;

    let description = pveconf::describe_full(&pveconf::Description {
        oci_id: record.id.clone(),
        bundle: req.bundle.dir.clone(),
        state_root: Some(std::path::absolute(ctx.store.root())?),
        created: Some(record.created.clone()),
        boot: boot::current_id(),
        // Added per attempt, once the VMID is chosen (pveconf::with_described_vmid).
        vmid: None,
    });
    let storages = storage::load(&cfg.pve_root)?;
    let opts = spec::MapOptions::new(cfg, &bundle.dir, &record.id, description, spec::HostInfo::probe(), storages);
    let (spec, mut mapped) = spec::map_bundle(&bundle.config, &opts)?;
    for w in &mapped.warnings {
        log::warn!("{w}");
    }
    let setup =
        ContainerSetup { sysctls: mapped.sysctls.clone(), loopback_up: mapped.loopback_up, ..container_setup(&spec) };
    let unprivileged = mapped.option("unprivileged") != Some("0");
    if unprivileged {
        run_dir::check_reachable(&init, 0o5, "nexcage-init")?;
    }
    let owner = root_owner(unprivileged, &mapped.raw_lxc);

    let templates = host::template_dir(cfg)?;
    // Saved before anything is made on the host: if this process dies from here on,
    // `delete` and `gc` know where to look (containers tagged with this id and root,
    // stale VMID reservations, temp templates of dead builders).
    let mut pending = Pending {
        pct: pct_bin.clone(),
        pve_root: cfg.pve_root.clone(),
        template_dir: templates.clone(),
        state_root: std::path::absolute(ctx.store.root())?,
        creating: None,
    };
    pending.store(record);
    ctx.store.save(record)?;
    crate::fault::point("lxc:pending-saved");
    let cache = host::template_cache(cfg, &templates);
    let run_base = run_dir::base(&cfg.pve_root);
    let idmap = PveSupport::new(&run_base, &pct_bin, pve_support::ROOTFS_IDMAP);
    let host_managed = PveSupport::new(&run_base, &pct_bin, pve_support::NET_HOST_MANAGED);
    if !mapped.host_managed_nets.is_empty() && !host_managed.maybe() {
        mapped.without_host_managed()?;
    }
    let mut plan = RootPlan::choose(&mapped, unprivileged, Some(&idmap), &opts, &cache, &facts.rootfs)?;

    // Every pct of this create holds the in-flight lock, even if this process is killed.
    let inflight = cleanup::InflightLock::acquire(&pending.state_root, &record.id)
        .with_context(|| format!("cannot make the pct lock of container {}", record.id))?;
    let pct = pct::Pct::for_root(&pct_bin, &cfg.pve_root).inherit_fd(inflight.fd());
    replace_earlier_boots(&pct, &cfg.pve_root, &record.id, &pending.state_root);
    let vmid = loop {
        let mut saved = Ok(());
        let volid = plan.template.volid(&cfg.template_storage);
        let created = vmid::allocate_and_create(cfg.vmid_range, &cfg.pve_root, |v| {
            crate::fault::point("lxc:vmid-reserved");
            // The VMID goes into the record before pct runs (see Pending::creating).
            pending.creating = Some(v);
            pending.store(record);
            if let Err(e) = ctx.store.save(record) {
                saved = Err(e);
                return Err(pct::PctError::Failed {
                    command: "pct create".into(),
                    status: "not run".into(),
                    stderr: "the record could not be saved".into(),
                });
            }
            pct.create(v, &volid, &pveconf::with_described_vmid(&plan.options, v))?;
            crate::fault::point("lxc:pct-created");
            Ok(())
        });
        saved?;
        match created {
            Ok(v) => break v,
            // Proxmox VE 8: no `idmap` on a CT root, no `host-managed` NICs. pct refused
            // the parameters before it made anything; remembered, and this CT gets a copy
            // of the rootfs, and LXC's own lines for static addresses.
            Err(vmid::VmidError::Create { err: pct::PctError::Failed { ref stderr, .. }, .. })
                if (plan.idmapped && idmap.is_refusal(stderr))
                    || (!mapped.host_managed_nets.is_empty() && host_managed.is_refusal(stderr)) =>
            {
                let mut idmapped = plan.idmapped;
                if plan.idmapped && idmap.is_refusal(stderr) {
                    log::info!(
                        "pct takes no idmap on a CT root (Proxmox VE 8): unprivileged CTs get a copy of the rootfs"
                    );
                    idmap.remember_refused();
                    idmapped = false;
                }
                if !mapped.host_managed_nets.is_empty() && host_managed.is_refusal(stderr) {
                    log::info!("pct takes no host-managed NICs (Proxmox VE 8): static addresses become lxc.net lines");
                    host_managed.remember_refused();
                    mapped.without_host_managed()?;
                }
                let support = idmapped.then_some(&idmap);
                plan = RootPlan::choose(&mapped, unprivileged, support, &opts, &cache, &facts.rootfs)?;
            }
            Err(e) => {
                // A pct create that failed may still have left its CT locked.
                if let vmid::VmidError::Create { vmid, .. } = &e {
                    if let Err(c) = cleanup::unfinished_create(&pct, &cfg.pve_root, *vmid, &record.id) {
                        log::warn!("{c}");
                    }
                }
                // pct's own error, when pct failed.
                return Err(match e {
                    vmid::VmidError::Create { err, .. } => err.into(),
                    e => e.into(),
                });
            }
        }
    };
    let template = plan.template;
    let mut data = LxcData {
        vmid,
        pct: pct_bin.clone(),
        pve_root: cfg.pve_root.clone(),
        template: template.file_name.clone(),
        run_dir: run_dir::path(&cfg.pve_root, vmid),
        rootfs: facts.rootfs.clone(),
        annotations: facts.annotations.clone(),
        process: facts.process.clone(),
        hooks: Hooks {
            poststart: facts.hooks.poststart.clone(),
            poststop: facts.hooks.poststop.clone(),
            ..Default::default()
        },
        supervisor: None,
        program: None,
        init: None,
        started: false,
        init_protocol: 0,
    };
    data.store(record);
    // From here on the record names the VMID, so even a crash leaves `delete` able to
    // clean up.
    let outcome = ctx.store.save(record).and_then(|()| {
        crate::fault::point("lxc:record-saved");
        let prepared = Prepared {
            facts: &facts,
            setup: &setup,
            init: &init,
            owner,
            raw: &mapped.raw_lxc,
            shares: &mapped.namespace_shares,
            adopt_net: mapped.adopt_net.as_deref(),
            pct: &pct,
        };
        start_container(ctx, req, record, &mut data, prepared, launch)
    });
    match outcome {
        Ok(created) => {
            data.store(record);
            Ok(created)
        }
        Err(e) => {
            cleanup::destroy_quietly(&pct, vmid, &data.run_dir);
            Err(e)
        }
    }
}

/// The CT's root and the template `pct create` extracts (`root.rs`).
struct RootPlan {
    template: Template,
    /// `pct create` options, `rootfs` (and `arch`) as chosen.
    options: Vec<(String, String)>,
    /// `rootfs` is in place with `idmap=passthrough`.
    idmapped: bool,
}

impl RootPlan {
    /// In place if the mapping allowed it and the CT is privileged or `idmap` says pct
    /// may take mount idmaps (`None`: it refused them), with the empty template; else a
    /// copy. (`idmap`'s marker file is read only for an unprivileged CT.)
    fn choose(
        mapped: &spec::PveContainer,
        unprivileged: bool,
        idmap: Option<&PveSupport>,
        opts: &spec::MapOptions,
        cache: &TemplateCache,
        rootfs: &Path,
    ) -> Result<RootPlan> {
        let mut options = mapped.create.clone();
        let set = |options: &mut Vec<(String, String)>, key: &str, value: Option<String>| {
            let at = options.iter().position(|(k, _)| k == key);
            match (at, value) {
                (Some(i), Some(v)) => options[i].1 = v,
                (Some(i), None) => drop(options.remove(i)),
                (None, _) => {}
            }
        };
        if let Some(r) = &mapped.root_in_place {
            let fs_refuses = if unprivileged { r.idmap_refused() } else { None };
            if let Some(why) = &fs_refuses {
                log::warn!(
                    "root.path: {why}: this unprivileged container runs on a copy of the rootfs, so the engine does not see the program's writes (cp, diff, commit); route it to a privileged proxmox-lxc backend to run on the rootfs in place"
                );
            }
            if fs_refuses.is_none() && (!unprivileged || idmap.is_some_and(PveSupport::maybe)) {
                set(&mut options, "rootfs", Some(r.option(unprivileged)));
                let template = cache.ensure_empty().context("template")?;
                log::debug!("rootfs {} in place (empty template {})", r.path.display(), template.file_name);
                return Ok(RootPlan { template, options, idmapped: unprivileged });
            }
            set(&mut options, "rootfs", Some(spec::copy_rootfs(opts, &r.path, r.readonly)?));
            set(&mut options, "arch", None);
        }
        let t0 = std::time::Instant::now();
        let template = cache.ensure(rootfs).context("template")?;
        log::debug!(
            "template {} {} in {:.2} ms ({} bytes of file contents read)",
            template.file_name,
            match (template.reused, template.contents_read) {
                (true, 0) => "cache hit (metadata only)",
                (true, _) => "re-read, existing template reused",
                (false, _) => "built",
            },
            t0.elapsed().as_secs_f64() * 1000.0,
            template.contents_read
        );
        Ok(RootPlan { template, options, idmapped: false })
    }
}

/// `pct start` failed, and the mount hook or LXC said why (pct itself only says that
/// the startup failed).
#[derive(Debug, thiserror::Error)]
#[error("{pct}; LXC: {}", lxc.join("; "))]
pub struct StartError {
    pub pct: pct::PctError,
    /// The mount hook's error, then LXC's, in order.
    pub lxc: Vec<String>,
}

/// What start_container needs from the preparation.
struct Prepared<'a> {
    facts: &'a BundleFacts,
    /// /dev flags, read-only and masked paths, sysctls, applied by nexcage-init.
    setup: &'a ContainerSetup,
    init: &'a Path,
    owner: (u32, u32),
    raw: &'a [(String, String)],
    /// Namespaces to join (`spec::PveContainer::namespace_shares`).
    shares: &'a [(String, PathBuf)],
    /// The engine's network namespace whose interfaces move in (`netmove.rs`).
    adopt_net: Option<&'a Path>,
    pct: &'a pct::Pct,
}

fn start_container(
    ctx: &Ctx,
    req: &CreateRequest,
    record: &Record,
    data: &mut LxcData,
    p: Prepared,
    launch: Launch,
) -> Result<Created> {
    let Prepared { facts, setup, init, owner, raw, shares, adopt_net, pct } = p;
    let args = req.args;
    let vmid = data.vmid;
    let dir = run_dir::create(&data.pve_root, vmid, owner)?;
    run_dir::write_setup(&dir, setup)?;
    let mut lines = raw.to_vec();
    if owner.0 != 0 {
        bind_relay::relay(&dir, &mut lines, owner)?;
    }
    if !shares.is_empty() {
        lines.push(run_dir::write_include(&dir, shares)?);
    }
    lines.extend(run_dir::lxc_lines(&dir, init));
    pveconf::append_raw_lxc(&data.pve_root, vmid, &lines)?;
    crate::fault::point("lxc:raw-lines-written");
    let started_at = std::time::SystemTime::now();
    pct.start(vmid).map_err(|e| {
        // pct (and lxc-start's stderr) only says "startup ... failed": add the mount
        // hook's and LXC's reasons.
        let mut lxc: Vec<String> = run_dir::mount_hook_error(&dir).into_iter().collect();
        lxc.extend(run_dir::lxc_errors(&dir));
        if lxc.is_empty() {
            anyhow::Error::new(e)
        } else {
            anyhow::Error::new(StartError { pct: e, lxc })
        }
    })?;
    crate::fault::point("lxc:pct-started");
    let failed = || {
        let mut why: Vec<String> = run_dir::init_error(&dir).into_iter().collect();
        if !why.is_empty() {
            why.extend(run_dir::lxc_errors(&dir));
        }
        (!why.is_empty()).then(|| why.join("; "))
    };
    let conn = InitConn::connect_watching(&run_dir::socket(&dir), INIT_TIMEOUT, None, &failed).map_err(|e| {
        // On a timeout, what LXC logged may say why.
        match run_dir::lxc_errors(&dir) {
            lxc if lxc.is_empty() => e,
            lxc => e.context(format!("LXC: {}", lxc.join("; "))),
        }
    })?;
    // Proxmox's DHCP client cannot write the lease's name servers into an idmapped root.
    if let Some(dns) = super::lease_dns::leases_since(&data.pve_root, vmid, started_at) {
        match super::lease_dns::ensure(conn.init_pid, owner, &dns) {
            Ok(true) => log::debug!("the DHCP lease's name servers {:?} written to the CT's resolv.conf", dns.servers),
            Ok(false) => {}
            Err(e) => log::warn!("{e}: the program has no name server from the lease"),
        }
    }
    // The CT's AppArmor namespace exists once it runs; init enters the profile at execve.
    if let Some(name) = &facts.process.apparmor_profile {
        super::apparmor::load_into_ct(&super::apparmor::HostAppArmor::probe(), name, conn.init_pid)
            .context("process.apparmorProfile")?;
    }
    // Before the program exists: it must find the engine's network in place.
    let net = match adopt_net {
        Some(engine) => {
            let moved = netmove::adopt(engine, conn.init_pid)?;
            log::debug!("moved {:?} from {} into the container", moved.moved.links, engine.display());
            Some(moved)
        }
        None => None,
    };

    // The caller's stdio (unless a pty is made) and --preserve-fds.
    let mut fds: Vec<RawFd> = if facts.process.terminal { Vec::new() } else { vec![0, 1, 2] };
    fds.extend((0..args.preserve_fds as RawFd).map(|i| 3 + i));
    let request = Request::Spawn {
        process: Box::new(facts.process.clone()),
        gated: true,
        hostname: facts.hostname.clone(),
        start_hooks: facts.hooks.start_container.clone(),
        preserved: args.preserve_fds as usize,
        protocol: facts.process.protocol(),
    };
    let spawned = conn.spawn(&request, &fds)?;
    crate::fault::point("lxc:program-spawned");
    for w in &spawned.warnings {
        log::warn!("{w}");
    }
    host_limits::apply(spawned.pid, &facts.process, &spawned.deferred)?;
    if let (Some(sock), Some(master)) = (&args.console_socket, &spawned.master) {
        console::send_master(sock, master)?;
    }
    let program =
        ProcRef::of(spawned.pid).ok_or_else(|| anyhow!("the container's program (pid {}) is gone", spawned.pid))?;
    data.program = Some(program);
    data.init = ProcRef::of(conn.init_pid);
    data.init_protocol = spawned.protocol;

    let state = lifecycle::state_json(record, data, "created", program.pid);
    hooks::run("prestart", &facts.hooks.prestart, &state)?;
    hooks::run("createRuntime", &facts.hooks.create_runtime, &state)?;
    hooks::run("createContainer", &facts.hooks.create_container, &state)?;

    let fd = conn.into_fd();
    // `run` in the foreground: this process supervises; otherwise a spawned supervisor.
    if launch == Launch::RunForeground {
        data.supervisor = ProcRef::of(std::process::id() as i32);
        if let Some(p) = &args.pid_file {
            write_pid_file(p, std::process::id() as i32)?;
        }
        return Ok(Created::Inline { conn: fd, program, net });
    }
    let child = supervisor::spawn(ctx, &fd, program, program, Some(&data.run_dir), net.as_ref())?;
    if let Some(n) = net {
        n.handed_over();
    }
    crate::fault::point("lxc:supervisor-forked");
    drop(fd);
    let sup = ProcRef::of(child.id() as i32).ok_or_else(|| anyhow!("the supervisor exited at once"))?;
    data.supervisor = Some(sup);
    if let Some(p) = &args.pid_file {
        write_pid_file(p, sup.pid)?;
    }
    Ok(Created::Spawned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_owner_follows_idmap() {
        assert_eq!(root_owner(true, &[]), (100000, 100000));
        assert_eq!(root_owner(false, &[]), (0, 0));
        let raw = vec![
            ("lxc.idmap".to_string(), "u 0 200000 65536".to_string()),
            ("lxc.idmap".to_string(), "g 0 300000 65536".to_string()),
        ];
        assert_eq!(root_owner(true, &raw), (200000, 300000));
    }

    #[test]
    fn bundle_errors_name_the_problem() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("config.json"), r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"}}"#).unwrap();
        let e = read_bundle(t.path()).err().unwrap().to_string();
        assert!(e.contains("process is missing"), "{e}");
        std::fs::write(t.path().join("config.json"), r#"{"process":{"args":["sh"],"cwd":"/"},"root":{"path":"nope"}}"#)
            .unwrap();
        let e = read_bundle(t.path()).err().unwrap();
        assert!(format!("{e:#}").contains("nope"), "{e:#}");
        // Carried typed, not flattened to text.
        assert!(matches!(e.downcast_ref(), Some(super::super::template::TemplateError::Io { .. })), "{e:?}");
    }

    /// Errors carried typed print as they did when they were flattened into text (their
    /// messages already include what they wrap, which is therefore no `source`).
    #[test]
    fn typed_errors_keep_their_text() {
        use super::super::template::TemplateError;
        let io = || std::io::Error::other("boom");
        let failed = || pct::PctError::Failed {
            command: "pct start 9000".into(),
            status: "exit status 1".into(),
            stderr: "startup failed".into(),
        };
        let cases: Vec<(anyhow::Error, &str)> = vec![
            (vmid::VmidError::Io { path: "/p".into(), err: io() }.into(), "VMID allocation: /p: boom"),
            (
                vmid::VmidError::Create { vmid: 9000, err: failed() }.into(),
                "`pct start 9000` failed (exit status 1): startup failed",
            ),
            (pveconf::PveConfError::Io { path: "/c".into(), err: io() }.into(), "/c: boom"),
            (TemplateError::Io { op: "read", path: "/t".into(), err: io() }.into(), "read /t: boom"),
            (
                StartError { pct: failed(), lxc: vec!["hook: a".into(), "b".into()] }.into(),
                "`pct start 9000` failed (exit status 1): startup failed; LXC: hook: a; b",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(format!("{e:#}"), text);
            assert_eq!(e.to_string(), text);
        }
        let e = anyhow::Error::from(TemplateError::Io { op: "read", path: "/t".into(), err: io() }).context("template");
        assert_eq!(format!("{e:#}"), "template: read /t: boom");
        let e = anyhow::Error::from(StartError { pct: failed(), lxc: vec![] });
        assert!(matches!(e.downcast_ref::<StartError>(), Some(StartError { pct: pct::PctError::Failed { .. }, .. })));
    }

    #[test]
    fn container_setup_from_the_bundle() {
        let v = serde_json::json!({
            "mounts": [
                {"destination": "/dev", "type": "tmpfs", "options": ["nosuid", "strictatime", "mode=755"]},
                {"destination": "/sys", "type": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys", "type": "bind", "source": "/x", "options": ["rbind"]},
                {"destination": "/dev/shm", "type": "tmpfs", "options": ["nosuid", "noexec"]}
            ],
            "linux": {"maskedPaths": ["/proc/kcore", "relative"], "readonlyPaths": ["/proc/sys"]}
        });
        let s = container_setup(&serde_json::from_value(v).unwrap());
        // The last mount at /sys is a bind, not LXC's sysfs: nothing to add there.
        assert_eq!(s.remounts, vec![("/dev".to_string(), vec!["nosuid".to_string()])]);
        assert_eq!(s.masked_paths, vec!["/proc/kcore".to_string()]);
        assert_eq!(s.readonly_paths, vec!["/proc/sys".to_string()]);
        assert_eq!(container_setup(&serde_json::from_value(serde_json::json!({})).unwrap()), ContainerSetup::default());
    }
}
