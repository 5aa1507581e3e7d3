//! The per-container run directory and the raw LXC lines that put nexcage-init into the
//! container.
//!
//! `<pve_root>/run/nexcage-lxc/<vmid>/` (mode 0700, owned by the container's root as the
//! host sees it: uid 100000 for a default unprivileged container, 0 for a privileged
//! one) is bind-mounted at `/dev/.nexcage` in the container; init creates its socket
//! there. `/dev` is LXC's own tmpfs (autodev), so the mount point can be created even
//! with a read-only rootfs. nexcage-init itself is bind-mounted read-only at
//! `/dev/.nexcage-init` from wherever it is installed, and is `lxc.init.cmd`.
//!
//! LXC performs these bind mounts inside the container's user namespace: for an
//! unprivileged container, host uid 100000 must be able to traverse every directory
//! leading to both sources. `check_reachable` says so before anything is created.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::wire;

/// Where run directories live under the Proxmox root.
pub fn base(pve_root: &Path) -> PathBuf {
    pve_root.join("run/nexcage-lxc")
}

pub fn path(pve_root: &Path, vmid: u32) -> PathBuf {
    base(pve_root).join(vmid.to_string())
}

pub fn socket(run_dir: &Path) -> PathBuf {
    run_dir.join(wire::SOCKET_NAME)
}

/// Create (or recreate, if a stale one exists) the run directory of `vmid`, owned by
/// the container's root (`owner` = host uid, gid).
pub fn create(pve_root: &Path, vmid: u32, owner: (u32, u32)) -> Result<PathBuf> {
    let base = base(pve_root);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&base)
        .with_context(|| format!("cannot create {}", base.display()))?;
    // Traversable by every container root, listable by none.
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o711))
        .with_context(|| format!("cannot chmod {}", base.display()))?;
    let dir = base.join(vmid.to_string());
    release_binds(&dir)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove stale {}", dir.display()))?;
    }
    std::fs::DirBuilder::new().mode(0o700).create(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::os::unix::fs::chown(&dir, Some(owner.0), Some(owner.1))
        .with_context(|| format!("cannot chown {} to {}:{}", dir.display(), owner.0, owner.1))?;
    Ok(dir)
}

/// Where [`super::bind_relay`] mounts the bind sources it relays: `<base>/<vmid>.binds`,
/// beside the run directory, not in it (the run directory is bind-mounted into the
/// container without its submounts, which the kernel refuses when they are locked, as
/// mounts copied into a container's user namespace are).
pub fn binds_dir(run_dir: &Path) -> PathBuf {
    let name = run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    run_dir.with_file_name(format!("{name}.binds"))
}

/// Unmount every relay in `binds_dir` (each as often as something is mounted there) and
/// remove it.
fn release_binds(run_dir: &Path) -> Result<()> {
    let dir = binds_dir(run_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
    for e in entries.flatten() {
        while nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH).is_ok() {}
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))
}

/// Remove the run directory (unmounting its relayed bind sources) and its include file.
pub fn remove(run_dir: &Path) -> Result<()> {
    release_binds(run_dir)?;
    let include = include_file(run_dir);
    match std::fs::remove_file(&include) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", include.display())),
    }
    match std::fs::remove_dir_all(run_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", run_dir.display())),
    }
}

/// The LXC config file the container's PVE config includes (`lxc.include`), beside its
/// run directory: `<base>/<vmid>.conf`. It holds what Proxmox VE would drop from the
/// config itself (`lxc.namespace.share.*`). LXC reads it as host root when the container
/// starts, so it must never be writable from inside: root-owned, mode 0600, outside the
/// run directory (which the container's root owns and sees).
pub fn include_file(run_dir: &Path) -> PathBuf {
    let name = run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    run_dir.with_file_name(format!("{name}.conf"))
}

/// Write the include file of `run_dir` (replacing any stale one) and return the raw
/// line that includes it.
pub fn write_include(run_dir: &Path, lines: &[(String, PathBuf)]) -> Result<(String, String)> {
    use std::io::Write;
    let path = include_file(run_dir);
    let mut text = String::from("# written by nexcage: what Proxmox VE does not keep in the container's config\n");
    for (k, v) in lines {
        let v = v.to_str().filter(|v| !v.contains(['\n', '\r'])).with_context(|| {
            format!("{}: cannot be written to an LXC config (not UTF-8, or a line break)", v.display())
        })?;
        text.push_str(&format!("{k} = {v}\n"));
    }
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(("lxc.include".into(), path.display().to_string()))
}

/// A path as an fstab field (`lxc.mount.entry` is fstab syntax): octal escapes for
/// space, tab, newline and backslash.
pub fn fstab_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn fstab_escape(p: &Path) -> String {
    let mut out = String::new();
    for c in p.to_string_lossy().chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

/// Write the container's mount hardening for the mount hook (`lxc_lines`), readable by
/// the container's root (the hook runs as it).
pub fn write_setup(run_dir: &Path, setup: &wire::ContainerSetup) -> Result<()> {
    let p = run_dir.join(wire::MOUNT_HOOK_SETUP);
    std::fs::write(&p, serde_json::to_vec(setup)?).with_context(|| format!("writing {}", p.display()))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// What a failed mount hook said (see `lxc_lines`), if it failed.
/// What nexcage-init wrote before it exited without serving (wire::INIT_ERROR).
pub fn init_error(run_dir: &Path) -> Option<String> {
    std::fs::read_to_string(run_dir.join(wire::INIT_ERROR)).ok().filter(|s| !s.is_empty())
}

pub fn mount_hook_error(run_dir: &Path) -> Option<String> {
    std::fs::read_to_string(run_dir.join(wire::MOUNT_HOOK_ERROR)).ok().filter(|s| !s.is_empty())
}

/// A word for the shell LXC runs hook commands with (`/bin/sh`, command line
/// `exec <hook> <name> lxc mount`), quoted only when it needs to be. Only the operator's
/// configuration reaches it (the init path, the run directory under `pve_root`), never
/// bundle data (tests/security.rs checks the whole line).
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+,:=@%".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The `lxc.hook.mount` command. LXC strips a value's quotes when it starts and ends with
/// the same one, so a quoted init path is run through `env`.
fn mount_hook_command(init: &Path, run_dir: &Path) -> String {
    let init = shell_word(&init.display().to_string());
    let prefix = if init.starts_with('\'') { "env " } else { "" };
    format!("{prefix}{init} --lxc-mount-hook {}", shell_word(&run_dir.display().to_string()))
}

/// Raw LXC lines (appended last, after the bundle's own mounts, so nothing covers them).
/// `lxc.hook.mount` runs nexcage-init as the mount hook: the container's mount hardening
/// (readonly/masked paths, /dev and /sys flags) is applied before Proxmox's AppArmor
/// profile confines the container, which refuses those mounts to init
/// (nexcage-init/mount_hook.rs).
pub fn lxc_lines(run_dir: &Path, init: &Path) -> Vec<(String, String)> {
    let rel = |p: &str| p.trim_start_matches('/').to_string();
    vec![
        (
            "lxc.mount.entry".into(),
            format!("{} {} none bind,create=dir 0 0", fstab_escape(run_dir), rel(wire::RUN_DIR_IN_CONTAINER)),
        ),
        (
            "lxc.mount.entry".into(),
            format!(
                "{} {} none ro,bind,nosuid,nodev,create=file 0 0",
                fstab_escape(init),
                rel(wire::INIT_IN_CONTAINER)
            ),
        ),
        ("lxc.init.cmd".into(), wire::INIT_IN_CONTAINER.into()),
        ("lxc.hook.mount".into(), mount_hook_command(init, run_dir)),
        // LXC's own errors (a refused sysctl, a failed mount) go to this file: pct start
        // and lxc-start's stderr only say that the start failed. See `lxc_errors`.
        ("lxc.log.file".into(), log_file(run_dir).display().to_string()),
        ("lxc.log.level".into(), "ERROR".into()),
    ]
}

/// LXC's log of the container (`lxc.log.file`), errors only.
pub fn log_file(run_dir: &Path) -> PathBuf {
    run_dir.join("lxc.log")
}

/// The reasons LXC logged for a failed start, one per line, without LXC's prefix
/// (`lxc-start <name> <time> ERROR <module> - <file>:<line> - `), at most the last 8.
pub fn lxc_errors(run_dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(log_file(run_dir)) else { return Vec::new() };
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| l.contains(" ERROR "))
        .map(|l| {
            let after = l.split_once(" ERROR ").map_or(l, |(_, rest)| rest);
            // `<module> - <file>:<line> - <function>: <line> <message>` in LXC 5.
            after.splitn(3, " - ").nth(2).unwrap_or(after).trim().to_string()
        })
        .filter(|m| !m.is_empty())
        .collect();
    out.dedup();
    let skip = out.len().saturating_sub(8);
    out.drain(..skip);
    out
}

/// The first directory on the way to `path` that others cannot search (no o+x), if any.
pub fn unsearchable_ancestor(path: &Path) -> Result<Option<PathBuf>> {
    let abs = std::path::absolute(path)?;
    let mut cur = PathBuf::from("/");
    for comp in abs.components().skip(1) {
        let md = std::fs::metadata(&cur).with_context(|| format!("cannot stat {}", cur.display()))?;
        if md.mode() & 0o001 == 0 {
            return Ok(Some(cur));
        }
        cur.push(comp);
    }
    Ok(None)
}

/// Can a process with no privileges over `path`'s directories (the container's root
/// for an unprivileged container) reach it? `need` is the permission needed on the
/// final component (0o5 = r-x for a binary).
pub fn check_reachable(path: &Path, need: u32, what: &str) -> Result<()> {
    let abs = std::path::absolute(path)?;
    if let Some(dir) = unsearchable_ancestor(&abs)? {
        bail!(
            "{what} {} is not reachable by an unprivileged container's root: directory {} lacks o+x \
             (chmod o+x it, or install nexcage-init elsewhere and set `init` in the backend's configuration)",
            path.display(),
            dir.display()
        );
    }
    let md = std::fs::metadata(&abs).with_context(|| format!("cannot stat {what} {}", abs.display()))?;
    if md.mode() & need != need {
        bail!("{what} {} must be readable and executable by others (chmod o+rx)", abs.display());
    }
    Ok(())
}

/// Is this ELF binary statically linked (no program interpreter)? nexcage-init runs in
/// containers whose rootfs has no (or another) C library.
pub fn check_static(init: &Path) -> Result<()> {
    let bytes = std::fs::read(init).with_context(|| format!("cannot read nexcage-init {}", init.display()))?;
    let bad = || anyhow::anyhow!("nexcage-init {} is not an x86-64 ELF executable", init.display());
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return Err(bad());
    }
    let u16at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64at(0x20), u16at(0x36), u16at(0x38));
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        if off + 4 > bytes.len() {
            return Err(bad());
        }
        if u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) == 3 {
            bail!(
                "nexcage-init {} is dynamically linked; it must be static (build it with hack/build-init)",
                init.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_escapes() {
        assert_eq!(fstab_escape(Path::new("/a b/c\\d")), "/a\\040b/c\\134d");
        assert_eq!(fstab_unescape("/a\\040b/c\\134d"), "/a b/c\\d");
        let lines = lxc_lines(Path::new("/run/x 1"), Path::new("/usr/lib/nexcage-init"));
        assert_eq!(lines[0].1, "/run/x\\0401 dev/.nexcage none bind,create=dir 0 0");
        assert_eq!(lines[2], ("lxc.init.cmd".to_string(), "/dev/.nexcage-init".to_string()));
        assert_eq!(
            lines[3],
            ("lxc.hook.mount".to_string(), "/usr/lib/nexcage-init --lxc-mount-hook '/run/x 1'".to_string())
        );
        assert_eq!(lines[4], ("lxc.log.file".to_string(), "/run/x 1/lxc.log".to_string()));
        assert_eq!(
            mount_hook_command(Path::new("/a b/it's"), Path::new("/run/1")),
            r"env '/a b/it'\''s' --lxc-mount-hook /run/1"
        );
    }

    #[test]
    fn lxc_errors_are_the_messages_of_error_lines() {
        let t = tempfile::tempdir().unwrap();
        assert!(lxc_errors(t.path()).is_empty());
        std::fs::write(
            log_file(t.path()),
            "lxc-start 9000 20261126113200.123 ERROR conf - ../src/lxc/conf.c:3396 - Read-only file system - Failed to setup sysctl parameters kernel.msgmax to 12345\n\
             lxc-start 9000 20261126113200.124 WARN start - x.c:1 - f: 1 warned\n\
             lxc-start 9000 20261126113200.125 ERROR start - ../src/lxc/start.c:2107 - Failed to spawn container \"9000\"\n",
        )
        .unwrap();
        assert_eq!(
            lxc_errors(t.path()),
            vec![
                "Read-only file system - Failed to setup sysctl parameters kernel.msgmax to 12345".to_string(),
                "Failed to spawn container \"9000\"".to_string()
            ]
        );
    }

    #[test]
    fn run_dir_is_private_and_owned() {
        let t = tempfile::tempdir().unwrap();
        let d = create(t.path(), 9000, (0, 0)).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(base(t.path())).unwrap().mode() & 0o777, 0o711);
        std::fs::write(d.join("stale"), "x").unwrap();
        let d2 = create(t.path(), 9000, (0, 0)).unwrap();
        assert!(!d2.join("stale").exists(), "a stale run dir is recreated");
        remove(&d2).unwrap();
        remove(&d2).unwrap();
    }

    #[test]
    fn reachability() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("bin");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let e = check_reachable(&f, 0o5, "nexcage-init").unwrap_err().to_string();
        assert!(e.contains("lacks o+x"), "{e}");
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        check_reachable(&f, 0o5, "nexcage-init").unwrap();
    }

    #[test]
    fn dynamic_binaries_are_refused() {
        let e = check_static(Path::new("/bin/true")).unwrap_err().to_string();
        assert!(e.contains("dynamically linked"), "{e}");
    }
}
