package PVE::RS::TFA;
# nexcage pve-vm stand-in for the Rust binding of libpve-rs-perl (proxmox-perl-rs).
# PVE::AccessControl loads it; only two-factor login uses it, never the pct/container path.
use strict;
use warnings;
sub new { die "PVE::RS::TFA is a stand-in in the nexcage test VM (no Rust bindings)\n" }
1;
