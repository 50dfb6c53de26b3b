// Package netaddr holds small address helpers shared by the SOCKS5 server and the
// port forwards.
package netaddr

import (
	"net"
	"net/netip"
)

// AddrPortOf extracts ip:port from a net.Addr, unmapping IPv4 and dropping zones.
func AddrPortOf(addr net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case nil:
		return ap, false
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		var err error
		if ap, err = netip.ParseAddrPort(addr.String()); err != nil {
			return ap, false
		}
	}
	if !ap.Addr().IsValid() {
		return ap, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()), true
}
