//! The floor of a passthrough runtime wrapper, for hack/bench: a static binary that does
//! nothing but exec the runtime named by its first argument with the remaining ones.
//! Whatever nexcage adds beyond this is nexcage's own cost.
use std::os::unix::process::CommandExt;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let Some(runtime) = args.next() else {
        eprintln!("usage: floor RUNTIME [ARGS...]");
        std::process::exit(2);
    };
    let err = std::process::Command::new(&runtime).args(args).exec();
    eprintln!("floor: cannot execute {}: {err}", runtime.to_string_lossy());
    std::process::exit(127);
}
