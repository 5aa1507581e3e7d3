//! An engine's network for an unprivileged container: its interfaces move.
//!
//! Podman, `ctr run --cni` and CNI in general network a namespace of their own
//! (`/run/netns/<name>`) and name it in the bundle. A privileged container joins it
//! (`lxc.namespace.share.net`); an unprivileged one cannot: the namespace belongs to the
//! host's user namespace, and the kernel refuses a container's user namespace to enter it
//! (LXC fails the start). So the container gets a network namespace of its own and, after
//! `pct start` and before the program runs, nexcage (host root, which may enter both)
//! moves every interface of the engine's namespace but `lo` into it, with its addresses and
//! routes, which a move drops. The program then has the engine's address, the engine's
//! port forwards (DNAT to that address) reach it, and the engine's veth peer stays on the
//! engine's bridge. When the container ends, the interfaces move back
//! ([`give_back`]), so that the engine's teardown finds what it made where it made it.
//!
//! A namespace some process already lives in (a pod's infra container, `--network
//! container:`) is refused: moving its interfaces would cut that process off.
//!
//! The work is done by iproute2's `ip` (on every Proxmox VE host), run in the namespace
//! by `setns` before exec, with argument vectors only.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum NetMoveError {
    #[error("{path}: {err}")]
    Open { path: PathBuf, err: std::io::Error },
    #[error("the network namespace {path} is in use by pid {pid} ({comm}): its interfaces cannot move into an unprivileged container without cutting that process off")]
    InUse { path: PathBuf, pid: i32, comm: String },
    #[error("`ip {args}` in {ns}: {why}")]
    Ip { args: String, ns: String, why: String },
}

/// Where an interface's configuration was read from and what is re-applied after the move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub name: String,
    /// `ip addr add` arguments, one vector per address (`10.88.0.5/16 broadcast ...`).
    pub addresses: Vec<Vec<String>>,
    pub up: bool,
}

/// What moved: the links, and the routes (`ip [-6] route add` arguments) that were put
/// back after them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub links: Vec<Link>,
    pub routes: Vec<Vec<String>>,
}

/// How long a process may stay in an engine's network namespace before nexcage calls
/// the namespace in use: engines pass through it while they set it up. A resident (a
/// pod's infra container, `--network container:`) stays.
pub const IN_USE_PATIENCE: Duration = Duration::from_secs(10);

/// Fails when a process lives in the network namespace at `path`: one that is in it
/// now and still (or another one) after `patience`.
pub fn check_unused(path: &Path, patience: Duration) -> Result<(), NetMoveError> {
    let target = std::fs::metadata(path).map_err(|err| NetMoveError::Open { path: path.into(), err })?;
    let deadline = Instant::now() + patience;
    loop {
        let Some((pid, comm)) = first_resident((target.dev(), target.ino())) else { return Ok(()) };
        if Instant::now() >= deadline {
            return Err(NetMoveError::InUse { path: path.into(), pid, comm });
        }
        log::debug!("{}: pid {pid} ({comm}) is in it; waiting for it to leave", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first process (but this one) that lives in the network namespace `ns` (device,
/// inode): every thread of it is there. A process with only some threads there does not
/// live there: Go engines (Podman 5.4) create a namespace on a locked thread, and when
/// that thread is the main one Go parks it instead of ending it, so the engine's
/// `/proc/PID/ns/net` names the container's namespace for as long as it runs (seen in
/// the Proxmox VE 9 test VM, 2026-11-29) while its other threads stay in the host's.
fn first_resident(ns: (u64, u64)) -> Option<(i32, String)> {
    let me = std::process::id() as i32;
    let in_ns = |p: &Path| std::fs::metadata(p.join("ns/net")).is_ok_and(|m| (m.dev(), m.ino()) == ns);
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if pid == me || !in_ns(&entry.path()) {
            continue;
        }
        let all_threads = std::fs::read_dir(entry.path().join("task"))
            .map(|tasks| tasks.flatten().all(|t| in_ns(&t.path())))
            .unwrap_or(true);
        if all_threads {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default().trim().to_string();
            return Some((pid, comm));
        }
    }
    None
}

fn open_ns(path: &Path) -> Result<OwnedFd, NetMoveError> {
    std::fs::File::open(path).map(OwnedFd::from).map_err(|err| NetMoveError::Open { path: path.into(), err })
}

/// Run `ip args` in the network namespace `ns` (named `label` in errors); its stdout.
fn ip(ns: BorrowedFd, label: &str, args: &[String]) -> Result<String, NetMoveError> {
    let fd = ns.as_raw_fd();
    let mut cmd = Command::new("ip");
    cmd.args(args);
    // SAFETY: only setns(2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let fail = |why: String| NetMoveError::Ip { args: args.join(" "), ns: label.to_string(), why };
    let out = cmd.output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

#[derive(Deserialize)]
struct IpLink {
    ifname: String,
    #[serde(default)]
    link_type: String,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    addr_info: Vec<IpAddr>,
}

#[derive(Deserialize)]
struct IpAddr {
    family: String,
    local: String,
    prefixlen: u8,
    #[serde(default)]
    broadcast: Option<String>,
    #[serde(default)]
    scope: String,
}

#[derive(Deserialize)]
struct IpRoute {
    dst: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    dev: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    prefsrc: Option<String>,
    #[serde(default)]
    metric: Option<u32>,
}

/// The links (but `lo`) of `ip -json addr show` output, with what to re-apply.
fn parse_links(json: &str) -> Result<Vec<Link>, String> {
    let links: Vec<IpLink> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(links
        .into_iter()
        .filter(|l| l.link_type != "loopback")
        .map(|l| Link {
            addresses: l
                .addr_info
                .iter()
                // Link-local addresses come back by themselves.
                .filter(|a| a.scope != "link" && a.scope != "host")
                .map(|a| {
                    let mut v = vec![format!("{}/{}", a.local, a.prefixlen)];
                    if let Some(b) = a.broadcast.as_ref().filter(|_| a.family == "inet") {
                        v.extend(["broadcast".to_string(), b.clone()]);
                    }
                    v
                })
                .collect(),
            up: l.flags.iter().any(|f| f == "UP"),
            name: l.ifname,
        })
        .collect())
}

/// `ip route add` arguments for the routes of `ip -json [-6] route show` that adding the
/// addresses does not recreate (those have protocol `kernel`), on the moved `links`.
fn parse_routes(json: &str, family: &str, links: &[Link]) -> Result<Vec<Vec<String>>, String> {
    let routes: Vec<IpRoute> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(routes
        .into_iter()
        .filter(|r| r.protocol.as_deref() != Some("kernel"))
        .filter(|r| r.dev.as_ref().is_none_or(|d| links.iter().any(|l| &l.name == d)))
        .map(|r| {
            let mut v = vec![family.to_string(), "route".into(), "add".into(), r.dst];
            if let Some(g) = r.gateway {
                v.extend(["via".into(), g]);
            }
            if let Some(d) = r.dev {
                v.extend(["dev".into(), d]);
            }
            if let Some(s) = r.scope.filter(|s| s != "global") {
                v.extend(["scope".into(), s]);
            }
            if let Some(s) = r.prefsrc {
                v.extend(["src".into(), s]);
            }
            if let Some(m) = r.metric {
                v.extend(["metric".into(), m.to_string()]);
            }
            v
        })
        .collect())
}

/// Interfaces that moved, and what it takes to give them back: the container's network
/// namespace, held open so that it outlives the container's processes until then.
/// Dropped without [`NetReturn::handed_over`], it gives them back (a create that fails
/// after the move).
#[derive(Debug)]
pub struct NetReturn {
    pub ct: OwnedFd,
    pub engine: PathBuf,
    pub moved: Moved,
    armed: bool,
}

impl NetReturn {
    /// A return taken over from another process (the supervisor's inherited fd).
    pub fn new(ct: OwnedFd, engine: PathBuf, moved: Moved) -> NetReturn {
        NetReturn { ct, engine, moved, armed: true }
    }

    pub fn give_back(mut self) {
        self.armed = false;
        give_back(self.ct.as_fd(), &self.engine, &self.moved)
    }

    /// Another process (the supervisor) gives the interfaces back.
    pub fn handed_over(mut self) {
        self.armed = false;
    }
}

impl Drop for NetReturn {
    fn drop(&mut self) {
        if self.armed {
            give_back(self.ct.as_fd(), &self.engine, &self.moved)
        }
    }
}

/// Move the interfaces of the namespace at `engine` into the network namespace of
/// process `ct_pid` (the container's init), addresses, state and routes with them.
pub fn adopt(engine: &Path, ct_pid: i32) -> Result<NetReturn, NetMoveError> {
    check_unused(engine, IN_USE_PATIENCE)?;
    let from = open_ns(engine)?;
    let ct_path = PathBuf::from(format!("/proc/{ct_pid}/ns/net"));
    let to = open_ns(&ct_path)?;
    let from_label = engine.display().to_string();
    let to_label = format!("the container's network namespace (pid {ct_pid})");
    let bad = |args: &[&str], why: String| NetMoveError::Ip { args: args.join(" "), ns: from_label.clone(), why };

    let links = parse_links(&ip(from.as_fd(), &from_label, &words(&["-json", "addr", "show"]))?)
        .map_err(|e| bad(&["-json", "addr", "show"], e))?;
    let mut routes = Vec::new();
    for family in ["-4", "-6"] {
        let args = [family, "-json", "route", "show", "table", "main"];
        let out = ip(from.as_fd(), &from_label, &words(&args))?;
        routes.extend(parse_routes(&out, family, &links).map_err(|e| bad(&args, e))?);
    }
    let moved = Moved { links, routes };
    let target = ct_pid.to_string();
    let back = engine.to_str().unwrap_or_default();
    let mut gone: Vec<&Link> = Vec::new();
    let result = (|| {
        for l in &moved.links {
            // `ip ... netns N` names the namespace of pid N; an argument with a '/' is
            // opened as a path (the engine's, on the way back).
            ip(from.as_fd(), &from_label, &words(&["link", "set", "dev", &l.name, "netns", &target]))?;
            gone.push(l);
        }
        configure(to.as_fd(), &to_label, &moved)
    })();
    if let Err(e) = result {
        for l in gone {
            let _ = ip(to.as_fd(), &to_label, &words(&["link", "set", "dev", &l.name, "netns", back]));
        }
        let _ = configure_partial(from.as_fd(), &from_label, &moved);
        return Err(e);
    }
    Ok(NetReturn::new(to, engine.to_path_buf(), moved))
}

/// Addresses, link state and routes of `moved`, applied in `ns`.
fn configure(ns: BorrowedFd, label: &str, moved: &Moved) -> Result<(), NetMoveError> {
    for l in &moved.links {
        for a in &l.addresses {
            let mut args = words(&["addr", "add"]);
            args.extend(a.iter().cloned());
            args.extend(["dev".to_string(), l.name.clone()]);
            ip(ns, label, &args)?;
        }
        if l.up {
            ip(ns, label, &words(&["link", "set", "dev", &l.name, "up"]))?;
        }
    }
    for r in &moved.routes {
        ip(ns, label, r)?;
    }
    Ok(())
}

/// As [`configure`], going on past errors (putting things back after a failure).
fn configure_partial(ns: BorrowedFd, label: &str, moved: &Moved) -> Vec<NetMoveError> {
    let mut errors = Vec::new();
    for l in &moved.links {
        let one = Moved { links: vec![l.clone()], routes: Vec::new() };
        if let Err(e) = configure(ns, label, &one) {
            errors.push(e);
        }
    }
    for r in &moved.routes {
        if let Err(e) = ip(ns, label, r) {
            errors.push(e);
        }
    }
    errors
}

/// Move the `moved` interfaces from the container's network namespace `ct` back into the
/// engine's at `engine`, configured as they were. Best effort: what fails is logged (the
/// interfaces then end with the container's namespace, as a veth does when a runc
/// container's namespace goes).
pub fn give_back(ct: BorrowedFd, engine: &Path, moved: &Moved) {
    let Ok(to) = open_ns(engine) else {
        log::debug!("network namespace {} is gone: nothing to give back", engine.display());
        return;
    };
    let label = engine.display().to_string();
    let back = engine.to_str().unwrap_or_default();
    let mut any = false;
    for l in &moved.links {
        match ip(ct, "the container's network namespace", &words(&["link", "set", "dev", &l.name, "netns", back])) {
            Ok(_) => any = true,
            Err(e) => log::warn!("giving {} back to {label}: {e}", l.name),
        }
    }
    if any {
        for e in configure_partial(to.as_fd(), &label, moved) {
            log::warn!("giving the network back to {label}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDRS: &str = r#"[
      {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"link_type":"loopback",
       "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
      {"ifindex":2,"link_index":9,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],
       "mtu":1500,"link_type":"ether","address":"7a:1b:2c:3d:4e:5f",
       "addr_info":[{"family":"inet","local":"10.88.0.7","prefixlen":16,"broadcast":"10.88.255.255","scope":"global","label":"eth0"},
                    {"family":"inet6","local":"fd00::7","prefixlen":64,"scope":"global"},
                    {"family":"inet6","local":"fe80::781b:2cff:fe3d:4e5f","prefixlen":64,"scope":"link"}]}
    ]"#;

    #[test]
    fn links_keep_their_global_addresses_and_state() {
        let links = parse_links(ADDRS).unwrap();
        assert_eq!(
            links,
            vec![Link {
                name: "eth0".into(),
                addresses: vec![words(&["10.88.0.7/16", "broadcast", "10.88.255.255"]), words(&["fd00::7/64"])],
                up: true,
            }]
        );
    }

    #[test]
    fn routes_the_addresses_do_not_bring_back() {
        let links = parse_links(ADDRS).unwrap();
        let v4 = r#"[{"dst":"default","gateway":"10.88.0.1","dev":"eth0","flags":[]},
                     {"dst":"10.88.0.0/16","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"10.88.0.7","flags":[]},
                     {"dst":"10.99.0.0/16","dev":"eth1","flags":[]}]"#;
        assert_eq!(
            parse_routes(v4, "-4", &links).unwrap(),
            vec![words(&["-4", "route", "add", "default", "via", "10.88.0.1", "dev", "eth0"])]
        );
        let v6 = r#"[{"dst":"fd00::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},
                     {"dst":"default","gateway":"fd00::1","dev":"eth0","metric":1024,"flags":[],"pref":"medium"}]"#;
        assert_eq!(
            parse_routes(v6, "-6", &links).unwrap(),
            vec![words(&["-6", "route", "add", "default", "via", "fd00::1", "dev", "eth0", "metric", "1024"])]
        );
        assert!(parse_routes("not json", "-4", &links).is_err());
    }

    #[test]
    fn a_namespace_with_a_process_in_it_is_in_use() {
        // Our own network namespace has other processes (cargo's, at least), and the
        // message names one.
        let e = check_unused(Path::new("/proc/self/ns/net"), Duration::ZERO).unwrap_err();
        let NetMoveError::InUse { pid, comm, .. } = &e else { panic!("{e}") };
        assert!(*pid != std::process::id() as i32 && e.to_string().contains(&format!("pid {pid} ({comm})")), "{e}");
        assert!(matches!(check_unused(Path::new("/nonexistent"), Duration::ZERO), Err(NetMoveError::Open { .. })));
    }

    /// A named network namespace (`ip netns add`) of one test, deleted when dropped, also
    /// when an assertion fails.
    struct TestNetns {
        name: String,
        path: PathBuf,
    }

    impl TestNetns {
        fn add(prefix: &str) -> TestNetns {
            let name = format!("{prefix}{}", std::process::id());
            assert!(Command::new("ip").args(["netns", "add", &name]).status().unwrap().success());
            let path = PathBuf::from(format!("/run/netns/{name}"));
            TestNetns { name, path }
        }

        /// Wait (at most 5 s) until process `pid`'s main thread is in this namespace.
        fn wait_for(&self, pid: u32) {
            let ns = std::fs::metadata(&self.path).unwrap();
            let proc_ns = PathBuf::from(format!("/proc/{pid}/ns/net"));
            let deadline = Instant::now() + Duration::from_secs(5);
            while !std::fs::metadata(&proc_ns).is_ok_and(|m| (m.dev(), m.ino()) == (ns.dev(), ns.ino())) {
                assert!(Instant::now() < deadline, "pid {pid} never entered {}", self.name);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    impl Drop for TestNetns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "delete", &self.name]).status();
        }
    }

    /// A process passing through the namespace (as an engine setting it up) is waited
    /// for; without patience it makes the namespace in use. Needs root (`ip netns`);
    /// skipped otherwise.
    #[test]
    fn a_process_passing_through_is_waited_for() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let ns = TestNetns::add("nxpass");
        // `ip netns exec` enters the namespace and execs sleep in the same process.
        let mut visitor = Command::new("ip").args(["netns", "exec", &ns.name, "sleep", "2"]).spawn().unwrap();
        ns.wait_for(visitor.id());
        let now = check_unused(&ns.path, Duration::ZERO);
        let later = check_unused(&ns.path, Duration::from_secs(10));
        visitor.wait().unwrap();
        assert!(matches!(now, Err(NetMoveError::InUse { .. })), "{now:?}");
        assert!(later.is_ok(), "{later:?}");
    }

    /// A process whose main thread is in the namespace but another thread is not (a Go
    /// engine's parked thread) does not live there. Needs root (`ip netns`) and Debian's
    /// python3 (the two-thread process: ctypes setns on the main thread); skipped
    /// otherwise.
    #[test]
    fn a_process_with_only_its_main_thread_inside_does_not_live_there() {
        let python = Path::new("/usr/bin/python3");
        if !nix::unistd::Uid::effective().is_root() || !python.exists() {
            eprintln!("skipped: needs root and /usr/bin/python3");
            return;
        }
        let ns = TestNetns::add("nxpark");
        let script = format!(
            "import ctypes, os, threading, time\n\
             threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n\
             fd = os.open({:?}, os.O_RDONLY)\n\
             assert ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) == 0\n\
             time.sleep(5)\n",
            ns.path.display().to_string()
        );
        let mut engine = Command::new(python).args(["-c", &script]).spawn().unwrap();
        ns.wait_for(engine.id());
        let result = check_unused(&ns.path, Duration::ZERO);
        let _ = engine.kill();
        engine.wait().unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
}
