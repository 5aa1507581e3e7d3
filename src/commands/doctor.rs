//! `doctor`: run the host checks (`crate::doctor`), print them for people (table) or
//! automation (json). Exit status 0 when nothing failed (warnings allowed), 1 otherwise.

use std::io::Write;

use anyhow::Result;

use super::Ctx;
use crate::cli::{DoctorArgs, Format};
use crate::doctor::{run_checks, Check, Status};

pub fn doctor(ctx: &Ctx, args: &DoctorArgs) -> Result<i32> {
    let checks = run_checks(ctx.store.root());
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let (passed, warnings, failed) = (count(Status::Pass), count(Status::Warn), count(Status::Fail));
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            #[derive(serde::Serialize)]
            struct Report<'a> {
                ok: bool,
                passed: usize,
                warnings: usize,
                failed: usize,
                checks: &'a [Check],
            }
            let report = Report { ok: failed == 0, passed, warnings, failed, checks: &checks };
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        }
        Format::Table => {
            write!(out, "{}", render(&checks))?;
            writeln!(
                out,
                "\n{passed} passed, {warnings} warning{}, {failed} failed: {}",
                if warnings == 1 { "" } else { "s" },
                if failed == 0 { "nexcage can run on this host" } else { "fix the failures above" }
            )?;
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// One line per check, `STATUS  name  detail`, and an indented `fix:` line under
/// warnings and failures.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.chars().count()).max().unwrap_or(0);
    let mut text = String::new();
    for c in checks {
        let status = match c.status {
            Status::Pass => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        text.push_str(&format!("{status}  {:width$}  {}\n", c.name, c.detail));
        if let (Some(fix), true) = (&c.fix, c.status != Status::Pass) {
            text.push_str(&format!("{:width$}  fix: {fix}\n", "", width = width + 6));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_are_indented_under_their_check() {
        let checks = vec![
            Check { name: "config".into(), status: Status::Pass, detail: "/etc/x".into(), fix: None },
            Check {
                name: "backend crun".into(),
                status: Status::Fail,
                detail: "missing".into(),
                fix: Some("apt install crun".into()),
            },
        ];
        assert_eq!(
            render(&checks),
            "ok    config        /etc/x\nFAIL  backend crun  missing\n                    fix: apt install crun\n"
        );
    }
}
