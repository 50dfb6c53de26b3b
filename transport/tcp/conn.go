package tcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
)

// DefaultReadSize is how many bytes Conn asks the kernel for per read.
const DefaultReadSize = 64 << 10

// Options tunes a Conn.
type Options struct {
	// MaxPacket is the largest packet accepted from the peer (default and
	// upper bound MaxPacket). A longer frame is a fatal stream error.
	MaxPacket int
	// ReadSize is the size of each read from the socket (default
	// DefaultReadSize).
	ReadSize int
}

// Conn carries OpenVPN packets over a stream connection. One goroutine may
// read (ReadBatch or ReadPackets) while others write; WritePackets is safe for
// concurrent use and never interleaves frames.
type Conn struct {
	c        net.Conn
	d        Deframer
	readSize int
	rerr     error // read error held back until buffered packets are consumed

	wmu  sync.Mutex
	hdrs []byte
	bufs net.Buffers
}

// NewConn wraps an established stream connection; the Conn takes ownership.
func NewConn(c net.Conn, opts Options) *Conn {
	if opts.ReadSize <= 0 {
		opts.ReadSize = DefaultReadSize
	}
	conn := &Conn{c: c, readSize: opts.ReadSize}
	conn.d.SetMax(opts.MaxPacket)
	return conn
}

// Dial connects to raddr ("host:port") over network "tcp", "tcp4" or "tcp6",
// from laddr if it is valid (a zero laddr lets the kernel choose). ctx bounds
// the connection attempt only.
func Dial(ctx context.Context, network, raddr string, laddr netip.AddrPort, opts Options) (*Conn, error) {
	if err := checkNetwork(network); err != nil {
		return nil, fmt.Errorf("tcp: dial %s: %w", raddr, err)
	}
	var d net.Dialer
	if laddr.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(laddr)
	}
	c, err := d.DialContext(ctx, network, raddr)
	if err != nil {
		return nil, fmt.Errorf("tcp: dial %s %s: %w", network, raddr, err)
	}
	return NewConn(c, opts), nil
}

func checkNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return nil
	}
	return fmt.Errorf("unsupported network %q", network)
}

// NetConn returns the underlying connection (for deadlines and options).
func (c *Conn) NetConn() net.Conn { return c.c }

// LocalAddr returns the local address (v4-mapped addresses unmapped).
func (c *Conn) LocalAddr() netip.AddrPort { return addrPort(c.c.LocalAddr()) }

// RemoteAddr returns the peer address (v4-mapped addresses unmapped).
func (c *Conn) RemoteAddr() netip.AddrPort { return addrPort(c.c.RemoteAddr()) }

func addrPort(a net.Addr) netip.AddrPort {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Close closes the connection; blocked reads and writes return errors.
func (c *Conn) Close() error {
	if err := c.c.Close(); err != nil {
		return fmt.Errorf("tcp: close: %w", err)
	}
	return nil
}

// fill reads once from the socket into the deframer, unless a read error is
// already pending. It returns the pending or new error.
func (c *Conn) fill() error {
	if c.rerr != nil {
		return c.rerr
	}
	n, err := c.c.Read(c.d.space(c.readSize))
	c.d.commit(n)
	if err != nil {
		switch {
		case errors.Is(err, io.EOF) && c.d.Buffered() == 0:
			c.rerr = io.EOF // clean close at a frame boundary
		case errors.Is(err, io.EOF):
			c.rerr = fmt.Errorf("tcp: read from %v: %w (%d bytes of a partial frame)", c.c.RemoteAddr(), io.ErrUnexpectedEOF, c.d.Buffered())
		default:
			c.rerr = fmt.Errorf("tcp: read from %v: %w", c.c.RemoteAddr(), err)
		}
	}
	return nil
}

// ReadBatch blocks until at least one complete packet is available, then
// copies up to len(bufs) buffered packets into bufs[i][:sizes[i]] and returns
// how many. It reads from the socket only when no complete packet is
// buffered, so a reader goroutine can hand each batch to a shard and call
// again. Errors: io.EOF when the peer closed at a frame boundary,
// io.ErrUnexpectedEOF (wrapped) mid-frame, ErrFrameLength (wrapped) for a bad
// frame, io.ErrShortBuffer (wrapped) if the next packet does not fit bufs[i]
// (only when no packet was returned). Buffered packets are always returned
// before an error.
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	if len(sizes) < len(bufs) {
		bufs = bufs[:len(sizes)]
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	for {
		n := 0
		for n < len(bufs) {
			pkt, ok, err := c.peek()
			if err != nil {
				if n > 0 {
					return n, nil
				}
				return 0, err
			}
			if !ok {
				break
			}
			if len(pkt) > len(bufs[n]) {
				if n > 0 {
					return n, nil
				}
				return 0, fmt.Errorf("tcp: packet of %d bytes into buffer of %d: %w", len(pkt), len(bufs[n]), io.ErrShortBuffer)
			}
			sizes[n] = copy(bufs[n], pkt)
			c.d.Next() // consume the peeked packet
			n++
		}
		if n > 0 {
			return n, nil
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
}

// peek returns the next complete packet without consuming it.
func (c *Conn) peek() ([]byte, bool, error) {
	off := c.d.off
	pkt, ok, err := c.d.Next()
	if err != nil {
		return nil, false, fmt.Errorf("tcp: from %v: %w", c.c.RemoteAddr(), err)
	}
	c.d.off = off
	return pkt, ok, nil
}

// ReadPackets blocks until at least one complete packet is available, then
// calls fn with every complete packet buffered. pkt is only valid during the
// call (it aliases the read buffer): copy what must outlive it. Errors are
// those of ReadBatch except io.ErrShortBuffer.
func (c *Conn) ReadPackets(fn func(pkt []byte)) error {
	for {
		got := false
		for {
			pkt, ok, err := c.d.Next()
			if err != nil {
				if got {
					return nil
				}
				return fmt.Errorf("tcp: from %v: %w", c.c.RemoteAddr(), err)
			}
			if !ok {
				break
			}
			got = true
			fn(pkt)
		}
		if got {
			return nil
		}
		if err := c.fill(); err != nil {
			return err
		}
	}
}

// WritePackets frames pkts and writes them with a single writev (net.Buffers).
// Each packet must be 1 to MaxPacket bytes; otherwise nothing is written and
// the error wraps ErrPacketSize. A write error leaves the stream in an unknown
// state: close the connection.
func (c *Conn) WritePackets(pkts [][]byte) error {
	for i, p := range pkts {
		if len(p) == 0 || len(p) > MaxPacket {
			return fmt.Errorf("tcp: write packet %d of %d bytes: %w", i, len(p), ErrPacketSize)
		}
	}
	if len(pkts) == 0 {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if cap(c.hdrs) < HeaderLen*len(pkts) {
		c.hdrs = make([]byte, HeaderLen*len(pkts))
	}
	hdrs := c.hdrs[:HeaderLen*len(pkts)]
	bufs := c.bufs[:0]
	for i, p := range pkts {
		h := hdrs[i*HeaderLen : (i+1)*HeaderLen : (i+1)*HeaderLen]
		binary.BigEndian.PutUint16(h, uint16(len(p)))
		bufs = append(bufs, h, p)
	}
	c.bufs = bufs
	// WriteTo consumes its receiver, so hand it a copy of the slice header.
	w := bufs
	_, err := w.WriteTo(c.c)
	clear(bufs) // do not pin the caller's packets
	if err != nil {
		return fmt.Errorf("tcp: write to %v: %w", c.c.RemoteAddr(), err)
	}
	return nil
}

// Listener accepts OpenVPN TCP connections.
type Listener struct {
	l    *net.TCPListener
	opts Options
}

// Listen listens on laddr over network "tcp", "tcp4" or "tcp6". A zero laddr
// listens on all addresses on an ephemeral port. opts apply to accepted
// connections.
func Listen(network string, laddr netip.AddrPort, opts Options) (*Listener, error) {
	if err := checkNetwork(network); err != nil {
		return nil, fmt.Errorf("tcp: listen: %w", err)
	}
	var ta *net.TCPAddr
	if laddr.IsValid() {
		ta = net.TCPAddrFromAddrPort(laddr)
	}
	l, err := net.ListenTCP(network, ta)
	if err != nil {
		return nil, fmt.Errorf("tcp: listen %s %v: %w", network, laddr, err)
	}
	return &Listener{l: l, opts: opts}, nil
}

// Accept waits for the next connection.
func (l *Listener) Accept() (*Conn, error) {
	c, err := l.l.Accept()
	if err != nil {
		return nil, fmt.Errorf("tcp: accept: %w", err)
	}
	return NewConn(c, l.opts), nil
}

// Addr returns the listening address.
func (l *Listener) Addr() netip.AddrPort { return addrPort(l.l.Addr()) }

// Close stops listening; a blocked Accept returns an error matching
// net.ErrClosed.
func (l *Listener) Close() error {
	if err := l.l.Close(); err != nil {
		return fmt.Errorf("tcp: close listener: %w", err)
	}
	return nil
}
