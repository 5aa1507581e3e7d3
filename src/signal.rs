//! Signal names and numbers as `kill` accepts them on proxmox-lxc: `KILL`, `SIGKILL`,
//! `kill`, `9`, `RTMIN+3`, and 0 (is the program alive?) as runc accepts them.
//! Passthrough backends get the caller's words unchanged: their own runtime's rules.

use anyhow::{bail, Result};

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Linux's real-time signal range as the C library exposes it (glibc reserves the first
/// two kernel RT signals, so RTMIN is 34).
fn rt_range() -> (i32, i32) {
    (libc::SIGRTMIN(), libc::SIGRTMAX())
}

/// Parse a signal given on the command line. Default (None) is SIGTERM.
pub fn parse(raw: Option<&str>) -> Result<i32> {
    let Some(raw) = raw else { return Ok(libc::SIGTERM) };
    let (rtmin, rtmax) = rt_range();
    let max = rtmax.max(64);
    if let Ok(n) = raw.parse::<i64>() {
        // 0 sends nothing but asks whether the program is alive (kill(2)), as runc allows.
        if !(0..=max as i64).contains(&n) {
            bail!("invalid signal {n}: signal numbers are 0 to {max}");
        }
        return Ok(n as i32);
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    let rt = |base: i32, offset: &str, sign: i32| -> Option<i32> {
        let off: i32 = if offset.is_empty() { 0 } else { offset.parse().ok()? };
        let n = base + sign * off;
        (rtmin..=rtmax).contains(&n).then_some(n)
    };
    let found = if let Some(rest) = name.strip_prefix("RTMIN") {
        rest.strip_prefix('+')
            .map_or_else(|| if rest.is_empty() { rt(rtmin, "", 1) } else { None }, |o| rt(rtmin, o, 1))
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rest.strip_prefix('-')
            .map_or_else(|| if rest.is_empty() { rt(rtmax, "", 1) } else { None }, |o| rt(rtmax, o, -1))
    } else {
        None
    };
    match found {
        Some(n) => Ok(n),
        None => {
            bail!("invalid signal {raw:?}: use a name such as TERM, SIGKILL, usr1, RTMIN+2, or a number 0 to {max}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_any_case_with_or_without_sig() {
        for s in ["KILL", "SIGKILL", "kill", "sigkill", "Kill", "9"] {
            assert_eq!(parse(Some(s)).unwrap(), 9, "{s}");
        }
        assert_eq!(parse(Some("usr1")).unwrap(), libc::SIGUSR1);
        assert_eq!(parse(Some("SIGWINCH")).unwrap(), libc::SIGWINCH);
    }

    #[test]
    fn default_is_term() {
        assert_eq!(parse(None).unwrap(), libc::SIGTERM);
    }

    #[test]
    fn realtime_signals() {
        assert_eq!(parse(Some("RTMIN")).unwrap(), libc::SIGRTMIN());
        assert_eq!(parse(Some("SIGRTMIN+2")).unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse(Some("rtmax-1")).unwrap(), libc::SIGRTMAX() - 1);
        assert!(parse(Some("RTMIN+99")).is_err());
        assert!(parse(Some("RTMINX")).is_err());
    }

    #[test]
    fn bad_signals_are_specific_errors() {
        assert_eq!(parse(Some("0")).unwrap(), 0, "signal 0 asks whether the program is alive");
        assert!(parse(Some("65")).unwrap_err().to_string().contains("invalid signal 65"));
        assert!(parse(Some("-1")).unwrap_err().to_string().contains("invalid signal -1"));
        let e = parse(Some("FOO")).unwrap_err().to_string();
        assert!(e.contains("invalid signal \"FOO\"") && e.contains("TERM"), "{e}");
    }
}
