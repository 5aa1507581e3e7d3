//! config.md#posix-platform-hooks and runtime.md#lifecycle: the six hooks run in
//! lifecycle order, get the state on stdin, their args and env; failures.
//!
//! Every hook is `/bin/sh -c SCRIPT` writing into a host directory that is also
//! bind-mounted at the same path inside the container, because startContainer hooks
//! run (and resolve their path) in the container while the others run on the host.

use super::{exiter, t, Test};
use crate::bundle::{Bundle, CHECKER};
use crate::harness::{ensure, Case, EXIT_TIMEOUT};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn tests() -> Vec<Test> {
    vec![
        t("hooks/create-phase-order", create_phase),
        t("hooks/start-phase-hooks", start_phase),
        t("hooks/start-container-before-program", start_container_before_program),
        t("hooks/poststop-on-delete", poststop_on_delete),
        t("hooks/state-on-stdin", |c| state_on_stdin(c, &["prestart", "createRuntime", "poststart", "poststop"])),
        t("hooks/state-on-stdin-container-hooks", |c| state_on_stdin(c, &["createContainer", "startContainer"])),
        t("hooks/args-and-env", args_and_env),
        t("hooks/start-container-in-container", start_container_inside),
        t("hooks/prestart-failure-fails-create", |c| fails_create(c, "prestart")),
        t("hooks/create-runtime-failure-fails-create", |c| fails_create(c, "createRuntime")),
        t("hooks/create-container-failure-fails-create", |c| fails_create(c, "createContainer")),
        t("hooks/start-container-failure-program-not-run", start_container_failure_not_run),
        t("hooks/start-container-failure-fails-start", |c| fails_start(c, "startContainer")),
        t("hooks/poststart-failure-fails-start", |c| fails_start(c, "poststart")),
        t("hooks/poststop-failure-ignored", poststop_failure),
    ]
}

const ALL: [&str; 6] = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn hook_dir(c: &Case) -> Result<PathBuf> {
    let d = c.dir.join("hooks");
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// A hook recording its name in `order`, its stdin in `NAME.json`, plus `extra`.
fn recorder(dir: &Path, name: &str, extra: &str) -> Value {
    let d = dir.display();
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {d}/{name}.json; echo {name} >> {d}/order; {extra}")],
        "env": [PATH, format!("RST_HOOK={name}")],
    })
}

/// Install hooks (name -> hook) and bind-mount the hook dir at its own path.
fn install(b: &mut Bundle, dir: &Path, hooks: &[(&str, Value)]) -> Result<()> {
    let mut h = serde_json::Map::new();
    for (name, hook) in hooks {
        if let Some(a) = h.entry(name.to_string()).or_insert_with(|| json!([])).as_array_mut() {
            a.push(hook.clone());
        }
    }
    b.config["hooks"] = Value::Object(h);
    let d = dir.display().to_string();
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.push(json!({ "destination": d, "type": "bind", "source": d, "options": ["rbind", "rw"] }));
    }
    b.save()
}

fn read_order(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("order")).unwrap_or_default().lines().map(String::from).collect()
}

fn expect_order(c: &mut Case, dir: &Path, want: &[&str], when: &str) -> Result<()> {
    // Give hooks that run asynchronously to the command (startContainer runs in the
    // container's init after start returns) a moment, then compare exactly.
    let _ = c.wait_for("hooks", Duration::from_secs(5), |_| read_order(dir).len() >= want.len());
    std::thread::sleep(Duration::from_millis(50));
    let got = read_order(dir);
    ensure(got == want, || format!("{when}, the hooks that ran are {got:?}, want {want:?}"))
}

fn all_hooks(c: &mut Case, b: &mut Bundle) -> Result<PathBuf> {
    let dir = hook_dir(c)?;
    let hooks: Vec<(&str, Value)> = ALL.iter().map(|n| (*n, recorder(&dir, n, ""))).collect();
    install(b, &dir, &hooks)?;
    Ok(dir)
}

/// After create exactly prestart, createRuntime, createContainer have run, in order.
fn create_phase(c: &mut Case) -> Result<()> {
    let mut b = exiter(c, 0)?;
    let dir = all_hooks(c, &mut b)?;
    c.create(&b)?;
    expect_order(c, &dir, &ALL[..3], "after create")
}

/// After start (and the program's exit) every hook but poststop ran exactly once,
/// the create-phase ones first and in order.
fn start_phase(c: &mut Case) -> Result<()> {
    let mut b = exiter(c, 0)?;
    let dir = all_hooks(c, &mut b)?;
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_exit(pid, EXIT_TIMEOUT)?;
    let _ = c.wait_for("hooks", Duration::from_secs(5), |_| read_order(&dir).len() >= 5);
    std::thread::sleep(Duration::from_millis(50));
    let got = read_order(&dir);
    let mut sorted = got.clone();
    sorted.sort();
    let mut want: Vec<String> = ALL[..5].iter().map(|s| s.to_string()).collect();
    want.sort();
    ensure(sorted == want && got[..3] == ALL[..3], || {
        format!("after start the hooks that ran are {got:?}, want prestart, createRuntime, createContainer, then startContainer and poststart")
    })
}

fn start_container_before_program(c: &mut Case) -> Result<()> {
    let mut b = c.bundle(&[CHECKER, "marker", "/rst/marker"])?;
    let dir = hook_dir(c)?;
    let d = dir.display();
    let extra = format!("if test -e /rst/marker; then echo after > {d}/when; else echo before > {d}/when; fi");
    install(&mut b, &dir, &[("startContainer", recorder(&dir, "startContainer", &extra))])?;
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_exit(pid, EXIT_TIMEOUT)?;
    let when = std::fs::read_to_string(dir.join("when")).unwrap_or_default();
    ensure(when.trim() == "before" && b.host_path("/rst/marker").exists(), || {
        format!(
            "the startContainer hook ran {:?} the program (want before); the program ran: {}",
            when.trim(),
            b.host_path("/rst/marker").exists()
        )
    })
}

fn poststop_on_delete(c: &mut Case) -> Result<()> {
    let mut b = exiter(c, 0)?;
    let dir = all_hooks(c, &mut b)?;
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_exit(pid, EXIT_TIMEOUT)?;
    std::thread::sleep(Duration::from_millis(100));
    let before = read_order(&dir);
    ensure(!before.iter().any(|h| h == "poststop"), || format!("poststop ran before delete: {before:?}"))?;
    let id = c.id.clone();
    c.run(&["delete", &id])?.check().context("delete failed")?;
    let after = read_order(&dir);
    let n = after.iter().filter(|h| *h == "poststop").count();
    ensure(n == 1 && after.last().map(String::as_str) == Some("poststop"), || {
        format!("after delete the hooks that ran are {after:?}, want poststop once, last")
    })
}

fn state_on_stdin(c: &mut Case, which: &[&str]) -> Result<()> {
    let mut b = exiter(c, 0)?;
    let dir = all_hooks(c, &mut b)?;
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_exit(pid, EXIT_TIMEOUT)?;
    let id = c.id.clone();
    c.run(&["delete", &id])?.check().context("delete failed")?;
    let bundle = std::fs::canonicalize(&b.dir)?;
    let mut problems = Vec::new();
    for name in which {
        let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap_or_default();
        let st: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{name}: stdin is not the state JSON ({e}): {text:?}"));
                continue;
            }
        };
        if st["id"].as_str() != Some(id.as_str()) {
            problems.push(format!("{name}: id {}", st["id"]));
        }
        if st["ociVersion"].as_str().unwrap_or("").is_empty() {
            problems.push(format!("{name}: no ociVersion"));
        }
        let sb = st["bundle"].as_str().unwrap_or("");
        if std::fs::canonicalize(sb).ok().as_ref() != Some(&bundle) {
            problems.push(format!("{name}: bundle {}", st["bundle"]));
        }
        if !matches!(st["status"].as_str(), Some("creating" | "created" | "running" | "stopped")) {
            problems.push(format!("{name}: status {}", st["status"]));
        }
        // The pid is required (as seen by the host) once the container is created.
        if matches!(*name, "prestart" | "createRuntime" | "poststart") && st["pid"].as_i64() != Some(pid as i64) {
            problems.push(format!("{name}: pid {}, want {pid}", st["pid"]));
        }
    }
    ensure(problems.is_empty(), || format!("hook stdin state problems:\n{}", problems.join("\n")))
}

fn args_and_env(c: &mut Case) -> Result<()> {
    let mut b = exiter(c, 0)?;
    let dir = hook_dir(c)?;
    let d = dir.display();
    let hook = json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat >/dev/null; printf '%s|%s|%s|%s' \"$0\" \"$1\" \"$2\" \"$RST_VAR\" > {d}/out"), "zero", "one arg", ""],
        "env": [PATH, "RST_VAR=value with spaces"],
    });
    install(&mut b, &dir, &[("createRuntime", hook)])?;
    c.create(&b)?;
    let got = std::fs::read_to_string(dir.join("out")).unwrap_or_default();
    let want = "zero|one arg||value with spaces";
    ensure(got == want, || format!("hook saw args/env {got:?}, want {want:?}"))
}

fn start_container_inside(c: &mut Case) -> Result<()> {
    let mut b = exiter(c, 0)?;
    b.config["hostname"] = json!("rst-in-container");
    let dir = hook_dir(c)?;
    let d = dir.display();
    // /rst-checker exists only in the container's rootfs.
    let extra = format!("cat /proc/sys/kernel/hostname > {d}/hostname; test -e {CHECKER} && echo yes > {d}/rootfs");
    install(&mut b, &dir, &[("startContainer", recorder(&dir, "startContainer", &extra))])?;
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_exit(pid, EXIT_TIMEOUT)?;
    let host = std::fs::read_to_string(dir.join("hostname")).unwrap_or_default();
    let rootfs = std::fs::read_to_string(dir.join("rootfs")).unwrap_or_default();
    ensure(host.trim() == "rst-in-container" && rootfs.trim() == "yes", || {
        format!("startContainer hook saw hostname {host:?} and container rootfs {rootfs:?}; it must run in the container's namespaces")
    })
}

fn failing(dir: &Path, name: &str) -> Value {
    recorder(dir, name, "exit 7")
}

fn fails_create(c: &mut Case, hook: &str) -> Result<()> {
    let mut b = c.bundle(&[CHECKER, "marker", "/rst/marker"])?;
    let marker = b.host_path("/rst/marker");
    let dir = hook_dir(c)?;
    install(&mut b, &dir, &[(hook, failing(&dir, hook))])?;
    let id = c.id.clone();
    let bd = b.dir.display().to_string();
    let out = c.create_args(&id, &["--bundle", &bd])?;
    ensure(!out.success(), || format!("create succeeded although the {hook} hook failed: {}", out.describe()))?;
    ensure(read_order(&dir) == [hook], || format!("hooks run: {:?}, want [{hook}]", read_order(&dir)))?;
    // Whatever is left must not run the program.
    let _ = c.run(&["start", &id]);
    std::thread::sleep(Duration::from_millis(200));
    ensure(!marker.exists(), || format!("the program ran although the {hook} hook failed"))
}

fn fails_start(c: &mut Case, hook: &str) -> Result<()> {
    let mut b = c.bundle(&[CHECKER, "marker-sleep", "/rst/marker"])?;
    let dir = hook_dir(c)?;
    install(&mut b, &dir, &[(hook, failing(&dir, hook))])?;
    c.create(&b)?;
    let id = c.id.clone();
    let out = c.run(&["start", &id])?;
    ensure(!out.success(), || format!("start succeeded although the {hook} hook failed: {}", out.describe()))
}

fn start_container_failure_not_run(c: &mut Case) -> Result<()> {
    let mut b = c.bundle(&[CHECKER, "marker-sleep", "/rst/marker"])?;
    let marker = b.host_path("/rst/marker");
    let dir = hook_dir(c)?;
    install(&mut b, &dir, &[("startContainer", failing(&dir, "startContainer"))])?;
    let pid = c.create(&b)?;
    let id = c.id.clone();
    let _ = c.run(&["start", &id])?;
    // The container must stop without running the program.
    c.wait_exit(pid, EXIT_TIMEOUT).context("the container must stop when its startContainer hook fails")?;
    ensure(read_order(&dir) == ["startContainer"], || format!("hooks run: {:?}", read_order(&dir)))?;
    ensure(!marker.exists(), || "the program ran although the startContainer hook failed".into())
}

fn poststop_failure(c: &mut Case) -> Result<()> {
    let mut b = exiter(c, 0)?;
    let dir = hook_dir(c)?;
    install(&mut b, &dir, &[("poststop", failing(&dir, "poststop"))])?;
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_exit(pid, EXIT_TIMEOUT)?;
    let id = c.id.clone();
    c.run(&["delete", &id])?.check().context("delete must succeed (with a warning) when a poststop hook fails")?;
    ensure(read_order(&dir) == ["poststop"], || format!("hooks run: {:?}", read_order(&dir)))?;
    let out = c.run(&["state", &id])?;
    super::expect_failure(&out, "state after delete")
}
