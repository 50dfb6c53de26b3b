package netstack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// tcpListener adapts gonet's listener: Close also wakes a blocked Accept,
// and Accept after Close (of the listener or the Stack) reports
// net.ErrClosed, which servers stop on.
type tcpListener struct {
	*gonet.TCPListener
	stack  *Stack
	closed atomic.Bool
}

// Accept implements net.Listener.
func (l *tcpListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.Accept()
	if err != nil {
		if l.closed.Load() || l.stack.isClosed() {
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
		}
		return nil, fmt.Errorf("netstack: %w", err)
	}
	return c, nil
}

// Close implements net.Listener; it also wakes a blocked Accept.
func (l *tcpListener) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	// Shutdown cancels a blocked Accept; Close releases the endpoint.
	l.TCPListener.Shutdown()
	return l.TCPListener.Close()
}

// udpConn adapts gonet's UDP conn. gonet's WriteTo type-asserts
// *net.UDPAddr and passes its bytes through, so a 16-byte IPv4 address (as
// net.ParseIP returns) would not reach an IPv4 socket; WriteTo here accepts
// any "ip:port" net.Addr and fits the address to the socket's family.
// ReadFrom unmaps IPv4 senders, and reads and writes after Close (of the
// conn or the Stack) report net.ErrClosed.
type udpConn struct {
	*gonet.UDPConn
	v4     bool // the endpoint is IPv4-only
	stack  *Stack
	closed atomic.Bool
}

func (c *udpConn) isClosed() bool { return c.closed.Load() || c.stack.isClosed() }

var errAddrFamily = errors.New("address family does not match the socket")

// ReadFrom implements net.PacketConn.
func (c *udpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.UDPConn.ReadFrom(b)
	if err != nil {
		if c.isClosed() {
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Addr: c.LocalAddr(), Err: net.ErrClosed}
		}
		return 0, nil, err
	}
	if ua, ok := addr.(*net.UDPAddr); ok {
		if ip4 := ua.IP.To4(); ip4 != nil {
			ua.IP = ip4
		}
	}
	return n, addr, nil
}

// Read implements net.Conn.
func (c *udpConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFrom(b)
	return n, err
}

// WriteTo implements net.PacketConn; a nil addr writes to the connected
// peer.
func (c *udpConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if addr == nil {
		return c.Write(b)
	}
	ap, err := addrPortOf(addr)
	if err == nil {
		var ip net.IP
		a := ap.Addr().Unmap()
		switch {
		case c.v4 && a.Is4():
			ip = a.AsSlice()
		case c.v4:
			err = errAddrFamily
		default:
			// A dual-stack IPv6 socket sends to IPv4 through the
			// v4-mapped form.
			a16 := a.As16()
			ip = a16[:]
		}
		if err == nil {
			n, err := c.UDPConn.WriteTo(b, &net.UDPAddr{IP: ip, Port: int(ap.Port())})
			if err != nil && c.isClosed() {
				err = &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: net.ErrClosed}
			}
			return n, err
		}
	}
	return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
}

// Write implements net.Conn (connected sockets only).
func (c *udpConn) Write(b []byte) (int, error) {
	n, err := c.UDPConn.Write(b)
	if err != nil && c.isClosed() {
		return n, &net.OpError{Op: "write", Net: "udp", Addr: c.LocalAddr(), Err: net.ErrClosed}
	}
	return n, err
}

// Close implements net.Conn and net.PacketConn.
func (c *udpConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.UDPConn.Close()
}

// addrPortOf extracts ip:port from a net.Addr.
func addrPortOf(addr net.Addr) (netip.AddrPort, error) {
	switch a := addr.(type) {
	case *net.UDPAddr:
		if ip, ok := netip.AddrFromSlice(a.IP); ok && a.Port >= 0 && a.Port <= 0xffff {
			return netip.AddrPortFrom(ip, uint16(a.Port)), nil
		}
	case *net.TCPAddr:
		if ip, ok := netip.AddrFromSlice(a.IP); ok && a.Port >= 0 && a.Port <= 0xffff {
			return netip.AddrPortFrom(ip, uint16(a.Port)), nil
		}
	default:
		if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
			return ap, nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("unusable address %q", addr.String())
}
