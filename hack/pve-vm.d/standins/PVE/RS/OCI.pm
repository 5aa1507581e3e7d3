package PVE::RS::OCI;
# nexcage pve-vm stand-in for the Rust binding of libpve-rs-perl (PVE 9).
# pve-container uses it only to create a container from an OCI image archive;
# nexcage creates from a vztmpl tarball.
use strict;
use warnings;
sub parse_and_extract_image { die "PVE::RS::OCI is a stand-in in the nexcage test VM (no Rust bindings)\n" }
1;
