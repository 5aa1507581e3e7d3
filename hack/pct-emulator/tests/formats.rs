//! Contract tests without running containers: grammar, messages, exit codes, formats,
//! config layout, locking.

mod common;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{emulated, node, storage, vmid, Env};

#[test]
fn list_is_empty_without_containers() {
    if !emulated() {
        return; // a real host has other containers
    }
    let env = Env::new();
    let r = env.pct(&["list"]);
    r.ok();
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "");
}

#[test]
fn unknown_command_and_prefixes() {
    let env = Env::new();
    let r = env.pct(&["frobnicate"]);
    r.fails(255, "ERROR: unknown command 'pct frobnicate'");
    assert!(r.stderr.contains("USAGE: pct <COMMAND>"));
    // `conf` is a unique prefix of `config`: a missing config is exit 2 with the node path.
    let v = vmid(1).to_string();
    let r = env.pct(&["conf", &v]);
    r.fails(2, &format!("Configuration file 'nodes/{}/lxc/{v}.conf' does not exist", node()));
    // `st` is ambiguous (start, status, stop).
    env.pct(&["st", &v]).fails(255, "ERROR: incomplete command 'pct st'");
}

#[test]
fn parameter_verification() {
    let env = Env::new();
    let r = env.pct(&["create", "abc", "local:vztmpl/x.tar", "--memory", "8", "--cores", "x"]);
    // 400 errors exit 2. The errors come in Perl's hash order (random per process).
    assert_eq!(r.code, 2);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines[0], "400 Parameter verification failed.");
    let mut errors = lines[1..4].to_vec();
    errors.sort();
    assert_eq!(
        errors,
        [
            "cores: type check ('integer') failed - got 'x'",
            "memory: value must have a minimum value of 16",
            "vmid: type check ('integer') failed - got 'abc'"
        ]
    );
    assert!(lines[4].starts_with("pct create <vmid> <ostemplate>"), "usage line: {:?}", lines[4]);
    assert_eq!(r.stdout, "");

    let r = env.pct(&["status", "99"]);
    r.fails(2, "vmid: invalid format - value does not look like a valid VM ID");
    let r = env.pct(&["destroy", &vmid(2).to_string(), "--force", "maybe"]);
    r.fails(2, "400 unable to parse boolean option\npct destroy <vmid>");
}

#[test]
fn option_grammar_errors() {
    let env = Env::new();
    let v = vmid(3).to_string();
    let r = env.pct(&["start", &v, "--bogus"]);
    r.fails(2, "Unknown option: bogus\n400 unable to parse option\n");
    let r = env.pct(&["start"]);
    r.fails(2, "400 not enough arguments\npct start <vmid>");
    let r = env.pct(&["start", &v, "101"]);
    r.fails(2, "400 too many arguments\npct start <vmid>");
}

#[test]
fn template_errors_leave_nothing() {
    let mut env = Env::new();
    let v = env.track(vmid(4));
    let vs = v.to_string();
    env.pct(&["create", &vs, "local:vztmpl/nope.zip"])
        .fails(255, "unable to parse directory volume name 'vztmpl/nope.zip'");
    env.pct(&["create", &vs, "local:vztmpl/pct-emu-test-missing.tar.zst"])
        .fails(255, "volume 'local:vztmpl/pct-emu-test-missing.tar.zst' does not exist");
    env.pct(&["config", &vs]).fails(2, "does not exist");
}

/// A fresh Proxmox VE install's `local` (content iso,vztmpl,backup) cannot hold a
/// container: real pct refuses `--rootfs local:0` before making anything.
#[test]
fn storage_without_rootdir_content_is_refused() {
    let mut env = Env::new();
    let v = env.track(vmid(27));
    let vs = v.to_string();
    if emulated() {
        // The real test host's storage.cfg already says so (hack/pve-vm.d).
        let cfg = env.path("/etc/pve/storage.cfg");
        std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        std::fs::write(&cfg, "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n").unwrap();
    }
    let cache = env.path("/var/lib/vz/template/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let t = cache.join("pct-emu-test-norootdir.tar.zst");
    std::fs::write(&t, b"never read").unwrap();
    let r = env.pct(&["create", &vs, "local:vztmpl/pct-emu-test-norootdir.tar.zst", "--rootfs", "local:0"]);
    let _ = std::fs::remove_file(&t);
    r.fails(255, "storage 'local' does not support container directories");
    env.pct(&["config", &vs]).fails(2, "does not exist");
}

#[test]
fn create_failure_removes_everything() {
    let mut env = Env::new();
    let v = env.track(vmid(5));
    let vs = v.to_string();
    // A template that is not a valid archive: extraction fails inside the task.
    let cache = env.path("/var/lib/vz/template/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let bad = cache.join("pct-emu-test-corrupt.tar.zst");
    std::fs::write(&bad, b"this is not zstd").unwrap();
    let r = env.pct(&["create", &vs, "local:vztmpl/pct-emu-test-corrupt.tar.zst", "--ostype", "unmanaged"]);
    let _ = std::fs::remove_file(&bad);
    r.fails(255, &format!("unable to create CT {v} - "));
    assert!(!env.conf_path(v).exists(), "config left behind");
    assert!(!env.path(&format!("/var/lib/vz/images/{v}")).exists(), "volume left behind");
    // Real pct leaves an empty /var/lib/lxc/<vmid>/rootfs (and nothing else) there.
    let lxc_dir = env.path(&format!("/var/lib/lxc/{v}"));
    let left: Vec<_> =
        std::fs::read_dir(&lxc_dir).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty() || left == ["rootfs"], "lxc dir left behind: {left:?}");
    env.pct(&["config", &vs]).fails(2, "does not exist");
    if emulated() {
        assert_eq!(env.pct(&["list"]).stdout, "");
    }
}

#[test]
fn unsupported_os_release_needs_unmanaged() {
    let mut env = Env::new();
    let v = env.track(vmid(6));
    let vs = v.to_string();
    let t = env.template("plan9", Some("NAME=Plan9\nID=plan9\n"));
    env.pct(&["create", &vs, &t]).fails(255, "unable to detect OS distribution");
    assert!(!env.conf_path(v).exists());
    let r = env.pct(&["create", &vs, &t, "--ostype", "unmanaged"]);
    r.ok();
    assert!(r.stdout.contains("extracting archive '"), "{}", r.stdout);
    let r = env.pct(&["config", &vs]);
    assert!(r.stdout.contains("ostype: unmanaged\n"));
}

#[test]
fn config_layout_list_and_set() {
    let mut env = Env::new();
    let v = env.track(vmid(7));
    let vs = v.to_string();
    let t = env.template("layout", None);
    let r = env.pct(&[
        "create",
        &vs,
        &t,
        "--hostname",
        "web-1",
        "--description",
        "nexcage: id=abc\nline two",
        "--tags",
        "Zeta;alpha",
        "--net0",
        "bridge=vmbr0,name=eth0,ip=dhcp",
        "--memory",
        "128",
        "--cores",
        "1",
    ]);
    r.ok();
    // No os-release in the busybox template: a plain line of output (no task warning),
    // ostype unmanaged, exit 0.
    assert!(
        r.stdout.contains("/etc/os-release file not found and autodetection failed, falling back to 'unmanaged'"),
        "{}",
        r.stdout
    );
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);

    // Raw lxc lines are appended to the file directly (as nexcage does under the flock).
    let conf = env.conf_path(v);
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("lxc.init.cmd = /bin/sh\nlxc.cgroup2.pids.max: 64\n");
    std::fs::write(&conf, text).unwrap();

    let r = env.pct(&["config", &vs]);
    r.ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    let keys: Vec<&str> =
        lines.iter().take_while(|l| !l.starts_with("lxc.")).map(|l| l.split(':').next().unwrap()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "keys sorted:\n{}", r.stdout);
    assert!(lines.contains(&"description: nexcage%3A id=abc%0Aline two%0A"), "{}", r.stdout);
    assert!(lines.contains(&"hostname: web-1"));
    assert!(lines.contains(&"memory: 128"));
    assert!(lines.contains(&"tags: alpha;zeta"));
    assert!(lines.contains(&"unprivileged: 1"));
    let net0 = lines.iter().find(|l| l.starts_with("net0: ")).unwrap();
    assert!(net0.starts_with("net0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:"), "{net0}");
    assert!(net0.ends_with(",ip=dhcp,type=veth"), "{net0}");
    let rootfs = lines.iter().find(|l| l.starts_with("rootfs: ")).unwrap();
    let size = if emulated() { ",size=4G" } else { ",size=0T" };
    assert!(rootfs.starts_with(&format!("rootfs: {}:", storage())) && rootfs.ends_with(size), "{rootfs}");
    assert_eq!(&lines[lines.len() - 2..], &["lxc.init.cmd: /bin/sh", "lxc.cgroup2.pids.max: 64"]);

    // The file itself: description as '#' lines first.
    let file = std::fs::read_to_string(&conf).unwrap();
    assert!(file.starts_with("#nexcage%3A id=abc\n#line two\narch: "), "{file}");

    let r = env.pct(&["status", &vs]);
    r.ok();
    assert_eq!(r.stdout, "status: stopped\n");

    let r = env.pct(&["list"]);
    r.ok();
    let header = format!("{:<10} {:<10} {:<12} {:<20}", "VMID", "Status", "Lock", "Name");
    let row = format!("{:<10} {:<10} {:<12} {:<20}", v, "stopped", "", "web-1");
    let out: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(out[0], header);
    assert!(out.contains(&row.as_str()), "row {row:?} in\n{}", r.stdout);

    // set: silent, sorted storage, validation.
    let r = env.pct(&["set", &vs, "--memory", "256", "-tags", "b,A"]);
    r.ok();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    let r = env.pct(&["config", &vs]);
    assert!(r.stdout.contains("memory: 256\n") && r.stdout.contains("tags: a;b\n"), "{}", r.stdout);
    env.pct(&["set", &vs]).fails(2, "no options specified");
    env.pct(&["set", &vs, "--memory", "1"]).fails(2, "memory: value must have a minimum value of 16");
    let r = env.pct(&["set", &vs, "--delete", "cores"]);
    r.ok();
    assert!(!env.pct(&["config", &vs]).stdout.contains("cores:"));
    // Raw lines survive a set.
    assert!(std::fs::read_to_string(&conf).unwrap().ends_with("lxc.init.cmd: /bin/sh\nlxc.cgroup2.pids.max: 64\n"));
    // A raw key outside PVE's whitelist: every parse warns and drops it, so the next
    // write loses it (what broke namespace joins on real Proxmox VE).
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("lxc.namespace.share.net: /proc/1/ns/net\nlxc.include: /nonexistent/x.conf\n");
    std::fs::write(&conf, text).unwrap();
    let r = env.pct(&["config", &vs]);
    r.ok();
    assert!(
        r.stderr.contains(&format!("vm {v} - unable to parse config: lxc.namespace.share.net: /proc/1/ns/net")),
        "{}",
        r.stderr
    );
    assert!(
        !r.stdout.contains("lxc.namespace") && r.stdout.contains("lxc.include: /nonexistent/x.conf"),
        "{}",
        r.stdout
    );
    env.pct(&["set", &vs, "--memory", "200"]).ok();
    let file = std::fs::read_to_string(&conf).unwrap();
    assert!(!file.contains("lxc.namespace") && file.ends_with("lxc.include: /nonexistent/x.conf\n"), "{file}");

    // An existing VMID is rejected and the config is left alone.
    let before = std::fs::read_to_string(&conf).unwrap();
    env.pct(&["create", &vs, &t]).fails(2, &format!("CT {v} already exists on node '{}'", node()));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);
    // So is a VMID a QEMU VM holds on any node (PVE::Cluster::check_vmid_unused).
    let qemu = env.path("/etc/pve/nodes/other/qemu-server");
    std::fs::create_dir_all(&qemu).unwrap();
    std::fs::write(qemu.join(format!("{}.conf", v + 1)), "").unwrap();
    env.pct(&["create", &(v + 1).to_string(), &t]).fails(2, &format!("VM {} already exists on node 'other'", v + 1));
    std::fs::remove_file(qemu.join(format!("{}.conf", v + 1))).unwrap();

    env.pct(&["destroy", &vs]).ok();
    env.pct(&["status", &vs]).fails(2, "does not exist");
}

#[test]
fn config_lock_blocks_start_and_destroy() {
    let mut env = Env::new();
    let v = env.track(vmid(8));
    let vs = v.to_string();
    let t = env.template("locked", None);
    env.pct(&["create", &vs, &t, "--ostype", "unmanaged"]).ok();
    let conf = env.conf_path(v);
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("lock: backup\n{text}")).unwrap();
    env.pct(&["start", &vs]).fails(255, "CT is locked (backup)");
    env.pct(&["destroy", &vs]).fails(255, "CT is locked (backup)");
    let r = env.pct(&["list"]);
    assert!(r.stdout.contains(&format!("{:<10} {:<10} {:<12} ", v, "stopped", "backup")), "{}", r.stdout);
    // `pct unlock` removes the lock line and nothing else.
    env.pct(&["unlock", &vs]).ok();
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), text);
    env.pct(&["destroy", &vs]).ok();
    env.pct(&["unlock", &vs]).fails(2, "does not exist");
}

/// Hold pct's per-VMID flock from the test.
fn hold_flock(env: &Env, v: u32) -> std::fs::File {
    let dir = env.path("/run/lock/lxc");
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("pve-config-{v}.lock")))
        .unwrap();
    // SAFETY: flock on an owned fd.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    f
}

#[test]
fn held_flock_times_out_after_10s() {
    let mut env = Env::new();
    let v = env.track(vmid(9));
    let vs = v.to_string();
    let t = env.template("flock1", None);
    env.pct(&["create", &vs, &t, "--ostype", "unmanaged"]).ok();
    let lock = hold_flock(&env, v);
    let t0 = Instant::now();
    let r = env.pct(&["set", &vs, "--memory", "300"]);
    let took = t0.elapsed();
    let path = env.path(&format!("/run/lock/lxc/pve-config-{v}.lock"));
    // Perl's die exits with $! (EINTR from the alarm that ended the wait).
    r.fails(4, &format!("can't lock file '{}' - got timeout", path.display()));
    assert!(r.stderr.contains("trying to acquire lock..."), "{}", r.stderr);
    // Real pct adds its own start-up (Perl, 6-25 s under TCG and load): no upper bound there.
    assert!(took >= Duration::from_secs(9) && (!emulated() || took < Duration::from_secs(20)), "took {took:?}");
    assert!(env.pct(&["config", &vs]).stdout.contains("memory: 512\n"));
    // status, config and list take no lock.
    env.pct(&["status", &vs]).ok();
    drop(lock);
}

#[test]
fn held_flock_makes_start_wait() {
    let mut env = Env::new();
    let v = env.track(vmid(10));
    let vs = v.to_string();
    let t = env.template("flock2", None);
    env.pct(&["create", &vs, &t, "--ostype", "unmanaged", "--entrypoint", "/bin/sleep 600"]).ok();
    let lock = hold_flock(&env, v);
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(lock);
    });
    let t0 = Instant::now();
    let r = env.pct(&["start", &vs]);
    let took = t0.elapsed();
    releaser.join().unwrap();
    r.ok();
    assert!(took >= Duration::from_millis(1400), "start did not wait: {took:?}");
    // Real pct 6.1 waits without a word here (unlike set, which says so on stderr).
    assert!(!format!("{}{}", r.stdout, r.stderr).contains("trying to acquire lock"), "{} {}", r.stdout, r.stderr);
    env.pct(&["stop", &vs]).ok();
    env.pct(&["destroy", &vs]).ok();
}

#[test]
fn call_log_has_one_line_per_call() {
    if !emulated() {
        return;
    }
    let env = Env::new();
    env.pct(&["list"]);
    env.pct(&["status", "12345"]);
    env.pct(&["bogus", "a b"]);
    let log = std::fs::read_to_string(&env.log).unwrap();
    assert_eq!(log, "pct list\npct status 12345\npct bogus a b\n");
}
