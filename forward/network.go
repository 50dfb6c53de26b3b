package forward

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"weft/netstack"
)

// Host is the Network of the host's own sockets (package net).
type Host struct{}

// Dial implements Network with a net.Dialer.
func (Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Listen implements Network with net.Listen.
func (Host) Listen(network, addr string) (net.Listener, error) {
	return net.Listen(network, addr)
}

// ListenPacket implements Network with net.ListenPacket.
func (Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	return net.ListenPacket(network, addr)
}

// StackNetwork returns the Network of a netstack.Stack. Addresses must be
// IP literals; an empty host (":port") listens on every address of the
// stack, both families.
func StackNetwork(s *netstack.Stack) Network { return stackNetwork{s} }

type stackNetwork struct{ s *netstack.Stack }

// Dial implements Network with Stack.DialContext.
func (n stackNetwork) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return n.s.DialContext(ctx, network, addr)
}

// Listen implements Network with Stack.ListenTCP.
func (n stackNetwork) Listen(network, addr string) (net.Listener, error) {
	ap, err := listenAddr(network, addr, "tcp")
	if err != nil {
		return nil, err
	}
	return n.s.ListenTCP(ap)
}

// ListenPacket implements Network with Stack.ListenUDP.
func (n stackNetwork) ListenPacket(network, addr string) (net.PacketConn, error) {
	ap, err := listenAddr(network, addr, "udp")
	if err != nil {
		return nil, err
	}
	return n.s.ListenUDP(ap)
}

// listenAddr parses "ip:port" or ":port" for a netstack listener.
func listenAddr(network, addr, want string) (netip.AddrPort, error) {
	switch network {
	case want, want + "4", want + "6":
	default:
		return netip.AddrPort{}, fmt.Errorf("forward: netstack: unsupported network %q", network)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("forward: netstack: address %q: %w", addr, err)
	}
	p, err := netip.ParseAddrPort(net.JoinHostPort("::", port))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("forward: netstack: address %q: bad port", addr)
	}
	if host == "" {
		switch network {
		case want + "4":
			return netip.AddrPortFrom(netip.IPv4Unspecified(), p.Port()), nil
		case want + "6":
			return netip.AddrPortFrom(netip.IPv6Unspecified(), p.Port()), nil
		}
		return netip.AddrPortFrom(netip.Addr{}, p.Port()), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("forward: netstack: address %q: host is not an IP address", addr)
	}
	return netip.AddrPortFrom(ip.Unmap(), p.Port()), nil
}
