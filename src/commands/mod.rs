//! One module per command; `run` dispatches a parsed command line.

mod checkpoint;
mod create;
mod delete;
mod doctor;
mod features;
mod gc;
mod generate;
mod list;
mod regex_ids;
mod route;
mod simple;
mod spec;
mod template;
mod version;

use anyhow::Result;

use crate::backend::Launch;
use crate::cli::{Command, DeleteArgs, KillArgs};
pub use crate::context::Ctx;

/// Run a command; the result is nexcage's exit status.
pub fn run_version() -> Result<i32> {
    version::version()
}

pub fn run(ctx: &Ctx, command: Command) -> Result<i32> {
    match command {
        Command::Create(a) => create::create(ctx, &a, Launch::Create, create::Source::Bundle),
        Command::Run(a) => create::create(ctx, &a.create, Launch::run(a.detach), create::Source::Bundle),
        Command::Restore(a) => checkpoint::restore(ctx, &a.args),
        Command::Start(a) => simple::with_backend(ctx, &a.id, |b, r| b.start(ctx, r)),
        Command::State(a) => simple::with_backend(ctx, &a.id, |b, r| b.state(ctx, r)),
        Command::Kill(a) if a.regex => regex_ids::for_each(ctx, &a.id, |ctx, id| {
            let one = KillArgs { id: id.to_string(), regex: false, ..a.clone() };
            simple::with_backend(ctx, id, |b, r| b.kill(ctx, r, &one))
        }),
        Command::Kill(a) => simple::with_backend(ctx, &a.id, |b, r| b.kill(ctx, r, &a)),
        Command::Delete(a) if a.regex => regex_ids::for_each(ctx, &a.id, |ctx, id| {
            delete::delete(ctx, &DeleteArgs { id: id.to_string(), regex: false, ..a.clone() })
        }),
        Command::Delete(a) => delete::delete(ctx, &a),
        // As runc: every failure of `exec` itself (not of the program) exits 255.
        Command::Exec(a) => Ok(simple::with_backend(ctx, &a.id, |b, r| b.exec(ctx, r, &a)).unwrap_or_else(|e| {
            log::error!("exec failed: {e:#}");
            255
        })),
        Command::Ps(a) => simple::with_backend(ctx, &a.id, |b, r| b.ps(ctx, r, &a)),
        Command::Pause(a) => simple::with_backend(ctx, &a.id, |b, r| b.pause(ctx, r)),
        Command::Resume(a) => simple::with_backend(ctx, &a.id, |b, r| b.resume(ctx, r)),
        Command::Update(a) => simple::with_backend(ctx, &a.id, |b, r| b.update(ctx, r, &a)),
        Command::Events(a) => simple::with_backend(ctx, &a.id, |b, r| b.events(ctx, r)),
        Command::Checkpoint(a) => checkpoint::checkpoint(ctx, &a.args),
        Command::List(a) => list::list(ctx, &a),
        Command::Features => features::features(),
        Command::Spec(_) => spec::spec(ctx),
        Command::Route(a) => route::route(&a, ctx.globals.backend.as_deref()),
        Command::Template(a) => template::template(ctx, &a),
        Command::Version => version::version(),
        Command::Doctor(a) => doctor::doctor(ctx, &a),
        Command::Gc(a) => gc::gc(ctx, &a),
        Command::Generate(a) => generate::generate(&a.what),
        Command::LxcSupervise(a) => Ok(crate::backend::lxc::supervisor::run(&a)),
    }
}
