// Package udp provides weft's batched UDP sockets for Linux.
//
// A Conn wraps a *net.UDPConn and moves packets in batches with recvmmsg and
// sendmmsg. It issues the system calls itself, on preallocated message
// headers, through syscall.RawConn Read and Write callbacks, so a goroutine
// waiting for the socket still parks in Go's netpoller and the per-call path
// does not allocate in steady state. Addresses are netip.AddrPort; IPv4 peers
// of a dual-stack IPv6 socket appear as plain IPv4 addresses (v4-mapped
// addresses are unmapped), and may be written to as such.
//
// # Offloads
//
// When the kernel supports them (see Options.GSO and Options.GRO), a Conn uses
// UDP generic segmentation offload on send and generic receive offload on
// receive, while callers keep seeing exactly one datagram (one OpenVPN packet)
// per Message:
//
//   - GSO (UDP_SEGMENT, Linux 4.18): WriteBatch hands consecutive messages to
//     the same address whose lengths are equal (the last one may be shorter)
//     to the kernel as one super-datagram of up to 64 segments, which the
//     kernel or the NIC splits into ordinary datagrams. If the kernel refuses
//     a super-datagram, WriteBatch re-sends those messages one datagram each
//     and adapts: after EIO (the route's device lacks checksum offload) it
//     stops using GSO, after EINVAL (a segment exceeds the path MTU and
//     would need IP fragmentation) it coalesces only smaller datagrams.
//   - GRO (UDP_GRO, Linux 5.12): the kernel may deliver a run of datagrams of
//     one flow as a single coalesced datagram of up to 64 KiB; ReadBatch
//     splits it again (give it buffers of MaxDatagram bytes, or it reads
//     one kernel datagram per call).
//     Because one kernel datagram can become many Messages, ReadBatch keeps
//     segments that do not fit into the caller's slice inside the Conn and
//     returns them first on the next call (without a system call), and it
//     adapts how many kernel datagrams it asks for to the coalescing it sees,
//     so that this rarely happens.
//
// # Groups
//
// ListenGroup opens n sockets on one address with SO_REUSEPORT and attaches a
// classic BPF program to the group so that the kernel steers OpenVPN
// P_DATA_V2 packets to socket peer_id % n, whatever their source address:
// each shard of a multi-core server reads the data packets of the peers it
// owns from its own socket.
//
// Not implemented yet: sticky source addresses (IP_PKTINFO /
// IPV6_RECVPKTINFO) for servers bound to a wildcard address on multi-homed
// hosts; the kernel picks the source address.
package udp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaxBatch is the largest number of messages ReadBatch fills in one call and
// the largest number of kernel messages passed to one sendmmsg call; longer
// read slices are cut, longer write slices are split.
const MaxBatch = 128

// Offload selects whether a Conn uses a kernel offload (GSO or GRO).
type Offload uint8

const (
	// OffloadAuto uses the offload when the kernel supports it. It is the
	// zero value, so offloads are on by default.
	OffloadAuto Offload = iota
	// OffloadOff never uses the offload.
	OffloadOff
	// OffloadOn uses the offload and makes Listen fail (with an error
	// matching errors.ErrUnsupported) when the kernel lacks it. GSO still
	// turns off later if the kernel refuses it for the socket's route.
	OffloadOn
)

// String returns "auto", "off" or "on".
func (o Offload) String() string {
	switch o {
	case OffloadAuto:
		return "auto"
	case OffloadOff:
		return "off"
	case OffloadOn:
		return "on"
	}
	return fmt.Sprintf("Offload(%d)", uint8(o))
}

// Options tunes a socket created by Listen or ListenGroup.
type Options struct {
	// ReusePort sets SO_REUSEPORT so that several sockets (one per shard) can
	// bind the same address and the kernel spreads flows across them.
	// ListenGroup always sets it.
	ReusePort bool
	// RecvBuffer and SendBuffer, when positive, set the kernel socket buffer
	// sizes. SO_RCVBUFFORCE/SO_SNDBUFFORCE are tried first (they exceed
	// net.core.rmem_max/wmem_max but need CAP_NET_ADMIN), then
	// SO_RCVBUF/SO_SNDBUF.
	RecvBuffer, SendBuffer int
	// GSO selects UDP segmentation offload (UDP_SEGMENT) in WriteBatch.
	// The default, OffloadAuto, uses it when the kernel supports it.
	GSO Offload
	// GRO selects UDP receive offload (UDP_GRO) in ReadBatch. The default,
	// OffloadAuto, enables it on Linux 5.12 and later. With GRO, give every
	// Message passed to ReadBatch a Buf of at least MaxDatagram bytes: a
	// coalesced datagram can be that long, so with a shorter Buf ReadBatch
	// receives one kernel datagram per call into a buffer of its own and
	// copies the segments out.
	GRO Offload
}

// MaxDatagram is the largest UDP payload (IPv6, without jumbograms) and the
// Buf size ReadBatch needs with GRO to never truncate a coalesced datagram.
const MaxDatagram = 65535 - 8

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
	// Seg, after ReadCoalesced, is the size of the coalesced datagrams in
	// Buf[:N] (0: Buf[:N] is one datagram). WriteBatch ignores it.
	Seg int
}

// SegmentSize is the length of each datagram in m.Buf[:m.N] but the last,
// which may be shorter: m.Seg for a coalesced message, else m.N. Walk them with
//
//	for off, seg := 0, m.SegmentSize(); off < m.N; off += seg {
//		datagram := m.Buf[off:min(off+seg, m.N)]
//	}
func (m *Message) SegmentSize() int {
	if m.Seg > 0 {
		return m.Seg
	}
	return m.N
}

// Conn is a batched UDP socket. ReadBatch may be called from one goroutine at a
// time; WriteBatch and WriteTo are safe for concurrent use, also with
// ReadBatch.
type Conn struct {
	uc    *net.UDPConn
	rc    syscall.RawConn
	v6    bool // AF_INET6 socket (possibly dual-stack)
	laddr netip.AddrPort

	gro     bool        // UDP_GRO is enabled on the socket
	gso     atomic.Bool // UDP_SEGMENT may be used; cleared for good after EIO
	gsoMax  atomic.Int32
	steered bool // member of a ListenGroup with the steering program attached

	r      *reader                // ReadBatch state, created by the first ReadBatch
	wcache atomic.Pointer[writer] // a WriteBatch scratch kept across GCs
	wpool  sync.Pool              // more *writer for concurrent WriteBatch calls
	zones  zoneCache
}

// Listen opens a UDP socket on laddr. network is "udp", "udp4" or "udp6"; with
// "udp" and an unspecified or IPv6 laddr the socket is dual-stack (IPv4 peers
// reach it as v4-mapped addresses, which Conn hides). A zero laddr binds the
// wildcard address on an ephemeral port.
func Listen(network string, laddr netip.AddrPort, opts Options) (*Conn, error) {
	addr := ":0"
	if laddr.IsValid() {
		addr = laddr.String()
	}
	return listenAddr(network, addr, opts)
}

func listenAddr(network, addr string, opts Options) (*Conn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("udp: listen: unsupported network %q", network)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return control(rc, opts)
	}}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("udp: listen %s %s: %w", network, addr, err)
	}
	c, err := newConn(pc.(*net.UDPConn), opts)
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

// NewConn wraps an existing UDP socket with default Options offloads (GSO and
// GRO where the kernel supports them). The Conn takes ownership of uc.
func NewConn(uc *net.UDPConn) (*Conn, error) {
	return newConn(uc, Options{})
}

func newConn(uc *net.UDPConn, opts Options) (*Conn, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	c := &Conn{uc: uc, rc: rc}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = c.setup(int(fd), opts) }); err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("udp: %w", serr)
	}
	if a, ok := uc.LocalAddr().(*net.UDPAddr); ok {
		ap := a.AddrPort()
		c.laddr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	c.gsoMax.Store(maxGSOSegment)
	c.wpool.New = func() any { return newWriter() }
	return c, nil
}

// setup reads the socket family and negotiates the offloads.
func (c *Conn) setup(fd int, opts Options) error {
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("get socket domain: %w", err)
	}
	c.v6 = domain == unix.AF_INET6

	if opts.GSO != OffloadOff {
		// getsockopt(UDP_SEGMENT) exists exactly where UDP_SEGMENT does.
		_, err := unix.GetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		switch {
		case err == nil:
			c.gso.Store(true)
		case opts.GSO == OffloadOn:
			return fmt.Errorf("UDP_SEGMENT: %w: %w", err, errors.ErrUnsupported)
		}
	}

	if !groKernel() {
		// Before 5.12 getsockopt(UDP_GRO) does not exist, and UDP GRO had
		// bugs; do not touch the option.
		if opts.GRO == OffloadOn {
			return fmt.Errorf("UDP_GRO needs Linux 5.12: %w", errors.ErrUnsupported)
		}
		return nil
	}
	want := 0
	if opts.GRO != OffloadOff {
		want = 1
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_GRO, want); err != nil && opts.GRO == OffloadOn {
		return fmt.Errorf("set UDP_GRO: %w: %w", err, errors.ErrUnsupported)
	}
	// Read it back: NewConn may wrap a socket someone else configured.
	on, err := unix.GetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_GRO)
	c.gro = err == nil && on == 1
	if opts.GRO == OffloadOn && !c.gro {
		return fmt.Errorf("UDP_GRO not enabled: %w", errors.ErrUnsupported)
	}
	return nil
}

// groKernel reports whether the running kernel is Linux 5.12 or later, the
// first version whose UDP_GRO can be read back with getsockopt.
var groKernel = sync.OnceValue(func() bool {
	major, minor := kernelVersion()
	return major > 5 || major == 5 && minor >= 12
})

// kernelVersion parses the major and minor version from uname's release.
func kernelVersion() (major, minor int) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 0, 0
	}
	var v [2]int
	i := 0
	for _, ch := range u.Release {
		switch {
		case ch >= '0' && ch <= '9':
			v[i] = v[i]*10 + int(ch-'0')
		case ch == '.' && i == 0:
			i++
		default:
			return v[0], v[1]
		}
	}
	return v[0], v[1]
}

// Offloads reports whether WriteBatch currently uses UDP GSO and whether the
// socket has UDP GRO enabled. GSO can turn off during the Conn's life when the
// kernel refuses it.
func (c *Conn) Offloads() (gso, gro bool) { return c.gso.Load(), c.gro }

// Steered reports whether c belongs to a ListenGroup whose sockets the kernel
// steers by OpenVPN peer-id.
func (c *Conn) Steered() bool { return c.steered }

// LocalAddr returns the bound address (a v4-mapped address is unmapped).
func (c *Conn) LocalAddr() netip.AddrPort { return c.laddr }

// UDPConn returns the underlying socket, for socket options not covered here.
// With GRO enabled (see Offloads), reading from it directly may return
// coalesced datagrams; use ReadBatch, which splits them.
func (c *Conn) UDPConn() *net.UDPConn { return c.uc }

// Close closes the socket; a blocked ReadBatch returns an error matching
// net.ErrClosed.
func (c *Conn) Close() error {
	if err := c.uc.Close(); err != nil {
		return fmt.Errorf("udp: close: %w", err)
	}
	return nil
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
