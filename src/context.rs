//! What every layer needs to know about this invocation: the global flags, the command's
//! words as given (forwarded to passthrough runtimes) and the state store. Commands make
//! it; backends take it. It lives below both so that backends never import commands.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::Globals;
use crate::state::{Store, DEFAULT_ROOT};

/// Everything a command needs to know about this invocation.
pub struct Ctx {
    pub globals: Globals,
    /// The subcommand and its arguments exactly as given (forwarded to passthrough runtimes).
    pub words: Vec<OsString>,
    pub store: Store,
    /// The command runs once per container (crun's `--regex`): passthrough runtimes run as
    /// children instead of replacing nexcage.
    pub many: bool,
}

impl Ctx {
    pub fn new(globals: Globals, words: Vec<OsString>) -> Ctx {
        let root = globals.root.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        Ctx { globals, words, store: Store::new(&root), many: false }
    }
}
