//! A proxmox-lxc world for the lxc and reliability suites (lxc, bad_input, crash, stress,
//! security): private VMID range, state root and nexcage config, and the leak checks
//! every case ends with. Two worlds, chosen by the environment:
//! - the pct emulator (hack/pct, real LXC), the default: a private emulator root per case;
//! - Proxmox's own pct, when `NEXCAGE_TEST_PCT` names it (hack/test-pve sets it inside the
//!   Proxmox VE test VM): `pve_root` is `/`, containers go to `NEXCAGE_TEST_STORAGE`
//!   (default `ct-dir`), templates to `local`, nexcage-init is `NEXCAGE_TEST_INIT` (built
//!   on the build host, no cargo in the VM). The leak checks then only look at the case's
//!   VMID range.
//!
//! VMID ranges 7000-7999 belong to the reliability suites (tests/lxc.rs uses 9000+): LXC
//! cgroups are named after VMIDs, so ranges of tests running at the same time must not
//! overlap.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use super::*;

/// Which pct the suites drive.
pub enum PctWorld {
    Emulator,
    /// Proxmox's own pct at `pct`; container volumes on `storage`.
    Real {
        pct: PathBuf,
        storage: String,
    },
}

pub fn pct_world() -> &'static PctWorld {
    static W: OnceLock<PctWorld> = OnceLock::new();
    W.get_or_init(|| match std::env::var_os("NEXCAGE_TEST_PCT").filter(|p| !p.is_empty()) {
        None => PctWorld::Emulator,
        Some(pct) => PctWorld::Real {
            pct: PathBuf::from(pct),
            storage: std::env::var("NEXCAGE_TEST_STORAGE").unwrap_or_else(|_| "ct-dir".into()),
        },
    })
}

pub fn real_pct() -> bool {
    matches!(pct_world(), PctWorld::Real { .. })
}

/// How long to wait for a container's program to react: real pct under the test VM's
/// emulated CPU takes seconds per call (docs/pve-test-host.md).
pub fn wait_limit() -> Duration {
    if real_pct() {
        Duration::from_secs(180)
    } else {
        Duration::from_secs(20)
    }
}

pub struct Tools {
    pub emulator: PathBuf,
    pub init: PathBuf,
}

/// Build the emulator and the static init once; start the emulator's daemon before this
/// process becomes a subreaper. With real pct: nexcage-init is `NEXCAGE_TEST_INIT`.
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        if real_pct() {
            let init = std::env::var_os("NEXCAGE_TEST_INIT")
                .expect("NEXCAGE_TEST_INIT (a static nexcage-init) with NEXCAGE_TEST_PCT");
            return Tools { emulator: PathBuf::new(), init: PathBuf::from(init) };
        }
        let out = Command::new(repo().join("hack/build-init")).output().expect("hack/build-init");
        assert!(out.status.success(), "hack/build-init: {}", text(&out.stderr));
        let init = PathBuf::from(text(&out.stdout).trim());
        let st = Command::new(repo().join("hack/pct")).arg("--emulator-daemon").status().expect("hack/pct");
        assert!(st.success(), "pct emulator daemon");
        let target = std::env::var_os("PCT_EMULATOR_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("target/pct-emulator"));
        Tools { emulator: target.join("release/pct-emulator"), init }
    })
}

pub struct Emu {
    pub w: World,
    pub pve: PathBuf,
    pub log: PathBuf,
    pub pct: PathBuf,
    pub range: (u32, u32),
}

impl Emu {
    /// Backends crun, runc (oci) and lxc (proxmox-lxc with VMIDs `first..=last`, on a
    /// private emulator root or on real pct); `default` is the default backend; `extra`
    /// adds fields to the lxc backend (JSON, starting with a comma). `pct` is a script
    /// that logs each call (`pct ARGS...`, one line) to `log` and runs the world's pct.
    pub fn new(default: &str, first: u32, last: u32, extra: &str) -> Emu {
        let t = tools();
        let w = World::new(default);
        std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let log = w.dir.path().join("pct.log");
        let pct = w.dir.path().join("pct");
        let (pve, script) = match pct_world() {
            PctWorld::Emulator => {
                let pve = w.dir.path().join("pve");
                std::fs::create_dir(&pve).unwrap();
                let script = format!(
                    "#!/bin/sh\nPCT_EMULATOR_ROOT='{}' PCT_EMULATOR_LOG='{}' exec '{}' \"$@\"\n",
                    pve.display(),
                    log.display(),
                    t.emulator.display()
                );
                (pve, script)
            }
            PctWorld::Real { pct: real, .. } => {
                // One line per call, `\` and line breaks escaped as the emulator does,
                // written at once so concurrent calls do not interleave.
                let script = format!(
                    concat!(
                        "#!/bin/sh\nline=pct\n",
                        "for a in \"$@\"; do\n",
                        "  line=\"$line $(printf '%s' \"$a\" | sed -e 's/\\\\/\\\\\\\\/g' -e ':a;N;$!ba;s/\\n/\\\\n/g')\"\n",
                        "done\n",
                        "printf '%s\\n' \"$line\" >> '{}'\n",
                        "exec '{}' \"$@\"\n"
                    ),
                    log.display(),
                    real.display()
                );
                (PathBuf::from("/"), script)
            }
        };
        std::fs::write(&pct, script).unwrap();
        std::fs::set_permissions(&pct, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(&w.config, Emu::config_text(default, &pct, &pve, first, last, extra)).unwrap();
        Emu { w, pve, log, pct, range: (first, last) }
    }

    pub fn config_text(default: &str, pct: &Path, pve: &Path, first: u32, last: u32, extra: &str) -> String {
        let storage = match pct_world() {
            PctWorld::Emulator => String::new(),
            // A test that sets its own `storage` (`null`: chosen from storage.cfg) keeps it.
            PctWorld::Real { .. } if extra.contains(r#""storage":"#) => r#","template_storage":"local""#.to_string(),
            PctWorld::Real { storage, .. } => format!(r#","storage":"{storage}","template_storage":"local""#),
        };
        format!(
            r#"{{"default_backend":"{default}","backends":{{
            "crun":{{"kind":"oci","path":"crun"}},"runc":{{"kind":"oci","path":"runc"}},
            "lxc":{{"kind":"proxmox-lxc","pct":"{}","pve_root":"{}","vmid_range":[{first},{last}],
                    "init":"{}"{storage}{extra}}}}}}}"#,
            pct.display(),
            pve.display(),
            tools().init.display()
        )
    }

    pub fn pct_calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
    }

    pub fn template_dir(&self) -> PathBuf {
        self.pve.join("var/lib/vz/template/cache")
    }

    /// The PVE configs of this case's VMIDs (file names, `<vmid>.conf`).
    pub fn confs(&self) -> Vec<String> {
        confs(&self.pve, self.range)
    }

    /// Everything that must be gone once no container exists, as a list of findings.
    pub fn leaks(&self) -> Vec<String> {
        let mut found = self.w.state_leaks();
        let r = self.range;
        for c in self.confs() {
            // With real pct, the pct calls on that VMID say how it was left.
            let calls = match (real_pct(), c.strip_suffix(".conf")) {
                (true, Some(v)) => {
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    let mine: Vec<&str> = log.lines().filter(|l| l.split(' ').nth(2) == Some(v)).collect();
                    format!(" (pct calls: {mine:?})")
                }
                _ => String::new(),
            };
            found.push(format!("PVE config {c}{calls}"));
        }
        for v in reservations(&self.pve, r) {
            found.push(format!("VMID reservation {v}"));
        }
        for t in names(self.template_dir()).into_iter().filter(|n| n.starts_with(".nexcage-tmp-")) {
            found.push(format!("half-written template {t}"));
        }
        for d in run_dirs(&self.pve, r) {
            found.push(format!("run directory {d}"));
        }
        for d in in_range(names(self.pve.join("var/lib/lxc")), r, "") {
            // Real pct's destroy leaves these two behind itself (PVE::LXC::destroy_lxc_container
            // removes only `config` and `rootfs`), and a failed create an empty `rootfs`
            // (the emulator too): not nexcage's.
            let pve_leftovers = ["passthrough", "rules.seccomp"];
            let dir = self.pve.join("var/lib/lxc").join(&d);
            let inside = names(dir.clone());
            let leftover = |n: &String| {
                (real_pct() && pve_leftovers.contains(&n.as_str())) || (n == "rootfs" && names(dir.join(n)).is_empty())
            };
            if !inside.iter().all(leftover) {
                found.push(format!("LXC container directory {d} ({inside:?})"));
            }
        }
        let mut volume_dirs = vec![self.pve.join("var/lib/vz/images")];
        if real_pct() {
            // The test VM's other directory storage (hack/pve-vm.d/pve-vm-setup).
            volume_dirs.push(PathBuf::from("/var/lib/nexcage-ct/images"));
            for lv in logical_volumes() {
                let vmid = lv.strip_prefix("vm-").and_then(|s| s.split('-').next()).and_then(|s| s.parse::<u32>().ok());
                if vmid.is_some_and(|v| v >= r.0 && v <= r.1) {
                    found.push(format!("logical volume {lv}"));
                }
            }
        }
        for dir in volume_dirs {
            for d in in_range(names(dir), r, "") {
                found.push(format!("volume directory {d}"));
            }
        }
        found
    }

    #[track_caller]
    pub fn assert_clean(&self, what: &str) {
        let l = self.leaks();
        assert!(l.is_empty(), "{what}: leaked {l:?}");
    }
}

/// PVE configs (`<vmid>.conf`) of the VMIDs in `range`.
pub fn confs(pve: &Path, range: (u32, u32)) -> Vec<String> {
    in_range(names(pve.join("etc/pve/lxc")), range, ".conf")
}

/// nexcage's VMID reservation markers of the VMIDs in `range` (`<vmid>.reserved`).
pub fn reservations(pve: &Path, range: (u32, u32)) -> Vec<String> {
    let reserved: Vec<String> = names(pve.join("run/lock/lxc"))
        .into_iter()
        .filter_map(|n| n.strip_prefix("nexcage-vmid-").map(str::to_string))
        .collect();
    in_range(reserved, range, ".reserved")
}

/// nexcage's run directories, their include files (`<vmid>.conf`) and relayed bind
/// sources (`<vmid>.binds`) of the VMIDs in `range`.
pub fn run_dirs(pve: &Path, range: (u32, u32)) -> Vec<String> {
    let all = names(pve.join("run/nexcage-lxc"));
    let mut out = in_range(all.clone(), range, "");
    out.extend(in_range(all.clone(), range, ".conf"));
    out.extend(in_range(all, range, ".binds"));
    out
}

/// The entries of a directory (none if it does not exist).
pub fn names(dir: PathBuf) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Names `<vmid><suffix>` with the VMID in `range`. In the emulator every root is private,
/// so the filter changes nothing there; on a real host it leaves other guests alone.
pub fn in_range(names: Vec<String>, range: (u32, u32), suffix: &str) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| {
            n.strip_suffix(suffix).and_then(|v| v.parse::<u32>().ok()).is_some_and(|v| v >= range.0 && v <= range.1)
        })
        .collect()
}

/// LVM logical volume names (real pct: `local-lvm` volumes are `vm-<vmid>-disk-<n>`).
fn logical_volumes() -> Vec<String> {
    Command::new("lvs")
        .args(["--noheadings", "-o", "lv_name"])
        .output()
        .map(|o| text(&o.stdout).split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

impl World {
    /// Records, claim directories and passthrough runtime containers left in the root.
    pub fn state_leaks(&self) -> Vec<String> {
        let mut found = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.root) else { return found };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(backend) = name.strip_prefix('@').filter(|n| !n.starts_with("new-")) {
                // A passthrough runtime's root: it must hold no container.
                for c in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                    if c.path().is_dir() {
                        found.push(format!("{backend} container {}", c.file_name().to_string_lossy()));
                    }
                }
            } else {
                found.push(format!("state entry {name}"));
            }
        }
        found
    }

    #[track_caller]
    pub fn assert_no_state(&self, what: &str) {
        let l = self.state_leaks();
        assert!(l.is_empty(), "{what}: leaked {l:?}");
    }
}

impl World {
    /// Run nexcage for a command that starts container processes (create, run): those
    /// inherit nexcage's stdio, so it goes to files (a pipe would stay open as long as
    /// the container lives). Returns the exit status and stderr as an `Output`.
    pub fn run_detached(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let out_path = self.dir.path().join(format!("stdio-{n}.out"));
        let err_path = self.dir.path().join(format!("stdio-{n}.err"));
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let status = c
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .unwrap();
        Output { status, stdout: std::fs::read(&out_path).unwrap(), stderr: std::fs::read(&err_path).unwrap() }
    }
}
