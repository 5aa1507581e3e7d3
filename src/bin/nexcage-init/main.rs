//! nexcage-init: pid 1 of a proxmox-lxc container (its `lxc.init.cmd`).
//!
//! A small static binary, bind-mounted read-only from the host at `/dev/.nexcage-init`.
//! LXC starts it as pid 1 in the container's namespaces (user namespace too for
//! unprivileged containers), with LXC's capability set. It:
//! - listens on `/dev/.nexcage/init.sock` (the per-container run directory, bind-mounted
//!   from the host) for nexcage processes on the host (peers outside this pid namespace
//!   only);
//! - prepares the OCI process a host request describes (stdio received over the socket,
//!   or a pty it creates; user, groups, rlimits, capabilities, no_new_privs,
//!   oomScoreAdj, cwd, env) in a forked child, which waits for `Start` (the container's
//!   program) or execs at once (`exec`);
//! - reaps every orphan, forwards termination signals to the program, and reports each
//!   process's exit status over the connection that asked for it;
//! - when the program exits, kills whatever is left and exits: the container stops. When
//!   the program's connection closes (the host supervisor died), it does the same.
//!
//! With `--lxc-mount-hook RUN_DIR` it is instead LXC's mount hook (mount_hook.rs).
//!
//! See docs/proxmox-lxc.md for the whole process model.

use nexcage_wire as wire;

mod apply;
mod child;
mod mount_hook;
mod server;

use std::process::exit;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--lxc-mount-hook") {
        exit(mount_hook::main(&args[1..]));
    }
    if std::process::id() != 1 && std::env::var_os("NEXCAGE_INIT_ANY_PID").is_none() {
        eprintln!(
            "nexcage-init: must run as pid 1 of a container (it is lxc.init.cmd of nexcage's proxmox-lxc containers)"
        );
        exit(2);
    }
    match server::Server::new().and_then(|s| s.run()) {
        Ok(code) => exit(code),
        Err(e) => {
            eprintln!("nexcage-init: {e}");
            let _ = std::fs::write(
                std::path::Path::new(wire::RUN_DIR_IN_CONTAINER).join(wire::INIT_ERROR),
                format!("nexcage-init: {e}"),
            );
            exit(1);
        }
    }
}
