//! nexcage as a library: the binary (`src/main.rs`) is a thin `main` over these modules.
//! The split exists so that fuzz targets (`fuzz/`) and property tests (`tests/fuzz.rs`)
//! can call the parsers directly; nothing here is a stable API.
//!
//! Modules are `pub(crate)` unless something outside the crate uses them: `main.rs`
//! (`cli`, `commands`, `logging`), the fuzz harnesses (`fuzz`, their one entry point into
//! the parsers), tests (`cli::parse_command`, `backend::lxc::pveconf`) and examples
//! (`backend::lxc::template`); `backend::lxc::pct` stays public as the whole pct client.

pub mod backend;
pub(crate) mod bundle;
pub(crate) mod cgroup_mode;
pub mod cli;
pub mod commands;
pub(crate) mod config;
pub(crate) mod context;
pub(crate) mod doctor;
pub(crate) mod fault;
#[doc(hidden)]
pub mod fuzz;
pub mod logging;
pub(crate) mod route;
pub(crate) mod signal;
pub(crate) mod state;

/// The OCI runtime-spec version nexcage implements: what `version` prints, what `state`
/// and `list` report for proxmox-lxc containers and `features` gives as `ociVersionMax`.
/// (Passthrough backends report their own runtime's version, as they would alone.)
pub const OCI_VERSION: &str = "1.2.1";
