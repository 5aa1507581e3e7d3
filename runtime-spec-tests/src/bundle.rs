//! Test bundles: a busybox-static rootfs with the checker at /rst-checker, and a
//! config.json in the style of `runc spec` (the same as hack/make-bundle writes).

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Path of the checker inside every test rootfs.
pub const CHECKER: &str = "/rst-checker";
/// Expectations file the checker reads in `check` mode.
pub const EXPECT: &str = "/rst/expect.json";

/// Busybox applets linked into the rootfs (hooks and a few tests use them).
const APPLETS: &[&str] =
    &["sh", "cat", "echo", "sleep", "true", "false", "hostname", "ls", "id", "touch", "mkdir", "env"];

/// A bundle directory and its config, edited in memory and written by `save`.
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Host path of a path inside the rootfs.
    pub fn host_path(&self, inside: &str) -> PathBuf {
        self.rootfs().join(inside.trim_start_matches('/'))
    }

    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
    }

    pub fn save(&self) -> Result<()> {
        let p = self.dir.join("config.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&self.config)?).with_context(|| format!("write {}", p.display()))
    }

    /// Write the checker's expectations into the rootfs.
    pub fn write_expect(&self, expect: &Value) -> Result<()> {
        let p = self.host_path(EXPECT);
        std::fs::write(&p, serde_json::to_vec_pretty(expect)?)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))?;
        Ok(())
    }
}

/// Link `src` to `dst`, copying when a hard link is impossible.
fn link_or_copy(src: &Path, dst: &Path) -> Result<()> {
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst).with_context(|| format!("copy {} to {}", src.display(), dst.display()))?;
    }
    Ok(())
}

/// Build the rootfs of a new bundle in `dir` from the run's assets (busybox and the
/// checker, hard-linked when possible).
pub fn create(
    dir: &Path,
    busybox: &Path,
    checker: &Path,
    args: &[&str],
    annotations: &[(String, String)],
) -> Result<Bundle> {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run", "var/tmp", "rst"] {
        std::fs::create_dir_all(rootfs.join(d)).with_context(|| format!("mkdir {}", rootfs.join(d).display()))?;
    }
    for d in ["tmp", "var/tmp"] {
        std::fs::set_permissions(rootfs.join(d), std::fs::Permissions::from_mode(0o1777))?;
    }
    std::fs::set_permissions(rootfs.join("rst"), std::fs::Permissions::from_mode(0o777))?;
    link_or_copy(busybox, &rootfs.join("bin/busybox"))?;
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a))?;
    }
    link_or_copy(checker, &rootfs.join(CHECKER.trim_start_matches('/')))?;
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    let mut ann = serde_json::Map::new();
    ann.insert("org.opencontainers.rst.suite".into(), json!("runtime-spec-tests"));
    for (k, v) in annotations {
        ann.insert(k.clone(), json!(v));
    }
    let bundle = Bundle { dir: dir.to_path_buf(), config: default_config(args, Value::Object(ann)) };
    bundle.save()?;
    Ok(bundle)
}

/// The default configuration, as `runc spec` (and hack/make-bundle) writes it.
pub fn default_config(args: &[&str], annotations: Value) -> Value {
    json!({
      "ociVersion": "1.0.2",
      "process": {
        "terminal": false,
        "user": { "uid": 0, "gid": 0 },
        "args": args,
        "env": [ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm" ],
        "cwd": "/",
        "capabilities": {
          "bounding": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
          "effective": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
          "permitted": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ]
        },
        "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
        "noNewPrivileges": true
      },
      "root": { "path": "rootfs", "readonly": false },
      "hostname": "rst",
      "annotations": annotations,
      "mounts": [
        { "destination": "/proc", "type": "proc", "source": "proc" },
        { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
        { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" ] },
        { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
        { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": [ "nosuid", "noexec", "nodev" ] },
        { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [ "nosuid", "noexec", "nodev", "ro" ] }
      ],
      "linux": {
        "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
        "namespaces": [ { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" } ],
        "maskedPaths": [ "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi" ],
        "readonlyPaths": [ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" ]
      }
    })
}
