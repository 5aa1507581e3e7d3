//! nexcage as a library: the binary (`src/main.rs`) is a thin `main` over these modules.
//! The split exists so that fuzz targets (`fuzz/`) and property tests (`tests/fuzz.rs`)
//! can call the parsers directly; nothing here is a stable API.

pub mod backend;
pub mod bundle;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod doctor;
pub mod fault;
#[doc(hidden)]
pub mod fuzz;
pub mod logging;
pub mod route;
pub mod signal;
pub mod state;

/// The OCI runtime-spec version nexcage implements: what `version` prints, what `state`
/// and `list` report for proxmox-lxc containers and `features` gives as `ociVersionMax`.
/// (Passthrough backends report their own runtime's version, as they would alone.)
pub const OCI_VERSION: &str = "1.2.1";
