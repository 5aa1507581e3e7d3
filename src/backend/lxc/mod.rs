pub mod pct;
pub mod pveconf;
pub mod spec;
pub mod storage;
pub mod template;
pub mod vmid;

// The process model and the Backend implementation (docs/proxmox-lxc.md).
pub mod backend;
pub mod cgroup;
pub mod cleanup;
pub mod console;
pub mod create;
pub mod data;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod host_limits;
pub mod init_conn;
pub mod lifecycle;
pub mod maintenance;
pub mod process;
pub mod procfs;
pub mod ps;
pub mod rebuild;
pub mod run_dir;
pub mod supervisor;
pub mod update;
pub use nexcage_wire as wire;
