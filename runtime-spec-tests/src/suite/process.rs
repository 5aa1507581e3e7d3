//! config.md#process, verified from inside by the checker: args, env, cwd, user,
//! groups, rlimits, capabilities, noNewPrivileges, oomScoreAdj, stdio.

use super::{t, Test};
use crate::bundle::{CHECKER, EXPECT};
use crate::harness::{ensure, Case, EXIT_TIMEOUT};
use anyhow::Result;
use serde_json::json;

pub fn tests() -> Vec<Test> {
    vec![
        t("process/args", args),
        t("process/env", env),
        t("process/cwd", cwd),
        t("process/user-uid-gid", user),
        t("process/user-no-additional-groups", no_groups),
        t("process/additional-gids", additional_gids),
        t("process/rlimits", rlimits),
        t("process/capabilities-root", caps_root),
        t("process/capabilities-non-root-ambient", caps_non_root),
        t("process/no-new-privileges-true", |c| nnp(c, true)),
        t("process/no-new-privileges-false", |c| nnp(c, false)),
        t("process/oom-score-adj", oom_score_adj),
        t("process/stdin-stdout", stdio),
    ]
}

fn checker(c: &mut Case) -> Result<crate::bundle::Bundle> {
    c.bundle(&[CHECKER, "check", EXPECT])
}

fn args(c: &mut Case) -> Result<()> {
    let want = [CHECKER, "check", EXPECT, "two words", "", "--flag=x", "ünï\"cødé'"];
    let mut b = checker(c)?;
    b.set_args(&want);
    c.run_checker(&mut b, &json!({ "args": want }))
}

fn env(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    let env = ["PATH=/bin:/sbin", "RST_PLAIN=1", "RST_SPACES=a b  c", "RST_EMPTY=", "RST_EQUALS=x=y"];
    b.config["process"]["env"] = json!(env);
    c.run_checker(&mut b, &json!({ "env": env }))
}

fn cwd(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    std::fs::create_dir_all(b.host_path("/var/rst-cwd"))?;
    b.config["process"]["cwd"] = json!("/var/rst-cwd");
    c.run_checker(&mut b, &json!({ "cwd": "/var/rst-cwd" }))
}

fn user(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    b.config["process"]["user"] = json!({ "uid": 1234, "gid": 2345 });
    c.run_checker(&mut b, &json!({ "uid": 1234, "gid": 2345 }))
}

fn no_groups(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    b.config["process"]["user"] = json!({ "uid": 1234, "gid": 2345 });
    c.run_checker(&mut b, &json!({ "groups": [] }))
}

fn additional_gids(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    b.config["process"]["user"] = json!({ "uid": 1234, "gid": 2345, "additionalGids": [3001, 3002, 5] });
    c.run_checker(&mut b, &json!({ "uid": 1234, "gid": 2345, "groups": [3001, 3002, 5] }))
}

fn rlimits(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    let rl = json!([
        { "type": "RLIMIT_NOFILE", "soft": 256, "hard": 512 },
        { "type": "RLIMIT_CORE", "soft": 4096, "hard": 8192 },
        { "type": "RLIMIT_NPROC", "soft": 1000, "hard": 2000 },
    ]);
    b.config["process"]["rlimits"] = rl.clone();
    c.run_checker(&mut b, &json!({ "rlimits": rl }))
}

fn caps_root(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    let caps = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_CHROOT"],
        // For uid 0 the kernel makes effective = permitted at execve.
        "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID"],
        "inheritable": ["CAP_KILL", "CAP_SYS_CHROOT"],
        "ambient": ["CAP_KILL"],
    });
    b.config["process"]["capabilities"] = caps.clone();
    c.run_checker(&mut b, &json!({ "caps": caps }))
}

fn caps_non_root(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let caps = json!({
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    });
    b.config["process"]["capabilities"] = caps.clone();
    c.run_checker(&mut b, &json!({ "uid": 1000, "caps": caps }))
}

fn nnp(c: &mut Case, on: bool) -> Result<()> {
    let mut b = checker(c)?;
    b.config["process"]["noNewPrivileges"] = json!(on);
    c.run_checker(&mut b, &json!({ "no_new_privs": on }))
}

fn oom_score_adj(c: &mut Case) -> Result<()> {
    let mut b = checker(c)?;
    b.config["process"]["oomScoreAdj"] = json!(123);
    c.run_checker(&mut b, &json!({ "oom_score_adj": 123 }))
}

fn stdio(c: &mut Case) -> Result<()> {
    let input = "line one\nline two with \u{e9}\n";
    std::fs::write(c.dir.join("stdin"), input)?;
    let b = c.bundle(&[CHECKER, "cat"])?;
    let pid = c.create(&b)?;
    c.start()?;
    c.wait_exit(pid, EXIT_TIMEOUT)?;
    let out = c.container_stdout();
    ensure(out == input, || {
        format!("the program's stdout is {out:?}, want its stdin {input:?} (stdio must be the runtime's)")
    })
}
