//! One module per command; `run` dispatches a parsed command line.

mod checkpoint;
mod create;
mod delete;
mod doctor;
mod features;
mod gc;
mod generate;
mod list;
mod route;
mod simple;
mod spec;
mod template;
mod version;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{Command, Globals};
use crate::state::{Store, DEFAULT_ROOT};

/// Everything a command needs to know about this invocation.
pub struct Ctx {
    pub globals: Globals,
    /// The subcommand and its arguments exactly as given (forwarded to passthrough runtimes).
    pub words: Vec<OsString>,
    pub store: Store,
}

impl Ctx {
    pub fn new(globals: Globals, words: Vec<OsString>) -> Ctx {
        let root = globals.root.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        Ctx { globals, words, store: Store::new(&root) }
    }
}

/// Run a command; the result is nexcage's exit status.
pub fn run_version() -> Result<i32> {
    version::version()
}

pub fn run(ctx: &Ctx, command: Command) -> Result<i32> {
    match command {
        Command::Create(a) => create::create(ctx, &a, create::Mode::Create),
        Command::Run(a) => create::create(ctx, &a.create, create::Mode::Run { detach: a.detach }),
        Command::Restore(a) => checkpoint::restore(ctx, &a.args),
        Command::Start(a) => simple::with_backend(ctx, &a.id, |b, r| b.start(ctx, r)),
        Command::State(a) => simple::with_backend(ctx, &a.id, |b, r| b.state(ctx, r)),
        Command::Kill(a) => simple::with_backend(ctx, &a.id, |b, r| b.kill(ctx, r, &a)),
        Command::Delete(a) => delete::delete(ctx, &a),
        Command::Exec(a) => simple::with_backend(ctx, &a.id, |b, r| b.exec(ctx, r, &a)),
        Command::Ps(a) => simple::with_backend(ctx, &a.id, |b, r| b.ps(ctx, r, &a)),
        Command::Pause(a) => simple::with_backend(ctx, &a.id, |b, r| b.pause(ctx, r)),
        Command::Resume(a) => simple::with_backend(ctx, &a.id, |b, r| b.resume(ctx, r)),
        Command::Update(a) => simple::with_backend(ctx, &a.id, |b, r| b.update(ctx, r)),
        Command::Events(a) => simple::with_backend(ctx, &a.id, |b, r| b.events(ctx, r)),
        Command::Checkpoint(a) => checkpoint::checkpoint(ctx, &a.args),
        Command::List(a) => list::list(ctx, &a),
        Command::Features => features::features(),
        Command::Spec(_) => spec::spec(ctx),
        Command::Route(a) => route::route(&a),
        Command::Template(a) => template::template(ctx, &a),
        Command::Version => version::version(),
        Command::Doctor(a) => doctor::doctor(ctx, &a),
        Command::Gc(a) => gc::gc(ctx, &a),
        Command::Generate(a) => generate::generate(&a.what),
        Command::LxcSupervise(a) => Ok(crate::backend::lxc::supervisor::run(&a)),
    }
}
