//! Command line and the run loop.

use crate::harness::{remove_tree, Ctx, SkipTest};
use crate::runtime::Runtime;
use crate::suite::{self, Test};
use crate::tap::{self, Counts, Outcome};
use crate::{checker_bin, table};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

pub const USAGE: &str = "\
usage: runtime-spec-tests --runtime PATH [--runtime-arg ARG]... [--annotation K=V]...
                          [--filter PATTERN]... [--list] [--checker PATH]
                          [--write-table FILE --column NAME] [--expected-failures FILE]
                          [--timeout-scale N]

Runs the OCI conformance suite against the runtime at PATH and prints TAP 13, then
a final line `N passed, M failed, K skipped`. Exit status 0 only when nothing failed.

  --runtime PATH        runtime binary (runc, crun, nexcage, ...)
  --runtime-arg ARG     global argument put before every subcommand (repeatable);
                        a private --root is added unless one is given here
  --annotation K=V      annotation added to every test bundle's config.json
                        (e.g. nexcage.backend=crun)
  --filter PATTERN      run only tests whose name contains PATTERN, or matches it
                        as a glob when it has * or ? (repeatable: any may match)
  --list                list the test names (after --filter) and exit
  --checker PATH        the static rst-checker binary (default: found or built)
  --reference runc|crun the reference runtime this run is (or passes through to),
                        whose known deviations are not held against it (default:
                        from `--annotation nexcage.backend=...` or `PATH --version`)
  --write-table FILE    merge this run's results into the markdown table in FILE
  --column NAME         ... as column NAME (e.g. runc, crun, nexcage→crun)
  --expected-failures FILE
                        known gaps of the runtime under test, one per line:
                        `TEST-NAME | CHECK | reason` (`#` comments, blank lines
                        ignored), CHECK a text the failure message must contain
                        (the failing assertion; alternatives joined with `||`,
                        every failed sub-check line must match one). A listed test that fails that
                        check is reported `not ok ... # TODO known gap: <reason>`
                        and does not fail the run; failing any other check fails
                        it; a listed test that passes is reported so the list can
                        shrink
  --timeout-scale N     multiply every timeout (runtime commands: 20 s, program
                        exits and waits: 3-10 s) by N, for slow runtimes (e.g.
                        Proxmox's pct in an emulated test VM); default 1
";

#[derive(Debug, Default, PartialEq)]
pub struct Options {
    pub runtime: Option<PathBuf>,
    pub runtime_args: Vec<String>,
    pub annotations: Vec<(String, String)>,
    pub filters: Vec<String>,
    pub list: bool,
    pub checker: Option<PathBuf>,
    pub reference: Option<String>,
    pub write_table: Option<PathBuf>,
    pub column: Option<String>,
    pub expected_failures: Option<PathBuf>,
    pub timeout_scale: u32,
}

pub fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = || -> Result<String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            args.get(i).cloned().with_context(|| format!("{flag} needs a value"))
        };
        match flag {
            "--runtime" => o.runtime = Some(value()?.into()),
            "--runtime-arg" => o.runtime_args.push(value()?),
            "--annotation" => {
                let v = value()?;
                let (k, val) = v.split_once('=').with_context(|| format!("--annotation {v}: want KEY=VALUE"))?;
                o.annotations.push((k.to_string(), val.to_string()));
            }
            "--filter" => o.filters.push(value()?),
            "--list" => o.list = true,
            "--checker" => o.checker = Some(value()?.into()),
            "--reference" => o.reference = Some(value()?),
            "--write-table" => o.write_table = Some(value()?.into()),
            "--column" => o.column = Some(value()?),
            "--expected-failures" => o.expected_failures = Some(value()?.into()),
            "--timeout-scale" => {
                let v = value()?;
                o.timeout_scale = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .with_context(|| format!("--timeout-scale {v}: want a whole number >= 1"))?;
            }
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
        i += 1;
    }
    if !o.list && o.runtime.is_none() {
        bail!("--runtime is required\n{USAGE}");
    }
    if o.write_table.is_some() != o.column.is_some() {
        bail!("--write-table and --column go together");
    }
    Ok(o)
}

/// Glob with `*` and `?` over the whole name.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pat[1..], s) || (!s.is_empty() && glob(pat, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p == c => glob(&pat[1..], &s[1..]),
        _ => false,
    }
}

pub fn matches(filters: &[String], name: &str) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            if f.contains('*') || f.contains('?') {
                glob(f.as_bytes(), name.as_bytes())
            } else {
                name.contains(f.as_str())
            }
        })
}

fn make_temp_dir() -> Result<PathBuf> {
    let base = std::env::var_os("TMPDIR").map(PathBuf::from).unwrap_or_else(|| "/tmp".into());
    let tmpl = std::ffi::CString::new(format!("{}/rst-XXXXXX", base.display()))?;
    let mut bytes = tmpl.into_bytes_with_nul();
    // SAFETY: bytes is a NUL-terminated, writable template, as mkdtemp requires.
    let p = unsafe { libc::mkdtemp(bytes.as_mut_ptr() as *mut libc::c_char) };
    if p.is_null() {
        bail!("mkdtemp in {}: {}", base.display(), std::io::Error::last_os_error());
    }
    bytes.pop();
    let dir = PathBuf::from(String::from_utf8(bytes)?);
    // Searchable by others (not listable): an unprivileged container's root (uid 100000
    // for LXC) must reach the host files a test bind-mounts, as an engine's directories
    // are reachable on a host. runc and crun bind as root and do not care.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o711))?;
    Ok(dir)
}

/// One known gap: the test, the checks it fails, and why. A check is a text of the
/// failure message; several are joined with `||`. A test stops at its first failing
/// assertion, whose message is one line, or a summary line followed by one line per
/// failed sub-check (the in-container checker's `not ok` lines, each problem of a hook's
/// state, a runtime's stderr): every one of those lines must contain a listed check, so
/// a sub-check that starts to fail unlisted fails the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub name: String,
    pub check: String,
    pub reason: String,
}

impl Expected {
    fn checks(&self) -> impl Iterator<Item = &str> {
        self.check.split("||").map(str::trim).filter(|c| !c.is_empty())
    }

    /// Does this failure message fail the listed checks, and nothing else?
    pub fn matches(&self, message: &str) -> bool {
        let covered = |line: &str| self.checks().any(|c| line.contains(c));
        covered(message) && message.lines().skip(1).filter(|l| !l.trim().is_empty()).all(covered)
    }
}

/// An expected-failures list: `TEST-NAME | CHECK | reason` per line, `#` comments and
/// blank lines ignored. Every name must be a test of the suite, listed once, with a
/// check and a reason.
pub fn parse_expected(text: &str, known: &[&str]) -> Result<Vec<Expected>> {
    let mut out: Vec<Expected> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        // Fields are separated by ` | ` (spaces around), so a check may hold `||`.
        let mut parts = l.splitn(3, " | ").map(str::trim);
        let (name, check, reason) =
            (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if !known.contains(&name) {
            bail!("line {}: {name:?} is not a test of this suite (format: TEST-NAME | CHECK | reason)", i + 1);
        }
        if check.is_empty() {
            bail!("line {}: {name}: the failing check is required (a text of its failure message)", i + 1);
        }
        if reason.is_empty() {
            bail!("line {}: {name}: a reason is required", i + 1);
        }
        if out.iter().any(|e| e.name == name) {
            bail!("line {}: {name} is listed twice", i + 1);
        }
        out.push(Expected { name: name.to_string(), check: check.to_string(), reason: reason.to_string() });
    }
    Ok(out)
}

fn has_root_arg(args: &[String]) -> bool {
    args.iter().any(|a| a == "--root" || a.starts_with("--root="))
}

/// Which reference runtime (runc or crun) this run is, or passes through to.
fn detect_reference(o: &Options) -> Option<String> {
    if let Some(r) = &o.reference {
        return Some(r.clone());
    }
    if let Some((_, v)) = o.annotations.iter().find(|(k, _)| k == "nexcage.backend") {
        return matches!(v.as_str(), "runc" | "crun").then(|| v.clone());
    }
    let mut child = std::process::Command::new(o.runtime.as_ref()?)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut text).ok()?;
    let first = text.split_whitespace().next()?.to_string();
    matches!(first.as_str(), "runc" | "crun").then_some(first)
}

fn run_test(ctx: &mut Ctx, test: &Test, reference: Option<&str>) -> Outcome {
    let mut case = match ctx.case(test.name) {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(format!("harness: {e:#}")),
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (test.run)(&mut case)));
    case.cleanup();
    let outcome = match result {
        Ok(Ok(())) => Outcome::Pass,
        Ok(Err(e)) => match e.downcast_ref::<SkipTest>() {
            Some(s) => Outcome::Skip(s.0.clone()),
            None => Outcome::Fail(format!("{e:#}")),
        },
        Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Outcome::Fail(format!("harness panic: {}", msg.unwrap_or_default()))
        }
    };
    let here = match &outcome {
        Outcome::Pass => "passed here".to_string(),
        Outcome::Fail(_) | Outcome::KnownGap { .. } => "failed here".to_string(),
        Outcome::Skip(s) => format!("skipped here: {s}"),
    };
    if let Some(reason) = suite::excluded_reason(test.name) {
        return Outcome::Skip(format!("no reference passes: {reason} ({here})"));
    }
    if let Some(reason) = suite::deviation_reason(test.name, reference) {
        let r = reference.unwrap_or_default();
        return Outcome::Skip(format!("known {r} deviation: {reason} ({here})"));
    }
    outcome
}

pub fn run(o: Options) -> Result<bool> {
    let tests: Vec<Test> = suite::all().into_iter().filter(|t| matches(&o.filters, t.name)).collect();
    if o.list {
        for t in &tests {
            println!("{}", t.name);
        }
        return Ok(true);
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("runtime-spec-tests must run as root (the runtimes create namespaces, mounts and cgroups)");
    }
    let mut runtime_path = o.runtime.clone().context("--runtime is required")?;
    // Commands run in each test's temp dir: a relative path must not depend on it
    // (a bare name is still looked up in PATH).
    if runtime_path.is_relative() && runtime_path.components().count() > 1 {
        runtime_path = std::env::current_dir()?.join(runtime_path);
    }
    crate::runtime::set_timeout_scale(o.timeout_scale);
    let expected: Vec<Expected> = match &o.expected_failures {
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
            let names: Vec<&str> = suite::all().iter().map(|t| t.name).collect();
            parse_expected(&text, &names).with_context(|| format!("{}", f.display()))?
        }
        None => Vec::new(),
    };
    let checker = checker_bin::locate(o.checker.as_deref())?;
    let busybox = checker_bin::busybox()?;
    let run_dir = make_temp_dir()?;
    let result = (|| -> Result<bool> {
        let assets = run_dir.join("assets");
        std::fs::create_dir_all(&assets)?;
        std::fs::copy(&busybox, assets.join("busybox")).context("copy busybox")?;
        std::fs::copy(&checker, assets.join("rst-checker")).context("copy rst-checker")?;
        let mut global = o.runtime_args.clone();
        let mut private_root = None;
        if !has_root_arg(&global) {
            global.push("--root".into());
            // Two levels below the run dir: crun 1.8.1 removes `<root>/..` for the id
            // "..", which must not take the harness's own files with it.
            let root = run_dir.join("rt").join("root");
            std::fs::create_dir_all(&root)?;
            global.push(root.display().to_string());
            private_root = Some(root);
        }
        let runtime = Runtime { path: runtime_path, global_args: global };
        let mut ctx = Ctx::new(
            runtime,
            o.annotations.clone(),
            run_dir.clone(),
            assets.join("busybox"),
            assets.join("rst-checker"),
        )?;
        ctx.private_root = private_root;
        let reference = detect_reference(&o);
        let started = Instant::now();
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", tap::header(tests.len()))?;
        writeln!(out, "# runtime: {}", ctx.runtime.cmdline(&[]))?;
        if let Some(r) = &reference {
            writeln!(out, "# reference: {r} (its known deviations are skipped)")?;
        }
        out.flush()?;
        let mut results: Vec<(String, Outcome)> = Vec::new();
        let mut gaps_passed: Vec<&str> = Vec::new();
        for (i, t) in tests.iter().enumerate() {
            let mut outcome = run_test(&mut ctx, t, reference.as_deref());
            let listed = expected.iter().find(|e| e.name == t.name);
            match (&outcome, listed) {
                (Outcome::Fail(message), Some(e)) if e.matches(message) => {
                    outcome = Outcome::KnownGap {
                        reason: format!("{} (fails at: {})", e.reason, e.check),
                        message: message.clone(),
                    }
                }
                (Outcome::Fail(message), Some(e)) => {
                    outcome = Outcome::Fail(format!(
                        "{message}\n(listed as a known gap failing at {:?}, but failed another check)",
                        e.check
                    ))
                }
                (Outcome::Pass, Some(_)) => gaps_passed.push(t.name),
                _ => {}
            }
            writeln!(out, "{}", tap::line(i + 1, t.name, &outcome))?;
            if let (Outcome::Pass, Some(f)) = (&outcome, &o.expected_failures) {
                if gaps_passed.last() == Some(&t.name) {
                    writeln!(out, "# {} passed but is listed as a known gap in {}: remove it", t.name, f.display())?;
                }
            }
            out.flush()?;
            results.push((t.name.to_string(), outcome));
        }
        let counts = Counts::of(results.iter().map(|(_, o)| o));
        writeln!(out, "# {} tests in {:.1}s", tests.len(), started.elapsed().as_secs_f64())?;
        if let Some(f) = &o.expected_failures {
            writeln!(out, "# {} known gaps (failed as listed in {})", counts.known, f.display())?;
            if !gaps_passed.is_empty() {
                writeln!(out, "# listed as known gaps but passed (shrink the list): {}", gaps_passed.join(" "))?;
            }
        }
        writeln!(out, "{}", tap::summary(counts))?;
        out.flush()?;
        if let (Some(file), Some(column)) = (&o.write_table, &o.column) {
            let doc = std::fs::read_to_string(file).unwrap_or_default();
            let order: Vec<String> = suite::all().iter().map(|t| t.name.to_string()).collect();
            let merged = table::merge(&doc, column, &results, &order, &suite::not_judged());
            std::fs::write(file, merged).with_context(|| format!("write {}", file.display()))?;
        }
        Ok(counts.failed == 0)
    })();
    let _ = remove_tree(&run_dir);
    result
}

pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e:#}");
            return 2;
        }
    };
    match run(opts) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("runtime-spec-tests: {e:#}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_all_flags() {
        let o = parse(&v(&[
            "--runtime",
            "/usr/sbin/runc",
            "--runtime-arg",
            "--root",
            "--runtime-arg=/tmp/x",
            "--annotation",
            "nexcage.backend=crun",
            "--filter",
            "kill/",
            "--write-table",
            "docs/c.md",
            "--column",
            "runc",
        ]))
        .unwrap();
        assert_eq!(o.runtime, Some("/usr/sbin/runc".into()));
        assert_eq!(o.runtime_args, v(&["--root", "/tmp/x"]));
        assert_eq!(o.annotations, vec![("nexcage.backend".to_string(), "crun".to_string())]);
        assert_eq!(o.filters, v(&["kill/"]));
        assert_eq!(o.column.as_deref(), Some("runc"));
        assert!(has_root_arg(&o.runtime_args));
        assert!(parse(&v(&["--list"])).unwrap().list);
        assert!(parse(&v(&[])).is_err());
        assert!(parse(&v(&["--runtime", "x", "--write-table", "f"])).is_err());
        assert!(parse(&v(&["--runtime", "x", "--annotation", "novalue"])).is_err());
        assert!(parse(&v(&["--runtime", "x", "--bogus"])).is_err());
        let o = parse(&v(&["--runtime", "x", "--expected-failures", "e.txt"])).unwrap();
        assert_eq!(o.expected_failures, Some("e.txt".into()));
    }

    #[test]
    fn expected_failures_lists() {
        let known = ["a/x", "a/y"];
        let got = parse_expected(
            "# comment\n\na/x | marker missing | the rootfs is a copy\na/y | cgroup ns | reason two\n",
            &known,
        )
        .unwrap();
        let e = |n: &str, c: &str, r: &str| Expected { name: n.into(), check: c.into(), reason: r.into() };
        assert_eq!(got, vec![e("a/x", "marker missing", "the rootfs is a copy"), e("a/y", "cgroup ns", "reason two")]);
        assert!(got[0].matches("start: marker missing in /x/rootfs") && !got[0].matches("exit status 1"));
        // A summary line, then one line per failed sub-check: each must be listed.
        let two = e("a/x", "pid 1: got false || cgroup ns", "r");
        assert!(two.matches("checks failed inside the container:\n  not ok 6 - pid 1: got false, want true"));
        assert!(two.matches("checks failed:\n  not ok 6 - pid 1: got false\n  not ok 7 - cgroup ns differs"));
        assert!(!two.matches("checks failed:\n  not ok 6 - pid 1: got false\n  not ok 8 - hostname differs"));
        assert!(parse_expected("a/x | check |\n", &known).unwrap_err().to_string().contains("a reason is required"));
        assert!(parse_expected("a/x |  | why\n", &known).unwrap_err().to_string().contains("check is required"));
        assert!(parse_expected("a/x  the old format\n", &known).unwrap_err().to_string().contains("not a test"));
        assert!(parse_expected("a/z | c | why\n", &known).unwrap_err().to_string().contains("not a test"));
        assert!(parse_expected("a/x | c | r\na/x | c | r\n", &known).unwrap_err().to_string().contains("twice"));
        let alt = parse_expected("a/x | first || second | why | with a bar\n", &known).unwrap();
        assert_eq!(alt[0], e("a/x", "first || second", "why | with a bar"));
        assert!(alt[0].matches("x: second") && alt[0].matches("first") && !alt[0].matches("third"));
    }

    #[test]
    fn filters() {
        assert!(matches(&[], "kill/name"));
        assert!(matches(&v(&["kill"]), "kill/name"));
        assert!(!matches(&v(&["hooks"]), "kill/name"));
        assert!(matches(&v(&["k*/n?me"]), "kill/name"));
        assert!(!matches(&v(&["k*/n?me"]), "kill/names"));
        assert!(matches(&v(&["hooks", "kill/*"]), "kill/name"));
    }
}
