package PVE::HA::Config;
# nexcage pve-vm stand-in for pve-ha-manager's PVE::HA::Config (the real one pulls in
# qemu-server). The container path only asks "is this guest HA-managed": nothing is.
use strict;
use warnings;
sub vm_is_ha_managed { return undef }
sub service_is_ha_managed { my ($sid, $has_state, $noerr) = @_; die "resource '$sid' is not HA managed\n" if !$noerr; return undef }
sub service_is_configured { return 0 }
sub get_service_status { return { managed => 0 } }
sub delete_service_from_config { return }
our $AUTOLOAD;
sub AUTOLOAD { die "$AUTOLOAD: HA is a stand-in in the nexcage test VM\n" }
1;
