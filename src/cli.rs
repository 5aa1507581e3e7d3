//! The runc-compatible command line.
//!
//! Global flags are read by hand first: engines pass global flags nexcage does not know
//! (`--runtime-flag`, crun-only options), and those must reach a passthrough runtime
//! instead of being rejected. What follows the global flags is parsed with clap, while
//! the original words are kept so a passthrough runtime receives them verbatim.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Subcommand names (used to tell an unknown flag's value from the subcommand).
const SUBCOMMANDS: &[&str] = &[
    "__generate",
    "checkpoint",
    "create",
    "delete",
    "doctor",
    "events",
    "exec",
    "features",
    "gc",
    "help",
    "kill",
    "list",
    "lxc-supervise",
    "pause",
    "ps",
    "restore",
    "resume",
    "route",
    "run",
    "spec",
    "start",
    "state",
    "template",
    "update",
    "version",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Global flags, as understood by nexcage.
#[derive(Debug, Clone, Default)]
pub struct Globals {
    pub root: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub log_format: LogFormat,
    pub debug: bool,
    /// `--backend NAME`: nexcage's own (never forwarded); routes `create`/`run` to NAME
    /// unless the bundle's `nexcage.backend` annotation names one.
    pub backend: Option<String>,
    /// Every global flag to forward to a passthrough runtime, verbatim and in order,
    /// except `--root` (nexcage substitutes its own per-backend root).
    pub forward: Vec<OsString>,
    pub help: bool,
    pub version: bool,
}

/// What the command line asks for.
#[derive(Debug)]
pub struct Invocation {
    pub globals: Globals,
    /// The subcommand and its arguments exactly as given.
    pub words: Vec<OsString>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flag {
    Value,
    Bool,
}

fn known_global(name: &str) -> Option<Flag> {
    match name {
        "root" | "log" | "log-format" | "rootless" | "cgroup-manager" | "criu" | "backend" => Some(Flag::Value),
        "debug" | "systemd-cgroup" | "help" | "h" | "version" | "v" => Some(Flag::Bool),
        _ => None,
    }
}

/// Split argv into global flags and the rest. Go-style single-dash long flags
/// (`-root`) are accepted as runc accepts them.
pub fn split_globals(args: &[OsString]) -> Result<Invocation, String> {
    let mut g = Globals::default();
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        let Some(s) = word.to_str() else { break };
        if s == "--" {
            i += 1;
            break;
        }
        if !s.starts_with('-') || s == "-" {
            break;
        }
        let body = s.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        match known_global(name) {
            Some(Flag::Value) => {
                let (value, used) = match inline {
                    Some(v) => (OsString::from(v), 1),
                    None => match args.get(i + 1) {
                        Some(v) => (v.clone(), 2),
                        None => return Err(format!("flag needs an argument: {s}")),
                    },
                };
                match name {
                    "root" => g.root = Some(PathBuf::from(&value)),
                    "backend" => match value.to_str() {
                        Some(v) if !v.is_empty() => g.backend = Some(v.to_string()),
                        _ => {
                            return Err(format!(
                                "invalid value {:?} for --backend: name a backend of the configuration",
                                value.to_string_lossy()
                            ))
                        }
                    },
                    "log" => {
                        g.log = Some(PathBuf::from(&value));
                        g.forward.extend(args[i..i + used].iter().cloned());
                    }
                    "log-format" => {
                        g.log_format = match value.to_str() {
                            Some("text") => LogFormat::Text,
                            Some("json") => LogFormat::Json,
                            _ => {
                                return Err(format!(
                                    "invalid value {:?} for --log-format: use text or json",
                                    value.to_string_lossy()
                                ))
                            }
                        };
                        g.forward.extend(args[i..i + used].iter().cloned());
                    }
                    _ => g.forward.extend(args[i..i + used].iter().cloned()),
                }
                i += used;
            }
            Some(Flag::Bool) => {
                match name {
                    "debug" => g.debug = true,
                    "help" | "h" => g.help = true,
                    "version" | "v" => g.version = true,
                    _ => {}
                }
                if name != "help" && name != "h" && name != "version" && name != "v" {
                    g.forward.push(word.clone());
                }
                i += 1;
            }
            None => {
                // Unknown: forward it. A separate value is taken along unless the next word
                // is a subcommand (then the flag was a boolean).
                g.forward.push(word.clone());
                i += 1;
                if inline.is_none() {
                    if let Some(next) = args.get(i).and_then(|n| n.to_str()) {
                        if !next.starts_with('-') && !SUBCOMMANDS.contains(&next) {
                            g.forward.push(args[i].clone());
                            i += 1;
                        }
                    }
                }
            }
        }
    }
    Ok(Invocation { globals: g, words: args[i..].to_vec() })
}

/// nexcage: OCI runtime for Proxmox VE hosts; routes each container to crun/runc or to a
/// Proxmox LXC container.
#[derive(Debug, Parser)]
#[command(name = "nexcage", disable_version_flag = true, disable_help_subcommand = true)]
#[command(about = "OCI runtime for Proxmox VE: runs each container on crun, runc or as a Proxmox LXC container")]
#[command(after_help = "Global options (before the command):\n  \
    --root DIR            state directory (default /run/nexcage)\n  \
    --log FILE            log file (default stderr)\n  \
    --log-format FORMAT   text or json\n  \
    --debug               debug logging\n  \
    --backend NAME        create on backend NAME unless the bundle's nexcage.backend\n                        \
    annotation names one (e.g. Docker's runtimeArgs)\n  \
    --systemd-cgroup, --rootless VALUE, --cgroup-manager MANAGER\n                        \
    forwarded to crun/runc, as are unknown global flags\n  \
    -v, --version         print versions of nexcage and its backends")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container (the program waits for `start`).
    Create(CreateArgs),
    /// Create and start a container.
    Run(RunArgs),
    /// Run the program of a created container.
    Start(IdArg),
    /// Print the state of a container as JSON.
    State(IdArg),
    /// Send a signal to the container's program (default SIGTERM).
    Kill(KillArgs),
    /// Delete a container and its resources.
    Delete(DeleteArgs),
    /// Run a new process in a running container.
    Exec(ExecArgs),
    /// List the processes of a container.
    Ps(PsArgs),
    /// List containers.
    List(ListArgs),
    /// Freeze all processes of a container.
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// Change a container's resource limits.
    Update(UpdateArgs),
    /// Show container events and statistics.
    Events(EventsArgs),
    /// Print the features document (JSON) of the default backend.
    Features,
    /// Write a default config.json into a bundle.
    Spec(SpecArgs),
    /// Checkpoint a running container (CRIU; passthrough backends only).
    Checkpoint(RawArgs),
    /// Restore a container from a checkpoint (CRIU; passthrough backends only).
    Restore(RawArgs),
    /// Explain which backend a container would be routed to, and why.
    Route(RouteArgs),
    /// Manage the proxmox-lxc rootfs template cache.
    Template(TemplateArgs),
    /// Print the versions of nexcage and its backends.
    Version,
    /// (internal) The supervisor of a proxmox-lxc container's process: started by
    /// create and exec, never by users.
    #[command(name = "lxc-supervise", hide = true)]
    LxcSupervise(SuperviseArgs),
    /// Check this host: config, backends, pct, storage, cgroups, state root, init.
    Doctor(DoctorArgs),
    /// Remove what crashed or interrupted commands left: records without a container,
    /// creates that died, Proxmox containers of this --root without a record, stale VMID
    /// reservations, temp templates.
    Gc(GcArgs),
    /// Generate shell completions, man pages or the packaged configuration (build time).
    #[command(name = "__generate", hide = true)]
    Generate(GenerateArgs),
}

impl Command {
    /// Commands that only print what they read (no hooks, no half-done work if they end
    /// in the middle): when their reader goes away (`nexcage list | head -1`), they end
    /// of SIGPIPE as runc and crun do, instead of Rust's panic on a failed print.
    pub fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::State(_)
                | Command::Ps(_)
                | Command::List(_)
                | Command::Events(_)
                | Command::Features
                | Command::Route(_)
                | Command::Version
                | Command::Generate(_)
        )
    }
}

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    /// Host pid of the supervised process.
    #[arg(long)]
    pub pid: i32,
    /// Its start time (clock ticks since boot, /proc/<pid>/stat field 22).
    #[arg(long)]
    pub start: u64,
    /// The container's run directory (a label: lets `list` find the supervisor of a
    /// container whose record was lost).
    #[arg(long)]
    pub run_dir: Option<std::path::PathBuf>,
    /// Inherited descriptors of the caller's output pipes, to let drain before exiting.
    #[arg(long = "drain")]
    pub drain: Vec<i32>,
    /// The engine's network namespace whose interfaces moved into the container: given
    /// back when the program has ended (the container's namespace is on fd 6).
    #[arg(long)]
    pub net_return: Option<std::path::PathBuf>,
    /// The interfaces that moved (JSON, netmove.rs's `Moved`).
    #[arg(long, requires = "net_return")]
    pub net_moved: Option<String>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only say what would be removed.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Output format: a table for people, json for automation.
    #[arg(short = 'f', long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: Generate,
}

#[derive(Debug, Subcommand)]
pub enum Generate {
    /// A shell completion script, on stdout.
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// The man page nexcage.8 on stdout, or with --dir every page (nexcage.8, nexcage-<command>.8).
    Man {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The built-in configuration with `init` set in every proxmox-lxc backend (for packages).
    Config {
        #[arg(long)]
        init: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct IdArg {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Path to the bundle directory (holds config.json).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the container process pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the container process.
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
    /// Do not use pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors (from 3) to the container.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// The bundle's configuration file name, instead of config.json (crun).
    #[arg(short = 'f', long = "config")]
    pub config: Option<PathBuf>,
    /// Do not create a subreaper process (crun; runc's `run`).
    #[arg(long)]
    pub no_subreaper: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container after it exits.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Clone, Args)]
pub struct KillArgs {
    /// Signal all processes of the container (accepted for engines; deprecated in runc).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// The container id is a regular expression: signal every matching container (crun).
    #[arg(short = 'r', long)]
    pub regex: bool,
    pub id: String,
    /// Signal name (KILL, SIGKILL, kill) or number; default SIGTERM.
    pub signal: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// Kill the container if it runs, then delete it.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// The container id is a regular expression: delete every matching container (crun).
    #[arg(short = 'r', long)]
    pub regex: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// JSON file with the process to run (OCI process object).
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
    /// Allocate a pseudo-terminal (`--tty=false` as crun accepts it).
    #[arg(short = 't', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub tty: bool,
    #[arg(long)]
    pub cwd: Option<String>,
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// uid[:gid]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<String>,
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    #[arg(long)]
    pub no_new_privs: bool,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long)]
    pub process_label: Option<String>,
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long)]
    pub ignore_paused: bool,
    /// `[<controller>:]<cgroup>`, repeatable (runc).
    #[arg(long)]
    pub cgroup: Vec<String>,
    pub id: String,
    /// Command and arguments (when --process is not given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    #[arg(short = 'f', long, value_enum, default_value = "table")]
    pub format: Format,
    pub id: String,
    /// Options for ps(1) (table format).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(short = 'f', long, value_enum, default_value = "table")]
    pub format: Format,
    /// Print only the ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// nexcage's own columns too: the backend of each container and its Proxmox VMID
    /// (in JSON: `backend` and `vmid` keys).
    #[arg(short = 'w', long)]
    pub wide: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// LinuxResources JSON file, or - for stdin.
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    #[arg(long)]
    pub blkio_weight: Option<String>,
    #[arg(long)]
    pub cpu_period: Option<String>,
    #[arg(long)]
    pub cpu_quota: Option<String>,
    #[arg(long)]
    pub cpu_share: Option<String>,
    #[arg(long)]
    pub cpu_rt_period: Option<String>,
    #[arg(long)]
    pub cpu_rt_runtime: Option<String>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long)]
    pub memory_reservation: Option<String>,
    #[arg(long)]
    pub memory_swap: Option<String>,
    #[arg(long)]
    pub pids_limit: Option<String>,
    /// crun's (cgroup v1 kernel memory; ignored by current kernels).
    #[arg(long)]
    pub kernel_memory: Option<String>,
    #[arg(long)]
    pub kernel_memory_tcp: Option<String>,
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[arg(long)]
    pub stats: bool,
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    #[arg(short = 'b', long)]
    pub bundle: Option<PathBuf>,
    /// Destination file (crun).
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub rootless: bool,
}

/// Arguments passed on untouched; the container id is the last word.
#[derive(Debug, Args)]
pub struct RawArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[command(subcommand)]
    pub command: TemplateCommand,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// List the templates and the containers (under --root) created from each.
    List,
    /// Remove templates no container under --root was created from.
    Prune {
        /// Keep templates younger than this many seconds (a create may be about to use them).
        #[arg(long, default_value_t = 600)]
        min_age: u64,
        /// Only print what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct RouteArgs {
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    pub id: String,
}

/// The command line as documented (man page, completions): the clap definitions plus the
/// global flags, which `split_globals` reads by hand and clap never sees when parsing.
pub fn doc_command() -> clap::Command {
    use clap::{Arg, ArgAction, ValueHint};
    let value = |long: &'static str, name: &'static str, help: &'static str| {
        Arg::new(long).long(long).value_name(name).help(help).action(ArgAction::Set)
    };
    let flag = |long: &'static str, help: &'static str| Arg::new(long).long(long).help(help).action(ArgAction::SetTrue);
    <Cli as clap::CommandFactory>::command()
        .after_help("Unknown global flags are forwarded to crun/runc unchanged. See nexcage doctor for host checks.")
        .args([
            value("root", "DIR", "State directory (default /run/nexcage)").value_hint(ValueHint::DirPath),
            value("log", "FILE", "Log file (default stderr); forwarded to crun/runc").value_hint(ValueHint::FilePath),
            value("log-format", "FORMAT", "Log format; forwarded to crun/runc").value_parser(["text", "json"]),
            flag("debug", "Debug logging; forwarded to crun/runc"),
            flag("systemd-cgroup", "Forwarded to crun/runc"),
            value("rootless", "VALUE", "Forwarded to crun/runc").value_parser(["true", "false", "auto"]),
            value("cgroup-manager", "MANAGER", "Forwarded to crun").value_parser(["cgroupfs", "systemd", "disabled"]),
            value("criu", "PATH", "Forwarded to runc").value_hint(ValueHint::ExecutablePath),
            Arg::new("version")
                .short('v')
                .long("version")
                .help("Print versions of nexcage and its backends")
                .action(ArgAction::SetTrue),
        ])
}

/// Parse the words after the global flags.
pub fn parse_command(words: &[OsString]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once(OsStr::new("nexcage")).chain(words.iter().map(OsString::as_os_str)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn strs(v: &[OsString]) -> Vec<&str> {
        v.iter().map(|s| s.to_str().unwrap()).collect()
    }

    #[test]
    fn known_globals_are_read_and_root_is_not_forwarded() {
        let inv = split_globals(&os(&[
            "--root",
            "/r",
            "--log",
            "/l.json",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "create",
            "x",
        ]))
        .unwrap();
        assert_eq!(inv.globals.root.as_deref(), Some(std::path::Path::new("/r")));
        assert_eq!(inv.globals.log.as_deref(), Some(std::path::Path::new("/l.json")));
        assert_eq!(inv.globals.log_format, LogFormat::Json);
        assert_eq!(strs(&inv.globals.forward), ["--log", "/l.json", "--log-format", "json", "--systemd-cgroup"]);
        assert_eq!(strs(&inv.words), ["create", "x"]);
    }

    #[test]
    fn inline_values_and_single_dash_go_style() {
        let inv = split_globals(&os(&["--root=/r", "-log-format=json", "-debug", "state", "x"])).unwrap();
        assert_eq!(inv.globals.root.as_deref(), Some(std::path::Path::new("/r")));
        assert_eq!(inv.globals.log_format, LogFormat::Json);
        assert!(inv.globals.debug);
        assert_eq!(strs(&inv.globals.forward), ["-log-format=json", "-debug"]);
    }

    #[test]
    fn unknown_globals_are_forwarded_with_their_values() {
        let inv =
            split_globals(&os(&["--cgroup-manager", "disabled", "--foo", "bar", "--flag", "create", "--baz=1", "x"]))
                .unwrap();
        assert_eq!(strs(&inv.globals.forward), ["--cgroup-manager", "disabled", "--foo", "bar", "--flag"]);
        // Flags after the subcommand belong to the subcommand.
        assert_eq!(strs(&inv.words), ["create", "--baz=1", "x"]);
    }

    #[test]
    fn backend_is_nexcages_own_and_never_forwarded() {
        // Docker 20.10 puts daemon.json runtimeArgs before its own global flags.
        let inv =
            split_globals(&os(&["--backend", "lxc", "--root", "/r", "--log", "/l", "create", "--bundle", "b", "x"]))
                .unwrap();
        assert_eq!(inv.globals.backend.as_deref(), Some("lxc"));
        assert_eq!(strs(&inv.globals.forward), ["--log", "/l"]);
        assert_eq!(strs(&inv.words), ["create", "--bundle", "b", "x"]);
        assert_eq!(
            split_globals(&os(&["--backend=runc", "state", "x"])).unwrap().globals.backend.as_deref(),
            Some("runc")
        );
        assert!(split_globals(&os(&["--backend=", "state", "x"])).unwrap_err().contains("--backend"));
    }

    #[test]
    fn missing_value_and_bad_log_format_are_errors() {
        assert!(split_globals(&os(&["--root"])).unwrap_err().contains("--root"));
        assert!(split_globals(&os(&["--log-format", "xml", "list"])).unwrap_err().contains("text or json"));
    }

    #[test]
    fn version_and_help_flags() {
        assert!(split_globals(&os(&["--version"])).unwrap().globals.version);
        assert!(split_globals(&os(&["-v"])).unwrap().globals.version);
        assert!(split_globals(&os(&["-h"])).unwrap().globals.help);
    }

    #[test]
    fn create_shapes_from_engines() {
        let c = parse_command(&os(&[
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "--console-socket",
            "/s",
            "--no-pivot",
            "--no-new-keyring",
            "id1",
        ]))
        .unwrap();
        let Command::Create(a) = c.command else { panic!() };
        assert_eq!(a.bundle, PathBuf::from("/b"));
        assert_eq!(a.pid_file, Some(PathBuf::from("/b/init.pid")));
        assert!(a.no_pivot && a.no_new_keyring);
        assert_eq!(a.id, "id1");
        let Command::Create(a) = parse_command(&os(&["create", "-b", "/x", "id2"])).unwrap().command else { panic!() };
        assert_eq!(a.bundle, PathBuf::from("/x"));
        let Command::Create(a) = parse_command(&os(&["create", "id3"])).unwrap().command else { panic!() };
        assert_eq!(a.bundle, PathBuf::from("."));
    }

    #[test]
    fn kill_signal_optional_and_all_accepted() {
        let Command::Kill(k) = parse_command(&os(&["kill", "--all", "c", "9"])).unwrap().command else { panic!() };
        assert!(k.all);
        assert_eq!(k.signal.as_deref(), Some("9"));
        let Command::Kill(k) = parse_command(&os(&["kill", "c"])).unwrap().command else { panic!() };
        assert_eq!(k.signal, None);
        let Command::Kill(k) = parse_command(&os(&["kill", "-a", "c", "SIGKILL"])).unwrap().command else { panic!() };
        assert!(k.all);
    }

    #[test]
    fn delete_force_short() {
        let Command::Delete(d) = parse_command(&os(&["delete", "-f", "c"])).unwrap().command else { panic!() };
        assert!(d.force);
    }

    #[test]
    fn exec_keeps_command_flags() {
        let Command::Exec(e) = parse_command(&os(&[
            "exec",
            "--process",
            "/p.json",
            "--detach",
            "--pid-file",
            "/x.pid",
            "-e",
            "A=1",
            "-u",
            "1:2",
            "c",
            "sh",
            "-c",
            "echo -n hi",
        ]))
        .unwrap()
        .command
        else {
            panic!()
        };
        assert!(e.detach);
        assert_eq!(e.env, ["A=1"]);
        assert_eq!(e.user.as_deref(), Some("1:2"));
        assert_eq!(e.command, ["sh", "-c", "echo -n hi"]);
    }

    #[test]
    fn update_resources_from_stdin() {
        let Command::Update(u) = parse_command(&os(&["update", "--resources=-", "c"])).unwrap().command else {
            panic!()
        };
        assert_eq!(u.resources.as_deref(), Some("-"));
    }

    #[test]
    fn list_and_ps_formats() {
        let Command::List(l) = parse_command(&os(&["list", "--format", "json", "-q"])).unwrap().command else {
            panic!()
        };
        assert_eq!(l.format, Format::Json);
        assert!(l.quiet);
        let Command::Ps(p) = parse_command(&os(&["ps", "--format", "json", "c"])).unwrap().command else { panic!() };
        assert_eq!(p.format, Format::Json);
    }

    #[test]
    fn documented_globals_are_the_ones_split_globals_reads() {
        let cmd = doc_command();
        let longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).filter(|l| *l != "help").collect();
        for long in &longs {
            assert!(known_global(long).is_some(), "documented global --{long} is not read by split_globals");
        }
        for name in ["root", "log", "log-format", "debug", "systemd-cgroup", "rootless", "cgroup-manager", "criu"] {
            assert!(longs.contains(&name), "global --{name} is not documented");
        }
        // Documenting them must not make clap accept them after the subcommand.
        assert!(parse_command(&os(&["state", "--root", "/x", "c"])).is_err());
    }

    #[test]
    fn every_subcommand_is_known_to_split_globals() {
        for sub in <Cli as clap::CommandFactory>::command().get_subcommands() {
            assert!(SUBCOMMANDS.contains(&sub.get_name()), "{} missing from SUBCOMMANDS", sub.get_name());
        }
    }

    #[test]
    fn doctor_and_generate_parse() {
        let Command::Doctor(d) = parse_command(&os(&["doctor", "--format", "json"])).unwrap().command else { panic!() };
        assert_eq!(d.format, Format::Json);
        let Command::Generate(g) = parse_command(&os(&["__generate", "completions", "zsh"])).unwrap().command else {
            panic!()
        };
        assert!(matches!(g.what, Generate::Completions { shell: CompletionShell::Zsh }));
    }

    #[test]
    fn unknown_subcommand_flag_is_an_error() {
        assert!(parse_command(&os(&["start", "--bogus", "c"])).is_err());
    }
}
