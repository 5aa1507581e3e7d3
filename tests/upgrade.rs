//! Upgrading nexcage while containers run (issue 20, item 1): containers that the
//! previous release (hack/previous-release, built by hack/build-previous) created and
//! started keep working after nexcage and nexcage-init are replaced by this build, as a
//! package upgrade replaces them (a new file renamed over the old one; running processes,
//! the old supervisors and the old inits, keep the old inodes). proxmox-lxc through the
//! pct emulator; the crun and runc passthrough keeps no process of nexcage's and no
//! record format of its own beyond what the lxc records show here.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::emu::{tools, wait_limit, Emu};
use common::upgrade::{install, previous_release};
use common::*;

struct Host {
    e: Emu,
    bin: PathBuf,
}

impl Host {
    fn nexcage(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin.join("nexcage"));
        c.env("NEXCAGE_CONFIG", &self.e.w.config).arg("--root").arg(&self.e.w.root).args(args);
        c
    }

    /// create (detached, stdio to files) and start; the pid file's pid.
    fn run_detached(&self, id: &str, bundle: &Path) -> i32 {
        let dir = self.e.w.dir.path();
        let pf = dir.join(format!("{id}.pid"));
        let status = self
            .cmd(&["create", "--bundle", bundle.to_str().unwrap(), "--pid-file", pf.to_str().unwrap(), id])
            .stdin(Stdio::null())
            .stdout(File::create(dir.join(format!("{id}.out"))).unwrap())
            .stderr(File::create(dir.join(format!("{id}.err"))).unwrap())
            .status()
            .unwrap();
        assert!(status.success(), "create {id}: {}", self.output_of(id, "err"));
        ok(&self.nexcage(&["start", id]));
        read_pid_file(&pf)
    }

    fn output_of(&self, id: &str, which: &str) -> String {
        std::fs::read_to_string(self.e.w.dir.path().join(format!("{id}.{which}"))).unwrap_or_default()
    }

    fn state(&self, id: &str) -> serde_json::Value {
        let out = self.nexcage(&["state", id]);
        ok(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

#[test]
fn containers_of_the_previous_release_work_after_an_upgrade() {
    let previous = previous_release();
    let e = Emu::new("lxc", 9700, 9709, "");
    let bin = e.w.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    install(&previous.join("nexcage"), &bin.join("nexcage"));
    install(&previous.join("nexcage-init"), &bin.join("nexcage-init"));
    // The configuration names the installed init, as /usr/lib/nexcage's is found.
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&e.w.config).unwrap()).unwrap();
    config["backends"]["lxc"]["init"] = bin.join("nexcage-init").display().to_string().into();
    std::fs::write(&e.w.config, serde_json::to_vec(&config).unwrap()).unwrap();
    let host = Host { e, bin };

    let script = "trap 'echo got-term; exit 7' TERM; echo started; while :; do sleep 0.1; done";
    let b = host.e.w.bundle("b", &["sh", "-c", script], &[]);
    let lives = host.run_detached("lives", &b);
    let forced = host.run_detached("forced", &b);
    let deadline = std::time::Instant::now() + wait_limit();
    while !host.output_of("lives", "out").contains("started") {
        assert!(
            std::time::Instant::now() < deadline,
            "the old container's program: {}",
            host.output_of("lives", "err")
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // The upgrade.
    install(Path::new(nexcage_bin()), &host.bin.join("nexcage"));
    install(&tools().init, &host.bin.join("nexcage-init"));

    let st = host.state("lives");
    assert_eq!((st["status"].as_str(), st["pid"].as_i64()), (Some("running"), Some(lives.into())), "{st}");
    let ex = host.nexcage(&["exec", "lives", "echo", "from-exec"]);
    ok(&ex);
    assert_eq!(text(&ex.stdout), "from-exec\n");
    ok(&host.nexcage(&["pause", "lives"]));
    assert_eq!(host.state("lives")["status"], "paused");
    ok(&host.nexcage(&["resume", "lives"]));
    assert_eq!(host.state("lives")["status"], "running");
    ok(&host.nexcage(&["kill", "lives", "TERM"]));
    assert_eq!(wait_pid(lives, wait_limit()), (Some(7), None), "the old supervisor reports the program's exit");
    assert_eq!(host.output_of("lives", "out"), "started\ngot-term\n");
    assert_eq!(host.state("lives")["status"], "stopped");
    ok(&host.nexcage(&["delete", "lives"]));
    ok(&host.nexcage(&["delete", "--force", "forced"]));
    let _ = wait_pid(forced, wait_limit());

    // And this build's own containers, with this build's init.
    let fresh = host.run_detached("fresh", &b);
    let ex = host.nexcage(&["exec", "fresh", "echo", "from-exec"]);
    ok(&ex);
    assert_eq!(text(&ex.stdout), "from-exec\n");
    ok(&host.nexcage(&["delete", "--force", "fresh"]));
    let _ = wait_pid(fresh, wait_limit());
    let list = host.nexcage(&["list", "-q"]);
    ok(&list);
    assert_eq!(text(&list.stdout), "");
    host.e.assert_clean("after the upgrade");
}
