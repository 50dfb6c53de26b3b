// Package udp provides weft's batched UDP sockets.
//
// A Conn wraps a *net.UDPConn and moves packets in batches with recvmmsg and
// sendmmsg, through golang.org/x/net/ipv4 and ipv6 PacketConn ReadBatch and
// WriteBatch, so reads and writes still go through Go's netpoller. Addresses
// are netip.AddrPort; IPv4 peers of a dual-stack IPv6 socket appear as plain
// IPv4 addresses (v4-mapped addresses are unmapped), and may be written to as
// such.
//
// Not implemented yet: UDP GSO (UDP_SEGMENT) on send and GRO (UDP_GRO) on
// receive, and sticky source addresses (IP_PKTINFO / IPV6_RECVPKTINFO) for
// servers bound to a wildcard address on multi-homed hosts. Each Message is
// therefore exactly one datagram, and the kernel picks the source address.
package udp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// MaxBatch is the largest number of messages passed to one recvmmsg or
// sendmmsg call; longer slices are split.
const MaxBatch = 128

// Options tunes a socket created by Listen.
type Options struct {
	// ReusePort sets SO_REUSEPORT so that several sockets (one per shard) can
	// bind the same address and the kernel spreads flows across them.
	ReusePort bool
	// RecvBuffer and SendBuffer, when positive, set the kernel socket buffer
	// sizes. SO_RCVBUFFORCE/SO_SNDBUFFORCE are tried first (they exceed
	// net.core.rmem_max/wmem_max but need CAP_NET_ADMIN), then
	// SO_RCVBUF/SO_SNDBUF.
	RecvBuffer, SendBuffer int
}

// Message is one datagram for ReadBatch and WriteBatch.
type Message struct {
	// Buf holds the payload. ReadBatch reads into Buf (up to len(Buf)) and
	// WriteBatch sends Buf[:N].
	Buf []byte
	// N is the payload length.
	N int
	// Addr is the peer: the source after ReadBatch, the destination for
	// WriteBatch.
	Addr netip.AddrPort
}

// batchConn is the part of ipv4.PacketConn and ipv6.PacketConn used here;
// ipv4.Message and ipv6.Message are the same type.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// Conn is a batched UDP socket. ReadBatch may be called from one goroutine at a
// time; WriteBatch and WriteTo are safe for concurrent use.
type Conn struct {
	uc    *net.UDPConn
	bc    batchConn
	v6    bool // AF_INET6 socket (possibly dual-stack)
	laddr netip.AddrPort

	rmsgs []ipv4.Message // ReadBatch scratch, reused
	wpool sync.Pool      // *writeScratch
}

type writeScratch struct {
	msgs  []ipv4.Message
	addrs []net.UDPAddr
	ips   [][16]byte
}

// Listen opens a UDP socket on laddr. network is "udp", "udp4" or "udp6"; with
// "udp" and an unspecified or IPv6 laddr the socket is dual-stack (IPv4 peers
// reach it as v4-mapped addresses, which Conn hides). A zero laddr binds the
// wildcard address on an ephemeral port.
func Listen(network string, laddr netip.AddrPort, opts Options) (*Conn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("udp: listen: unsupported network %q", network)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return control(rc, opts)
	}}
	addr := ":0"
	if laddr.IsValid() {
		addr = laddr.String()
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("udp: listen %s %s: %w", network, addr, err)
	}
	c, err := NewConn(pc.(*net.UDPConn))
	if err != nil {
		pc.Close()
		return nil, err
	}
	return c, nil
}

func control(rc syscall.RawConn, opts Options) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if opts.ReusePort {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
				serr = fmt.Errorf("set SO_REUSEPORT: %w", err)
				return
			}
		}
		if opts.RecvBuffer > 0 {
			if err := setBuffer(int(fd), unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, opts.RecvBuffer); err != nil {
				serr = fmt.Errorf("set receive buffer: %w", err)
				return
			}
		}
		if opts.SendBuffer > 0 {
			if err := setBuffer(int(fd), unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, opts.SendBuffer); err != nil {
				serr = fmt.Errorf("set send buffer: %w", err)
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func setBuffer(fd, force, plain, size int) error {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) == nil {
		return nil
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size)
}

// NewConn wraps an existing UDP socket. The Conn takes ownership of uc.
func NewConn(uc *net.UDPConn) (*Conn, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	var domain int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("udp: get socket domain: %w", serr)
	}
	c := &Conn{uc: uc, v6: domain == unix.AF_INET6}
	if c.v6 {
		c.bc = ipv6.NewPacketConn(uc)
	} else {
		c.bc = ipv4.NewPacketConn(uc)
	}
	if a, ok := uc.LocalAddr().(*net.UDPAddr); ok {
		ap := a.AddrPort()
		c.laddr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	c.wpool.New = func() any { return new(writeScratch) }
	return c, nil
}

// LocalAddr returns the bound address (a v4-mapped address is unmapped).
func (c *Conn) LocalAddr() netip.AddrPort { return c.laddr }

// UDPConn returns the underlying socket, for socket options not covered here.
func (c *Conn) UDPConn() *net.UDPConn { return c.uc }

// Close closes the socket; a blocked ReadBatch returns an error matching
// net.ErrClosed.
func (c *Conn) Close() error {
	if err := c.uc.Close(); err != nil {
		return fmt.Errorf("udp: close: %w", err)
	}
	return nil
}

// ReadBatch blocks until at least one datagram arrives, then receives up to
// min(len(msgs), MaxBatch) datagrams with one recvmmsg. For each of the first n
// messages it sets N (the datagram length, at most len(Buf); longer datagrams
// are truncated) and Addr (the sender, unmapped). It must not be called
// concurrently with itself.
func (c *Conn) ReadBatch(msgs []Message) (int, error) {
	if len(msgs) > MaxBatch {
		msgs = msgs[:MaxBatch]
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	for len(c.rmsgs) < len(msgs) {
		c.rmsgs = append(c.rmsgs, ipv4.Message{Buffers: make([][]byte, 1)})
	}
	rm := c.rmsgs[:len(msgs)]
	for i := range msgs {
		rm[i].Buffers[0] = msgs[i].Buf
		rm[i].N, rm[i].Addr = 0, nil
	}
	n, err := c.bc.ReadBatch(rm, 0)
	n = max(n, 0) // x/net passes the syscall's -1 through on error
	for i := range n {
		msgs[i].N = rm[i].N
		msgs[i].Addr = netip.AddrPort{}
		if a, ok := rm[i].Addr.(*net.UDPAddr); ok {
			ap := a.AddrPort()
			msgs[i].Addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	for i := range rm {
		rm[i].Buffers[0], rm[i].Addr = nil, nil // do not pin caller buffers
	}
	if err != nil {
		return n, fmt.Errorf("udp: read batch: %w", err)
	}
	return n, nil
}

// WriteBatch sends Buf[:N] of each message to its Addr, calling sendmmsg as
// often as needed (the kernel may accept only part of a batch). It returns
// the number of messages sent; on error, msgs[n] is the message that failed
// and the caller may resume with msgs[n+1:] (for example after an unreachable
// peer).
func (c *Conn) WriteBatch(msgs []Message) (int, error) {
	ws := c.wpool.Get().(*writeScratch)
	defer c.wpool.Put(ws)
	sent := 0
	for sent < len(msgs) {
		chunk := msgs[sent:]
		if len(chunk) > MaxBatch {
			chunk = chunk[:MaxBatch]
		}
		wm, err := c.prepareWrite(ws, chunk)
		if err != nil {
			return sent, err
		}
		n, err := c.bc.WriteBatch(wm, 0)
		for i := range wm {
			wm[i].Buffers[0], wm[i].Addr = nil, nil
		}
		n = max(n, 0) // x/net passes the syscall's -1 through on error
		sent += n
		if err != nil {
			return sent, fmt.Errorf("udp: write batch to %v: %w", msgs[sent].Addr, err)
		}
		if n == 0 {
			return sent, fmt.Errorf("udp: write batch to %v: %w", msgs[sent].Addr, errors.New("no progress"))
		}
	}
	return sent, nil
}

func (c *Conn) prepareWrite(ws *writeScratch, msgs []Message) ([]ipv4.Message, error) {
	for len(ws.msgs) < len(msgs) {
		ws.msgs = append(ws.msgs, ipv4.Message{Buffers: make([][]byte, 1)})
		ws.addrs = append(ws.addrs, net.UDPAddr{})
		ws.ips = append(ws.ips, [16]byte{})
	}
	wm := ws.msgs[:len(msgs)]
	for i := range msgs {
		m := &msgs[i]
		if m.N < 0 || m.N > len(m.Buf) {
			return nil, fmt.Errorf("udp: write batch: message length %d out of range [0, %d]", m.N, len(m.Buf))
		}
		ip := m.Addr.Addr()
		if !ip.IsValid() {
			return nil, fmt.Errorf("udp: write batch: invalid destination %v", m.Addr)
		}
		// x/net writes a sockaddr_in for any address with a 4-byte form;
		// Linux accepts it on a dual-stack AF_INET6 socket as well.
		ua := &ws.addrs[i]
		if ip.Is4() || ip.Is4In6() {
			ip4 := ip.Unmap().As4()
			copy(ws.ips[i][:4], ip4[:])
			ua.IP = ws.ips[i][:4]
		} else {
			ws.ips[i] = ip.As16()
			ua.IP = ws.ips[i][:16]
		}
		ua.Port = int(m.Addr.Port())
		ua.Zone = ip.Zone()
		wm[i].Buffers[0] = m.Buf[:m.N]
		wm[i].Addr = ua
		wm[i].N = 0
	}
	return wm, nil
}

// WriteTo sends one datagram b to addr.
func (c *Conn) WriteTo(b []byte, addr netip.AddrPort) error {
	if !c.v6 {
		addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	}
	if _, err := c.uc.WriteToUDPAddrPort(b, addr); err != nil {
		return fmt.Errorf("udp: write to %v: %w", addr, err)
	}
	return nil
}
