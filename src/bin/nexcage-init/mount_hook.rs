//! `nexcage-init --lxc-mount-hook RUN_DIR`: LXC's mount hook (`lxc.hook.mount`), which
//! applies the bundle's mount hardening (wire::ContainerSetup, from `RUN_DIR/setup.json`)
//! in runc's order (after bringing `lo` up in a network namespace of the container's
//! own): `linux.sysctl`, the `nosuid`, `nodev`, `noexec`, `ro` of the `/dev`
//! and `/sys` mounts, `linux.readonlyPaths`, `linux.maskedPaths`.
//!
//! Why a hook and not pid 1: Proxmox VE's generated AppArmor profile (LXC's base profile)
//! refuses every remount under `/proc`, `/sys` and `/dev` to the container's processes,
//! nexcage-init included. LXC runs mount hooks in the container's mount namespace (and
//! user namespace) after it has mounted the rootfs, `/dev`, `/proc`, `/sys` and the mount
//! entries, and before the profile applies (at init's exec). Paths are resolved inside
//! the rootfs (`LXC_ROOTFS_MOUNT`) with `openat2(RESOLVE_IN_ROOT)`, so a symlink in the
//! image cannot point a mount at the host. Sysctls are written through this process's
//! own `/proc/sys` (the host's procfs, still mounted here, read-write where the
//! container's is not): a namespaced sysctl's file shows the value of the opener's
//! namespace, and the hook runs in the container's; nexcage's mapping lets only
//! namespaced keys through. Any failure fails the start and names the
//! path; the message also goes to `RUN_DIR/mount-hook.error`, where nexcage reads it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{fstatvfs, FsFlags};

use crate::wire::{ContainerSetup, MOUNT_HOOK_ERROR, MOUNT_HOOK_SETUP};

/// Run the hook; LXC appends `<container name> lxc mount` to the arguments.
pub fn main(args: &[String]) -> i32 {
    let Some(run_dir) = args.first() else {
        eprintln!("nexcage-init --lxc-mount-hook: needs the run directory");
        return 2;
    };
    let run_dir = Path::new(run_dir);
    match run(run_dir) {
        Ok(()) => 0,
        Err(e) => {
            let msg = format!("nexcage mount hook: {e}");
            eprintln!("{msg}");
            let _ = std::fs::write(run_dir.join(MOUNT_HOOK_ERROR), &msg);
            1
        }
    }
}

fn run(run_dir: &Path) -> Result<(), String> {
    let setup_file = run_dir.join(MOUNT_HOOK_SETUP);
    let text = std::fs::read(&setup_file).map_err(|e| format!("{}: {e}", setup_file.display()))?;
    let setup: ContainerSetup = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", setup_file.display()))?;
    let rootfs = std::env::var("LXC_ROOTFS_MOUNT").map_err(|_| "LXC_ROOTFS_MOUNT is not set".to_string())?;
    let root = open_path(libc::AT_FDCWD, &rootfs, 0).map_err(|e| format!("rootfs {rootfs}: {e}"))?;
    apply(&root, &setup)
}

/// Apply `setup` to the tree under `root`.
pub fn apply(root: &OwnedFd, setup: &ContainerSetup) -> Result<(), String> {
    if setup.loopback_up {
        // The hook runs in the container's network namespace, before Proxmox's AppArmor
        // profile applies.
        interface_up("lo").map_err(|e| format!("network: bringing lo up: {e}"))?;
    }
    for (key, value) in &setup.sysctls {
        write_sysctl(key, value).map_err(|e| format!("linux.sysctl[{key:?}]: {e}"))?;
    }
    for (path, names) in &setup.remounts {
        let mut add = MsFlags::empty();
        for f in names {
            add |= match f.as_str() {
                "nosuid" => MsFlags::MS_NOSUID,
                "nodev" => MsFlags::MS_NODEV,
                "noexec" => MsFlags::MS_NOEXEC,
                "ro" => MsFlags::MS_RDONLY,
                _ => MsFlags::empty(),
            };
        }
        if add.is_empty() {
            continue;
        }
        let what = || format!("mounts: {path} ({})", names.join(","));
        match resolve(root, path) {
            Ok(fd) => remount_bind(&fd, add).map_err(|e| format!("{}: remount: {e}", what()))?,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(format!("{}: {e}", what())),
        }
    }
    for p in &setup.readonly_paths {
        readonly_path(root, p).map_err(|e| format!("linux.readonlyPaths: {p}: {e}"))?;
    }
    for p in &setup.masked_paths {
        mask_path(root, p).map_err(|e| format!("linux.maskedPaths: {p}: {e}"))?;
    }
    Ok(())
}

/// Set IFF_UP on the interface `name` of this process's network namespace.
fn interface_up(name: &str) -> nix::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(Errno::EINVAL);
    }
    for (d, b) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = b as libc::c_char;
    }
    // SAFETY: a socket we own and an ifreq of the kernel's layout, named above.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(Errno::last());
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: as above.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// openat2(dirfd, path, O_PATH, RESOLVE_IN_ROOT | `resolve`).
fn open_path(dirfd: i32, path: &str, resolve: u64) -> nix::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| Errno::EINVAL)?;
    // SAFETY: open_how is plain data; zeroed is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: valid C string and open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `path` (absolute, as in the bundle) inside `root`; symlinks stay inside it, and
/// magic links (/proc/self/fd/...) are refused.
fn resolve(root: &OwnedFd, path: &str) -> nix::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    open_path(root.as_raw_fd(), rel, libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS)
}

/// The descriptor as a path mount(2) accepts.
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Bind-remount with the mount's current flags plus `add` (an unprivileged container may
/// not clear flags LXC locked; keeping them all is always allowed).
fn remount_bind(fd: &OwnedFd, add: MsFlags) -> nix::Result<()> {
    let cur = fstatvfs(fd)?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | add;
    for (st, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if cur.contains(st) {
            flags |= ms;
        }
    }
    mount(None::<&str>, fd_path(fd).as_str(), None::<&str>, flags, None::<&str>)
}

/// runc's readonlyPath: bind the path onto itself, then remount the new mount read-only.
/// Missing paths are skipped, as runc does.
fn readonly_path(root: &OwnedFd, path: &str) -> nix::Result<()> {
    let fd = match resolve(root, path) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r?,
    };
    let p = fd_path(&fd);
    mount(Some(p.as_str()), p.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)?;
    // The descriptor still names the mount underneath: open the new one.
    let top = resolve(root, path)?;
    remount_bind(&top, MsFlags::MS_RDONLY)
}

/// runc's maskPath: /dev/null over a file, an empty read-only tmpfs over a directory.
/// (The host's /dev/null: the container's /dev is not filled yet when mount hooks run.)
fn mask_path(root: &OwnedFd, path: &str) -> nix::Result<()> {
    let fd = match resolve(root, path) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r?,
    };
    let p = fd_path(&fd);
    let is_dir = nix::sys::stat::fstat(fd.as_raw_fd()).map(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR)?;
    if is_dir {
        mount(Some("tmpfs"), p.as_str(), Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)
    } else {
        mount(Some("/dev/null"), p.as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
    }
}

/// Write a namespaced sysctl of this process's namespaces (`net.ipv4.ip_forward` is
/// `/proc/sys/net/ipv4/ip_forward`). The UTS names go through their system calls: their
/// /proc/sys files belong to the host's root whatever the namespace, so an unprivileged
/// container's root may not write them (EACCES), while `setdomainname` only asks for
/// CAP_SYS_ADMIN in the user namespace that owns the UTS namespace.
fn write_sysctl(key: &str, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    match key {
        "kernel.domainname" => {
            let v = value.trim_end_matches('\n');
            // SAFETY: a valid pointer and length of a live buffer.
            let r = unsafe { libc::setdomainname(v.as_ptr().cast(), v.len()) };
            return if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) };
        }
        "kernel.hostname" => {
            return nix::unistd::sethostname(value.trim_end_matches('\n')).map_err(std::io::Error::from);
        }
        _ => {}
    }
    let path = Path::new("/proc/sys").join(key.replace('.', "/"));
    let mut f = std::fs::OpenOptions::new().write(true).open(&path)?;
    f.write_all(value.as_bytes())
}
