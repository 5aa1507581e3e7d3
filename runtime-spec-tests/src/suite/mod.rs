//! The tests, one module per group. A test is a function over a `Case`; returning an
//! error fails it (the message says what the runtime did wrong).

use crate::bundle::{Bundle, CHECKER};
use crate::harness::{ensure, Case};
use crate::runtime::Output;
use anyhow::Result;

mod create;
mod delete;
mod errors;
mod hooks;
mod kill;
mod linux;
mod mounts;
mod pidfile;
mod process;
mod root;
mod start;
mod state;
mod wait;

pub type TestFn = fn(&mut Case) -> Result<()>;

pub struct Test {
    pub name: &'static str,
    pub run: TestFn,
}

pub(crate) fn t(name: &'static str, run: TestFn) -> Test {
    Test { name, run }
}

/// Every test, in the order they run and appear in docs/conformance.md.
pub fn all() -> Vec<Test> {
    let mut v = Vec::new();
    v.extend(create::tests());
    v.extend(start::tests());
    v.extend(state::tests());
    v.extend(kill::tests());
    v.extend(delete::tests());
    v.extend(errors::tests());
    v.extend(pidfile::tests());
    v.extend(wait::tests());
    v.extend(process::tests());
    v.extend(linux::tests());
    v.extend(mounts::tests());
    v.extend(root::tests());
    v.extend(hooks::tests());
    v
}

/// Tests that no reference runtime (runc 1.1.5, crun 1.8.1) passes, with the reason.
/// They still run, but are reported as `# SKIP no reference passes: <reason>` and do
/// not count in the verdict. Derived by running the suite against both.
pub const EXCLUDED: &[(&str, &str)] = &[
    (
        "hooks/start-container-failure-fails-start",
        "runc 1.1.5 and crun 1.8.1 run startContainer hooks in the container's init after `start` has \
         returned 0, so the failure is not reported by start; both stop the container without running \
         the program (checked by hooks/start-container-failure-program-not-run)",
    ),
    (
        "hooks/poststart-failure-fails-start",
        "runtime-spec 1.1 wants start to fail and the container to stop; runc 1.1.5 runs poststart \
         hooks during create (so create fails), crun 1.8.1 ignores the failure as runtime-spec 1.0 \
         said (start succeeds, the program keeps running)",
    ),
];

pub fn excluded_reason(name: &str) -> Option<&'static str> {
    EXCLUDED.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// Known deviations of one reference runtime: (test, reference, reason), for tests the
/// other reference passes. When the runtime under test is that reference, or nexcage
/// passing a container through to it (`--annotation nexcage.backend=<reference>`), the
/// test is reported as `# SKIP known <reference> deviation: <reason>` and does not
/// count; every other runtime, nexcage's own backends included, is judged by it.
/// Derived by running the suite against runc 1.1.5 and crun 1.8.1.
pub const REFERENCE_DEVIATIONS: &[(&str, &str, &str)] = &[
    (
        "hooks/create-phase-order",
        "runc",
        "runc 1.1.5 runs poststart hooks during create, before start (runtime.md lifecycle: after the program starts)",
    ),
    (
        "kill/lowercase-name",
        "crun",
        "crun 1.8.1 answers 0 to a lower-case signal name (`hup`) but sends no signal; runc accepts any case",
    ),
    ("kill/invalid-signal-fails", "crun", "crun 1.8.1 answers 0 to an unknown signal name; runc fails"),
    (
        "pidfile/relative-path",
        "crun",
        "crun 1.8.1 resolves a relative --pid-file against the bundle, runc against the caller's cwd",
    ),
    (
        "hooks/state-on-stdin-container-hooks",
        "crun",
        "crun 1.8.1 gives startContainer hooks the state with bundle \"/\" and status \"starting\"",
    ),
    (
        "errors/invalid-id-dotdot-harmless",
        "crun",
        "crun 1.8.1 `delete --force ..` recursively removes the parent directory of --root",
    ),
];

pub fn deviation_reason(name: &str, reference: Option<&str>) -> Option<&'static str> {
    let reference = reference?;
    REFERENCE_DEVIATIONS.iter().find(|(n, r, _)| *n == name && *r == reference).map(|(_, _, why)| *why)
}

/// Every test left out of some verdict, with why, for docs/conformance.md.
pub fn not_judged() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> =
        EXCLUDED.iter().map(|(n, r)| (n.to_string(), format!("excluded, no reference passes: {r}"))).collect();
    for (n, r, why) in REFERENCE_DEVIATIONS {
        v.push((n.to_string(), format!("not held against {r} (and nexcage→{r}): {why}")));
    }
    v
}

/// A bundle whose process sleeps until killed.
pub(crate) fn sleeper(c: &mut Case) -> Result<Bundle> {
    c.bundle(&[CHECKER, "sleep"])
}

/// A bundle whose process exits with `code` right away.
pub(crate) fn exiter(c: &mut Case, code: i32) -> Result<Bundle> {
    let code = code.to_string();
    c.bundle(&[CHECKER, "exit", &code])
}

/// The command must have failed (non-zero exit).
pub(crate) fn expect_failure(out: &Output, what: &str) -> Result<()> {
    ensure(out.code.is_some_and(|c| c != 0), || format!("{what} should fail, but {}", out.describe()))
}

/// Seconds since the epoch of an RFC 3339 date-time, None when `s` is not one.
pub(crate) fn rfc3339_epoch(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        frac = format!("0.{}", &s[start..i]).parse().ok()?;
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + h * 3600 + mi * 60 + se - offset) as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_epoch("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(rfc3339_epoch("2024-02-29T12:00:00.5+01:00"), Some(1709204400.5));
        assert_eq!(rfc3339_epoch("2024-02-29T12:00:00.123456789Z").map(|v| v.floor()), Some(1709208000.0));
        assert_eq!(rfc3339_epoch("2024-02-29 12:00:00Z"), None);
        assert_eq!(rfc3339_epoch("2024-02-29T12:00:00"), None);
        assert_eq!(rfc3339_epoch("2024-13-01T00:00:00Z"), None);
        assert_eq!(rfc3339_epoch("2024-01-01T00:00:00.Z"), None);
    }

    #[test]
    fn names_unique_and_grouped() {
        let all = all();
        let mut names: Vec<&str> = all.iter().map(|t| t.name).collect();
        assert!(names.iter().all(|n| n.contains('/') && !n.contains(' ') && !n.contains('|')));
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "duplicate test names");
        for (e, _) in EXCLUDED {
            assert!(names.contains(e), "excluded test {e} does not exist");
        }
        for (e, r, _) in REFERENCE_DEVIATIONS {
            assert!(names.contains(e), "deviation for unknown test {e}");
            assert!(matches!(*r, "runc" | "crun"), "unknown reference {r}");
            assert!(!EXCLUDED.iter().any(|(x, _)| x == e), "{e} is both excluded and a deviation");
        }
    }
}
