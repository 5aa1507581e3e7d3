//! A proxmox-lxc world on the pct emulator (real LXC) for the reliability suites
//! (bad_input, crash, stress, security): private emulator root, VMID range, state root;
//! and the leak checks every case ends with. VMID ranges 7000-7999 belong to these
//! suites (tests/lxc.rs uses 9000+): LXC cgroups are named after VMIDs, so ranges of
//! tests running at the same time must not overlap.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::*;

pub struct Tools {
    pub emulator: PathBuf,
    pub init: PathBuf,
}

/// Build the emulator and the static init once; start the emulator's daemon before this
/// process becomes a subreaper.
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
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
}

impl Emu {
    /// Backends crun, runc (oci) and lxc (proxmox-lxc on a private emulator root with
    /// VMIDs `first..=last`); `default` is the default backend; `extra` adds fields to
    /// the lxc backend (JSON, starting with a comma).
    pub fn new(default: &str, first: u32, last: u32, extra: &str) -> Emu {
        let t = tools();
        let w = World::new(default);
        std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let pve = w.dir.path().join("pve");
        std::fs::create_dir(&pve).unwrap();
        let log = w.dir.path().join("pct.log");
        let pct = w.dir.path().join("pct");
        std::fs::write(
            &pct,
            format!(
                "#!/bin/sh\nPCT_EMULATOR_ROOT='{}' PCT_EMULATOR_LOG='{}' exec '{}' \"$@\"\n",
                pve.display(),
                log.display(),
                t.emulator.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&pct, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(&w.config, Emu::config_text(default, &pct, &pve, first, last, extra)).unwrap();
        Emu { w, pve, log, pct }
    }

    pub fn config_text(default: &str, pct: &Path, pve: &Path, first: u32, last: u32, extra: &str) -> String {
        format!(
            r#"{{"default_backend":"{default}","backends":{{
            "crun":{{"kind":"oci","path":"crun"}},"runc":{{"kind":"oci","path":"runc"}},
            "lxc":{{"kind":"proxmox-lxc","pct":"{}","pve_root":"{}","vmid_range":[{first},{last}],
                    "init":"{}"{extra}}}}}}}"#,
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

    /// Everything that must be gone once no container exists, as a list of findings.
    pub fn leaks(&self) -> Vec<String> {
        let mut found = self.w.state_leaks();
        let names = |dir: PathBuf| -> Vec<String> {
            std::fs::read_dir(dir)
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default()
        };
        for c in names(self.pve.join("etc/pve/lxc")) {
            found.push(format!("PVE config {c}"));
        }
        for r in names(self.pve.join("run/lock/lxc")).into_iter().filter(|n| n.ends_with(".reserved")) {
            found.push(format!("VMID reservation {r}"));
        }
        for t in names(self.template_dir()).into_iter().filter(|n| n.starts_with(".nexcage-tmp-")) {
            found.push(format!("half-written template {t}"));
        }
        for d in names(self.pve.join("run/nexcage-lxc")) {
            found.push(format!("run directory {d}"));
        }
        for d in names(self.pve.join("var/lib/lxc")) {
            found.push(format!("LXC container directory {d}"));
        }
        for d in names(self.pve.join("var/lib/vz/images")) {
            found.push(format!("volume directory {d}"));
        }
        found
    }

    #[track_caller]
    pub fn assert_clean(&self, what: &str) {
        let l = self.leaks();
        assert!(l.is_empty(), "{what}: leaked {l:?}");
    }
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
