package udp

import (
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawSockaddr is storage for a sockaddr_in or sockaddr_in6.
type rawSockaddr = unix.RawSockaddrInet6

// portOf reads a port stored in network byte order in a sockaddr field.
func portOf(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// setPort stores port in network byte order into a sockaddr field.
func setPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// decodeSockaddr returns the address in sa, unmapping v4-mapped addresses.
func (c *Conn) decodeSockaddr(sa *rawSockaddr) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), portOf(&sa4.Port))
	case unix.AF_INET6:
		ip := netip.AddrFrom16(sa.Addr)
		if ip.Is4In6() {
			ip = ip.Unmap()
		} else if sa.Scope_id != 0 {
			ip = ip.WithZone(c.zones.name(sa.Scope_id))
		}
		return netip.AddrPortFrom(ip, portOf(&sa.Port))
	}
	return netip.AddrPort{}
}

// encodeSockaddr writes addr into sa and returns the sockaddr length, or 0 if
// addr is invalid. As the kernel allows, IPv4 destinations get a sockaddr_in
// on IPv6 sockets too; IPv6 destinations get a sockaddr_in6 even on IPv4
// sockets, which the kernel rejects for that message.
func (c *Conn) encodeSockaddr(sa *rawSockaddr, addr netip.AddrPort) uint32 {
	ip := addr.Addr()
	switch {
	case !ip.IsValid():
		return 0
	case ip.Is4() || ip.Is4In6():
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
		setPort(&sa4.Port, addr.Port())
		return unix.SizeofSockaddrInet4
	default:
		*sa = rawSockaddr{Family: unix.AF_INET6, Addr: ip.As16()}
		if z := ip.Zone(); z != "" {
			sa.Scope_id = c.zones.index(z)
		}
		setPort(&sa.Port, addr.Port())
		return unix.SizeofSockaddrInet6
	}
}

// zoneCache remembers the last IPv6 zone translated in each direction, so that
// traffic with one link-local peer does not look up interfaces per packet.
type zoneCache struct {
	last atomic.Pointer[zoneEntry]
}

type zoneEntry struct {
	index uint32
	name  string
}

// name returns the interface name for index (the number itself if unknown).
func (z *zoneCache) name(index uint32) string {
	if e := z.last.Load(); e != nil && e.index == index {
		return e.name
	}
	name := strconv.FormatUint(uint64(index), 10)
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		name = ifi.Name
	}
	z.last.Store(&zoneEntry{index: index, name: name})
	return name
}

// index returns the interface index for a zone name or number (0 if unknown).
func (z *zoneCache) index(name string) uint32 {
	if e := z.last.Load(); e != nil && e.name == name {
		return e.index
	}
	var index uint32
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		index = uint32(n)
	} else if ifi, err := net.InterfaceByName(name); err == nil {
		index = uint32(ifi.Index)
	}
	z.last.Store(&zoneEntry{index: index, name: name})
	return index
}
