pub mod lxc;
