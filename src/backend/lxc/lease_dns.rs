//! The name servers of a DHCP lease, in the CT's `/etc/resolv.conf`, where Proxmox's DHCP
//! client could not put them.
//!
//! For a host-managed `ip=dhcp` NIC, `pct start` (Proxmox VE 9) runs `dhclient -1` with
//! LXC's `dhclient-script`, which writes the lease's name servers to
//! `$ROOTFS/etc/resolv.conf` as host root. On an unprivileged CT whose root is the
//! bundle's rootfs in place (an idmapped mount) host root is no user of that mount and
//! cannot create files there, so the write fails and the program has no name server (seen
//! on Proxmox VE 9 and the emulator). After `pct start` nexcage reads the lease
//! (`/var/lib/lxc/<vmid>/hook/dhclient4-<eth>.leases`, the newest `lease` block of a file
//! this start wrote) and, when the CT's resolv.conf lacks its name servers, writes what
//! the script would have, as the CT's root, never following a symlink out of the CT.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::SystemTime;

/// What a lease says about names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LeaseDns {
    pub domain: Option<String>,
    pub search: Vec<String>,
    pub servers: Vec<String>,
}

impl LeaseDns {
    /// resolv.conf as LXC's dhclient-script writes it.
    pub fn resolv_conf(&self) -> String {
        let mut out = String::new();
        if let Some(d) = &self.domain {
            out.push_str(&format!("domain {d}\n"));
        }
        let mut search = self.search.clone();
        if let Some(d) = &self.domain {
            if !search.is_empty() && !search.iter().any(|s| s.trim_end_matches('.') == d) {
                search.insert(0, d.clone());
            }
            if search.is_empty() {
                search.push(d.clone());
            }
        }
        if !search.is_empty() {
            out.push_str(&format!("search {}\n", search.join(" ")));
        }
        for s in &self.servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
        out
    }

    /// Does `text` (a resolv.conf) already name these servers first, in this order?
    pub fn is_in(&self, text: &str) -> bool {
        let have: Vec<&str> =
            text.lines().filter_map(|l| l.strip_prefix("nameserver")).map(str::trim).take(self.servers.len()).collect();
        have == self.servers
    }
}

/// The names of the newest `lease { ... }` block of a dhclient lease file (IPv4:
/// `domain-name-servers`, `domain-name`, `domain-search`); None without name servers.
pub fn parse_lease(text: &str) -> Option<LeaseDns> {
    let block = text.rsplit_once("lease {")?.1;
    let block = block.split_once('}').map_or(block, |(b, _)| b);
    let mut dns = LeaseDns::default();
    for line in block.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("option ") else { continue };
        let rest = rest.trim_end_matches(';');
        let Some((key, value)) = rest.split_once(' ') else { continue };
        let words = || value.split(',').map(|w| w.trim().trim_matches('"').to_string()).filter(|w| !w.is_empty());
        match key {
            "domain-name-servers" => dns.servers = words().collect(),
            "domain-name" => dns.domain = words().next().and_then(|d| d.split_whitespace().next().map(str::to_string)),
            "domain-search" => dns.search = words().collect(),
            _ => {}
        }
    }
    (!dns.servers.is_empty()).then_some(dns)
}

/// The names of the IPv4 leases `pct start` wrote for CT `vmid` since `since`, NIC by NIC
/// (file name order), merged: the first lease's domain, every server and search domain
/// once.
pub fn leases_since(pve_root: &Path, vmid: u32, since: SystemTime) -> Option<LeaseDns> {
    let hook = pve_root.join("var/lib/lxc").join(vmid.to_string()).join("hook");
    let mut files: Vec<_> = std::fs::read_dir(hook)
        .ok()?
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("dhclient4-") && n.ends_with(".leases")
        })
        .filter(|e| e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t >= since))
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut all: Option<LeaseDns> = None;
    for f in files {
        let Some(d) = std::fs::read_to_string(&f).ok().as_deref().and_then(parse_lease) else { continue };
        match &mut all {
            None => all = Some(d),
            Some(a) => {
                for s in d.servers {
                    if !a.servers.contains(&s) {
                        a.servers.push(s);
                    }
                }
                for s in d.search {
                    if !a.search.contains(&s) {
                        a.search.push(s);
                    }
                }
            }
        }
    }
    all
}

/// Why the CT's resolv.conf could not be written.
#[derive(Debug, thiserror::Error)]
#[error("the DHCP lease's name servers: cannot write /etc/resolv.conf of the CT (init pid {pid}): {what}: {err}")]
pub struct WriteError {
    pid: i32,
    what: &'static str,
    err: std::io::Error,
}

/// Put `dns` into the resolv.conf of the CT whose init is `init_pid`, unless it is there:
/// a new file in the CT's `/etc` (resolved inside the CT's root), renamed over
/// `resolv.conf` (replacing a symlink, never following it), created by `owner` (the CT's
/// root on the host), so that an idmapped root shows it as the CT's root's. Returns
/// whether it wrote.
pub fn ensure(init_pid: i32, owner: (u32, u32), dns: &LeaseDns) -> Result<bool, WriteError> {
    let fail = |what, err| WriteError { pid: init_pid, what, err };
    let root = open(libc::AT_FDCWD, &format!("/proc/{init_pid}/root"), libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(|e| fail("open the CT's root", e))?;
    let etc = openat2_in_root(&root, "etc").map_err(|e| fail("open /etc inside the CT", e))?;
    let current = open(etc.as_raw_fd(), "resolv.conf", libc::O_RDONLY | libc::O_NOFOLLOW, 0)
        .ok()
        .and_then(|fd| std::io::read_to_string(std::fs::File::from(fd)).ok())
        .unwrap_or_default();
    if dns.is_in(&current) {
        return Ok(false);
    }
    let text = dns.resolv_conf();
    // setfsuid/setfsgid are per thread: a thread of its own writes as the CT's root.
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: plain syscalls; they change only this thread's filesystem ids.
            unsafe {
                libc::setfsgid(owner.1);
                libc::setfsuid(owner.0);
            }
            let tmp = "resolv.conf.nexcage-new";
            let _ = unlinkat(&etc, tmp);
            let fd =
                open(etc.as_raw_fd(), tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW, 0o644)
                    .map_err(|e| fail("create /etc/resolv.conf.nexcage-new", e))?;
            std::fs::File::from(fd).write_all(text.as_bytes()).map_err(|e| fail("write it", e))?;
            rename_in(&etc, tmp, "resolv.conf").map_err(|e| {
                let _ = unlinkat(&etc, tmp);
                fail("rename it to /etc/resolv.conf", e)
            })
        })
        .join()
        .unwrap_or_else(|_| Err(fail("write it", std::io::Error::other("the writing thread panicked"))))
    })?;
    Ok(true)
}

fn cstr(s: &str) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
}

fn open(dir: i32, path: &str, flags: i32, mode: libc::mode_t) -> std::io::Result<OwnedFd> {
    let p = cstr(path)?;
    // SAFETY: valid C string; the returned descriptor is owned here.
    let fd = unsafe { libc::openat(dir, p.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `path` under `root` as if `root` were `/` (openat2 RESOLVE_IN_ROOT), a directory, O_PATH.
fn openat2_in_root(root: &OwnedFd, path: &str) -> std::io::Result<OwnedFd> {
    let p = cstr(path)?;
    // SAFETY: open_how is plain data; zeroed is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid pointers for the call's duration.
    let fd = unsafe {
        libc::syscall(libc::SYS_openat2, root.as_raw_fd(), p.as_ptr(), &how, std::mem::size_of::<libc::open_how>())
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn unlinkat(dir: &OwnedFd, name: &str) -> std::io::Result<()> {
    let n = cstr(name)?;
    // SAFETY: valid C string.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), n.as_ptr(), 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn rename_in(dir: &OwnedFd, from: &str, to: &str) -> std::io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: valid C strings.
    if unsafe { libc::renameat(dir.as_raw_fd(), f.as_ptr(), dir.as_raw_fd(), t.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASES: &str = r#"lease {
  interface "eth0";
  fixed-address 10.10.10.208;
  option domain-name-servers 10.10.10.9;
  expire 1 2026/11/30 03:58:09;
}
lease {
  interface "eth0";
  fixed-address 10.10.10.209;
  option subnet-mask 255.255.255.0;
  option routers 10.10.10.2;
  option domain-name-servers 10.10.10.2, 10.10.10.3;
  option domain-name "lan.example";
  option domain-search "a.example", "b.example";
  renew 1 2026/11/30 03:26:03;
}
"#;

    #[test]
    fn the_newest_lease_gives_the_names() {
        let d = parse_lease(LEASES).unwrap();
        assert_eq!(d.servers, ["10.10.10.2", "10.10.10.3"]);
        assert_eq!(d.domain.as_deref(), Some("lan.example"));
        assert_eq!(d.search, ["a.example", "b.example"]);
        assert_eq!(
            d.resolv_conf(),
            "domain lan.example\nsearch lan.example a.example b.example\nnameserver 10.10.10.2\nnameserver 10.10.10.3\n"
        );
        assert!(d.is_in("# x\nnameserver 10.10.10.2\nnameserver  10.10.10.3\nnameserver 1.1.1.1\n"));
        assert!(!d.is_in("nameserver 10.10.10.3\nnameserver 10.10.10.2\n"));
        assert!(!d.is_in(""));
        assert_eq!(parse_lease("lease {\n  fixed-address 1.2.3.4;\n}\n"), None, "no name servers");
        assert_eq!(parse_lease(""), None);
        let only = parse_lease("lease {\n option domain-name-servers 9.9.9.9;\n option domain-name \"x.example\";\n}")
            .unwrap();
        assert_eq!(only.resolv_conf(), "domain x.example\nsearch x.example\nnameserver 9.9.9.9\n");
    }

    #[test]
    fn only_leases_written_since_the_start_count() {
        let root = tempfile::tempdir().unwrap();
        let hook = root.path().join("var/lib/lxc/9000/hook");
        std::fs::create_dir_all(&hook).unwrap();
        std::fs::write(hook.join("dhclient4-eth0.leases"), LEASES).unwrap();
        std::fs::write(hook.join("dhclient4-eth0.pid"), "1").unwrap();
        let before = SystemTime::now() - std::time::Duration::from_secs(60);
        let after = SystemTime::now() + std::time::Duration::from_secs(60);
        assert_eq!(leases_since(root.path(), 9000, before).unwrap().servers, ["10.10.10.2", "10.10.10.3"]);
        assert_eq!(leases_since(root.path(), 9000, after), None, "a lease file of an earlier CT");
        assert_eq!(leases_since(root.path(), 9001, before), None);
    }
}
