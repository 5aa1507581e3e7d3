package PVE::HA::Env::PVE2;
# nexcage pve-vm stand-in for pve-ha-manager's HA environment (loaded by PVE::API2::LXC
# and ::Status with require/import; HA is off the container path).
use strict;
use warnings;
1;
