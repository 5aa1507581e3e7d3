//! `nexcage doctor`: everything nexcage needs on this host, each as a check with a status,
//! what was found, and the fix when something is wrong. Checks never change the host
//! (write probes are created and removed again).

pub mod host;

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::backend::find_binary;
use crate::backend::lxc::storage;
use crate::config::{BackendConfig, Config, ConfigSource, LxcBackendConfig, OciBackendConfig, SYSTEM_CONFIG};

/// Where the Debian package installs the in-container init (and its config points `init`).
pub const PACKAGED_INIT: &str = "/usr/lib/nexcage/nexcage-init";
const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about a warning or failure.
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check { name: name.into(), status: Status::Pass, detail: detail.into(), fix: None }
    }
    fn warn(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name: name.into(), status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }
    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name: name.into(), status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }
}

/// Run every check. `state_root` is nexcage's `--root`.
pub fn run_checks(state_root: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let config = match Config::load() {
        Ok(c) => {
            checks.push(match &c.source {
                ConfigSource::File(p) => Check::pass("config", format!("{} is valid", p.display())),
                ConfigSource::Builtin => Check::warn(
                    "config",
                    format!("no {SYSTEM_CONFIG} (and NEXCAGE_CONFIG unset): using the built-in default"),
                    format!("write {SYSTEM_CONFIG} (see docs/configuration.md) so the setup is explicit"),
                ),
            });
            Some(c)
        }
        Err(e) => {
            checks.push(Check::fail(
                "config",
                e.to_string(),
                "correct the file at the JSON path named (docs/configuration.md lists every field)",
            ));
            None
        }
    };
    checks.push(check_cgroups());
    checks.push(check_state_root(state_root));
    let Some(config) = config else { return checks };
    let file = match &config.source {
        ConfigSource::File(p) => p.display().to_string(),
        ConfigSource::Builtin => SYSTEM_CONFIG.to_string(),
    };
    let mut usable = BTreeMap::new();
    for (name, backend) in &config.backends {
        let own = match backend {
            BackendConfig::Oci(oci) => vec![check_oci(name, oci, &file)],
            BackendConfig::ProxmoxLxc(lxc) => check_lxc(name, lxc, &file),
        };
        usable.insert(name.as_str(), own.iter().all(|c| c.status != Status::Fail));
        checks.extend(own);
    }
    // Which routes lead to each backend (the annotation can name any of them).
    let mut reached: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    reached.entry(config.default_backend.as_str()).or_default().push("default_backend".into());
    for (i, rule) in config.routes.iter().enumerate() {
        let what =
            rule.name.as_ref().map(|n| format!("routes[{i}] (\"{n}\")")).unwrap_or_else(|| format!("routes[{i}]"));
        reached.entry(rule.backend.as_str()).or_default().push(what);
    }
    for (name, backend) in &config.backends {
        if let BackendConfig::ProxmoxLxc(lxc) = backend {
            let routes = reached.get(name.as_str()).map(|r| r.join(", ")).unwrap_or_else(|| "no route".into());
            checks.push(check_privilege(name, lxc, &routes, &file));
        }
    }
    let privileged =
        |backend: &str| matches!(config.backend(backend), Some(BackendConfig::ProxmoxLxc(l)) if !l.unprivileged);
    let route = |check: String, what: String, backend: &str| {
        let what = if privileged(backend) { format!("{what} (privileged Proxmox containers)") } else { what };
        if usable.get(backend).copied().unwrap_or(false) {
            Check::pass(check, format!("{what} -> backend {backend}, which is usable"))
        } else {
            Check::fail(
                check,
                format!("{what} -> backend {backend}, which is not usable (see its checks)"),
                format!("fix backend {backend}, or send these containers to another backend in {file}"),
            )
        }
    };
    checks.push(route("route default".into(), "default_backend".into(), &config.default_backend));
    for (i, rule) in config.routes.iter().enumerate() {
        let what = rule.name.as_ref().map(|n| format!("\"{n}\"")).unwrap_or_else(|| "rule".into());
        checks.push(route(format!("route routes[{i}]"), what, &rule.backend));
    }
    checks
}

fn check_oci(name: &str, oci: &OciBackendConfig, file: &str) -> Check {
    let check = format!("backend {name}");
    let Some(bin) = find_binary(&oci.path) else {
        let what = if oci.path.contains('/') { "does not exist or is not executable" } else { "is not in PATH" };
        let package = Path::new(&oci.path).file_name().and_then(|n| n.to_str()).unwrap_or("crun");
        return Check::fail(
            check,
            format!("runtime {:?} {what}", oci.path),
            format!("install it (apt install {package}) or set backends.{name}.path in {file}"),
        );
    };
    match host::run(&bin, &["--version"], TIMEOUT) {
        Ok((true, out)) => {
            let version = out.lines().next().unwrap_or("").trim().to_string();
            Check::pass(check, format!("{} ({version})", bin.display()))
        }
        Ok((false, out)) | Err(out) => Check::fail(
            check,
            format!("{} --version failed: {}", bin.display(), out.trim()),
            format!("backends.{name}.path must name an OCI runtime (crun or runc); reinstall it"),
        ),
    }
}

fn check_lxc(name: &str, lxc: &LxcBackendConfig, file: &str) -> Vec<Check> {
    let mut checks = vec![check_pct(name, lxc, file)];
    checks.push(check_template_storage(name, lxc, file));
    checks.push(check_root_storage(name, lxc, file));
    checks.push(check_init(name, lxc, file));
    checks.push(check_lxc_version(name));
    checks.push(check_pve_container(name));
    checks.push(check_apparmor(name));
    if lxc.unprivileged {
        checks.push(check_subids(name));
    }
    checks
}

/// Privileged Proxmox containers only by the operator's explicit choice: say which
/// backend makes them and which routes lead there (a bundle never chooses it: with
/// `"unprivileged": true` every container is unprivileged, with or without a user
/// namespace in the bundle).
fn check_privilege(name: &str, lxc: &LxcBackendConfig, routes: &str, file: &str) -> Check {
    let check = format!("backend {name} privilege");
    if lxc.unprivileged {
        return Check::pass(check, "unprivileged containers only (no bundle can ask for a privileged one)");
    }
    Check::warn(
        check,
        format!(
            "creates PRIVILEGED Proxmox containers (\"unprivileged\": false; a bundle with a user namespace \
             stays unprivileged): a program that escapes is root on the host. Reached by: {routes}, and any \
             bundle annotated nexcage.backend={name}"
        ),
        format!(
            "set backends.{name}.unprivileged to true in {file} unless these workloads need a privileged container"
        ),
    )
}

/// The LXC pct drives: Proxmox VE 9 ships 6.0 with lxc-pve's patches, 8 ships 6.0 too.
fn check_lxc_version(name: &str) -> Check {
    let check = format!("backend {name}: lxc");
    let Some(bin) = find_binary("lxc-start") else {
        return Check::fail(check, "lxc-start not found", "install LXC (on Proxmox VE: the lxc-pve package)");
    };
    match host::run(&bin, &["--version"], TIMEOUT) {
        Ok((true, out)) => match host::lxc_version(&out) {
            Some(v) if host::major(&v).is_some_and(|m| m >= 5) => Check::pass(check, format!("LXC {v}")),
            Some(v) => Check::warn(
                check,
                format!("LXC {v}: older than any Proxmox VE nexcage supports (8 and 9 ship 6.0)"),
                "upgrade to Proxmox VE 8 or 9",
            ),
            None => Check::warn(check, format!("unrecognised version {:?}", out.trim()), "check lxc-start --version"),
        },
        Ok((false, out)) | Err(out) => {
            Check::warn(check, format!("lxc-start --version failed: {}", out.trim()), "check the LXC installation")
        }
    }
}

/// pve-container's version (Proxmox VE 9 ships 6.x, 8 ships 5.x): what nexcage may rely
/// on differs between them (docs/proxmox-lxc.md).
fn check_pve_container(name: &str) -> Check {
    let check = format!("backend {name}: pve-container");
    let out = find_binary("dpkg-query")
        .map(|q| host::run(&q, &["-W", "-f", "${Version}", "pve-container"], TIMEOUT))
        .and_then(|r| r.ok())
        .filter(|(ok, out)| *ok && !out.trim().is_empty());
    match out {
        Some((_, v)) => {
            let v = v.trim();
            let pve = match host::major(v) {
                Some(6) => " (Proxmox VE 9)",
                Some(5) => " (Proxmox VE 8)",
                _ => "",
            };
            Check::pass(check, format!("{v}{pve}"))
        }
        None => Check::warn(
            check,
            "pve-container is not installed as a Debian package: version unknown",
            "on a Proxmox VE host it is (dpkg-query -W pve-container); the pct emulator and the test VM's source build have none",
        ),
    }
}

/// Proxmox VE confines every container with an AppArmor profile it generates; without
/// AppArmor that layer is missing.
fn check_apparmor(name: &str) -> Check {
    let check = format!("backend {name}: apparmor");
    match host::apparmor_enabled() {
        Some(true) => Check::pass(check, "enabled: containers run under Proxmox VE's generated profile"),
        Some(false) | None => Check::warn(
            check,
            "AppArmor is not enabled in the kernel: containers run without Proxmox VE's AppArmor confinement",
            "boot with AppArmor enabled (Proxmox VE's default: apparmor=1 security=apparmor)",
        ),
    }
}

fn check_pct(name: &str, lxc: &LxcBackendConfig, file: &str) -> Check {
    let check = format!("backend {name}: pct");
    let Some(pct) = find_binary(&lxc.pct) else {
        return Check::fail(
            check,
            format!("{:?} not found", lxc.pct),
            format!(
                "run nexcage on a Proxmox VE host (pct comes with pve-container), or set backends.{name}.pct in {file}"
            ),
        );
    };
    if let Some(pveversion) = find_binary("pveversion") {
        return match host::run(&pveversion, &[], TIMEOUT) {
            Ok((true, out)) => {
                Check::pass(check, format!("{}; Proxmox VE {}", pct.display(), out.lines().next().unwrap_or("").trim()))
            }
            Ok((false, out)) | Err(out) => Check::warn(
                check,
                format!("{}; pveversion failed: {}", pct.display(), out.trim()),
                "check the Proxmox VE installation (pveversion -v)",
            ),
        };
    }
    // No pveversion: not a Proxmox VE host. The test emulator (hack/pct) says who it is
    // when asked for a command it does not emulate.
    match host::run(&pct, &["help"], Duration::from_secs(300)) {
        Ok((_, out)) if out.contains("pct emulator") => Check::warn(
            check,
            format!("{} is the pct emulator (hack/pct, real LXC): not a Proxmox VE host", pct.display()),
            "fine for tests; on a Proxmox VE host use the real pct",
        ),
        Ok(_) | Err(_) => Check::warn(
            check,
            format!("{}; pveversion not found, Proxmox VE version unknown", pct.display()),
            "install nexcage on a Proxmox VE host (pveversion comes with pve-manager)",
        ),
    }
}

/// A warning when `storage.cfg` defines the template storage without `vztmpl` content.
fn vztmpl_warning(lxc: &LxcBackendConfig) -> Option<String> {
    let path = storage::cfg_path(&lxc.pve_root);
    let text = std::fs::read_to_string(&path).ok()?;
    let id = &lxc.template_storage;
    let def = storage::parse(&text).into_iter().find(|s| &s.id == id)?;
    (!def.has("vztmpl")).then(|| {
        format!("storage {id} has no vztmpl content in {}: pvesm set {id} --content vztmpl,...", path.display())
    })
}

/// Where root volumes go: the storage create would use (the same lookup), its type and
/// whether volumes get a size there.
fn check_root_storage(name: &str, lxc: &LxcBackendConfig, file: &str) -> Check {
    let check = format!("backend {name}: root storage");
    let chosen = storage::load(&lxc.pve_root).and_then(|s| {
        let d = s.for_root(lxc.storage.as_deref())?.clone();
        Ok((d, s.path))
    });
    match chosen {
        Ok((d, path)) => Check::pass(
            check,
            format!(
                "{} ({}{}, rootdir content in {}){}",
                d.id,
                d.kind,
                d.path.as_ref().map(|p| format!(" at {}", p.display())).unwrap_or_default(),
                path.display(),
                if d.needs_size() { "; root volumes get a size from each bundle's rootfs" } else { "" }
            ),
        ),
        Err(e) => Check::fail(
            check,
            e.to_string(),
            format!("set backends.{name}.storage in {file} to a storage with rootdir content, or give one rootdir content (pvesm set <storage> --content rootdir,...)"),
        ),
    }
}

fn check_template_storage(name: &str, lxc: &LxcBackendConfig, file: &str) -> Check {
    let check = format!("backend {name}: template storage");
    // The backend's own lookup, so doctor and create never disagree.
    let dir = match crate::backend::lxc::host::template_dir(lxc) {
        Ok(d) => d,
        Err(e) => {
            return Check::fail(
                check,
                format!("{e:#}"),
                format!(
                    "set backends.{name}.template_storage in {file} to a dir storage with vztmpl content (e.g. local)"
                ),
            )
        }
    };
    if !dir.is_dir() {
        return Check::fail(
            check,
            format!("{} does not exist (storage {})", dir.display(), lxc.template_storage),
            format!(
                "check backends.{name}.pve_root ({}) in {file}; on Proxmox VE the storage creates it (pvesm set {} --content vztmpl,...), or mkdir -p {}",
                lxc.pve_root.display(),
                lxc.template_storage,
                dir.display()
            ),
        );
    }
    let probe = dir.join(format!(".nexcage-doctor-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => {
            return Check::fail(
                check,
                format!("{} is not writable: {e}", dir.display()),
                format!("make {} writable by root (a read-only mount?)", dir.display()),
            )
        }
    }
    let detail = format!("{} is writable (storage {})", dir.display(), lxc.template_storage);
    match vztmpl_warning(lxc) {
        Some(w) => Check::warn(check, detail, w),
        None => Check::pass(check, detail),
    }
}

fn check_init(name: &str, lxc: &LxcBackendConfig, file: &str) -> Check {
    use crate::backend::lxc::host::{check_reachable, find_init};
    let check = format!("backend {name}: init");
    let fix = if Path::new(PACKAGED_INIT).exists() && lxc.init.is_none() {
        format!("set backends.{name}.init to {PACKAGED_INIT} in {file}")
    } else {
        format!(
            "build it with hack/build-init and install it next to nexcage, or set backends.{name}.init in {file} (the Debian package installs {PACKAGED_INIT})"
        )
    };
    // The backend's own lookup: `init`, else next to nexcage (or the cargo target layout).
    let path = match find_init(lxc) {
        Ok(p) => p,
        Err(e) => return Check::fail(check, format!("{e:#}"), fix),
    };
    let how = if lxc.init.is_some() { format!("backends.{name}.init") } else { "found next to nexcage".into() };
    if lxc.unprivileged {
        if let Err(e) = check_reachable(&path, 0o5, "nexcage-init") {
            return Check::fail(
                check,
                format!("{e:#}"),
                format!("chmod o+rx {} and o+x on its directories", path.display()),
            );
        }
    }
    Check::pass(check, format!("{} ({how}), statically linked", path.display()))
}

fn check_subids(name: &str) -> Check {
    let check = format!("backend {name}: subuid/subgid");
    let mut missing = Vec::new();
    for f in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        if !host::subid_covers(&text, "root", 100_000, 65_536) {
            missing.push(f);
        }
    }
    if missing.is_empty() {
        Check::pass(check, "root has 100000:65536 in /etc/subuid and /etc/subgid (unprivileged containers)")
    } else {
        let files = missing.join(" and ");
        Check::fail(
            check,
            format!("{files} lack root:100000:65536, which unprivileged containers map root to"),
            format!("echo root:100000:65536 >> each of {files} (Proxmox VE ships this line)"),
        )
    }
}

fn check_cgroups() -> Check {
    let check = "cgroups";
    let root = Path::new("/sys/fs/cgroup");
    match host::cgroup_mode(root) {
        Ok(host::CgroupMode::V2) => Check::pass(check, "v2 (unified)"),
        Ok(host::CgroupMode::V1) => Check::warn(
            check,
            "v1 only (legacy)",
            "Proxmox VE 8 expects cgroup v2: boot with systemd.unified_cgroup_hierarchy=1",
        ),
        Ok(host::CgroupMode::Hybrid) => {
            let cgroups = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
            let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
            let missing = host::unmounted_v1_controllers(&cgroups, &mounts);
            if missing.is_empty() {
                Check::pass(check, "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified): every enabled controller is on v1, crun works")
            } else {
                let list = missing.join(",");
                Check::fail(
                    check,
                    format!("hybrid, but enabled controllers {list} are not mounted on v1: crun refuses to run"),
                    format!(
                        "{} (hack/setup does this), or boot with systemd.unified_cgroup_hierarchy=1",
                        missing
                            .iter()
                            .map(|c| format!(
                                "mkdir -p /sys/fs/cgroup/{c} && mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}"
                            ))
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                )
            }
        }
        Err(e) => Check::fail(check, e, "mount cgroups (cgroup2 at /sys/fs/cgroup)"),
    }
}

fn check_state_root(root: &Path) -> Check {
    let check = "state root";
    let fix_perm = format!("chmod 0700 {} (or pass another --root)", root.display());
    match std::fs::metadata(root) {
        Ok(m) if !m.is_dir() => {
            Check::fail(check, format!("{} is not a directory", root.display()), "remove it or pass another --root")
        }
        Ok(m) => {
            let mode = m.mode() & 0o7777;
            let euid = nix::unistd::geteuid().as_raw();
            if mode & 0o002 != 0 {
                return Check::fail(
                    check,
                    format!(
                        "{} is world-writable (mode {mode:04o}): anyone could forge container records",
                        root.display()
                    ),
                    fix_perm,
                );
            }
            if m.uid() != euid {
                return Check::fail(
                    check,
                    format!("{} belongs to uid {}, not to uid {euid} running nexcage", root.display(), m.uid()),
                    format!("chown {euid} {} (or pass another --root)", root.display()),
                );
            }
            if let Err(e) = probe_dir(root) {
                return Check::fail(check, format!("{} is not writable: {e}", root.display()), fix_perm);
            }
            if mode & 0o077 != 0 {
                return Check::warn(
                    check,
                    format!("{} has mode {mode:04o}; nexcage creates it 0700", root.display()),
                    fix_perm,
                );
            }
            Check::pass(check, format!("{} (mode {mode:04o})", root.display()))
        }
        Err(_) => {
            let Some(parent) = root.ancestors().skip(1).find(|a| a.is_dir()) else {
                return Check::fail(
                    check,
                    format!("no existing parent of {}", root.display()),
                    "pass an absolute --root",
                );
            };
            match probe_dir(parent) {
                Ok(()) => Check::pass(
                    check,
                    format!(
                        "{} does not exist yet; it will be created (0700) under {}",
                        root.display(),
                        parent.display()
                    ),
                ),
                Err(e) => Check::fail(
                    check,
                    format!("{} cannot be created: {} is not writable: {e}", root.display(), parent.display()),
                    format!("create {} (mode 0700) or pass another --root", root.display()),
                ),
            }
        }
    }
}

/// Create and remove a directory in `dir`.
fn probe_dir(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".nexcage-doctor-{}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&probe)?;
    std::fs::remove_dir(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lxc(pve_root: &Path, template_storage: &str) -> LxcBackendConfig {
        let text = format!(
            r#"{{"default_backend":"l","backends":{{"l":{{"kind":"proxmox-lxc","pve_root":"{}","template_storage":"{template_storage}"}}}}}}"#,
            pve_root.display()
        );
        match Config::parse(&text, ConfigSource::Builtin).unwrap().backends.remove("l").unwrap() {
            BackendConfig::ProxmoxLxc(l) => l,
            _ => unreachable!(),
        }
    }

    #[test]
    fn vztmpl_content_is_checked_when_storage_cfg_says() {
        let t = tempfile::tempdir().unwrap();
        assert!(vztmpl_warning(&lxc(t.path(), "local")).is_none(), "no storage.cfg: nothing to say");
        std::fs::create_dir_all(t.path().join("etc/pve")).unwrap();
        std::fs::write(
            t.path().join("etc/pve/storage.cfg"),
            "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl\n\ndir: tank\n\tpath /tank\n\tcontent images\n",
        )
        .unwrap();
        assert!(vztmpl_warning(&lxc(t.path(), "local")).is_none());
        assert!(vztmpl_warning(&lxc(t.path(), "tank")).unwrap().contains("pvesm set tank --content vztmpl"));
        // Root volumes: local lacks rootdir here, tank has none (dir content images only).
        let c = check_root_storage("l", &lxc(t.path(), "local"), "config.json");
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.detail.contains("none has rootdir content"), "{c:?}");
        std::fs::write(
            t.path().join("etc/pve/storage.cfg"),
            "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl\n\nlvmthin: local-lvm\n\tvgname pve\n\tthinpool data\n\tcontent rootdir,images\n",
        )
        .unwrap();
        let c = check_root_storage("l", &lxc(t.path(), "local"), "config.json");
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert!(
            c.detail.starts_with("local-lvm (lvmthin, rootdir content in ") && c.detail.contains("get a size"),
            "{c:?}"
        );
    }

    #[test]
    fn state_root_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("r");
        assert_eq!(check_state_root(&root).status, Status::Pass);
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(check_state_root(&root).status, Status::Pass);
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check_state_root(&root).status, Status::Warn);
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let c = check_state_root(&root);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("world-writable") && c.fix.unwrap().contains("chmod 0700"));
        // No probe left behind.
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    }
}
