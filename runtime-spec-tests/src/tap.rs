//! TAP 13 output and the final summary line.

/// Outcome of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// The test ran and failed; the message says what was wrong.
    Fail(String),
    /// Not part of the verdict; the reason is printed as a TAP `# SKIP` directive.
    Skip(String),
    /// Failed, and listed in `--expected-failures` with `reason`: a TAP `# TODO`
    /// (`not ok ... # TODO known gap: <reason>`), not counted as failed. The table
    /// still shows FAIL.
    KnownGap {
        reason: String,
        message: String,
    },
}

impl Outcome {
    /// The word used in the conformance table.
    pub fn cell(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) | Outcome::KnownGap { .. } => "FAIL",
            Outcome::Skip(_) => "skip",
        }
    }
}

/// The TAP header: version line and plan.
pub fn header(planned: usize) -> String {
    format!("TAP version 13\n1..{planned}")
}

/// One TAP test line, with a YAML diagnostic block for failures.
pub fn line(number: usize, name: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Pass => format!("ok {number} - {name}"),
        Outcome::Skip(reason) => format!("ok {number} - {name} # SKIP {}", one_line(reason)),
        Outcome::Fail(msg) => failed(format!("not ok {number} - {name}"), msg),
        Outcome::KnownGap { reason, message } => {
            failed(format!("not ok {number} - {name} # TODO known gap: {}", one_line(reason)), message)
        }
    }
}

/// A `not ok` line with its YAML diagnostic block.
fn failed(head: String, msg: &str) -> String {
    let mut s = format!("{head}\n  ---\n  message: |\n");
    let msg = if msg.trim().is_empty() { "(no message)" } else { msg.trim_end() };
    for l in msg.lines() {
        s.push_str("    ");
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("  ...");
    s
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").replace('#', "\\#")
}

/// Counts of a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Failures listed as known gaps (`--expected-failures`): not failed.
    pub known: usize,
}

impl Counts {
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Counts {
        let mut c = Counts::default();
        for o in outcomes {
            match o {
                Outcome::Pass => c.passed += 1,
                Outcome::Fail(_) => c.failed += 1,
                Outcome::Skip(_) => c.skipped += 1,
                Outcome::KnownGap { .. } => c.known += 1,
            }
        }
        c
    }
}

/// The final line: exactly `N passed, M failed, K skipped`, plus `, G known gaps` when
/// an expected-failures list turned failures into known gaps.
pub fn summary(c: Counts) -> String {
    let mut s = format!("{} passed, {} failed, {} skipped", c.passed, c.failed, c.skipped);
    if c.known > 0 {
        s.push_str(&format!(", {} known gaps", c.known));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_lines() {
        assert_eq!(header(3), "TAP version 13\n1..3");
        assert_eq!(line(1, "create/state", &Outcome::Pass), "ok 1 - create/state");
        assert_eq!(
            line(2, "hooks/x", &Outcome::Skip("no reference passes: runc # and\ncrun".into())),
            "ok 2 - hooks/x # SKIP no reference passes: runc \\# and crun"
        );
        assert_eq!(
            line(3, "kill/default", &Outcome::Fail("got 9\nwant 15\n".into())),
            "not ok 3 - kill/default\n  ---\n  message: |\n    got 9\n    want 15\n  ..."
        );
        assert_eq!(
            line(4, "t", &Outcome::Fail(String::new())),
            "not ok 4 - t\n  ---\n  message: |\n    (no message)\n  ..."
        );
    }

    #[test]
    fn summary_counts() {
        let o = [Outcome::Pass, Outcome::Fail("x".into()), Outcome::Pass, Outcome::Skip("y".into())];
        let c = Counts::of(&o);
        assert_eq!(c, Counts { passed: 2, failed: 1, skipped: 1, known: 0 });
        assert_eq!(summary(c), "2 passed, 1 failed, 1 skipped");
        assert_eq!(summary(Counts::default()), "0 passed, 0 failed, 0 skipped");
        let gap = Outcome::KnownGap { reason: "the rootfs is a copy".into(), message: "no marker".into() };
        assert_eq!(
            line(5, "start/x", &gap),
            "not ok 5 - start/x # TODO known gap: the rootfs is a copy\n  ---\n  message: |\n    no marker\n  ..."
        );
        assert_eq!(gap.cell(), "FAIL");
        let c = Counts::of(&[Outcome::Pass, gap]);
        assert_eq!(summary(c), "1 passed, 0 failed, 0 skipped, 1 known gaps");
    }
}
