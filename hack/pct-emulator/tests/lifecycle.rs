//! Contract tests with real containers: create, start, exec, stop, shutdown, destroy;
//! privileged and unprivileged; detached start under a subreaper; networking; limits.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ancestors, emulated, vmid, Env};

fn uid_of(pid: i32) -> u32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap().split_whitespace().next().unwrap().parse().unwrap()
}

fn lifecycle(offset: u32, unprivileged: bool) {
    let mut env = Env::new();
    let v = env.track(vmid(offset));
    let vs = v.to_string();
    let t = env.template(&format!("life{offset}"), None);
    let unpriv = if unprivileged { "1" } else { "0" };
    let r = env.pct(&[
        "create",
        &vs,
        &t,
        "--ostype",
        "unmanaged",
        "--unprivileged",
        unpriv,
        "--entrypoint",
        "/bin/sleep 600",
    ]);
    r.ok();
    assert!(r.stdout.contains("extracting archive '"), "{}", r.stdout);
    if emulated() {
        // Ownership shifted by the id map for unprivileged containers.
        use std::os::unix::fs::MetadataExt;
        let sh = env.path(&format!("/var/lib/vz/images/{v}/subvol-{v}-disk-0/bin/busybox"));
        assert_eq!(std::fs::metadata(sh).unwrap().uid(), if unprivileged { 100000 } else { 0 });
    }
    env.pct(&["exec", &vs, "--", "true"]).fails(255, &format!("container '{v}' not running!"));
    env.pct(&["stop", &vs]).fails(255, &format!("CT {v} not running"));

    env.pct(&["start", &vs]).ok();
    assert_eq!(env.pct(&["status", &vs]).stdout, "status: running\n");
    let pid = env.init_pid(v);
    assert_eq!(uid_of(pid), if unprivileged { 100000 } else { 0 });
    env.pct(&["start", &vs]).fails(255, &format!("CT {v} already running"));

    let r = env.pct(&["exec", &vs, "--", "echo", "hello from", "ct"]);
    r.ok();
    assert_eq!(r.stdout, "hello from ct\n");
    let r = env.pct(&["exec", &vs, "--", "sh", "-c", "echo oops >&2; exit 42"]);
    assert_eq!(r.code, 42, "exit status of the command: {}", r.stderr);
    assert_eq!(r.stderr, "oops\n");
    // The caller's stdin reaches the command.
    let mut child = env.cmd(&["exec", &vs, "--", "cat"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped\n");
    env.pct(&["exec", &vs]).fails(255, "missing command");

    env.pct(&["destroy", &vs]).fails(255, &format!("unable to destroy CT {v} - container is running"));
    let r = env.pct(&["list"]);
    assert!(r.stdout.contains(&format!("{:<10} {:<10} ", v, "running")), "{}", r.stdout);

    env.pct(&["stop", &vs]).ok();
    assert_eq!(env.pct(&["status", &vs]).stdout, "status: stopped\n");
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_err(), "init still alive");

    env.pct(&["destroy", &vs]).ok();
    env.pct(&["config", &vs]).fails(2, "does not exist");
    if emulated() {
        assert!(!env.path(&format!("/var/lib/vz/images/{v}")).exists());
        assert!(!env.path(&format!("/var/lib/lxc/{v}")).exists());
    }
}

#[test]
fn unprivileged_lifecycle() {
    lifecycle(20, true);
}

#[test]
fn privileged_lifecycle() {
    lifecycle(21, false);
}

#[test]
fn shutdown_force_and_destroy_force() {
    let mut env = Env::new();
    let v = env.track(vmid(22));
    let vs = v.to_string();
    let t = env.template("shutdown", None);
    // sleep as PID 1 ignores SIGPWR: a clean shutdown cannot succeed.
    env.pct(&["create", &vs, &t, "--ostype", "unmanaged", "--entrypoint", "/bin/sleep 600"]).ok();
    env.pct(&["start", &vs]).ok();
    env.pct(&["shutdown", &vs, "--timeout", "1"]).fails(255, "container did not stop");
    assert_eq!(env.pct(&["status", &vs]).stdout, "status: running\n");
    env.pct(&["shutdown", &vs, "--timeout", "1", "--forceStop"]).ok();
    assert_eq!(env.pct(&["status", &vs]).stdout, "status: stopped\n");
    env.pct(&["start", &vs]).ok();
    let r = env.pct(&["destroy", &vs, "--force", "--purge"]);
    r.ok();
    assert!(r.stdout.contains(&format!("forced to stop CT {v} before destroying!")), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("purging CT {v} from related configurations..")), "{}", r.stdout);
    env.pct(&["status", &vs]).fails(2, "does not exist");
}

#[test]
fn start_fails_when_init_does_not_come_up() {
    let mut env = Env::new();
    let v = env.track(vmid(23));
    let vs = v.to_string();
    let t = env.template("badinit", None);
    env.pct(&["create", &vs, &t, "--ostype", "unmanaged", "--entrypoint", "/nonexistent/init"]).ok();
    env.pct(&["start", &vs]).fails(255, &format!("startup for container '{v}' failed"));
    assert_eq!(env.pct(&["status", &vs]).stdout, "status: stopped\n");
}

#[test]
fn container_is_not_a_descendant_of_a_subreaper_caller() {
    let mut env = Env::new();
    let v = env.track(vmid(24));
    let vs = v.to_string();
    let t = env.template("subreaper", None);
    env.pct(&["create", &vs, &t, "--ostype", "unmanaged", "--entrypoint", "/bin/sleep 600"]).ok();
    if emulated() {
        // The daemon must exist before the subreaper calls pct (see docs/pct-emulator.md).
        let st = Command::new(env.pct_path()).arg("--emulator-daemon").status().unwrap();
        assert!(st.success());
    }
    // A subreaper shell (like containerd-shim/conmon) runs `pct start`, then stays.
    let caller = env.cmd(&[]);
    let mut sh = Command::new("sh");
    sh.arg("-c").arg("\"$0\" start \"$1\" && sleep 30").arg(env.pct_path()).arg(&vs);
    for (k, val) in caller.get_envs() {
        if let Some(val) = val {
            sh.env(k, val);
        }
    }
    // SAFETY: prctl in the child before exec; the attribute survives execve.
    unsafe {
        sh.pre_exec(|| {
            if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut sh = sh.stdout(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.pct(&["status", &vs]).stdout != "status: running\n" {
        assert!(Instant::now() < deadline, "container did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = env.init_pid(v);
    let chain = ancestors(pid);
    let me = std::process::id() as i32;
    let shpid = sh.id() as i32;
    let _ = sh.kill();
    let _ = sh.wait();
    assert!(!chain.contains(&shpid), "init {pid} descends from the subreaper caller {shpid}: {chain:?}");
    assert!(!chain.contains(&me), "init {pid} descends from the test process: {chain:?}");
    env.pct(&["stop", &vs]).ok();
}

#[test]
fn network_static_dhcp_manual() {
    let mut env = Env::new();
    let v = env.track(vmid(25));
    let vs = v.to_string();
    let t = env.template("net", None);
    env.pct(&[
        "create",
        &vs,
        &t,
        "--ostype",
        "unmanaged",
        "--entrypoint",
        "/bin/sleep 600",
        "--net0",
        "name=eth0,bridge=vmbr0,ip=10.250.77.2/24,gw=10.250.77.1,host-managed=1",
        "--net1",
        "name=eth1,bridge=vmbr0,ip=dhcp",
        "--net2",
        "name=eth2,bridge=vmbr0,ip=manual",
        "--net3",
        "name=eth3,bridge=vmbr0,ip=10.250.78.2/24",
    ])
    .ok();
    env.pct(&["start", &vs]).ok();
    // host-managed (Proxmox VE 9): LXC sets the address and route, the link is up.
    let r = env.pct(&["exec", &vs, "--", "ip", "-4", "addr", "show", "eth0"]);
    r.ok();
    assert!(r.stdout.contains("inet 10.250.77.2/24"), "{}", r.stdout);
    let r = env.pct(&["exec", &vs, "--", "ip", "route"]);
    assert!(r.stdout.contains("default via 10.250.77.1"), "{}", r.stdout);
    // Otherwise an unmanaged container's interfaces exist, down and without addresses,
    // even a static one (the guest's ostype setup would configure it).
    for ifname in ["eth1", "eth2", "eth3"] {
        let r = env.pct(&["exec", &vs, "--", "ip", "-4", "addr", "show", ifname]);
        r.ok();
        assert!(!r.stdout.contains("inet "), "{ifname} configured: {}", r.stdout);
        let r = env.pct(&["exec", &vs, "--", "ip", "link", "show", ifname]);
        r.ok();
        let flags = r.stdout.split('<').nth(1).and_then(|f| f.split('>').next()).unwrap_or("");
        assert!(r.stdout.contains(ifname) && !flags.split(',').any(|f| f == "UP"), "{ifname} is up: {}", r.stdout);
    }
    env.pct(&["stop", &vs]).ok();
}

/// The limits of the PVE config and raw cgroup keys (v1 keys on a host whose controllers
/// are v1, as nexcage writes them there) really reach the cgroups.
#[test]
fn limits_and_runtime_env_are_applied() {
    if !emulated() {
        return; // reads this host's cgroup layout
    }
    let mut env = Env::new();
    let v = env.track(vmid(26));
    let vs = v.to_string();
    let t = env.template("limits", None);
    env.pct(&[
        "create",
        &vs,
        &t,
        "--ostype",
        "unmanaged",
        "--entrypoint",
        "/bin/sleep 600",
        "--memory",
        "64",
        "--swap",
        "0",
    ])
    .ok();
    let conf = env.conf_path(v);
    let mut text = std::fs::read_to_string(&conf).unwrap();
    let v2_host = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let pids_key = if v2_host { "lxc.cgroup2.pids.max" } else { "lxc.cgroup.pids.max" };
    text.push_str(&format!("{pids_key}: 33\nlxc.environment.runtime: NEXCAGE_TEST=yes\n"));
    std::fs::write(&conf, text).unwrap();
    env.pct(&["start", &vs]).ok();
    let pid = env.init_pid(v);
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(String::from_utf8_lossy(&environ).split('\0').any(|e| e == "NEXCAGE_TEST=yes"));
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let read = |ctrl: &str, file: &str| -> Option<String> {
        let line = cgroups.lines().find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|x| x == ctrl)))?;
        let path = line.splitn(3, ':').nth(2)?;
        // Limits sit on the container cgroup, the init lives in its `ns` child.
        let dir = path.strip_suffix("/ns").unwrap_or(path);
        for base in [format!("/sys/fs/cgroup/{ctrl}{dir}"), format!("/sys/fs/cgroup{dir}")] {
            if let Ok(s) = std::fs::read_to_string(format!("{base}/{file}")) {
                return Some(s.trim().to_string());
            }
        }
        None
    };
    if let Some(m) = read("memory", "memory.limit_in_bytes") {
        assert_eq!(m, (64u64 << 20).to_string());
    } else {
        assert_eq!(read("", "memory.max").as_deref(), Some(&*(64u64 << 20).to_string()));
    }
    let pids = read("pids", "pids.max").or_else(|| read("", "pids.max"));
    assert_eq!(pids.as_deref(), Some("33"));
    env.pct(&["stop", &vs]).ok();
}
