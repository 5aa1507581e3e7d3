//! pct's command line grammar: subcommand prefixes, `-x`/`--x` options interleaved with
//! positionals, boolean forms, and the PVE error texts (`400 ...` + usage line).

use std::collections::BTreeMap;

use crate::output::Exit;
use crate::propstr;
use crate::validate;

/// A value check returning PVE's message.
pub type Check = fn(&str) -> Result<(), String>;

pub enum Kind {
    Bool,
    Int { min: Option<i64>, max: Option<i64> },
    Num { min: f64, max: f64 },
    Enum(&'static [&'static str]),
    Str(Option<Check>),
    Prop(&'static propstr::Schema),
}

pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    /// `net[n]`-style: the highest accepted index.
    pub max_index: Option<u32>,
}

pub struct Command {
    pub name: &'static str,
    pub args: &'static [&'static str],
    /// `pct exec`: remaining positionals form the command.
    pub extra_args: bool,
    pub params: Vec<Param>,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub args: Vec<String>,
    pub opts: BTreeMap<String, String>,
    pub extra: Vec<String>,
}

impl Parsed {
    pub fn flag(&self, name: &str) -> bool {
        self.opts.get(name).is_some_and(|v| v == "1")
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.opts.get(name).map(String::as_str)
    }
}

/// Every subcommand of the real pct (for prefix matching); the emulated ones are in `spec`.
pub const ALL_COMMANDS: &[&str] = &[
    "clone",
    "config",
    "console",
    "cpusets",
    "create",
    "delsnapshot",
    "destroy",
    "df",
    "enter",
    "exec",
    "fsck",
    "fstrim",
    "help",
    "list",
    "listsnapshot",
    "migrate",
    "mount",
    "move-volume",
    "move_volume",
    "pending",
    "pull",
    "push",
    "reboot",
    "remote-migrate",
    "rescan",
    "resize",
    "restore",
    "resume",
    "rollback",
    "set",
    "shutdown",
    "snapshot",
    "start",
    "status",
    "stop",
    "suspend",
    "template",
    "unlock",
    "unmount",
];

/// Resolve a (possibly abbreviated) subcommand: exact, else a unique prefix.
pub fn resolve_command(word: &str) -> Option<&'static str> {
    if let Some(c) = ALL_COMMANDS.iter().find(|c| **c == word) {
        return Some(c);
    }
    let matches: Vec<&&str> = ALL_COMMANDS.iter().filter(|c| c.starts_with(word)).collect();
    if matches.len() == 1 && !word.is_empty() {
        Some(matches[0])
    } else {
        None
    }
}

fn p(name: &'static str, kind: Kind) -> Param {
    Param { name, kind, max_index: None }
}

fn pi(name: &'static str, kind: Kind, max: u32) -> Param {
    Param { name, kind, max_index: Some(max) }
}

fn int(min: Option<i64>, max: Option<i64>) -> Kind {
    Kind::Int { min, max }
}

const ARCHES: &[&str] = &["amd64", "i386", "arm64", "armhf", "riscv32", "riscv64"];
pub const OSTYPES: &[&str] = &[
    "debian",
    "devuan",
    "ubuntu",
    "centos",
    "fedora",
    "opensuse",
    "archlinux",
    "alpine",
    "gentoo",
    "nixos",
    "unmanaged",
];
const LOCKS: &[&str] = &[
    "backup",
    "create",
    "destroyed",
    "disk",
    "fstrim",
    "migrate",
    "mounted",
    "rollback",
    "snapshot",
    "snapshot-delete",
];

/// Options that are container settings (create and set share them).
fn ct_options() -> Vec<Param> {
    vec![
        p("arch", Kind::Enum(ARCHES)),
        p("cmode", Kind::Enum(&["shell", "console", "tty"])),
        p("console", Kind::Bool),
        p("cores", int(Some(1), Some(8192))),
        p("cpulimit", Kind::Num { min: 0.0, max: 8192.0 }),
        p("cpuunits", int(Some(0), Some(500000))),
        p("debug", Kind::Bool),
        p("description", Kind::Str(Some(validate::description))),
        pi("dev", Kind::Prop(&propstr::DEV), 255),
        p("entrypoint", Kind::Str(None)),
        p("env", Kind::Str(None)),
        p("features", Kind::Prop(&propstr::FEATURES)),
        p("hookscript", Kind::Str(None)),
        p("hostname", Kind::Str(Some(validate::dns_name))),
        p("lock", Kind::Enum(LOCKS)),
        p("memory", int(Some(16), None)),
        pi("mp", Kind::Prop(&propstr::MP), 255),
        p("nameserver", Kind::Str(None)),
        pi("net", Kind::Prop(&propstr::NET), 31),
        p("onboot", Kind::Bool),
        p("ostype", Kind::Enum(OSTYPES)),
        p("protection", Kind::Bool),
        p("rootfs", Kind::Prop(&propstr::ROOTFS)),
        p("searchdomain", Kind::Str(None)),
        p("startup", Kind::Str(None)),
        p("swap", int(Some(0), None)),
        p("tags", Kind::Str(Some(validate::tag_list))),
        p("template", Kind::Bool),
        p("timezone", Kind::Str(None)),
        p("tty", int(Some(0), Some(6))),
        p("unprivileged", Kind::Bool),
        pi("unused", Kind::Str(None), 255),
    ]
}

pub fn spec(name: &str) -> Option<Command> {
    let c = |name, args, params| Command { name, args, extra_args: false, params };
    Some(match name {
        "create" => {
            let mut params = ct_options();
            params.extend([
                p("force", Kind::Bool),
                p("ha-managed", Kind::Bool),
                p("ignore-unpack-errors", Kind::Bool),
                p("password", Kind::Str(None)),
                p("pool", Kind::Str(None)),
                p("restore", Kind::Bool),
                p("ssh-public-keys", Kind::Str(None)),
                p("start", Kind::Bool),
                p("storage", Kind::Str(Some(validate::storage_id))),
                p("unique", Kind::Bool),
            ]);
            c("create", &["vmid", "ostemplate"], params)
        }
        "set" => {
            let mut params = ct_options();
            params.extend([p("delete", Kind::Str(None)), p("digest", Kind::Str(None)), p("revert", Kind::Str(None))]);
            c("set", &["vmid"], params)
        }
        "start" => c("start", &["vmid"], vec![p("debug", Kind::Bool), p("skiplock", Kind::Bool)]),
        "stop" => c(
            "stop",
            &["vmid"],
            vec![p("overrule-shutdown", Kind::Bool), p("skiplock", Kind::Bool), p("timeout", int(Some(0), None))],
        ),
        "shutdown" => c("shutdown", &["vmid"], vec![p("forceStop", Kind::Bool), p("timeout", int(Some(0), None))]),
        "destroy" => c(
            "destroy",
            &["vmid"],
            vec![p("destroy-unreferenced-disks", Kind::Bool), p("force", Kind::Bool), p("purge", Kind::Bool)],
        ),
        "status" => c("status", &["vmid"], vec![p("verbose", Kind::Bool)]),
        "unlock" => c("unlock", &["vmid"], vec![]),
        "list" => c("list", &[], vec![]),
        "config" => c("config", &["vmid"], vec![p("current", Kind::Bool), p("snapshot", Kind::Str(None))]),
        "exec" => Command { name: "exec", args: &["vmid"], extra_args: true, params: vec![p("keep-env", Kind::Bool)] },
        _ => return None,
    })
}

impl Command {
    pub fn usage(&self) -> String {
        let mut s = format!("pct {}", self.name);
        for a in self.args {
            s.push_str(&format!(" <{a}>"));
        }
        if self.extra_args {
            s.push_str(" [<extra-args>]");
        }
        if !self.params.is_empty() {
            s.push_str(" [OPTIONS]");
        }
        s
    }

    fn find(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| match p.max_index {
            None => p.name == name,
            Some(max) => name
                .strip_prefix(p.name)
                .filter(|i| {
                    !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) && (i == &"0" || !i.starts_with('0'))
                })
                .and_then(|i| i.parse::<u32>().ok())
                .is_some_and(|i| i <= max),
        })
    }

    /// A `400` error of PVE's CLI handler: the message, the command's usage, exit 2.
    fn usage_error(&self, first: &str) -> anyhow::Error {
        Exit { code: 2, text: format!("{first}\n{}", self.usage()) }.into()
    }

    /// Parse argv (after the subcommand) like PVE's CLI handler does.
    pub fn parse(&self, argv: &[String]) -> anyhow::Result<Parsed> {
        let mut out = Parsed::default();
        let mut positionals = Vec::new();
        let mut i = 0;
        while i < argv.len() {
            let a = &argv[i];
            i += 1;
            if a == "--" {
                positionals.extend(argv[i..].iter().cloned());
                break;
            }
            let name = a.strip_prefix("--").or_else(|| a.strip_prefix('-')).filter(|n| !n.is_empty());
            let Some(name) = name else {
                positionals.push(a.clone());
                continue;
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            let Some(param) = self.find(name) else {
                return Err(self.usage_error(&format!("Unknown option: {name}\n400 unable to parse option")));
            };
            let value = match (inline, &param.kind) {
                (Some(v), _) => v,
                // Booleans take an optional value: the next word unless it looks like an option.
                (None, Kind::Bool) => {
                    if i < argv.len() && !argv[i].starts_with('-') {
                        i += 1;
                        argv[i - 1].clone()
                    } else {
                        "1".to_string()
                    }
                }
                (None, _) => {
                    if i < argv.len() {
                        i += 1;
                        argv[i - 1].clone()
                    } else {
                        return Err(self
                            .usage_error(&format!("Option {name} requires an argument\n400 unable to parse option")));
                    }
                }
            };
            // PVE's getopt step reads booleans itself and refuses anything else.
            if matches!(param.kind, Kind::Bool) && validate::boolean(&value).is_err() {
                return Err(self.usage_error("400 unable to parse boolean option"));
            }
            out.opts.insert(name.to_string(), value);
        }
        if positionals.len() < self.args.len() {
            return Err(self.usage_error("400 not enough arguments"));
        }
        if positionals.len() > self.args.len() && !self.extra_args {
            return Err(self.usage_error("400 too many arguments"));
        }
        out.extra = positionals.split_off(self.args.len());
        out.args = positionals;
        self.verify(&mut out)?;
        Ok(out)
    }

    fn verify(&self, parsed: &mut Parsed) -> anyhow::Result<()> {
        let mut errors: BTreeMap<String, String> = BTreeMap::new();
        for (name, v) in self.args.iter().zip(&parsed.args) {
            if *name == "vmid" {
                if let Err(e) = validate::vmid(v) {
                    errors.insert("vmid".into(), e);
                }
            }
        }
        let mut normalized = BTreeMap::new();
        for (name, v) in &parsed.opts {
            let param = self.find(name).expect("parsed options are known");
            match check(&param.kind, v) {
                Ok(nv) => {
                    normalized.insert(name.clone(), nv);
                }
                Err(e) => {
                    errors.insert(name.clone(), e);
                }
            }
        }
        if !errors.is_empty() {
            let mut text = String::from("400 Parameter verification failed.");
            for (k, e) in &errors {
                text.push_str(&format!("\n{k}: {e}"));
            }
            text.push('\n');
            text.push_str(&self.usage());
            return Err(Exit { code: 2, text }.into());
        }
        parsed.opts = normalized;
        Ok(())
    }
}

/// Check a value against its kind; returns the normalised value.
pub fn check(kind: &Kind, v: &str) -> Result<String, String> {
    match kind {
        Kind::Bool => validate::boolean(v).map(|b| if b { "1" } else { "0" }.to_string()),
        Kind::Int { min, max } => {
            let n: i64 = v.parse().map_err(|_| format!("type check ('integer') failed - got '{v}'"))?;
            if let Some(min) = min.filter(|m| n < *m) {
                return Err(format!("value must have a minimum value of {min}"));
            }
            if let Some(max) = max.filter(|m| n > *m) {
                return Err(format!("value must have a maximum value of {max}"));
            }
            Ok(n.to_string())
        }
        Kind::Num { min, max } => {
            let n: f64 = v.parse().map_err(|_| format!("type check ('number') failed - got '{v}'"))?;
            if n < *min {
                return Err(format!("value must have a minimum value of {min}"));
            }
            if n > *max {
                return Err(format!("value must have a maximum value of {max}"));
            }
            Ok(v.to_string())
        }
        Kind::Enum(vals) => {
            if vals.contains(&v) {
                Ok(v.to_string())
            } else {
                Err(format!("value '{v}' does not have a value in the enumeration '{}'", vals.join(", ")))
            }
        }
        Kind::Str(check) => match check {
            Some(f) => f(v).map(|_| v.to_string()),
            None => Ok(v.to_string()),
        },
        Kind::Prop(schema) => propstr::parse(schema, v)
            .map(|props| propstr::format(schema, &props))
            .map_err(|e| format!("invalid format - {e}")),
    }
}

/// `ERROR: unknown command 'pct foo'` (or `incomplete command` for a prefix of several
/// commands, as `st`) + the usage of every emulated command.
pub fn unknown_command(word: &str) -> Exit {
    let ambiguous = !word.is_empty() && ALL_COMMANDS.iter().filter(|c| c.starts_with(word)).count() > 1;
    let what = if ambiguous { "incomplete" } else { "unknown" };
    let mut text = format!("ERROR: {what} command 'pct {word}'\nUSAGE: pct <COMMAND> [ARGS] [OPTIONS]");
    for name in ["config", "create", "destroy", "exec", "list", "set", "shutdown", "start", "status", "stop", "unlock"]
    {
        text.push_str(&format!("\n       {}", spec(name).expect("emulated").usage()));
    }
    Exit { code: 255, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefixes() {
        assert_eq!(resolve_command("conf"), Some("config"));
        assert_eq!(resolve_command("st"), None);
        assert_eq!(resolve_command("destr"), Some("destroy"));
        assert_eq!(resolve_command("list"), Some("list"));
    }

    #[test]
    fn interleaved_and_bools() {
        let c = spec("create").unwrap();
        let p =
            c.parse(&v(&["--memory", "64", "100", "-unprivileged", "no", "local:vztmpl/a.tar", "--console"])).unwrap();
        assert_eq!(p.args, v(&["100", "local:vztmpl/a.tar"]));
        assert_eq!(p.get("memory"), Some("64"));
        assert_eq!(p.get("unprivileged"), Some("0"));
        assert_eq!(p.get("console"), Some("1"));
    }

    #[test]
    fn errors() {
        let c = spec("create").unwrap();
        let e = c.parse(&v(&["100", "x", "--memory", "8", "--cores", "abc"])).unwrap_err();
        let e = e.downcast::<Exit>().unwrap();
        assert_eq!(
            e.text,
            "400 Parameter verification failed.\ncores: type check ('integer') failed - got 'abc'\nmemory: value must have a minimum value of 16\npct create <vmid> <ostemplate> [OPTIONS]"
        );
        let e = c.parse(&v(&["100", "x", "--foo"])).unwrap_err().downcast::<Exit>().unwrap();
        assert!(e.text.starts_with("Unknown option: foo\n400 unable to parse option\n"));
        let s = spec("start").unwrap();
        let e = s.parse(&v(&[])).unwrap_err().downcast::<Exit>().unwrap();
        assert_eq!(e.text, "400 not enough arguments\npct start <vmid> [OPTIONS]");
        let e = s.parse(&v(&["100", "101"])).unwrap_err().downcast::<Exit>().unwrap();
        assert_eq!(e.text, "400 too many arguments\npct start <vmid> [OPTIONS]");
    }

    #[test]
    fn exec_extra_args() {
        let c = spec("exec").unwrap();
        let p = c.parse(&v(&["100", "--", "sh", "-c", "exit 3"])).unwrap();
        assert_eq!(p.extra, v(&["sh", "-c", "exit 3"]));
    }
}
