//! Logging in runc's shapes. With `--log FILE` every line goes to FILE (appended): with
//! `--log-format json` one JSON object per line (`level`, `msg`, `time`), which is what
//! containerd's shim reads back (the last `error` line becomes the failure message);
//! otherwise logrus-style text. Errors are also printed on stderr, bare (as crun prints
//! them, and runc when it logs to a file): engines show "<runtime>: <stderr>" (Podman
//! when it passes no --log, e.g. with --log-level debug), so a prefix would be doubled.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::cli::{Globals, LogFormat};

struct Logger {
    file: Option<Mutex<File>>,
    format: LogFormat,
    level: LevelFilter,
}

/// One log line in the requested format (no trailing newline).
pub fn format_line(format: LogFormat, level: Level, msg: &str, time: &str) -> String {
    let level = level.as_str().to_ascii_lowercase();
    match format {
        LogFormat::Json => serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string(),
        LogFormat::Text => format!("time={:?} level={level} msg={:?}", time, msg),
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let msg = record.args().to_string();
        let time = crate::state::now_rfc3339();
        let line = format_line(self.format, record.level(), &msg, &time);
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = writeln!(f, "{line}");
                }
                if record.level() == Level::Error {
                    eprintln!("{msg}");
                }
            }
            None => {
                if record.level() == Level::Error {
                    eprintln!("{msg}");
                } else {
                    eprintln!("{line}");
                }
            }
        }
    }

    fn flush(&self) {}
}

/// Install the logger for this invocation. A log file that cannot be opened is reported
/// on stderr and logging continues there.
pub fn init(globals: &Globals) {
    let file = globals.log.as_ref().and_then(|p| match OpenOptions::new().create(true).append(true).open(p) {
        Ok(f) => Some(Mutex::new(f)),
        Err(e) => {
            eprintln!("nexcage: cannot open log file {}: {e}", p.display());
            None
        }
    });
    let level = if globals.debug { LevelFilter::Debug } else { LevelFilter::Warn };
    let logger = Logger { file, format: globals.log_format, level };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_level_msg_time() {
        let l = format_line(LogFormat::Json, Level::Error, "container does not exist", "2026-01-01T00:00:00Z");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container does not exist");
        assert_eq!(v["time"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn text_line_is_logrus_style_and_escaped() {
        let l = format_line(LogFormat::Text, Level::Warn, "say \"hi\"", "T");
        assert_eq!(l, r#"time="T" level=warn msg="say \"hi\"""#);
    }
}
