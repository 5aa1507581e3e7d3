package Proxmox::RS::CalendarEvent;
# nexcage pve-vm stand-in for the Rust binding of libproxmox-rs-perl.
# PVE::CalendarEvent loads it; only backup/replication schedules parse calendar events.
use strict;
use warnings;
sub new { die "Proxmox::RS::CalendarEvent is a stand-in in the nexcage test VM (no Rust bindings)\n" }
1;
