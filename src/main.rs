//! nexcage: an OCI runtime for Proxmox VE hosts. Parse, load, dispatch; nothing else.

use nexcage::{cli, commands, logging};

use std::ffi::OsString;

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let invocation = match cli::split_globals(&args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("nexcage: {e}");
            std::process::exit(1);
        }
    };
    logging::init(&invocation.globals);
    if invocation.globals.version && invocation.words.is_empty() {
        die_of_sigpipe();
        std::process::exit(report(commands::run_version()));
    }
    if invocation.globals.help && invocation.words.is_empty() {
        let _ = <cli::Cli as clap::CommandFactory>::command().print_help();
        std::process::exit(0);
    }
    let parsed = match cli::parse_command(&invocation.words) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if parsed.command.only_prints() {
        die_of_sigpipe();
    }
    let ctx = commands::Ctx::new(invocation.globals, invocation.words);
    std::process::exit(report(commands::run(&ctx, parsed.command)));
}

/// Rust ignores SIGPIPE; the runtimes nexcage stands in for die of it when their reader
/// goes away. Only for commands that just print (cli::Command::only_prints).
fn die_of_sigpipe() {
    // SAFETY: restoring the default disposition of one signal, before any thread.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Log an error in runc's shape (stderr, and the --log file) and turn it into a status.
fn report(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e:#}");
            1
        }
    }
}
