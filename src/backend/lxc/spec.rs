//! OCI runtime spec (the bundle's config.json) -> Proxmox VE container.
//!
//! [`map`] turns a parsed [`Spec`] into the options of `pct create` (in order) and the
//! raw `lxc.*` lines to append to the PVE config afterwards (under pct's lock, see
//! `pveconf::append_raw_lxc`). Every OCI field is honoured, refused with a
//! [`SpecError`] naming its JSON path and a fix, or ignored for a documented reason
//! (docs/mapping.md, which is the reference for the rules below). The process, hooks
//! and root path are not mapped here: the caller (process model, template cache) uses
//! them from the returned [`Spec`].
//!
//! The mapping is pure except where the host must be consulted to decide safely:
//! bind-mount sources are resolved (symlinks) and stat'ed, `linux.devices` are checked
//! against the host's device nodes, joined namespace paths must exist, and
//! `/proc/self/mountinfo` is read for recursive binds.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceType, LinuxHugepageLimit, LinuxMemory, LinuxNamespaceType, LinuxNetwork,
    LinuxPersonalityDomain, LinuxRdma, Mount, Spec,
};

use crate::bundle::Document;
use crate::config::{LxcBackendConfig, RootfsMode};

use super::mount_options;
use super::pveconf::NEXCAGE_TAG;
use super::root::InPlaceRoot;
use super::storage;

/// Prefix of the annotations that tune the Proxmox container.
pub const ANNOTATION_PREFIX: &str = "nexcage.proxmox.";

/// What [`map`] produces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PveContainer {
    /// `pct create` options in order: `(key, value)` -> `--key value`.
    pub create: Vec<(String, String)>,
    /// Raw LXC lines for the PVE config, in order.
    pub raw_lxc: Vec<(String, String)>,
    /// Things the bundle asked for that are ignored or approximated (each says why).
    pub warnings: Vec<String>,
    /// Namespaced sysctls (`linux.sysctl`, `domainname`) for the mount hook, in order.
    pub sysctls: Vec<(String, String)>,
    /// Namespaces to join (`linux.namespaces[].path`): LXC's `lxc.namespace.share.<ns>`
    /// key and the path. Proxmox VE drops that key from a container config, so these go
    /// into a host-only file the config includes (`run_dir::write_include`).
    pub namespace_shares: Vec<(String, PathBuf)>,
    /// The bundle's rootfs as the CT's root (`root.rs`); then `rootfs` among the create
    /// options is its privileged form, and the copy's volume is `copy_rootfs`'s.
    pub root_in_place: Option<InPlaceRoot>,
    /// The container has a network namespace of its own (not the host's, not joined):
    /// nexcage-init brings its `lo` up.
    pub loopback_up: bool,
    /// An unprivileged container in an engine's network namespace (the bundle's path):
    /// the container gets a namespace of its own, and the engine's interfaces move into
    /// it after `pct start` (netmove.rs).
    pub adopt_net: Option<PathBuf>,
    /// The `netN` options to which the mapping added `host-managed=1` (see
    /// [`PveContainer::without_host_managed`]): index and where the NIC came from
    /// (`(network)` of the config, or the annotation).
    pub host_managed_nets: Vec<(u32, String)>,
}

impl PveContainer {
    /// The value of a `pct create` option.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.create.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// For a Proxmox VE without `host-managed` networks (8): the NICs the mapping marked
    /// host-managed lose the property and LXC gets their static addresses as raw
    /// `lxc.net.N.*` lines (PVE keeps that key family), which is what PVE 9 writes for
    /// a host-managed NIC. DHCP cannot be done that way: refused by name when a
    /// container's annotation asks for it; the backend's default NIC (`network`, which
    /// every container gets) stays unconfigured, with a warning.
    pub fn without_host_managed(&mut self) -> Result<(), SpecError> {
        for (i, origin) in std::mem::take(&mut self.host_managed_nets) {
            let key = format!("net{i}");
            let Some(at) = self.create.iter().position(|(k, _)| *k == key) else { continue };
            let props: Vec<(String, String)> = net_props(&self.create[at].1)
                .into_iter()
                .filter(|(k, _)| *k != "host-managed")
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            self.create[at].1 = props.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            let get = |name: &str| props.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            if let Some((prop, v)) =
                ["ip", "ip6"].into_iter().find_map(|p| get(p).filter(|v| *v == "dhcp").map(|v| (p, v)))
            {
                let what = format!("{key}: {prop}={v}: this Proxmox VE has no host-managed networking (Proxmox VE 9 has), and nothing in the container runs a DHCP client");
                if origin == DEFAULT_NET {
                    log::warn!(
                        "{what}: the interface stays down (give the backend's \"network\" a static ip=ADDRESS/PREFIX)"
                    );
                    continue;
                }
                return err(
                    origin,
                    what,
                    format!(
                        "give a static {prop}=ADDRESS/PREFIX (and a gateway), or route the container to an oci backend"
                    ),
                );
            }
            for (prop, lxc_key) in
                [("ip", "ipv4.address"), ("ip6", "ipv6.address"), ("gw", "ipv4.gateway"), ("gw6", "ipv6.gateway")]
            {
                match get(prop) {
                    Some("manual") | None => {}
                    Some(v) => self.raw_lxc.push((format!("lxc.net.{i}.{lxc_key}"), v.to_string())),
                }
            }
            if get("link_down") != Some("1") {
                self.raw_lxc.push((format!("lxc.net.{i}.flags"), "up".to_string()));
            }
        }
        Ok(())
    }
}

/// Where a NIC from the backend's `network` setting comes from, in errors.
const DEFAULT_NET: &str = "(network)";

/// A PVE network property string's `key=value` items, in order.
fn net_props(v: &str) -> Vec<(&str, &str)> {
    v.split(',').filter_map(|item| item.split_once('=')).collect()
}

/// Why a sysctl would not stay inside the container (runc's rule), if it would not.
fn not_namespaced(key: &str, host_net: bool) -> Option<String> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") || key == "kernel.domainname" || key == "kernel.hostname" {
        return None;
    }
    if key.starts_with("net.") {
        return host_net.then(|| {
            "the container shares the host's network namespace: this sysctl would change the host".to_string()
        });
    }
    Some("not a namespaced sysctl: setting it would change the host".to_string())
}

/// A field of config.json that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// JSON path in config.json, e.g. `linux.resources.hugepageLimits[0].pageSize`.
    pub path: String,
    pub problem: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config.json: {}: {}", self.path, self.problem)?;
        if !self.hint.is_empty() {
            write!(f, " ({})", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

fn err<T>(path: impl Into<String>, problem: impl Into<String>, hint: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError { path: path.into(), problem: problem.into(), hint: hint.into() })
}

/// Host facts the mapping depends on: the totals used for limits the bundle leaves
/// unlimited (PVE has no "unlimited" memory or swap; the host's totals are the honest
/// equivalent), and where the cgroup controllers live (which raw keys LXC applies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostInfo {
    pub memory_mib: Option<u64>,
    pub swap_mib: Option<u64>,
    /// Controllers in v1 hierarchies (a legacy or hybrid host, e.g. Proxmox VE 8 booted
    /// with `systemd.unified_cgroup_hierarchy=0`): limits go into `lxc.cgroup.*` keys.
    /// `false` (cgroup v2, Proxmox VE 9's only layout): `lxc.cgroup2.*`.
    pub cgroup_v1: bool,
}

impl HostInfo {
    /// From `/proc/meminfo` and the filesystem at /sys/fs/cgroup.
    pub fn probe() -> HostInfo {
        let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib = |key: &str| -> Option<u64> {
            text.lines().find_map(|l| l.strip_prefix(key))?.split_whitespace().next()?.parse().ok()
        };
        let cgroup_v1 = crate::cgroup_mode::detect(Path::new("/sys/fs/cgroup")).is_ok_and(|m| m.controllers_on_v1());
        HostInfo {
            memory_mib: kib("MemTotal:").map(|k| k / 1024),
            swap_mib: kib("SwapTotal:").map(|k| k / 1024),
            cgroup_v1,
        }
    }
}

/// Inputs of the mapping besides the spec.
#[derive(Debug, Clone)]
pub struct MapOptions {
    /// The bundle directory: bind sources inside it belong to the container and are
    /// always allowed; relative bind sources are resolved against it.
    pub bundle: PathBuf,
    /// Storage for the root volume (`nexcage.proxmox.storage` overrides; `None`: the first
    /// in storage.cfg that can hold one, see `storage::Storages::for_root`).
    pub storage: Option<String>,
    /// The host's storages (storage.cfg).
    pub storages: storage::Storages,
    /// `unprivileged` when the bundle has no user namespace.
    pub unprivileged: bool,
    /// Default `net0` property string (`None`: no network unless annotated).
    pub network: Option<String>,
    /// Host directories bind mounts may come from (besides the bundle).
    pub allowed_host_mounts: Vec<PathBuf>,
    /// Engines' per-container directories (`engine_dirs` of the config).
    pub engine_dirs: Vec<PathBuf>,
    /// The container's id (engines name its directories after it).
    pub container_id: String,
    /// The PVE description (see `pveconf::describe`).
    pub description: String,
    pub host: HostInfo,
    /// Where the root filesystem goes (`root.rs`).
    pub rootfs_mode: RootfsMode,
}

impl MapOptions {
    pub fn new(
        cfg: &LxcBackendConfig,
        bundle: &Path,
        container_id: &str,
        description: String,
        host: HostInfo,
        storages: storage::Storages,
    ) -> MapOptions {
        MapOptions {
            bundle: bundle.to_path_buf(),
            storage: cfg.storage.clone(),
            storages,
            unprivileged: cfg.unprivileged,
            network: cfg.network.clone(),
            allowed_host_mounts: cfg.allowed_host_mounts.clone(),
            engine_dirs: cfg.engine_dirs.clone(),
            container_id: container_id.to_string(),
            description,
            host,
            rootfs_mode: cfg.rootfs,
        }
    }
}

/// The `rootfs` create option of a copy of `root` (a volume on the configured or first
/// suitable storage): for a container planned in place that must be copied after all.
pub fn copy_rootfs(opts: &MapOptions, root: &Path, readonly: bool) -> Result<String, SpecError> {
    let m = Mapper { opts, out: PveContainer::default(), create: CreateParts::default(), idmap_binds: false };
    m.volume_rootfs(&Annotations::default(), root, readonly)
}

/// The bundle's config.json (parsed once, by `Bundle::open`) as a [`Spec`]. Errors name
/// the JSON path. Returns the spec and warnings for properties unknown to this runtime
/// (the OCI spec says to ignore them).
pub fn parse_spec(config: &Document) -> Result<(Spec, Vec<String>), SpecError> {
    let spec: Spec = config.typed().or_else(|e| {
        let p = e.path().to_string();
        err(if p == "." { String::new() } else { p }, e.into_inner().to_string(), "fix config.json")
    })?;
    Ok((spec, unknown_properties(config.value())))
}

/// Parse and map a bundle's config.json; unknown-property warnings are merged into the
/// result's.
pub fn map_bundle(config: &Document, opts: &MapOptions) -> Result<(Spec, PveContainer), SpecError> {
    let (spec, unknown) = parse_spec(config)?;
    let mut out = map(&spec, opts)?;
    out.warnings.extend(unknown);
    Ok((spec, out))
}

const KNOWN: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "ociVersion",
            "root",
            "mounts",
            "process",
            "hostname",
            "domainname",
            "hooks",
            "annotations",
            "linux",
            "solaris",
            "windows",
            "vm",
            "zos",
        ],
    ),
    (
        "linux",
        &[
            "namespaces",
            "uidMappings",
            "gidMappings",
            "timeOffsets",
            "devices",
            "netDevices",
            "cgroupsPath",
            "rootfsPropagation",
            "maskedPaths",
            "readonlyPaths",
            "mountLabel",
            "resources",
            "sysctl",
            "seccomp",
            "intelRdt",
            "personality",
            "memoryPolicy",
        ],
    ),
    (
        "linux.resources",
        &["devices", "memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma", "unified"],
    ),
    (
        "linux.resources.memory",
        &[
            "limit",
            "reservation",
            "swap",
            "kernel",
            "kernelTCP",
            "swappiness",
            "disableOOMKiller",
            "useHierarchy",
            "checkBeforeUpdate",
        ],
    ),
    (
        "linux.resources.cpu",
        &["shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems", "idle"],
    ),
    ("root", &["path", "readonly"]),
];

fn unknown_properties(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for (path, keys) in KNOWN {
        let mut cur = v;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            cur = &cur[part];
        }
        if let Some(obj) = cur.as_object() {
            for k in obj.keys().filter(|k| !keys.contains(&k.as_str())) {
                let full = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                out.push(format!("{full}: unknown property, ignored (runtimes must ignore unknown properties)"));
            }
        }
    }
    out
}

/// Map a spec to a Proxmox container. See docs/mapping.md.
pub fn map(spec: &Spec, opts: &MapOptions) -> Result<PveContainer, SpecError> {
    Mapper { opts, out: PveContainer::default(), create: CreateParts::default(), idmap_binds: false }.run(spec)
}

#[derive(Default)]
struct CreateParts {
    hostname: Option<String>,
    unprivileged: bool,
    memory: Option<u64>,
    swap: Option<u64>,
    cores: Option<u32>,
    cpulimit: Option<String>,
    cpuunits: Option<u64>,
    rootfs: String,
    arch: Option<String>,
    nets: BTreeMap<u32, String>,
    mps: Vec<String>,
    devs: Vec<String>,
    features: Option<String>,
    onboot: Option<bool>,
    tags: String,
}

struct Mapper<'a> {
    opts: &'a MapOptions,
    out: PveContainer,
    create: CreateParts,
    /// Bind mounts are idmapped with the container's map (see `bind_mount`).
    idmap_binds: bool,
}

/// Parsed `nexcage.proxmox.*` annotations.
#[derive(Default)]
struct Annotations {
    nets: BTreeMap<u32, Option<String>>,
    storage: Option<(String, String)>,
    tags: Vec<String>,
    onboot: Option<bool>,
    features: Option<String>,
    cores: Option<u32>,
}

const MIB: i64 = 1 << 20;

fn ceil_mib(bytes: i64) -> u64 {
    ((bytes + MIB - 1) / MIB) as u64
}

fn ann_path(key: &str) -> String {
    format!("annotations[\"{key}\"]")
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// A PVE DNS name: labels of letters, digits and `-`, not starting or ending with `-`.
pub fn valid_dns_name(v: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !v.is_empty() && v.len() <= 255 && v.split('.').all(label_ok)
}

fn valid_storage_id(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_.".contains(c))
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
}

/// A value safe inside a PVE property string (no separators, quotes or whitespace).
fn propstr_safe(v: &str) -> bool {
    !v.is_empty() && !v.contains(|c: char| c == ',' || c == '=' || c == '"' || c.is_whitespace() || c.is_control())
}

/// A property string as given in an annotation: `k=v` items separated by commas, no
/// whitespace or control characters.
fn valid_propstr(v: &str) -> bool {
    !v.is_empty()
        && !v.contains(|c: char| c.is_whitespace() || c.is_control() || c == '"')
        && v.split(',').all(|item| !item.is_empty())
}

/// PVE tag rules: starts with a letter, digit or `_`; then `[a-z0-9_+.-]`.
fn sanitize_tag(t: &str) -> Option<String> {
    let t = t.to_ascii_lowercase();
    let ok = t.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-+.".contains(&b));
    ok.then_some(t)
}

/// Escape a path for an fstab-style `lxc.mount.entry` field (LXC reads them with
/// getmntent, which decodes `\040` and friends).
fn fstab_escape(p: &[u8]) -> String {
    let mut s = String::new();
    for &b in p {
        match b {
            b' ' => s.push_str("\\040"),
            b'\t' => s.push_str("\\011"),
            b'\n' => s.push_str("\\012"),
            b'\\' => s.push_str("\\134"),
            _ => s.push(b as char),
        }
    }
    s
}

/// `/a/./b/` -> `/a/b`; `None` for relative paths, `..` components, or non-UTF-8.
fn clean_abs(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (p.is_absolute() && p.to_str().is_some()).then_some(out)
}

/// Format `quota/period` as PVE's cpulimit: rounded up to 0.01 (PVE's granularity).
fn format_cpulimit(quota: i64, period: u64) -> String {
    let hundredths = (quota as u128 * 100).div_ceil(period as u128).max(1);
    let (int, frac) = (hundredths / 100, hundredths % 100);
    match frac {
        0 => int.to_string(),
        f if f % 10 == 0 => format!("{int}.{}", f / 10),
        f => format!("{int}.{f:02}"),
    }
}

/// cgroup v1 cpu.shares -> cgroup v2 cpu.weight (the conversion runc and crun use),
/// which is what PVE's cpuunits means on cgroup v2 (1..10000).
pub fn shares_to_cpuunits(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    (1 + ((shares - 2) * 9999) / 262_142).clamp(1, 10_000)
}

/// cgroup v1 blkio.weight (10..1000) -> cgroup v2 io.weight (1..10000), as runc does.
fn blkio_to_io_weight(w: u16) -> u64 {
    let w = u64::from(w.clamp(10, 1000));
    1 + ((w - 10) * 9999) / 990
}

/// (major, minor) of a dev_t (glibc's encoding).
fn dev_major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// Mount points under `dir` (strictly below it), from /proc/self/mountinfo.
fn has_submounts(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    text.lines().filter_map(|l| l.split(' ').nth(4)).any(|mp| {
        let mp = mp.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
        let mp = Path::new(&mp);
        mp != dir && mp.starts_with(dir)
    })
}

/// Destinations every OCI bundle mounts and LXC provides itself (with its own
/// `proc:mixed sys:mixed cgroup` policy and autodev): ignored. (`/dev/shm` and
/// `/dev/mqueue` are not among them: LXC mounts neither in an `unmanaged` container, so
/// they become `lxc.mount.entry` lines like any tmpfs or mqueue mount.)
const STANDARD_MOUNTS: &[(&str, &[&str])] = &[
    ("/proc", &["proc"]),
    ("/sys", &["sysfs"]),
    ("/dev", &["tmpfs", "devtmpfs"]),
    ("/dev/pts", &["devpts"]),
    ("/sys/fs/cgroup", &["cgroup", "cgroup2"]),
];

/// Filesystems mounted by type (no host source) through `lxc.mount.entry`.
const PSEUDO_FS: &[&str] = &["tmpfs", "ramfs", "proc", "sysfs", "mqueue", "devpts", "cgroup", "cgroup2", "shm"];

/// Bind options a PVE mount point (`mpN`, bind-mounted by PVE) reproduces exactly.
const MP_OPTIONS: &[&str] = &["bind", "rbind", "ro", "rw", "private", "rprivate"];

/// Devices LXC always creates (autodev) with these numbers: ignored in linux.devices.
const STANDARD_DEVICES: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
    ("/dev/console", 5, 1),
    ("/dev/ptmx", 5, 2),
];

impl Mapper<'_> {
    fn raw(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.out.raw_lxc.push((key.into(), value.into()));
    }

    /// Is `meta`'s owner one of the host uids the container's ids map to (Proxmox's
    /// default map 100000-165535, or the raw `lxc.idmap` u lines)?
    fn owned_by_container(&self, meta: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        let uid = u64::from(meta.uid());
        self.id_maps("u").iter().any(|(_, host, size)| uid >= *host && uid < host + size)
    }

    /// The container's id maps of one kind (`u` or `g`) as (container, host, size): the
    /// raw `lxc.idmap` lines so far, else Proxmox's default map.
    fn id_maps(&self, kind: &str) -> Vec<(u64, u64, u64)> {
        let maps: Vec<(u64, u64, u64)> = self
            .raw_lines("lxc.idmap")
            .filter_map(|m| {
                let f: Vec<&str> = m.split_whitespace().collect();
                let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok());
                (f.first() == Some(&kind)).then(|| Some((n(1)?, n(2)?, n(3)?))).flatten()
            })
            .collect();
        if maps.is_empty() {
            vec![(0, 100_000, 65_536)]
        } else {
            maps
        }
    }

    /// The values of the raw lines with `key` so far.
    fn raw_lines<'b>(&'b self, key: &'b str) -> impl Iterator<Item = &'b str> + 'b {
        self.out.raw_lxc.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A limit whose value reads the same on both cgroup versions: `lxc.cgroup2.<v2>` on
    /// a cgroup v2 host, `lxc.cgroup.<v1>` where the controllers are v1.
    fn cg(&mut self, v2: &str, v1: &str, value: String) {
        self.cg_value(v2, value.clone(), v1, value);
    }

    /// A limit written differently for each cgroup version (see [`HostInfo::cgroup_v1`]).
    fn cg_value(&mut self, v2: &str, v2_value: String, v1: &str, v1_value: String) {
        if self.opts.host.cgroup_v1 {
            self.raw(format!("lxc.cgroup.{v1}"), v1_value);
        } else {
            self.raw(format!("lxc.cgroup2.{v2}"), v2_value);
        }
    }

    fn warn(&mut self, w: impl Into<String>) {
        self.out.warnings.push(w.into());
    }

    fn run(mut self, spec: &Spec) -> Result<PveContainer, SpecError> {
        for (name, present) in [
            ("solaris", spec.solaris().is_some()),
            ("windows", spec.windows().is_some()),
            ("vm", spec.vm().is_some()),
            ("zos", spec.zos().is_some()),
        ] {
            if present {
                return err(name, "not a Linux container configuration", "proxmox-lxc runs Linux containers only");
            }
        }
        let Some(root) = spec.root() else {
            return err("root", "missing", "a Linux bundle needs root.path (the rootfs)");
        };
        let ann = self.annotations(spec)?;
        self.hostname(spec)?;
        let net_shared = self.namespaces(spec)?;
        let host_net = !spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        self.resources(spec)?;

        let readonly = root.readonly() == Some(true);
        if self.opts.rootfs_mode == RootfsMode::InPlace && ann.storage.is_none() {
            let path = if root.path().is_absolute() { root.path().clone() } else { self.opts.bundle.join(root.path()) };
            match InPlaceRoot::new(&path, readonly) {
                Ok(r) => {
                    self.create.rootfs = r.option(false);
                    self.create.arch = Some(super::root::host_arch().to_string());
                    self.out.root_in_place = Some(r);
                }
                Err(why) => self.warn(format!("root.path: {why}: the container runs on a copy of the rootfs")),
            }
        }
        if self.out.root_in_place.is_none() {
            self.create.rootfs = self.volume_rootfs(&ann, root.path(), readonly)?;
        }

        self.networks(spec, &ann, net_shared)?;
        if self.out.adopt_net.is_some() {
            self.out.loopback_up = true;
        }
        self.mounts(spec)?;
        self.devices(spec)?;
        self.sysctl(spec, host_net)?;
        self.other_linux(spec)?;

        self.create.cores = ann.cores;
        self.create.features = ann.features.clone();
        self.create.onboot = ann.onboot;
        let mut tags = vec![NEXCAGE_TAG.to_string()];
        tags.extend(ann.tags.iter().cloned());
        tags.sort();
        tags.dedup();
        self.create.tags = tags.join(";");
        // Room for the `nexcage-vmid` line create adds (pveconf::with_described_vmid).
        if self.opts.description.len() + "nexcage-vmid: 999999999\n".len() > 8192 {
            return err(
                "(description)",
                "the PVE description (OCI id and bundle path) is longer than 8192 bytes",
                "use a shorter bundle path",
            );
        }
        Ok(self.assemble())
    }

    /// The `rootfs` create option of a copy: `STORAGE:SIZE[,ro=1]` ([`Self::root_volume`]).
    fn volume_rootfs(&self, ann: &Annotations, root: &Path, readonly: bool) -> Result<String, SpecError> {
        let (storage, size) = self.root_volume(ann, root)?;
        Ok(if readonly { format!("{storage}:{size},ro=1") } else { format!("{storage}:{size}") })
    }

    /// The root volume's storage and size (GiB): the annotation's, else the configured
    /// or first suitable storage; a storage that cannot take size 0 (lvmthin, ...) gets
    /// one from the rootfs (`storage::root_size_gib`).
    fn root_volume(&self, ann: &Annotations, root: &Path) -> Result<(String, String), SpecError> {
        let (id, size, path) = match &ann.storage {
            Some((id, size)) => (Some(id.as_str()), size.clone(), ann_path("nexcage.proxmox.storage")),
            None => (self.opts.storage.as_deref(), "0".to_string(), "(storage)".to_string()),
        };
        let def = match self.opts.storages.for_root(id) {
            Ok(d) => d,
            Err(e) => return err(path, e.to_string(), ""),
        };
        let zero = size.parse::<f64>().is_ok_and(|n| n == 0.0);
        if zero && def.needs_size() {
            let rootfs = if root.is_absolute() { root.to_path_buf() } else { self.opts.bundle.join(root) };
            return Ok((def.id.clone(), storage::root_size_gib(&rootfs).to_string()));
        }
        Ok((def.id.clone(), size))
    }

    fn assemble(mut self) -> PveContainer {
        let c = std::mem::take(&mut self.create);
        let mut o: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, v: String| o.push((k.to_string(), v));
        if let Some(h) = c.hostname {
            push("hostname", h);
        }
        push("ostype", "unmanaged".into());
        if let Some(a) = c.arch {
            push("arch", a);
        }
        push("unprivileged", if c.unprivileged { "1" } else { "0" }.into());
        if let Some(m) = c.memory {
            push("memory", m.to_string());
        }
        if let Some(s) = c.swap {
            push("swap", s.to_string());
        }
        if let Some(n) = c.cores {
            push("cores", n.to_string());
        }
        if let Some(l) = c.cpulimit {
            push("cpulimit", l);
        }
        if let Some(u) = c.cpuunits {
            push("cpuunits", u.to_string());
        }
        push("rootfs", c.rootfs);
        for (i, n) in c.nets {
            push(&format!("net{i}"), n);
        }
        for (i, m) in c.mps.into_iter().enumerate() {
            push(&format!("mp{i}"), m);
        }
        for (i, d) in c.devs.into_iter().enumerate() {
            push(&format!("dev{i}"), d);
        }
        if let Some(f) = c.features {
            push("features", f);
        }
        if let Some(b) = c.onboot {
            push("onboot", if b { "1" } else { "0" }.into());
        }
        push("tags", c.tags);
        push("description", self.opts.description.clone());
        self.out.create = o;
        self.out
    }

    fn annotations(&mut self, spec: &Spec) -> Result<Annotations, SpecError> {
        let mut a = Annotations::default();
        let Some(map) = spec.annotations() else { return Ok(a) };
        let mut keys: Vec<&String> = map.keys().filter(|k| k.starts_with(ANNOTATION_PREFIX)).collect();
        keys.sort();
        for key in keys {
            let v = map[key].trim();
            let name = &key[ANNOTATION_PREFIX.len()..];
            let path = ann_path(key);
            match name {
                "storage" => {
                    let (s, size) = v.split_once(':').unwrap_or((v, "0"));
                    let size_ok = !size.is_empty() && size.parse::<f64>().is_ok_and(|n| n >= 0.0);
                    if !valid_storage_id(s) || !size_ok {
                        return err(
                            path,
                            format!("{v:?} is not STORAGE or STORAGE:SIZE_GiB"),
                            "e.g. \"local\" or \"local-lvm:8\"",
                        );
                    }
                    a.storage = Some((s.to_string(), size.to_string()));
                }
                "tags" => {
                    for t in v.split([';', ',', ' ']).filter(|t| !t.is_empty()) {
                        match sanitize_tag(t) {
                            Some(t) => a.tags.push(t),
                            None => self.warn(format!(
                                "{path}: tag {t:?} dropped (PVE tags are letters, digits and _+-., starting with a letter, digit or _)"
                            )),
                        }
                    }
                }
                "onboot" => {
                    a.onboot = Some(parse_bool(v).ok_or_else(|| SpecError {
                        path: path.clone(),
                        problem: format!("{v:?} is not a boolean"),
                        hint: "use 1 or 0".into(),
                    })?)
                }
                "features" => {
                    const FEATURES: &[&str] = &["fuse", "keyctl", "mknod", "nesting", "force_rw_sys", "mount"];
                    let ok = valid_propstr(v)
                        && v.split(',').all(|item| match item.split_once('=') {
                            Some(("mount", fs)) => {
                                fs.split(';').all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric()))
                            }
                            Some((k, b)) => FEATURES.contains(&k) && parse_bool(b).is_some(),
                            None => false,
                        });
                    if !ok {
                        return err(path, format!("{v:?} is not a PVE features string"), "e.g. \"nesting=1,keyctl=1\"; keys: fuse, keyctl, mknod, nesting, force_rw_sys, mount=fs1;fs2");
                    }
                    a.features = Some(v.to_string());
                }
                "cores" => match v.parse::<u32>() {
                    Ok(n) if (1..=8192).contains(&n) => a.cores = Some(n),
                    _ => return err(path, format!("{v:?} is not an integer in 1..8192"), "e.g. \"2\""),
                },
                n if n.starts_with("net") => {
                    let idx = &n[3..];
                    let i = match idx.parse::<u32>() {
                        Ok(i) if i <= 31 && idx == i.to_string() => i,
                        _ => return err(path, "network annotations are net0 .. net31", ""),
                    };
                    if v.is_empty() || v == "none" {
                        a.nets.insert(i, None);
                    } else if !valid_propstr(v) || !v.split(',').any(|p| p.starts_with("name=")) {
                        return err(
                            path,
                            format!("{v:?} is not a PVE network property string"),
                            "e.g. \"name=eth0,bridge=vmbr0,ip=dhcp\", or \"none\"",
                        );
                    } else {
                        a.nets.insert(i, Some(v.to_string()));
                    }
                }
                _ => {
                    return err(
                        path,
                        "unknown nexcage annotation",
                        "known: nexcage.proxmox.net0..net31, storage, tags, onboot, features, cores",
                    )
                }
            }
        }
        Ok(a)
    }

    fn hostname(&mut self, spec: &Spec) -> Result<(), SpecError> {
        if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            if !valid_dns_name(h) {
                return err(
                    "hostname",
                    format!("{h:?} is not a valid DNS name for Proxmox"),
                    "use letters, digits and '-' in dot-separated labels of at most 63 characters",
                );
            }
            self.create.hostname = Some(h.to_string());
        }
        if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
            if d.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return err("domainname", format!("{d:?} contains whitespace"), "");
            }
            self.out.sysctls.push(("kernel.domainname".into(), d.to_string()));
        }
        Ok(())
    }

    /// Namespaces, user namespace and id maps. Returns whether the network namespace
    /// is not the container's own (host or joined): then PVE networks are not set up.
    fn namespaces(&mut self, spec: &Spec) -> Result<bool, SpecError> {
        let linux = spec.linux().as_ref();
        let nss = linux.and_then(|l| l.namespaces().as_ref()).map(Vec::as_slice).unwrap_or_default();
        let mut seen: HashMap<LinuxNamespaceType, usize> = HashMap::new();
        let mut net_shared = false;
        let has_userns = nss.iter().any(|n| n.typ() == LinuxNamespaceType::User);
        let unprivileged = has_userns || self.opts.unprivileged;
        // Verified with LXC 5 (pct emulator): an unprivileged container cannot join a
        // namespace owned by the host's user namespace (setns is denied, and in a host
        // network namespace LXC cannot mount /sys), so such bundles are refused here
        // rather than failing at `pct start`.
        let privileged_hint = if has_userns {
            "joining host namespaces needs a privileged container, which a bundle with a user namespace cannot be; route it to an oci backend (annotation nexcage.backend)".to_string()
        } else {
            "joining host namespaces needs a privileged container: set the proxmox-lxc backend's \"unprivileged\" to false in the nexcage config, or route it to an oci backend (annotation nexcage.backend)".to_string()
        };
        for (i, ns) in nss.iter().enumerate() {
            let t = ns.typ();
            let path = format!("linux.namespaces[{i}]");
            if seen.insert(t, i).is_some() {
                return err(path, format!("duplicate {} namespace", ns_name(t)), "list each namespace type once");
            }
            let Some(p) = ns.path() else { continue };
            let path = format!("{path}.path");
            let share = match t {
                LinuxNamespaceType::Network => "net",
                LinuxNamespaceType::Ipc => "ipc",
                LinuxNamespaceType::Uts => "uts",
                LinuxNamespaceType::Cgroup => "cgroup",
                LinuxNamespaceType::Pid => {
                    // LXC could start the init in it, but nexcage-init must be pid 1 of
                    // the container's own pid namespace: it reaps orphans, serves exec,
                    // and the host trusts its socket only from a namespace's init.
                    return err(
                        path,
                        "joining an existing pid namespace is not supported by proxmox-lxc (nexcage-init must be pid 1 of the container's own pid namespace)",
                        "drop the path (a new pid namespace is created) or route this container to an oci backend (annotation nexcage.backend)",
                    );
                }
                _ => {
                    return err(
                        path,
                        format!("joining an existing {} namespace is not supported by proxmox-lxc", ns_name(t)),
                        "drop the path (a new namespace is created) or route this container to an oci backend",
                    )
                }
            };
            if !p.is_absolute() || p.to_str().is_none_or(|s| s.contains(char::is_whitespace)) || !p.exists() {
                return err(path, format!("{} is not an existing absolute namespace path", p.display()), "");
            }
            // LXC setns()es into whatever the path is, without checking its type: a
            // cgroup namespace given as the uts one would leave the container in the
            // host's UTS namespace, and its hostname would rename the host.
            match ns_type_of(p) {
                Ok(found) if found == clone_flag(t) => {}
                Ok(found) => {
                    return err(
                        path,
                        format!("{} is a {} namespace, not a {} one", p.display(), clone_flag_name(found), ns_name(t)),
                        "give the path of a namespace of the declared type",
                    )
                }
                Err(e) => {
                    return err(path, format!("{} is not a namespace: {e}", p.display()), "give a /proc/PID/ns/* path")
                }
            }
            if t == LinuxNamespaceType::Uts && spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) {
                // As runc: a joined UTS namespace is not the container's to rename.
                return err(
                    "hostname",
                    "a hostname cannot be set in a joined UTS namespace (linux.namespaces uts has a path)",
                    "drop hostname, or the uts namespace's path",
                );
            }
            if unprivileged && t == LinuxNamespaceType::Network {
                // The engine's interfaces move into the container's own namespace
                // (netmove.rs), unless a process lives in the engine's namespace.
                if let Err(e) = super::netmove::check_unused(p, super::netmove::IN_USE_PATIENCE) {
                    return err(path, e.to_string(), privileged_hint);
                }
                self.out.adopt_net = Some(p.to_path_buf());
                net_shared = true;
                continue;
            }
            if unprivileged {
                return err(
                    path,
                    format!("an unprivileged container cannot join the {} namespace {}", ns_name(t), p.display()),
                    privileged_hint,
                );
            }
            // LXC opens an absolute path given to lxc.namespace.share.<ns> and setns()es
            // into it (as lxcri does for pods).
            self.out.namespace_shares.push((format!("lxc.namespace.share.{share}"), p.to_path_buf()));
            if t == LinuxNamespaceType::Network {
                net_shared = true;
            }
        }
        for (t, what) in [
            (LinuxNamespaceType::Mount, "mount"),
            (LinuxNamespaceType::Pid, "pid"),
            (LinuxNamespaceType::Uts, "uts"),
            (LinuxNamespaceType::Ipc, "ipc"),
        ] {
            if !seen.contains_key(&t) {
                return err(
                    "linux.namespaces",
                    format!("no {what} namespace: sharing the host's {what} namespace is not supported by proxmox-lxc"),
                    format!("add {{\"type\": \"{what}\"}} or route this container to an oci backend"),
                );
            }
        }
        if !seen.contains_key(&LinuxNamespaceType::Network) {
            if unprivileged {
                return err(
                    "linux.namespaces",
                    "no network namespace: an unprivileged container cannot use the host's network namespace",
                    privileged_hint,
                );
            }
            // LXC: "none" keeps the container in the host's network namespace.
            self.raw("lxc.net.0.type", "none");
            net_shared = true;
        }
        if let Some(i) = seen.get(&LinuxNamespaceType::Time) {
            if nss[*i].path().is_none() {
                // A new time namespace without offsets reads the host's clocks: nothing to do.
            }
        }

        let uid = linux.and_then(|l| l.uid_mappings().as_ref()).filter(|m| !m.is_empty());
        let gid = linux.and_then(|l| l.gid_mappings().as_ref()).filter(|m| !m.is_empty());
        self.create.unprivileged = unprivileged;
        self.idmap_binds = unprivileged && !has_userns;
        if has_userns {
            match (uid, gid) {
                (None, None) => {}
                (Some(_), None) | (None, Some(_)) => {
                    let missing = if uid.is_none() { "uidMappings" } else { "gidMappings" };
                    return err(
                        format!("linux.{missing}"),
                        "missing: LXC needs both uid and gid maps",
                        "give both or neither (neither: Proxmox's default map 0 -> 100000, 65536 ids)",
                    );
                }
                (Some(u), Some(g)) => {
                    let default = |m: &Vec<oci_spec::runtime::LinuxIdMapping>| {
                        m.len() == 1 && (m[0].container_id(), m[0].host_id(), m[0].size()) == (0, 100_000, 65_536)
                    };
                    if !(default(u) && default(g)) {
                        for (kind, maps) in [("u", u), ("g", g)] {
                            for m in maps {
                                self.raw(
                                    "lxc.idmap",
                                    format!("{kind} {} {} {}", m.container_id(), m.host_id(), m.size()),
                                );
                            }
                        }
                        self.warn("linux.uidMappings/gidMappings: custom id maps become raw lxc.idmap lines after pct create; pct shifted the rootfs ownership with Proxmox's default map (0 -> 100000), so files appear owned by other ids unless the maps start at host id 100000");
                    }
                }
            }
        } else {
            if uid.is_some() || gid.is_some() {
                let which = if uid.is_some() { "uidMappings" } else { "gidMappings" };
                return err(
                    format!("linux.{which}"),
                    "id maps without a user namespace",
                    "add {\"type\": \"user\"} to linux.namespaces or drop the maps",
                );
            }
        }
        Ok(net_shared)
    }

    /// `linux.resources`, one group at a time (raw lines and warnings in this order).
    fn resources(&mut self, spec: &Spec) -> Result<(), SpecError> {
        let res = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        // Proxmox has no unlimited memory: the host's size stands in, also without any
        // linux.resources.
        self.memory(res.and_then(|r| r.memory().as_ref()))?;
        let Some(res) = res else { return Ok(()) };
        if let Some(cpu) = res.cpu() {
            self.cpu(cpu)?;
        }
        if let Some(p) = res.pids() {
            if p.limit() > 0 {
                self.cg("pids.max", "pids.max", p.limit().to_string());
            }
        }
        if let Some(b) = res.block_io() {
            self.block_io(b);
        }
        for (i, h) in res.hugepage_limits().iter().flatten().enumerate() {
            self.hugepage_limit(i, h)?;
        }
        if let Some(n) = res.network() {
            self.network_classes(n)?;
        }
        if let Some(rdma) = res.rdma() {
            self.rdma(rdma)?;
        }
        if let Some(unified) = res.unified() {
            self.unified(unified)?;
        }
        // linux.resources.devices (device cgroup rules): replaced by Proxmox's device
        // policy (docs/mapping.md).
        Ok(())
    }

    /// `linux.resources.memory` (absent: the host's memory and swap).
    fn memory(&mut self, mem: Option<&LinuxMemory>) -> Result<(), SpecError> {
        let host = self.opts.host;
        let limit = mem.and_then(|m| m.limit()).filter(|l| *l > 0);
        self.create.memory = match limit {
            Some(l) => Some(ceil_mib(l).max(16)),
            None => host.memory_mib.map(|m| m.max(16)),
        };
        if self.create.memory.is_none() {
            self.warn("linux.resources.memory.limit: unlimited, but the host's memory size is unknown: Proxmox's default of 512 MiB applies");
        }
        let unlimited_swap = |me: &mut Self| {
            if host.swap_mib.is_none() {
                me.warn("linux.resources.memory.swap: unlimited, but the host's swap size is unknown: Proxmox's default of 512 MiB applies");
            }
            host.swap_mib
        };
        self.create.swap = match mem.and_then(|m| m.swap()) {
            None | Some(-1) => unlimited_swap(self),
            Some(s) if s < -1 => {
                return err(
                    "linux.resources.memory.swap",
                    format!("{s} is not a limit"),
                    "use -1 for unlimited or a byte count",
                )
            }
            Some(s) => match limit {
                Some(l) => Some(ceil_mib((s - l).max(0))),
                None => {
                    return err(
                        "linux.resources.memory.swap",
                        "a memory+swap limit without linux.resources.memory.limit",
                        "set linux.resources.memory.limit too",
                    )
                }
            },
        };
        if let Some(m) = mem {
            if let Some(r) = m.reservation().filter(|r| *r > 0) {
                self.cg("memory.low", "memory.soft_limit_in_bytes", r.to_string());
            }
            if m.kernel().is_some() || m.kernel_tcp().is_some() {
                self.warn(
                    "linux.resources.memory.kernel/kernelTCP: ignored (no cgroup v2 equivalent, gone from cgroup v1 \
                     since Linux 6.1; runc ignores them too)",
                );
            }
            match m.swappiness() {
                Some(s) if self.opts.host.cgroup_v1 => {
                    if s > 100 {
                        return err("linux.resources.memory.swappiness", format!("{s} is out of range"), "use 0..100");
                    }
                    self.raw("lxc.cgroup.memory.swappiness", s.to_string());
                }
                Some(_) => self.warn("linux.resources.memory.swappiness: ignored (no cgroup v2 equivalent)"),
                None => {}
            }
            if m.disable_oom_killer() == Some(true) {
                if self.opts.host.cgroup_v1 {
                    self.raw("lxc.cgroup.memory.oom_control", "1");
                } else {
                    self.warn("linux.resources.memory.disableOOMKiller: ignored (no cgroup v2 equivalent)");
                }
            }
        }
        Ok(())
    }

    fn cpu(&mut self, cpu: &LinuxCpu) -> Result<(), SpecError> {
        if let Some(s) = cpu.shares().filter(|s| *s > 0) {
            self.create.cpuunits = Some(shares_to_cpuunits(s));
        }
        if let Some(q) = cpu.quota().filter(|q| *q > 0) {
            let period = cpu.period().filter(|p| *p > 0).unwrap_or(100_000);
            if q as u128 > 8192 * period as u128 {
                return err(
                    "linux.resources.cpu.quota",
                    "quota/period exceeds Proxmox's cpulimit maximum of 8192 CPUs",
                    "lower the quota",
                );
            }
            self.create.cpulimit = Some(format_cpulimit(q, period));
        }
        if let Some(b) = cpu.burst().filter(|b| *b > 0) {
            self.cg("cpu.max.burst", "cpu.cfs_burst_us", b.to_string());
        }
        let rt = [
            ("Period", "cpu.rt_period_us", cpu.realtime_period().map(|p| p.to_string())),
            ("Runtime", "cpu.rt_runtime_us", cpu.realtime_runtime().map(|r| r.to_string())),
        ];
        for (field, key, value) in rt {
            let Some(v) = value.filter(|v| v != "0") else { continue };
            if !self.opts.host.cgroup_v1 {
                return err(
                    format!("linux.resources.cpu.realtime{field}"),
                    "realtime CPU limits need cgroup v1's cpu.rt_* files; this host's cgroups are v2",
                    "drop realtimeRuntime/realtimePeriod",
                );
            }
            self.raw(format!("lxc.cgroup.{key}"), v);
        }
        for (field, key, value) in [("cpus", "cpuset.cpus", cpu.cpus()), ("mems", "cpuset.mems", cpu.mems())] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                if !v.bytes().all(|b| b.is_ascii_digit() || b == b',' || b == b'-') {
                    return err(
                        format!("linux.resources.cpu.{field}"),
                        format!("{v:?} is not a CPU/node list"),
                        "e.g. \"0-3,6\"",
                    );
                }
                self.cg(key, key, v.to_string());
            }
        }
        if let Some(i) = cpu.idle() {
            self.cg("cpu.idle", "cpu.idle", i.to_string());
        }
        Ok(())
    }

    fn block_io(&mut self, b: &LinuxBlockIo) {
        if let Some(w) = b.weight().filter(|w| *w > 0) {
            self.cg_value("io.weight", format!("default {}", blkio_to_io_weight(w)), "blkio.weight", w.to_string());
        }
        // The leaf weights were CFQ's, removed from Linux in 5.0 (cgroup v1 has no file
        // for them any more either).
        if b.leaf_weight().is_some() {
            self.warn("linux.resources.blockIO.leafWeight: ignored (no cgroup v2 equivalent)");
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(w) = d.weight().filter(|w| *w > 0) {
                let dev = format!("{}:{}", d.major(), d.minor());
                self.cg_value(
                    "io.weight",
                    format!("{dev} {}", blkio_to_io_weight(w)),
                    "blkio.weight_device",
                    format!("{dev} {w}"),
                );
            }
            if d.leaf_weight().is_some() {
                self.warn("linux.resources.blockIO.weightDevice[].leafWeight: ignored (no cgroup v2 equivalent)");
            }
        }
        for (list, key, v1_file) in [
            (b.throttle_read_bps_device(), "rbps", "blkio.throttle.read_bps_device"),
            (b.throttle_write_bps_device(), "wbps", "blkio.throttle.write_bps_device"),
            (b.throttle_read_iops_device(), "riops", "blkio.throttle.read_iops_device"),
            (b.throttle_write_iops_device(), "wiops", "blkio.throttle.write_iops_device"),
        ] {
            for d in list.iter().flatten() {
                let dev = format!("{}:{}", d.major(), d.minor());
                self.cg_value("io.max", format!("{dev} {key}={}", d.rate()), v1_file, format!("{dev} {}", d.rate()));
            }
        }
    }

    fn hugepage_limit(&mut self, i: usize, h: &LinuxHugepageLimit) -> Result<(), SpecError> {
        let size = h.page_size();
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return err(
                format!("linux.resources.hugepageLimits[{i}].pageSize"),
                format!("{size:?} is not a page size"),
                "e.g. \"2MB\"",
            );
        }
        // The kernel names the files with upper-case units (hugetlb.2MB.max), and
        // pve-container's config parser takes only `lxc.[a-z0-9_.-]+` keys: such a line
        // would be dropped with "unable to parse config". Refused rather than lost.
        err(
            format!("linux.resources.hugepageLimits[{i}]"),
            format!(
                "a hugetlb limit cannot be carried by a Proxmox container config: the kernel's files \
                 (hugetlb.{size}.*) have upper-case letters, and Proxmox's config parser drops an lxc.* key with them"
            ),
            "drop linux.resources.hugepageLimits, or route this container to crun or runc",
        )
    }

    fn rdma(&mut self, rdma: &HashMap<String, LinuxRdma>) -> Result<(), SpecError> {
        let mut devs: Vec<_> = rdma.iter().collect();
        devs.sort_by(|a, b| a.0.cmp(b.0));
        for (dev, l) in devs {
            if dev.is_empty() || dev.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return err(format!("linux.resources.rdma[\"{dev}\"]"), "not a device name", "");
            }
            let mut v = dev.clone();
            if let Some(h) = l.hca_handles() {
                v.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = l.hca_objects() {
                v.push_str(&format!(" hca_object={o}"));
            }
            self.cg("rdma.max", "rdma.max", v);
        }
        Ok(())
    }

    fn unified(&mut self, unified: &HashMap<String, String>) -> Result<(), SpecError> {
        let mut keys: Vec<_> = unified.iter().collect();
        keys.sort();
        if let (true, Some((k, _))) = (self.opts.host.cgroup_v1, keys.first()) {
            return err(
                format!("linux.resources.unified[\"{k}\"]"),
                "cgroup v2 files, but this host's cgroup controllers are v1 (legacy or hybrid layout), where LXC \
                 ignores cgroup2 limits",
                "drop linux.resources.unified, or boot the host with cgroup v2 (Proxmox VE's default)",
            );
        }
        for (k, v) in keys {
            let ok_key = k.split_once('.').is_some_and(|(c, rest)| !c.is_empty() && !rest.is_empty())
                && k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
                && !k.contains("..");
            if !ok_key {
                return err(
                    format!("linux.resources.unified[\"{k}\"]"),
                    "not a cgroup v2 interface file name",
                    "e.g. \"memory.high\"",
                );
            }
            if v.contains(['\n', '\r', '\0']) {
                return err(format!("linux.resources.unified[\"{k}\"]"), "the value contains a line break", "");
            }
            self.raw(format!("lxc.cgroup2.{k}"), v.as_str());
        }
        Ok(())
    }

    /// `linux.resources.network`: the net_cls/net_prio controllers exist on cgroup v1 only.
    fn network_classes(&mut self, n: &LinuxNetwork) -> Result<(), SpecError> {
        let priorities = n.priorities().as_deref().unwrap_or_default();
        if n.class_id().is_none() && priorities.is_empty() {
            return Ok(());
        }
        if !self.opts.host.cgroup_v1 {
            return err(
                "linux.resources.network",
                "net_cls/net_prio are cgroup v1 controllers; this host's cgroups are v2",
                "drop linux.resources.network (use the PVE firewall or tc for traffic control)",
            );
        }
        if let Some(id) = n.class_id() {
            self.raw("lxc.cgroup.net_cls.classid", id.to_string());
        }
        for (i, p) in priorities.iter().enumerate() {
            let name = p.name();
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return err(
                    format!("linux.resources.network.priorities[{i}].name"),
                    format!("{name:?} is not an interface name"),
                    "",
                );
            }
            self.raw("lxc.cgroup.net_prio.ifpriomap", format!("{name} {}", p.priority()));
        }
        Ok(())
    }

    /// Proxmox NICs (docs/networking.md): none in the host's or a joined network
    /// namespace (the engine's network wins); else the configured default `net0` unless
    /// a `prestart`/`createRuntime` hook networks the new namespace (Docker's
    /// `libnetwork-setkey`, CNI hooks), then the `nexcage.proxmox.netN` annotations.
    /// Each NIC is `host-managed=1` unless it says otherwise: with `ostype: unmanaged`
    /// nothing in the container configures an interface, so Proxmox VE 9 (as it does for
    /// its own OCI containers) has LXC set the static addresses and runs DHCP itself.
    fn networks(&mut self, spec: &Spec, ann: &Annotations, net_shared: bool) -> Result<(), SpecError> {
        if net_shared {
            if let Some((i, _)) = ann.nets.iter().find(|(_, v)| v.is_some()) {
                return err(
                    ann_path(&format!("{ANNOTATION_PREFIX}net{i}")),
                    "the container shares the host's or a joined network namespace, so Proxmox networks cannot be added",
                    "drop the annotation or give the container its own network namespace",
                );
            }
            return Ok(());
        }
        self.out.loopback_up = true;
        let hooked = spec.hooks().as_ref().is_some_and(|h| {
            h.prestart().as_ref().is_some_and(|v| !v.is_empty())
                || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
        });
        let mut origin: BTreeMap<u32, String> = BTreeMap::new();
        if let Some(n) = self.opts.network.as_deref().filter(|n| !n.is_empty()) {
            if hooked {
                log::debug!("a prestart/createRuntime hook networks the container: no default net0");
            } else {
                self.create.nets.insert(0, n.to_string());
                origin.insert(0, DEFAULT_NET.to_string());
            }
        }
        for (i, v) in &ann.nets {
            match v {
                Some(v) => {
                    self.create.nets.insert(*i, v.clone());
                    origin.insert(*i, ann_path(&format!("{ANNOTATION_PREFIX}net{i}")));
                }
                None => drop(self.create.nets.remove(i)),
            };
        }
        for (i, v) in self.create.nets.iter_mut() {
            let props = net_props(v);
            if props.iter().any(|(k, _)| *k == "host-managed") {
                continue;
            }
            if props.contains(&("ip6", "auto")) {
                return err(
                    origin.remove(i).unwrap_or_default(),
                    format!("net{i}: ip6=auto (SLAAC) cannot be managed by the Proxmox host, and nothing in the container runs a network manager"),
                    "give ip6=ADDRESS/PREFIX or ip6=dhcp, or host-managed=0 to leave the interface to the program",
                );
            }
            v.push_str(",host-managed=1");
            self.out.host_managed_nets.push((*i, origin.remove(i).unwrap_or_default()));
        }
        Ok(())
    }

    fn allowed_source(&self, canonical: &Path, ids: &[&str]) -> bool {
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        canonical.starts_with(canon(&self.opts.bundle))
            || self.opts.allowed_host_mounts.iter().any(|a| canonical.starts_with(canon(a)))
            || self.opts.engine_dirs.iter().any(|d| {
                canonical.strip_prefix(canon(d)).is_ok_and(|rest| {
                    rest.components().any(|c| ids.iter().any(|id| c.as_os_str() == std::ffi::OsStr::new(id)))
                })
            })
    }

    /// The ids an engine names this container's own directories after: the container's,
    /// and its pod sandbox's (CRI) — only ids as engines make them (64 hex digits), so
    /// that a container named like a store directory cannot reach the store.
    fn engine_ids<'s>(&'s self, spec: &'s Spec) -> Vec<&'s str> {
        let sandbox = spec.annotations().as_ref().and_then(|a| a.get("io.kubernetes.cri.sandbox-id"));
        [Some(self.opts.container_id.as_str()), sandbox.map(String::as_str)]
            .into_iter()
            .flatten()
            .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect()
    }

    fn mounts(&mut self, spec: &Spec) -> Result<(), SpecError> {
        let mounts = spec.mounts().as_deref().unwrap_or_default();
        let owned: Vec<String> = self.engine_ids(spec).into_iter().map(str::to_string).collect();
        let ids: Vec<&str> = owned.iter().map(String::as_str).collect();
        // Destinations mounted before the current one (ignored standard mounts excluded).
        let mut earlier: Vec<PathBuf> = Vec::new();
        for (i, m) in mounts.iter().enumerate() {
            let path = format!("mounts[{i}]");
            let Some(dst) = clean_abs(m.destination()) else {
                return err(
                    format!("{path}.destination"),
                    format!("{} is not an absolute path without '..'", m.destination().display()),
                    "",
                );
            };
            if dst == Path::new("/") {
                return err(
                    format!("{path}.destination"),
                    "mounting over / is not supported",
                    "use root.path for the root filesystem",
                );
            }
            let typ = m.typ().as_deref().unwrap_or("");
            let options = m.options().as_deref().unwrap_or_default();
            let is_bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
            if !is_bind {
                if let Some((_, types)) = STANDARD_MOUNTS.iter().find(|(d, _)| Path::new(d) == dst) {
                    if types.contains(&typ) {
                        continue; // provided by LXC itself
                    }
                }
            }
            let overlaps = earlier.iter().any(|e| e.starts_with(&dst) || dst.starts_with(e));
            earlier.push(dst.clone());
            if is_bind {
                self.bind_mount(i, m, &dst, options, overlaps, &ids)?;
            } else if PSEUDO_FS.contains(&typ) {
                let source = m.source().as_ref().and_then(|s| s.to_str()).filter(|s| !s.is_empty()).unwrap_or(typ);
                let opts = self.entry_options(i, options, "dir", false)?;
                self.raw(
                    "lxc.mount.entry",
                    format!("{} {} {typ} {opts} 0 0", fstab_escape(source.as_bytes()), rel_dst(&dst)),
                );
            } else {
                return err(
                    format!("{path}.type"),
                    format!("mount type {typ:?} is not supported by proxmox-lxc"),
                    "use bind mounts of host directories/files, tmpfs, or a pseudo filesystem (proc, sysfs, mqueue, devpts, cgroup2)",
                );
            }
        }
        Ok(())
    }

    /// Options for an `lxc.mount.entry` from OCI mount options, with `create=`.
    /// `rbind_over_submounts`: an rbind of a tree with mounts below it (see mount_options.rs).
    fn entry_options(
        &mut self,
        i: usize,
        options: &[String],
        create: &str,
        rbind_over_submounts: bool,
    ) -> Result<String, SpecError> {
        let mut out: Vec<String> = Vec::new();
        for o in options {
            match o.as_str() {
                "idmap" | "ridmap" => {
                    return err(
                        format!("mounts[{i}].options"),
                        format!("{o:?} (id-mapped mounts) is not supported by proxmox-lxc"),
                        "drop the option",
                    )
                }
                "tmpcopyup" => self.warn(format!(
                    "mounts[{i}].options: \"tmpcopyup\" ignored (the tmpfs starts empty; LXC cannot copy the image's files up)"
                )),
                o if o.is_empty() || o.contains(|c: char| c.is_whitespace() || c.is_control()) => {
                    return err(format!("mounts[{i}].options"), format!("{o:?} is not a mount option"), "")
                }
                o => match mount_options::for_lxc(o, rbind_over_submounts) {
                    Ok(Some(lxc)) => out.push(lxc.to_string()),
                    Ok(None) => {}
                    Err(e) => {
                        return err(format!("mounts[{i}].options"), format!("{e}"), "drop the option, or use an oci backend")
                    }
                },
            }
        }
        out.push(format!("create={create}"));
        Ok(out.join(","))
    }

    fn bind_mount(
        &mut self,
        i: usize,
        m: &Mount,
        dst: &Path,
        options: &[String],
        overlaps: bool,
        ids: &[&str],
    ) -> Result<(), SpecError> {
        let path = format!("mounts[{i}]");
        let Some(source) = m.source().as_ref().filter(|s| !s.as_os_str().is_empty()) else {
            return err(format!("{path}.source"), "a bind mount needs a source", "");
        };
        let abs = if source.is_absolute() { source.clone() } else { self.opts.bundle.join(source) };
        let canonical = match std::fs::canonicalize(&abs) {
            Ok(c) => c,
            Err(e) => {
                return err(format!("{path}.source"), format!("{}: {e}", abs.display()), "create it or fix the path")
            }
        };
        if !self.allowed_source(&canonical, ids) {
            let hint = if self.opts.allowed_host_mounts.is_empty() {
                "host bind mounts are disabled: add the directory (or a parent) to the proxmox-lxc backend's \"allowed_host_mounts\" in the nexcage config".to_string()
            } else {
                format!(
                    "allowed are the bundle directory and {}; extend the proxmox-lxc backend's \"allowed_host_mounts\" in the nexcage config",
                    self.opts.allowed_host_mounts.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                )
            };
            return err(
                format!("{path}.source"),
                format!("host path {} (resolved: {}) is not allowed", source.display(), canonical.display()),
                hint,
            );
        }
        let meta = std::fs::metadata(&canonical)
            .or_else(|e| err(format!("{path}.source"), format!("{}: {e}", canonical.display()), ""))?;
        let ro = options.iter().rev().find(|o| *o == "ro" || *o == "rw").is_some_and(|o| o == "ro");
        let recursive = options.iter().any(|o| o == "rbind");
        let src_str = canonical.to_str().unwrap_or("");
        let dst_str = dst.to_str().unwrap_or("");
        let over_submounts = recursive && meta.is_dir() && has_submounts(&canonical);
        let as_mp = meta.is_dir()
            && !overlaps
            && options.iter().all(|o| MP_OPTIONS.contains(&o.as_str()))
            && propstr_safe(src_str)
            && propstr_safe(dst_str)
            && self.create.mps.len() < 256
            && !over_submounts
            // An entry, which LXC can idmap (and create relays through the run directory
            // when the container's root cannot search the way to it, bind_relay.rs).
            && !self.idmap_binds;
        if as_mp {
            let mut v = format!("{src_str},mp={dst_str}");
            if ro {
                v.push_str(",ro=1");
            }
            self.create.mps.push(v);
            return Ok(());
        }
        let mut opts: Vec<String> = options.to_vec();
        if !opts.iter().any(|o| o == "bind" || o == "rbind") {
            opts.insert(0, "bind".into());
        }
        let create = if meta.is_dir() { "dir" } else { "file" };
        let mut opts = self.entry_options(i, &opts, create, over_submounts)?;
        if self.idmap_binds && !self.owned_by_container(&meta) {
            // The bundle has no user namespace: its root is the host's root, who owns
            // what it binds (named volumes, the engine's files). The container's root is
            // unprivileged only because the operator says so, so binds are idmapped with
            // the container's map (on-disk id N is container id N), as with the rootfs:
            // the program writes its volumes as it would under runc. A source already
            // owned by the container's host ids (Proxmox's way: chown 100000) is
            // mounted as it is.
            opts.push_str(",idmap=container");
        }
        self.raw(
            "lxc.mount.entry",
            format!("{} {} none {opts} 0 0", fstab_escape(canonical.as_os_str().as_bytes()), rel_dst(dst)),
        );
        Ok(())
    }

    fn devices(&mut self, spec: &Spec) -> Result<(), SpecError> {
        let devices = spec.linux().as_ref().and_then(|l| l.devices().as_ref()).map(Vec::as_slice).unwrap_or_default();
        for (i, d) in devices.iter().enumerate() {
            let path = format!("linux.devices[{i}]");
            let p = d.path();
            let t = d.typ();
            if STANDARD_DEVICES.iter().any(|(sp, ma, mi)| {
                Path::new(sp) == p && t == LinuxDeviceType::C && *ma == d.major() && *mi == d.minor()
            }) {
                continue; // created by LXC (autodev)
            }
            let Some(ps) = clean_abs(p)
                .and_then(|c| c.to_str().map(str::to_string))
                .filter(|s| s.starts_with("/dev/") && propstr_safe(s))
            else {
                return err(format!("{path}.path"), format!("{} is not a path under /dev", p.display()), "");
            };
            let want_char = match t {
                LinuxDeviceType::C | LinuxDeviceType::U => true,
                LinuxDeviceType::B => false,
                _ => {
                    return err(
                        format!("{path}.type"),
                        format!("device type {:?} cannot be passed through", t.as_str()),
                        "use c or b",
                    )
                }
            };
            let host_ok = std::fs::metadata(&ps).is_ok_and(|meta| {
                let ft = meta.file_type();
                let (ma, mi) = dev_major_minor(meta.rdev());
                (if want_char { ft.is_char_device() } else { ft.is_block_device() })
                    && ma as i64 == d.major()
                    && mi as i64 == d.minor()
            });
            if !host_ok {
                return err(
                    path,
                    format!("no host device node {ps} ({} {}:{})", t.as_str(), d.major(), d.minor()),
                    "Proxmox passes host devices through by path (devN): the same node must exist on the host",
                );
            }
            let mut v = ps;
            if let Some(mode) = d.file_mode() {
                v.push_str(&format!(",mode={:04o}", mode & 0o7777));
            }
            if let Some(uid) = d.uid() {
                v.push_str(&format!(",uid={uid}"));
            }
            if let Some(gid) = d.gid() {
                v.push_str(&format!(",gid={gid}"));
            }
            self.create.devs.push(v);
        }
        Ok(())
    }

    /// `linux.sysctl`, applied by the mount hook (nexcage-init) in the container's
    /// namespaces: PVE keeps only nine IPC keys of raw `lxc.sysctl.*` lines, and LXC would
    /// write them after `/proc/sys` is read-only. `host_net`: the container shares the
    /// host's network namespace.
    fn sysctl(&mut self, spec: &Spec, host_net: bool) -> Result<(), SpecError> {
        let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else { return Ok(()) };
        let mut keys: Vec<_> = map.iter().collect();
        keys.sort();
        for (k, v) in keys {
            let path = format!("linux.sysctl[\"{k}\"]");
            let key = k.replace('/', ".");
            if key.is_empty()
                || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                || key.contains("..")
            {
                return err(path, "not a sysctl name", "e.g. net.ipv4.ip_forward");
            }
            if v.contains(['\n', '\r', '\0']) {
                return err(path, "the value contains a line break", "");
            }
            if let Some(why) = not_namespaced(&key, host_net) {
                return err(
                    path,
                    why,
                    "only namespaced sysctls can be set for a container (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, and net.* with a network namespace of its own), as with runc",
                );
            }
            let v = if key == "net.ipv4.ping_group_range" && self.create.unprivileged {
                self.ping_group_range(&path, v)?
            } else {
                v.clone()
            };
            self.out.sysctls.push((key, v));
        }
        Ok(())
    }

    /// In an unprivileged container the kernel takes only groups mapped into the
    /// container's user namespace: an upper bound past the last mapped group (Docker sets
    /// `0 2147483647`, "every group") becomes that group, which means the same there.
    fn ping_group_range(&self, path: &str, v: &str) -> Result<String, SpecError> {
        let last = self.id_maps("g").iter().filter_map(|(ct, _, size)| (ct + size).checked_sub(1)).max().unwrap_or(0);
        let bounds: Vec<u64> = v.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        match bounds[..] {
            [low, high] if low <= last => Ok(format!("{low} {}", high.min(last))),
            [_, _] => err(
                path,
                format!("{v:?} starts past the container's last group ({last}): an unprivileged container can name only its own groups"),
                format!("give a range within 0-{last}"),
            ),
            _ => err(path, format!("{v:?} is not two group ids"), "e.g. \"0 2147483647\""),
        }
    }

    /// Remaining `linux.*` fields: refused, or ignored for documented reasons.
    fn other_linux(&mut self, spec: &Spec) -> Result<(), SpecError> {
        let Some(l) = spec.linux() else { return Ok(()) };
        if l.intel_rdt().is_some() {
            return err("linux.intelRdt", "Intel RDT is not supported by LXC/Proxmox", "drop linux.intelRdt");
        }
        if l.memory_policy().is_some() {
            return err(
                "linux.memoryPolicy",
                "NUMA memory policies are not supported by LXC/Proxmox",
                "drop linux.memoryPolicy or use linux.resources.cpu.mems",
            );
        }
        if l.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
            return err(
                "linux.timeOffsets",
                "time namespace offsets are not supported by proxmox-lxc",
                "drop linux.timeOffsets",
            );
        }
        if l.net_devices().as_ref().is_some_and(|n| !n.is_empty()) {
            return err(
                "linux.netDevices",
                "moving host network devices into the container is not supported by proxmox-lxc",
                "use Proxmox networks (annotations nexcage.proxmox.netN)",
            );
        }
        if let Some(p) = l.personality() {
            if p.domain() != LinuxPersonalityDomain::PerLinux || p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                return err(
                    "linux.personality",
                    "only the default LINUX personality is supported",
                    "drop linux.personality",
                );
            }
        }
        if let Some(prop) = l.rootfs_propagation().as_deref() {
            if prop == "shared" || prop == "rshared" {
                return err(
                    "linux.rootfsPropagation",
                    format!("{prop:?}: LXC makes the container's mounts private to it"),
                    "drop it (mounts made in the container cannot propagate to the host)",
                );
            }
        }
        if let Some(s) = l.seccomp() {
            if s.listener_path().is_some() {
                return err(
                    "linux.seccomp.listenerPath",
                    "seccomp notification agents are not supported: Proxmox applies LXC's own seccomp policy",
                    "drop listenerPath",
                );
            }
        }
        if l.mount_label().as_deref().is_some_and(|m| !m.is_empty()) {
            self.warn("linux.mountLabel: ignored (Proxmox VE hosts do not use SELinux)");
        }
        Ok(())
    }
}

fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// An `lxc.mount.entry` destination: relative to the rootfs (no leading slash), escaped.
fn rel_dst(dst: &Path) -> String {
    fstab_escape(dst.strip_prefix("/").unwrap_or(dst).as_os_str().as_bytes())
}

/// The CLONE_NEW* type of the namespace a path refers to (`NS_GET_NSTYPE`).
fn ns_type_of(path: &Path) -> std::io::Result<libc::c_int> {
    use std::os::fd::AsRawFd;
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703; // _IO(0xb7, 0x3)
    let f = std::fs::File::open(path)?;
    // SAFETY: an ioctl without argument on an open descriptor.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc)
}

fn clone_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Time => 0x80, // CLONE_NEWTIME
    }
}

fn clone_flag_name(f: libc::c_int) -> &'static str {
    match f {
        libc::CLONE_NEWNET => "network",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWCGROUP => "cgroup",
        libc::CLONE_NEWNS => "mount",
        libc::CLONE_NEWUSER => "user",
        0x80 => "time",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests;
