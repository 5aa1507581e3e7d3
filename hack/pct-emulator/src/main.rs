//! pct-emulator: Proxmox VE's `pct` on plain LXC, for tests. See docs/pct-emulator.md and
//! the shared pct contract. `hack/pct` builds and runs this binary.

mod cli;
mod commands;
mod conf;
mod daemon;
mod dhcp;
mod extract;
mod lock;
mod lxc;
mod lxcconf;
mod ostype;
mod output;
mod paths;
mod propstr;
mod validate;
mod volumes;

use std::io::Write;

use anyhow::Result;

use crate::output::die;

/// `PCT_EMULATOR_LOG=<file>`: one line per invocation with its arguments.
fn log_call(args: &[String]) {
    let Some(file) = std::env::var_os("PCT_EMULATOR_LOG").filter(|f| !f.is_empty()) else {
        return;
    };
    let line: Vec<String> = args.iter().map(|a| a.replace('\\', "\\\\").replace('\n', "\\n")).collect();
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(file) {
        // One write per line so concurrent callers do not interleave.
        let _ = f.write_all(format!("pct {}\n", line.join(" ")).as_bytes());
    }
}

fn run(args: &[String]) -> Result<()> {
    let Some(word) = args.first() else {
        let mut e = cli::unknown_command("");
        e.text = e.text.replacen("ERROR: unknown command 'pct '", "ERROR: no command specified", 1);
        return Err(e.into());
    };
    let Some(name) = cli::resolve_command(word) else {
        return Err(cli::unknown_command(word).into());
    };
    // Test-only failure injection (docs/pct-emulator.md): fail a command before it does
    // anything, as a real pct failure would look (exit 255, message on stderr).
    if let Ok(list) = std::env::var("PCT_EMULATOR_FAIL") {
        if list.split(',').any(|c| c.trim() == name) {
            return Err(die(format!("pct emulator: injected failure of '{name}' (PCT_EMULATOR_FAIL)")));
        }
    }
    let Some(spec) = cli::spec(name) else {
        return Err(die(format!("pct emulator: command '{name}' is not emulated")));
    };
    let parsed = spec.parse(&args[1..])?;
    let paths = paths::Paths::from_env()?;
    let task = matches!(name, "create" | "start" | "stop" | "shutdown" | "destroy");
    match name {
        "create" => commands::create::run(&paths, &parsed),
        "start" => commands::start::run(&paths, &parsed),
        "stop" => commands::stop::stop(&paths, &parsed),
        "shutdown" => commands::stop::shutdown(&paths, &parsed),
        "destroy" => commands::destroy::run(&paths, &parsed),
        "status" => commands::status::run(&paths, &parsed),
        "list" => commands::list::run(&paths, &parsed),
        "config" => commands::config::run(&paths, &parsed),
        "set" => commands::set::run(&paths, &parsed),
        "exec" => commands::exec::run(&paths, &parsed),
        "unlock" => commands::unlock::run(&paths, &parsed),
        _ => unreachable!("spec exists only for emulated commands"),
    }?;
    if task {
        output::finish_task();
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(daemon::DAEMON_FLAG) {
        std::process::exit(daemon::main(&args[1..]));
    }
    if args.first().map(String::as_str) == Some(dhcp::POST_STOP_FLAG) {
        std::process::exit(dhcp::post_stop_hook());
    }
    log_call(&args);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("please run as root");
        std::process::exit(255);
    }
    let code = match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            let _ = std::io::stdout().flush();
            output::report(&e)
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
