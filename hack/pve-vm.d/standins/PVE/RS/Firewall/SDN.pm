package PVE::RS::Firewall::SDN;
# nexcage pve-vm stand-in for the Rust binding of libpve-rs-perl.
# PVE::Firewall loads it; only SDN firewall rules ask it. Answers "no SDN configuration".
use strict;
use warnings;
sub config { return {} }
1;
