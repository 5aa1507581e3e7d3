//! The generated LXC config `/var/lib/lxc/<vmid>/config`, rewritten at every start.
//!
//! Follows PVE's order (cgroup dirs, arch, includes, monitor.unshare, idmap, tty,
//! environment, uts name, cgroup limits, rootfs, init cmd, networks, runtime
//! environment, mount points, raw lines), with two host adaptations:
//! - cgroups: Proxmox writes cgroup2 keys (pure v2 host). On a hybrid host, a
//!   controller that is only mounted as v1 cannot take v2 keys, so its own limits are
//!   written with the v1 keys of the same controller (as PVE's cgroup v1 code does). Raw
//!   `lxc.cgroup.*`/`lxc.cgroup2.*` lines pass to LXC as they are, as PVE passes them:
//!   LXC ignores `lxc.cgroup2.*` on a legacy or hybrid host (seen with PVE 8's real pct).
//! - LXC 5 lacks `lxc.environment.runtime` (LXC 6): it becomes `lxc.environment`;
//!   `lxc.environment.hooks` has no LXC 5 equivalent and is dropped with a warning.

use std::collections::BTreeSet;
use std::path::Path;

use crate::conf::Conf;
use crate::paths::Paths;
use crate::propstr;
use crate::volumes;

/// Which cgroup version serves each controller on this host.
pub struct CgroupLayout {
    v2: BTreeSet<String>,
    v1: BTreeSet<String>,
    memsw: bool,
}

impl CgroupLayout {
    pub fn detect() -> CgroupLayout {
        let mut v2 = BTreeSet::new();
        let mut v1 = BTreeSet::new();
        let pure_v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let v2_root = if pure_v2 { "/sys/fs/cgroup" } else { "/sys/fs/cgroup/unified" };
        if let Ok(s) = std::fs::read_to_string(format!("{v2_root}/cgroup.controllers")) {
            v2.extend(s.split_whitespace().map(str::to_string));
        }
        if let Ok(s) = std::fs::read_to_string("/proc/self/mountinfo") {
            for line in s.lines() {
                let Some((_, post)) = line.split_once(" - ") else {
                    continue;
                };
                let mut it = post.split_whitespace();
                if it.next() != Some("cgroup") {
                    continue;
                }
                let opts = it.nth(1).unwrap_or("");
                v1.extend(opts.split(',').map(str::to_string));
            }
        }
        let memsw = Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
        CgroupLayout { v2, v1, memsw }
    }

    /// True when `controller` must be configured with v1 keys.
    pub fn is_v1(&self, controller: &str) -> bool {
        let c = if controller == "io" { "blkio" } else { controller };
        !self.v2.contains(controller) && self.v1.contains(c)
    }
}

pub struct Generated {
    pub text: String,
    pub warnings: Vec<String>,
}

fn line(out: &mut String, k: &str, v: impl std::fmt::Display) {
    out.push_str(&format!("{k} = {v}\n"));
}

const OS_CONFIGS: &[&str] =
    &["debian", "devuan", "ubuntu", "centos", "fedora", "opensuse", "archlinux", "alpine", "gentoo"];

pub fn generate(paths: &Paths, vmid: u32, conf: &Conf, rootfs: &Path, cg: &CgroupLayout) -> Generated {
    let mut out = String::new();
    let mut warnings = Vec::new();
    let unpriv = conf.unprivileged();

    // cgroup directories: as PVE names them; under an emulator root the leaf gets a tag
    // so that the same VMID in two roots does not collide on the host.
    let leaf = match &paths.root {
        None => vmid.to_string(),
        Some(r) => format!("emu{:08x}-{vmid}", fnv32(r.to_string_lossy().as_bytes())),
    };
    line(&mut out, "lxc.cgroup.dir.monitor", format!("lxc.monitor/{leaf}"));
    line(&mut out, "lxc.cgroup.dir.container", format!("lxc/{leaf}"));
    line(&mut out, "lxc.cgroup.dir.container.inner", "ns");
    line(&mut out, "lxc.arch", lxc_arch(conf.get("arch").unwrap_or("amd64")));
    let ostype = conf.get("ostype").unwrap_or("unmanaged");
    let base = if OS_CONFIGS.contains(&ostype) { format!("{ostype}.") } else { String::new() };
    line(&mut out, "lxc.include", format!("/usr/share/lxc/config/{base}common.conf"));
    if unpriv {
        line(&mut out, "lxc.include", format!("/usr/share/lxc/config/{base}userns.conf"));
    }
    if let Some(f) = conf.get("features").and_then(|f| propstr::parse(&propstr::FEATURES, f).ok()) {
        if f.get("nesting").map(String::as_str) == Some("1") {
            line(&mut out, "lxc.include", "/usr/share/lxc/config/nesting.conf");
        }
    }
    line(&mut out, "lxc.monitor.unshare", 1);
    let raw_idmap = conf.lxc.iter().any(|(k, _)| k == "lxc.idmap");
    if unpriv && !raw_idmap {
        line(&mut out, "lxc.idmap", "u 0 100000 65536");
        line(&mut out, "lxc.idmap", "g 0 100000 65536");
    }
    line(&mut out, "lxc.tty.max", conf.get("tty").unwrap_or("2"));
    if conf.get("console") == Some("0") {
        line(&mut out, "lxc.console.path", "none");
    }
    line(&mut out, "lxc.environment", "TERM=linux");
    line(&mut out, "lxc.uts.name", conf.hostname(vmid));

    // Limits.
    let mem_mib: u64 = conf.get("memory").and_then(|v| v.parse().ok()).unwrap_or(512);
    let swap_mib: u64 = conf.get("swap").and_then(|v| v.parse().ok()).unwrap_or(512);
    let mem = mem_mib << 20;
    let swap = swap_mib << 20;
    if cg.is_v1("memory") {
        line(&mut out, "lxc.cgroup.memory.limit_in_bytes", mem);
        if cg.memsw {
            line(&mut out, "lxc.cgroup.memory.memsw.limit_in_bytes", mem + swap);
        }
    } else {
        line(&mut out, "lxc.cgroup2.memory.max", mem);
        line(&mut out, "lxc.cgroup2.memory.swap.max", swap);
    }
    if let Some(limit) = conf.get("cpulimit").and_then(|v| v.parse::<f64>().ok()).filter(|l| *l > 0.0) {
        let quota = (limit * 100000.0) as u64;
        if cg.is_v1("cpu") {
            line(&mut out, "lxc.cgroup.cpu.cfs_period_us", 100000);
            line(&mut out, "lxc.cgroup.cpu.cfs_quota_us", quota);
        } else {
            line(&mut out, "lxc.cgroup2.cpu.max", format!("{quota} 100000"));
        }
    }
    if let Some(units) = conf.get("cpuunits").and_then(|v| v.parse::<u64>().ok()) {
        if cg.is_v1("cpu") {
            line(&mut out, "lxc.cgroup.cpu.shares", units.max(2));
        } else {
            line(&mut out, "lxc.cgroup2.cpu.weight", units.clamp(1, 10000));
        }
    }
    if let Some(cores) = conf.get("cores").and_then(|v| v.parse::<usize>().ok()) {
        let host = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        if cores < host {
            let key = if cg.is_v1("cpuset") { "lxc.cgroup.cpuset.cpus" } else { "lxc.cgroup2.cpuset.cpus" };
            line(&mut out, key, format!("0-{}", cores - 1));
        }
    }

    // PVE mounts the root volume on /var/lib/lxc/<vmid>/rootfs in a pre-start hook and
    // points lxc.rootfs.path there; the emulator hands LXC the volume directory itself
    // (LXC refuses a symlink) and keeps /var/lib/lxc/<vmid>/rootfs as an empty directory.
    // `idmap=passthrough` (PVE 9): PVE's prestart hook makes the staged root mount an
    // idmapped mount with the container's own map; LXC does the same for
    // `lxc.rootfs.options = idmap=container`.
    line(&mut out, "lxc.rootfs.path", rootfs.display());
    if let Some(r) = conf.get("rootfs").and_then(|r| propstr::parse(&propstr::ROOTFS, r).ok()) {
        let mut opts = Vec::new();
        if r.get("ro").map(String::as_str) == Some("1") {
            opts.push("ro");
        }
        match r.get("idmap").map(String::as_str) {
            None => {}
            Some(_) if !unpriv => {
                warnings.push("'rootfs' - ignoring 'idmap' option unsupported by privileged container".to_string())
            }
            Some("passthrough") => opts.push("idmap=container"),
            Some(m) => warnings.push(format!("pct emulator: rootfs idmap '{m}' is not emulated (only passthrough)")),
        }
        if !opts.is_empty() {
            line(&mut out, "lxc.rootfs.options", opts.join(","));
        }
    }
    if let Some(ep) = conf.get("entrypoint") {
        line(&mut out, "lxc.init.cmd", ep);
    }
    // PVE's post-stop hook kills the CT's DHCP clients (dhcp.rs).
    if let Ok(exe) = std::env::current_exe() {
        line(&mut out, "lxc.hook.post-stop", format!("{} {}", exe.display(), crate::dhcp::POST_STOP_FLAG));
    }

    for (i, v) in conf.indexed("net") {
        let Ok(n) = propstr::parse(&propstr::NET, v) else {
            warnings.push(format!("unable to parse net{i}"));
            continue;
        };
        let p = format!("lxc.net.{i}");
        line(&mut out, &format!("{p}.type"), "veth");
        if paths.root.is_none() {
            line(&mut out, &format!("{p}.veth.pair"), format!("veth{vmid}i{i}"));
        }
        if let Some(mac) = n.get("hwaddr") {
            line(&mut out, &format!("{p}.hwaddr"), mac);
        }
        line(&mut out, &format!("{p}.name"), &n["name"]);
        if let Some(b) = n.get("bridge") {
            line(&mut out, &format!("{p}.link"), b);
        }
        if let Some(m) = n.get("mtu") {
            line(&mut out, &format!("{p}.mtu"), m);
        }
        // As pve-container 6.1: LXC brings the interface up and sets its addresses only
        // for `host-managed=1` devices; otherwise the guest's ostype setup does (nothing,
        // for `unmanaged`: the interface stays down).
        let up = n.get("link_down").map(String::as_str) != Some("1");
        if up && n.get("host-managed").map(String::as_str) == Some("1") {
            if let Some(ip) = n.get("ip").filter(|ip| ip.contains('/')) {
                line(&mut out, &format!("{p}.ipv4.address"), ip);
            }
            if let Some(gw) = n.get("gw") {
                line(&mut out, &format!("{p}.ipv4.gateway"), gw);
            }
            if let Some(ip) = n.get("ip6").filter(|ip| ip.contains('/')) {
                line(&mut out, &format!("{p}.ipv6.address"), ip);
            }
            if let Some(gw) = n.get("gw6") {
                line(&mut out, &format!("{p}.ipv6.gateway"), gw);
            }
            line(&mut out, &format!("{p}.flags"), "up");
        }
        if n.contains_key("tag") {
            warnings.push(format!("net{i}: VLAN tag ignored by the pct emulator"));
        }
    }

    for (k, v) in conf.lxc.iter().filter(|(k, _)| k == "lxc.environment.runtime") {
        let _ = k;
        line(&mut out, "lxc.environment", v);
    }

    for (i, v) in conf.indexed("mp") {
        match propstr::parse(&propstr::MP, v) {
            Ok(mp) => {
                let src = volumes::mount_source(paths, &mp["volume"]);
                let dst = mp["mp"].trim_start_matches('/').to_string();
                let create = if Path::new(&src).is_file() { "file" } else { "dir" };
                let ro = if mp.get("ro").map(String::as_str) == Some("1") { ",ro" } else { "" };
                line(&mut out, "lxc.mount.entry", format!("{src} {dst} none rbind,create={create}{ro} 0 0"));
            }
            Err(e) => warnings.push(format!("mp{i}: {e}")),
        }
    }
    for (i, v) in conf.indexed("dev") {
        match propstr::parse(&propstr::DEV, v) {
            Ok(d) => device_lines(&mut out, &d, cg, &mut warnings),
            Err(e) => warnings.push(format!("dev{i}: {e}")),
        }
    }

    for (k, v) in &conf.lxc {
        if k == "lxc.environment.runtime" {
            continue;
        }
        if k == "lxc.environment.hooks" {
            warnings.push(format!("{k} has no LXC 5 equivalent; ignored"));
            continue;
        }
        line(&mut out, k, v);
    }
    Generated { text: out, warnings }
}

fn device_lines(out: &mut String, d: &propstr::Props, cg: &CgroupLayout, warnings: &mut Vec<String>) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let path = &d["path"];
    let Ok(md) = std::fs::metadata(path) else {
        warnings.push(format!("device {path} does not exist"));
        return;
    };
    let kind = if md.file_type().is_char_device() {
        'c'
    } else if md.file_type().is_block_device() {
        'b'
    } else {
        warnings.push(format!("{path} is not a device"));
        return;
    };
    let rdev = md.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let access = if d.get("deny-write").map(String::as_str) == Some("1") { "rm" } else { "rwm" };
    let key = if cg.is_v1("devices") { "lxc.cgroup.devices.allow" } else { "lxc.cgroup2.devices.allow" };
    line(out, key, format!("{kind} {major}:{minor} {access}"));
    line(out, "lxc.mount.entry", format!("{path} {} none bind,create=file 0 0", path.trim_start_matches('/')));
}

fn lxc_arch(a: &str) -> &str {
    match a {
        "amd64" => "amd64",
        "i386" => "i386",
        "arm64" => "arm64",
        "armhf" => "armhf",
        other => other,
    }
}

fn fnv32(b: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for x in b {
        h ^= *x as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}
