//! rst-checker: the process the conformance harness runs inside each test container.
//!
//! It is linked statically (`+crt-static`) so that it runs in a bare busybox rootfs.
//! Modes (first argument):
//! - `check FILE [ARGS...]`: read the JSON expectations in FILE and verify them from
//!   inside the container, printing one TAP line per check on stdout and a plan line;
//!   exits 0 when every check passed, 1 otherwise.
//! - `exit N`: exit with status N.
//! - `sleep`: block until killed (as pid 1 of a pid namespace only SIGKILL or signals
//!   with handlers end it, so this needs a SIGKILL).
//! - `signals`: block all signals, wait for one, print `signal N` and exit 0.
//! - `marker PATH`: create PATH (the harness checks it appears only after `start`) and exit 0.
//! - `marker-sleep PATH`: create PATH and sleep.
//! - `cat`: copy stdin to stdout.
//!
//! Expectation keys understood by `check` (all optional):
//! `args`, `env` (list of `K=V` that must be present), `cwd`, `uid`, `gid`, `groups`
//! (exact set of supplementary groups), `hostname`, `rlimits` ([{type, soft, hard}]),
//! `caps` ({bounding|effective|permitted|inheritable|ambient: [CAP_...]}, exact sets),
//! `no_new_privs` (bool), `oom_score_adj` (int), `mounts` ([{destination, fstype?,
//! options?: [..], super_options?: [..]}]), `readonly_root` (bool), `masked_paths`,
//! `readonly_paths`, `writable_paths`, `sysctl` ({key: value}), `ns_new` and `ns_host`
//! ({type: host inode}: the namespace must differ from / equal the host's), `pid1`
//! (bool), `files` ([{path, content}]), `char_devices` ([path]).

use serde_json::Value;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let code = match mode {
        "check" => match args.get(2) {
            Some(file) => check(file, &args),
            None => usage(),
        },
        "exit" => args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0),
        "sleep" => sleep_forever(),
        "signals" => wait_signal(),
        "marker" | "marker-sleep" => match args.get(2) {
            Some(path) => {
                if let Err(e) = std::fs::write(path, b"ran\n") {
                    eprintln!("rst-checker: write {path}: {e}");
                    std::process::exit(1);
                }
                if mode == "marker-sleep" {
                    sleep_forever()
                } else {
                    0
                }
            }
            None => usage(),
        },
        "cat" => {
            let mut buf = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut buf);
            let _ = std::io::stdout().write_all(&buf);
            0
        }
        _ => usage(),
    };
    std::process::exit(code);
}

fn usage() -> i32 {
    eprintln!("usage: rst-checker check FILE | exit N | sleep | signals | marker PATH | marker-sleep PATH | cat");
    2
}

fn sleep_forever() -> i32 {
    loop {
        // SAFETY: pause() only blocks until a signal arrives.
        unsafe { libc::pause() };
    }
}

fn wait_signal() -> i32 {
    // SAFETY: plain libc calls on locally owned, initialised sigset_t values.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        // Tell the harness we are ready (signals are blocked now).
        let _ = std::fs::write("/rst/ready", b"ready\n");
        let mut sig: libc::c_int = 0;
        if libc::sigwait(&set, &mut sig) != 0 {
            return 1;
        }
        println!("signal {sig}");
    }
    let _ = std::io::stdout().flush();
    0
}

struct Tap {
    n: usize,
    failed: usize,
}

impl Tap {
    fn check(&mut self, name: &str, result: Result<(), String>) {
        self.n += 1;
        match result {
            Ok(()) => println!("ok {} - {}", self.n, name),
            Err(e) => {
                self.failed += 1;
                println!("not ok {} - {}: {}", self.n, name, e.replace('\n', " "));
            }
        }
    }
}

fn check(file: &str, argv: &[String]) -> i32 {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            println!("not ok 1 - read expectations {file}: {e}");
            println!("1..1");
            return 1;
        }
    };
    let exp: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            println!("not ok 1 - parse expectations: {e}");
            println!("1..1");
            return 1;
        }
    };
    let mut t = Tap { n: 0, failed: 0 };
    let obj = exp.as_object().cloned().unwrap_or_default();
    for (key, want) in &obj {
        match key.as_str() {
            "args" => t.check("args", eq_json(&serde_json::json!(argv), want)),
            "env" => {
                let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                for e in strings(want) {
                    let r = if env.contains(&e) { Ok(()) } else { Err(format!("not in environment {env:?}")) };
                    t.check(&format!("env {e}"), r);
                }
            }
            "cwd" => {
                let cwd = std::env::current_dir().map(|p| p.display().to_string());
                t.check("cwd", eq_str(&cwd.unwrap_or_else(|e| e.to_string()), want));
            }
            // SAFETY: getuid/getgid cannot fail.
            "uid" => t.check("uid", eq_json(&serde_json::json!(unsafe { libc::getuid() }), want)),
            "gid" => t.check("gid", eq_json(&serde_json::json!(unsafe { libc::getgid() }), want)),
            "groups" => t.check("additional groups", check_groups(want)),
            "hostname" => t.check("hostname", eq_str(&hostname(), want)),
            "rlimits" => {
                for rl in want.as_array().cloned().unwrap_or_default() {
                    let name = rl["type"].as_str().unwrap_or("?").to_string();
                    t.check(&format!("rlimit {name}"), check_rlimit(&rl));
                }
            }
            "caps" => {
                for (set, field) in [
                    ("bounding", "CapBnd"),
                    ("effective", "CapEff"),
                    ("permitted", "CapPrm"),
                    ("inheritable", "CapInh"),
                    ("ambient", "CapAmb"),
                ] {
                    if let Some(names) = want.get(set) {
                        t.check(&format!("capabilities {set}"), check_caps(field, names));
                    }
                }
            }
            "no_new_privs" => {
                // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointers.
                let v = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
                t.check("no_new_privs", eq_json(&serde_json::json!(v == 1), want));
            }
            "oom_score_adj" => {
                let got = read_trim("/proc/self/oom_score_adj");
                t.check("oom_score_adj", eq_str(&got, &Value::String(want.to_string())));
            }
            "mounts" => {
                for m in want.as_array().cloned().unwrap_or_default() {
                    let dest = m["destination"].as_str().unwrap_or("?").to_string();
                    t.check(&format!("mount {dest}"), check_mount(&m));
                }
            }
            "readonly_root" => {
                let want = want.as_bool().unwrap_or(false);
                t.check("root readonly", check_writable("/", !want));
            }
            "masked_paths" => {
                for p in strings(want) {
                    t.check(&format!("masked {p}"), check_masked(&p));
                }
            }
            "readonly_paths" => {
                for p in strings(want) {
                    t.check(&format!("readonly {p}"), check_writable(&p, false));
                }
            }
            "writable_paths" => {
                for p in strings(want) {
                    t.check(&format!("writable {p}"), check_writable(&p, true));
                }
            }
            "sysctl" => {
                for (k, v) in want.as_object().cloned().unwrap_or_default() {
                    let path = format!("/proc/sys/{}", k.replace('.', "/"));
                    t.check(&format!("sysctl {k}"), eq_str(&read_trim(&path), &v));
                }
            }
            "ns_new" | "ns_host" => {
                let differ = key == "ns_new";
                for (ns, host) in want.as_object().cloned().unwrap_or_default() {
                    let what = if differ { "new" } else { "host" };
                    t.check(&format!("{ns} namespace {what}"), check_ns(&ns, &host, differ));
                }
            }
            "pid1" => {
                // SAFETY: getpid cannot fail.
                let pid = unsafe { libc::getpid() };
                t.check("pid 1", eq_json(&serde_json::json!(pid == 1), want));
            }
            "files" => {
                for f in want.as_array().cloned().unwrap_or_default() {
                    let p = f["path"].as_str().unwrap_or("?").to_string();
                    let got = std::fs::read_to_string(&p).unwrap_or_else(|e| format!("<{e}>"));
                    t.check(&format!("file {p}"), eq_str(&got, &f["content"]));
                }
            }
            "char_devices" => {
                for p in strings(want) {
                    let r = match std::fs::metadata(&p) {
                        Ok(m) if m.file_type().is_char_device() => Ok(()),
                        Ok(m) => Err(format!("not a character device (mode {:o})", m.mode())),
                        Err(e) => Err(e.to_string()),
                    };
                    t.check(&format!("device {p}"), r);
                }
            }
            other => t.check(&format!("unknown expectation {other}"), Err("unsupported".into())),
        }
    }
    println!("1..{}", t.n);
    let _ = std::io::stdout().flush();
    if t.failed == 0 {
        0
    } else {
        1
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn eq_json(got: &Value, want: &Value) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got}, want {want}"))
    }
}

fn eq_str(got: &str, want: &Value) -> Result<(), String> {
    match want.as_str() {
        Some(w) if w == got => Ok(()),
        _ => Err(format!("got {got:?}, want {want}")),
    }
}

fn read_trim(path: &str) -> String {
    match std::fs::read_to_string(path) {
        Ok(s) => s.trim().to_string(),
        Err(e) => format!("<{path}: {e}>"),
    }
}

fn hostname() -> String {
    // SAFETY: uname fills the zeroed struct; fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "<uname failed>".into();
        }
        std::ffi::CStr::from_ptr(u.nodename.as_ptr()).to_string_lossy().into_owned()
    }
}

fn check_groups(want: &Value) -> Result<(), String> {
    let mut buf = vec![0 as libc::gid_t; 256];
    // SAFETY: buf has room for 256 entries, as passed.
    let n = unsafe { libc::getgroups(buf.len() as libc::c_int, buf.as_mut_ptr()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    let mut got: Vec<u64> = buf[..n as usize].iter().map(|&g| g as u64).collect();
    got.sort_unstable();
    got.dedup();
    let mut exp: Vec<u64> = want.as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
    exp.sort_unstable();
    exp.dedup();
    if got == exp {
        Ok(())
    } else {
        Err(format!("got {got:?}, want {exp:?}"))
    }
}

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

fn check_rlimit(rl: &Value) -> Result<(), String> {
    let name = rl["type"].as_str().unwrap_or("");
    let res = rlimit_resource(name).ok_or_else(|| format!("unknown rlimit {name}"))?;
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: lim is a valid out-pointer.
    if unsafe { libc::getrlimit(res, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    let (soft, hard) = (rl["soft"].as_u64(), rl["hard"].as_u64());
    if Some(lim.rlim_cur) == soft && Some(lim.rlim_max) == hard {
        Ok(())
    } else {
        Err(format!("got soft {} hard {}, want soft {:?} hard {:?}", lim.rlim_cur, lim.rlim_max, soft, hard))
    }
}

const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn cap_names(mask: u64) -> Vec<&'static str> {
    CAPS.iter().enumerate().filter(|(i, _)| mask & (1u64 << i) != 0).map(|(_, n)| *n).collect()
}

fn check_caps(field: &str, want: &Value) -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .ok_or_else(|| format!("{field} missing from /proc/self/status"))?;
    let got = u64::from_str_radix(line.trim(), 16).map_err(|e| e.to_string())?;
    let mut exp = 0u64;
    for name in strings(want) {
        match CAPS.iter().position(|c| *c == name) {
            Some(i) => exp |= 1 << i,
            None => return Err(format!("unknown capability {name}")),
        }
    }
    if got == exp {
        Ok(())
    } else {
        Err(format!("got {:?}, want {:?}", cap_names(got), cap_names(exp)))
    }
}

struct MountInfo {
    mount_point: String,
    options: Vec<String>,
    fstype: String,
    super_options: Vec<String>,
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4]).ok().and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mountinfo() -> Vec<MountInfo> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.len() < sep + 4 || sep < 6 {
            continue;
        }
        out.push(MountInfo {
            mount_point: unescape(f[4]),
            options: f[5].split(',').map(String::from).collect(),
            fstype: f[sep + 1].to_string(),
            super_options: f[sep + 3].split(',').map(String::from).collect(),
        });
    }
    out
}

/// The mount that is visible at `path` (the last entry mounted exactly there).
fn mount_at(path: &str) -> Option<MountInfo> {
    mountinfo().into_iter().rev().find(|m| m.mount_point == path)
}

fn check_mount(m: &Value) -> Result<(), String> {
    let dest = m["destination"].as_str().unwrap_or("");
    let mi = mount_at(dest).ok_or_else(|| format!("nothing mounted at {dest}"))?;
    if let Some(ft) = m.get("fstype").and_then(Value::as_str) {
        if mi.fstype != ft {
            return Err(format!("fstype {}, want {ft}", mi.fstype));
        }
    }
    for o in strings(&m["options"]) {
        if !mi.options.contains(&o) {
            return Err(format!("mount option {o} missing from {:?}", mi.options));
        }
    }
    for o in strings(&m["super_options"]) {
        if !mi.super_options.contains(&o) {
            return Err(format!("superblock option {o} missing from {:?}", mi.super_options));
        }
    }
    Ok(())
}

/// The mount that covers `path` (longest mount point that is a path prefix; the
/// last one mounted wins).
fn covering_mount(path: &str) -> Option<MountInfo> {
    let path = std::fs::canonicalize(path).map(|p| p.display().to_string()).unwrap_or_else(|_| path.to_string());
    let mut best: Option<MountInfo> = None;
    for m in mountinfo() {
        let mp = m.mount_point.trim_end_matches('/');
        let covers =
            path == m.mount_point || mp.is_empty() || path.strip_prefix(mp).is_some_and(|r| r.starts_with('/'));
        if covers && best.as_ref().is_none_or(|b| m.mount_point.len() >= b.mount_point.len()) {
            best = Some(m);
        }
    }
    best
}

fn check_writable(path: &str, want_writable: bool) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
    let result = if meta.is_dir() {
        let probe = format!("{}/.rst-probe-{}", path.trim_end_matches('/'), std::process::id());
        let r = std::fs::write(&probe, b"x");
        if r.is_ok() {
            let _ = std::fs::remove_file(&probe);
        }
        r
    } else {
        std::fs::OpenOptions::new().write(true).open(path).map(|_| ())
    };
    let ro_mount = covering_mount(path).is_some_and(|m| m.options.iter().any(|o| o == "ro"));
    match (result, want_writable) {
        (Ok(()), true) => Ok(()),
        (Ok(()), false) => Err("writable, want read-only".into()),
        (Err(e), false) if e.raw_os_error() == Some(libc::EROFS) => Ok(()),
        // Pseudo filesystems refuse creating files with other errors: then the
        // mount must be read-only.
        (Err(_), false) if ro_mount => Ok(()),
        (Err(e), false) => Err(format!("write failed with {e} and the mount is not read-only")),
        (Err(e), true) => Err(format!("not writable: {e}")),
    }
}

fn check_masked(path: &str) -> Result<(), String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        // A masked path that does not exist in the container is fine.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    if meta.is_dir() {
        let n = std::fs::read_dir(path).map_err(|e| e.to_string())?.count();
        if n != 0 {
            return Err(format!("directory shows {n} entries, want none"));
        }
        Ok(())
    } else {
        let mut buf = Vec::new();
        match std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut buf)) {
            Ok(0) => Ok(()),
            Ok(n) => Err(format!("file readable ({n} bytes), want empty")),
            Err(_) => Ok(()),
        }
    }
}

fn check_ns(ns: &str, host: &Value, differ: bool) -> Result<(), String> {
    let path = format!("/proc/self/ns/{ns}");
    let c = CString::new(path.clone()).map_err(|e| e.to_string())?;
    // SAFETY: c is NUL-terminated; st is a valid out-pointer.
    let ino = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::stat(c.as_ptr(), &mut st) != 0 {
            return Err(format!("{path}: {}", std::io::Error::last_os_error()));
        }
        st.st_ino
    };
    let host = host.as_u64().ok_or("host inode missing")?;
    match (ino == host, differ) {
        (false, true) | (true, false) => Ok(()),
        (true, true) => Err(format!("same as the host's ({ino})")),
        (false, false) => Err(format!("inode {ino} differs from the host's {host}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/tab\\011x\\134"), "/tab\tx\\");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/ü\\040"), "/ü ");
    }

    #[test]
    fn capability_names() {
        assert_eq!(cap_names(0), Vec::<&str>::new());
        assert_eq!(cap_names(1 << 5 | 1 << 10), ["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        assert_eq!(CAPS[40], "CAP_CHECKPOINT_RESTORE");
    }

    #[test]
    fn checks_report_mismatches() {
        assert!(eq_str("a", &Value::from("a")).is_ok());
        assert!(eq_str("a", &Value::from("b")).is_err());
        assert!(eq_json(&serde_json::json!([1]), &serde_json::json!([1])).is_ok());
        // The root of any Linux system is covered by some mount.
        assert!(covering_mount("/").is_some());
    }
}
