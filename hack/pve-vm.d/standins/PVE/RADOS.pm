package PVE::RADOS;
# nexcage pve-vm stand-in for librados2-perl (Ceph). PVE::Storage::RBDPlugin loads it;
# the test VM has no Ceph storage, so nothing on nexcage's path calls it.
use strict;
use warnings;
sub new { die "PVE::RADOS is a stand-in in the nexcage test VM (no Ceph)\n" }
1;
