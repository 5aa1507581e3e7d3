//! Passthrough is transparent: for a container routed to crun or runc, the commands,
//! flags, exit statuses, outputs and errors a user sees are the runtime's own. Each case
//! runs the same words against a container made through nexcage and against its twin
//! made by the runtime alone (same id, its own --root), and compares what a user sees.
//! nexcage's own information is only in its own commands and flags (`list --wide`).
//! The twin's id is the container's with `-alone` appended (cgroups are named after
//! ids: same ids would share a cgroup); its answers are compared with that masked.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

const BACKENDS: [&str; 2] = ["crun", "runc"];
const WAIT: Duration = Duration::from_secs(20);

struct Twins {
    w: World,
    backend: &'static str,
    direct_root: PathBuf,
}

impl Twins {
    fn new(backend: &'static str) -> Twins {
        let w = World::new(backend);
        let direct_root = w.dir.path().join("direct");
        Twins { w, backend, direct_root }
    }

    /// Twins each running `sleep 1000` as `id`.
    fn running(backend: &'static str, id: &str) -> Twins {
        let t = Twins::new(backend);
        let b = t.w.bundle("b", &["sleep", "1000"], &[]);
        t.create(id, &b);
        t.same(id, &["start", id]);
        t
    }

    /// The runtime alone, on the twin's root.
    fn direct(&self, args: &[&str]) -> Output {
        Command::new(self.backend)
            .arg("--root")
            .arg(&self.direct_root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Create `id` both ways (stdio to files: the container keeps them open).
    fn create(&self, id: &str, bundle: &Path) {
        for (who, mut cmd) in [("nexcage", self.w.cmd(["create"])), ("direct", Command::new(self.backend))] {
            let mut id = id.to_string();
            if who == "direct" {
                cmd.arg("--root").arg(&self.direct_root).arg("create");
                id = alone(&id);
            }
            let log = self.w.dir.path().join(format!("{who}-{id}.log"));
            let st = cmd
                .arg("--bundle")
                .arg(bundle)
                .arg(&id)
                .stdin(Stdio::null())
                .stdout(File::create(&log).unwrap())
                .stderr(File::create(self.w.dir.path().join(format!("{who}-{id}.err"))).unwrap())
                .status()
                .unwrap();
            assert!(st.success(), "{who} create {id} on {}", self.backend);
        }
    }

    /// Run `args` both ways and assert the same exit status and the same stderr (time
    /// stamps and the two roots masked); returns both outputs.
    #[track_caller]
    fn same(&self, id: &str, args: &[&str]) -> (Output, Output) {
        let (via, alone) = self.both(id, args);
        assert_eq!(self.mask(&via.stderr, id), self.mask(&alone.stderr, id), "{} {args:?}: stderr", self.backend);
        (via, alone)
    }

    /// As [`Twins::same`], for errors whose text is not stable from run to run (runc
    /// names the first cgroup controller it fails on, in Go's random map order): the exit
    /// status is compared, the text not.
    #[track_caller]
    fn both(&self, id: &str, args: &[&str]) -> (Output, Output) {
        let via = self.w.nexcage(args);
        let twin = alone(id);
        let direct_args: Vec<&str> = args.iter().map(|a| if *a == id { twin.as_str() } else { a }).collect();
        let alone = self.direct(&direct_args);
        assert_eq!(
            via.status.code(),
            alone.status.code(),
            "{} {args:?}: exit status through nexcage vs alone\nnexcage: {}\nalone: {}",
            self.backend,
            text(&via.stderr),
            text(&alone.stderr)
        );
        (via, alone)
    }

    fn mask(&self, b: &[u8], id: &str) -> String {
        let mut s = text(b).replace(&alone(id), id);
        for root in [self.w.root.join(format!("@{}", self.backend)), self.direct_root.clone()] {
            s = s.replace(root.to_str().unwrap(), "<root>");
        }
        // runc's log lines, `time="..." level=error msg="..."`, reduced to the message:
        // nexcage prints its own errors bare on stderr (as runc does when it logs to a
        // file, which engines always ask for; logging.rs), with runc's words.
        s.lines()
            .map(|l| match l.split_once("level=error msg=") {
                Some((_, m)) => serde_json::from_str::<String>(m).unwrap_or_else(|_| m.to_string()),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn status_of(&self, id: &str) -> (String, String) {
        let st = |o: Output| -> String {
            serde_json::from_slice::<serde_json::Value>(&o.stdout).map(|v| v["status"].to_string()).unwrap_or_default()
        };
        (st(self.w.nexcage(["state", id])), st(self.direct(&["state", &alone(id)])))
    }

    fn cleanup(&self, id: &str) {
        ok(&self.w.nexcage(["delete", "--force", id]));
        let _ = self.direct(&["delete", "--force", &alone(id)]);
    }
}

fn alone(id: &str) -> String {
    format!("{id}-alone")
}

impl Drop for Twins {
    /// The runtime's own containers (a failed assertion skips `cleanup`); nexcage's go
    /// with the World.
    fn drop(&mut self) {
        if let Ok(out) = Command::new(self.backend).arg("--root").arg(&self.direct_root).args(["list", "-q"]).output() {
            for id in text(&out.stdout).lines() {
                let _ = self.direct(&["delete", "--force", id]);
            }
        }
    }
}

#[test]
fn kill_signal_zero_bad_signals_and_lowercase_names_are_the_runtimes() {
    for backend in BACKENDS {
        let t = Twins::running(backend, "parity-k");
        // Signal 0 asks whether the program is alive: runc and crun answer 0.
        for args in
            [vec!["kill", "parity-k", "0"], vec!["kill", "-a", "parity-k", "0"], vec!["kill", "--all", "parity-k", "0"]]
        {
            let (via, _) = t.same("parity-k", &args);
            assert!(via.status.success(), "{backend} {args:?}: {}", text(&via.stderr));
        }
        for sig in ["65", "FOO", "SIGNOPE", "", "RTMIN+99", "usr1", "9;reboot"] {
            t.same("parity-k", &["kill", "parity-k", sig]);
            // A signal that kills is delivered at once but the twins' programs die and
            // are reaped each in its own time: the two states agree once both settled.
            let deadline = std::time::Instant::now() + WAIT;
            let (via, alone) = loop {
                let (via, alone) = t.status_of("parity-k");
                if via == alone || std::time::Instant::now() >= deadline {
                    break (via, alone);
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            assert_eq!(via, alone, "{backend}: status after kill {sig}");
        }
        t.cleanup("parity-k");
    }
}

#[test]
fn exec_cgroup_is_repeatable_and_exec_failures_exit_as_the_runtime() {
    for backend in BACKENDS {
        let t = Twins::running(backend, "parity-e");
        let (via, _) = t.both(
            "parity-e",
            &["exec", "--cgroup", "memory:submem", "--cgroup", "cpu,cpuacct:subcpu", "parity-e", "true"],
        );
        assert!(!text(&via.stderr).contains("cannot be used multiple times"), "{}", text(&via.stderr));
        let (via, _) = t.same("parity-e", &["exec", "parity-e", "sh", "-c", "exit 7"]);
        assert_eq!(via.status.code(), Some(7));
        t.same("parity-e", &["exec", "parity-e", "/no/such/program"]);
        t.cleanup("parity-e");
    }
    // A container nobody has: nexcage cannot know a backend, and answers as runc does.
    let t = Twins::new("runc");
    let (via, _) = t.same("ghost", &["exec", "ghost", "true"]);
    assert_eq!(via.status.code(), Some(255));
}

#[test]
fn pause_resume_ps_update_events_checkpoint_are_the_runtimes() {
    for backend in BACKENDS {
        let t = Twins::running(backend, "parity-p");
        t.same("parity-p", &["pause", "parity-p"]);
        assert_eq!(t.status_of("parity-p"), ("\"paused\"".into(), "\"paused\"".into()));
        t.same("parity-p", &["resume", "parity-p"]);
        let (via, alone) = t.same("parity-p", &["ps", "--format", "json", "parity-p"]);
        let n = |o: &Output| serde_json::from_slice::<Vec<i64>>(&o.stdout).map(|v| v.len()).unwrap_or(usize::MAX);
        assert_eq!(n(&via), n(&alone), "{backend}: ps lists the one program");
        t.same("parity-p", &["update", "--pids-limit", "100", "parity-p"]);
        // runc prints one JSON stats document; crun has no `events` command.
        let (via, alone) = t.same("parity-p", &["events", "--stats", "parity-p"]);
        if via.status.success() {
            let keys = |o: &Output| -> Vec<String> {
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                k.sort();
                k
            };
            assert_eq!(keys(&via), keys(&alone), "{backend}: events --stats");
        }
        // No CRIU on this host: the same refusal either way.
        let images = t.w.dir.path().join("images");
        t.same("parity-p", &["checkpoint", "--image-path", images.to_str().unwrap(), "parity-p"]);
        t.cleanup("parity-p");
    }
}

#[test]
fn list_is_runcs_table_and_json() {
    let t = Twins::new("runc");
    let b = t.w.bundle("b", &["sleep", "1000"], &[]);
    // Empty: runc prints the header alone, and `null` in JSON.
    let runc_root = t.w.root.join("@runc");
    let runc_list = |args: &[&str]| {
        Command::new("runc").arg("--root").arg(&runc_root).arg("list").args(args).output().unwrap().stdout
    };
    assert_eq!(text(&t.w.nexcage(["list", "--format", "json"]).stdout), "null\n");
    for (id, start) in [("one", false), ("two-longer-name", true)] {
        ok(&t.w.run_detached(&["create", "--bundle", b.to_str().unwrap(), id], &[]));
        if start {
            ok(&t.w.nexcage(["start", id]));
        }
    }
    // Every container is runc's: nexcage's answer is runc's, byte for byte.
    assert_eq!(text(&t.w.nexcage(["list"]).stdout), text(&runc_list(&[])));
    assert_eq!(text(&t.w.nexcage(["list", "-q"]).stdout), text(&runc_list(&["-q"])));
    let json = |b: Vec<u8>| serde_json::from_slice::<serde_json::Value>(&b).unwrap();
    assert_eq!(json(t.w.nexcage(["list", "--format", "json"]).stdout), json(runc_list(&["--format", "json"])));
    for id in ["one", "two-longer-name"] {
        ok(&t.w.nexcage(["delete", "--force", id]));
    }
}

#[test]
fn kill_and_delete_take_crun_regex() {
    let w = World::new("crun");
    let b = w.bundle("b", &["sleep", "1000"], &[]);
    for id in ["web-1", "web-2", "db-1"] {
        ok(&w.run_detached(&["create", "--bundle", b.to_str().unwrap(), id], &[]));
        ok(&w.nexcage(["start", id]));
    }
    ok(&w.nexcage(["kill", "--regex", "web-.*", "KILL"]));
    for id in ["web-1", "web-2"] {
        eventually("web stopped", WAIT, || w.state(id)["status"] == "stopped");
    }
    assert_eq!(w.state("db-1")["status"], "running");
    ok(&w.nexcage(["delete", "-r", "^web-"]));
    assert_eq!(text(&w.nexcage(["list", "-q"]).stdout), "db-1\n");
    fails_with(&w.nexcage(["delete", "--regex", "("]), "regular expression");
    ok(&w.nexcage(["delete", "-f", "db-1"]));
}

/// Long flags (with whether they take a value) and short ones from `<runtime> <cmd> --help`.
fn help_flags(runtime: &str, cmd: &str) -> Vec<(String, bool)> {
    let out = Command::new(runtime).args([cmd, "--help"]).output().unwrap();
    let mut flags = Vec::new();
    for line in text(&out.stdout).lines() {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        // runc: `--bundle value, -b value  text`; crun: `-b, --bundle=DIR  text`,
        // `--tty[=TTY]` (optional value: given without one here).
        let spec = line.split("  ").next().unwrap();
        let takes = spec.contains(" value") || (spec.contains('=') && !spec.contains("[="));
        for name in spec.split(", ") {
            let name = name.split([' ', '=', '[']).next().unwrap();
            if ["--help", "-h", "-?", "--usage", "--version", "-v"].contains(&name) {
                continue;
            }
            flags.push((name.to_string(), takes));
        }
    }
    flags
}

#[test]
fn every_runc_and_crun_flag_is_accepted_by_nexcages_parser() {
    let commands = [
        "create",
        "run",
        "start",
        "state",
        "kill",
        "delete",
        "exec",
        "ps",
        "list",
        "pause",
        "resume",
        "update",
        "spec",
        "checkpoint",
        "restore",
        "events",
    ];
    let mut checked = 0;
    for runtime in BACKENDS {
        for cmd in commands {
            for (flag, takes) in help_flags(runtime, cmd) {
                let mut words = vec![cmd.to_string(), flag.clone()];
                if takes {
                    words.push(
                        if flag.ends_with("format") || (flag == "-f" && ["ps", "list"].contains(&cmd)) {
                            "json"
                        } else {
                            "1"
                        }
                        .into(),
                    );
                }
                if !["list", "spec"].contains(&cmd) {
                    words.push("some-id".into());
                }
                if cmd == "exec" {
                    words.push("true".into());
                }
                let os: Vec<std::ffi::OsString> = words.iter().map(Into::into).collect();
                if let Err(e) = nexcage::cli::parse_command(&os) {
                    panic!("{runtime} {cmd} {flag}: nexcage refuses {words:?}: {e}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} flags found in the runtimes' help");
}

#[test]
fn restore_is_the_runtimes_and_a_failed_one_leaves_no_record() {
    for backend in BACKENDS {
        let t = Twins::new(backend);
        let b = t.w.bundle("b", &["sleep", "1000"], &[]);
        let images = t.w.dir.path().join("no-images");
        // No checkpoint images (and no CRIU here): the runtime's own refusal, either way.
        let (via, _) = t.same(
            "parity-r",
            &["restore", "--image-path", images.to_str().unwrap(), "--bundle", b.to_str().unwrap(), "parity-r"],
        );
        assert!(!via.status.success(), "{backend}: restore without images succeeded");
        assert!(!t.w.root.join("parity-r").exists(), "{backend}: a failed restore left its record");
        assert_eq!(text(&t.w.nexcage(["list", "-q"]).stdout), "", "{backend}");
    }
}

/// A reader that goes away (`nexcage list | head -1`, `nexcage state x | grep -q running`)
/// ends nexcage as it ends the runtime: by SIGPIPE, silently, where Rust's default is a
/// panic message ("failed printing to stdout") and an abort. Seen in hack/bench-pve's
/// `state | grep -q`. Here stdout is a pipe whose reader is already closed.
#[test]
fn a_reader_that_goes_away_ends_printing_commands_by_sigpipe_as_the_runtime() {
    use std::os::unix::process::ExitStatusExt;
    for backend in BACKENDS {
        let t = Twins::running(backend, "pipe");
        let closed = |mut cmd: Command| -> Output {
            let (r, w) = nix::unistd::pipe().unwrap();
            drop(r);
            cmd.stdin(Stdio::null()).stdout(Stdio::from(w)).stderr(Stdio::piped()).output().unwrap()
        };
        let runtime = |args: &[&str]| {
            let mut c = Command::new(backend);
            c.arg("--root").arg(&t.direct_root).args(args);
            c
        };
        let twin = alone("pipe");
        for (ours, theirs) in [
            (vec!["list"], vec!["list"]),
            (vec!["state", "pipe"], vec!["state", twin.as_str()]),
            (vec!["features"], vec!["features"]),
        ] {
            let r = closed(runtime(&theirs));
            if backend == "crun" && theirs == ["features"] && r.status.code() == Some(1) {
                continue; // Debian 12's crun 1.8.1 has no `features`
            }
            let n = closed(t.w.cmd(&ours));
            assert_eq!(r.status.signal(), Some(libc::SIGPIPE), "{backend} {theirs:?}: {:?}", r.status);
            assert_eq!(n.status.signal(), Some(libc::SIGPIPE), "nexcage {ours:?} on {backend}: {}", text(&n.stderr));
            assert_eq!(text(&n.stderr), "", "nexcage {ours:?} on {backend}");
        }
        t.cleanup("pipe");
    }
    // nexcage's own: `--version` and a proxmox-lxc-less `list --wide`.
    let w = World::new("crun");
    for args in [&["--version"][..], &["list", "--wide"]] {
        let (r, wr) = nix::unistd::pipe().unwrap();
        drop(r);
        let out = w.cmd(args).stdin(Stdio::null()).stdout(Stdio::from(wr)).stderr(Stdio::piped()).output().unwrap();
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "nexcage {args:?}: {}", text(&out.stderr));
    }
}
