//! runtime-spec-tests: an OCI runtime conformance suite (runtime.md, config.md,
//! config-linux.md), validated against runc and crun, run against nexcage.
//!
//! The harness (`runtime-spec-tests`) drives a runtime binary exactly as engines do
//! (create/start/state/kill/delete with stdio to files and a pid file, as a child
//! subreaper), and runs the static checker (`rst-checker`) inside each container to
//! verify the process and Linux settings from the inside.

pub mod bundle;
pub mod checker_bin;
pub mod cli;
pub mod harness;
pub mod runtime;
pub mod suite;
pub mod table;
pub mod tap;
