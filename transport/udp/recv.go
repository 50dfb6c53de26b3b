package udp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// oobSize is the control buffer per received message: room for the UDP_GRO
// segment size (CmsgSpace(4) = 24 on 64-bit) and a packet-info message.
const oobSize = 64

// spillKeep is the spill arena capacity kept for reuse after it drains; a
// larger arena (from an unusual burst) is released.
const spillKeep = 1 << 20

// reader is the ReadBatch state: preallocated recvmmsg headers and the
// segments of coalesced datagrams that did not fit into the caller's slice.
type reader struct {
	hdrs  [MaxBatch]unix.Mmsghdr
	iovs  [MaxBatch]unix.Iovec
	names [MaxBatch]rawSockaddr
	oob   [MaxBatch][oobSize]byte
	segs  [MaxBatch]segment // per kernel message, for GRO splitting

	// recvmmsg call state, used by recv (bound once to fn, so the
	// RawConn.Read callback does not allocate).
	cnt   int
	got   int
	errno unix.Errno
	fn    func(fd uintptr) bool

	// hint is the number of segments expected per kernel message; ReadBatch
	// asks the kernel for len(msgs)/hint datagrams.
	hint   int
	spill  spill
	bounce []byte // receive buffer for callers whose buffers are too small for GRO
}

// segment describes one received kernel datagram.
type segment struct {
	n, size, count int // length, segment size (n if not coalesced), segments
	out            int // index of its first segment in the output
	addr           netip.AddrPort
}

func newReader() *reader {
	r := &reader{hint: 1}
	for i := range r.hdrs {
		h := &r.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.oob[i][0]
	}
	r.fn = r.recv
	return r
}

// recv runs recvmmsg on the socket; it returns false to wait for readability.
func (r *reader) recv(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(r.cnt), 0, 0, 0)
		switch e {
		case 0:
			r.got, r.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.got, r.errno = 0, e
			return true
		}
	}
}

// ReadBatch blocks until at least one datagram arrives, then receives a batch
// with one recvmmsg and fills up to min(len(msgs), MaxBatch) messages: for each
// of the first n messages it sets N (the datagram length, at most len(Buf);
// longer datagrams are truncated) and Addr (the sender, unmapped).
//
// With GRO (see Offloads) a kernel datagram may carry several coalesced
// datagrams of one flow; ReadBatch splits them so that every Message is still
// one datagram as sent. Segments that do not fit into msgs stay buffered in
// the Conn, and the next ReadBatch returns them first, without waiting or
// reading from the socket. It must not be called concurrently with itself.
func (c *Conn) ReadBatch(msgs []Message) (int, error) {
	if len(msgs) > MaxBatch {
		msgs = msgs[:MaxBatch]
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	if c.r == nil {
		c.r = newReader()
	}
	r := c.r
	if r.spill.pending() {
		return r.spill.drain(msgs), nil
	}

	k := len(msgs)
	var bounce []byte
	if c.gro {
		k = max(1, len(msgs)/r.hint)
		for i := range k {
			if len(msgs[i].Buf) < MaxDatagram {
				// A coalesced datagram could be cut: receive one
				// into a buffer of the Conn instead.
				if r.bounce == nil {
					r.bounce = make([]byte, MaxDatagram)
				}
				bounce, k = r.bounce, 1
				break
			}
		}
	}
	got, err := c.recvInto(msgs, k, bounce)
	if err != nil {
		return 0, err
	}
	if !c.gro {
		for i := range got {
			msgs[i].N = int(r.hdrs[i].Len)
			msgs[i].Addr = c.decodeSockaddr(&r.names[i])
		}
		return got, nil
	}
	return c.split(msgs, got, bounce), nil
}

// recvInto runs one recvmmsg into msgs[:k] (or, with bounce, into that one
// buffer) and returns the number of kernel datagrams received.
func (c *Conn) recvInto(msgs []Message, k int, bounce []byte) (int, error) {
	r := c.r
	for i := range k {
		b := msgs[i].Buf
		if bounce != nil {
			b = bounce
		}
		iov := &r.iovs[i]
		iov.Base = nil
		if len(b) > 0 {
			iov.Base = &b[0]
		}
		iov.SetLen(len(b))
		h := &r.hdrs[i]
		h.Hdr.Namelen = unix.SizeofSockaddrInet6
		h.Hdr.SetControllen(oobSize)
		h.Hdr.Flags = 0
		h.Len = 0
	}
	r.cnt = k
	err := c.rc.Read(r.fn)
	for i := range k {
		r.iovs[i].Base = nil // do not pin caller buffers
	}
	if err != nil {
		return 0, fmt.Errorf("udp: read batch: %w", err)
	}
	if r.errno != 0 {
		return 0, fmt.Errorf("udp: read batch: %w", os.NewSyscallError("recvmmsg", r.errno))
	}
	return r.got, nil
}

// ReadCoalesced is ReadBatch without the copying: with GRO, a Message may hold
// several coalesced datagrams of one flow back to back, and Seg is then their
// size (every one but the last is Seg bytes; see Message.SegmentSize). The
// caller walks the datagrams in place. Every Buf must hold MaxDatagram bytes.
// Without GRO it is ReadBatch (Seg is 0). It must not be called concurrently
// with itself or ReadBatch.
func (c *Conn) ReadCoalesced(msgs []Message) (int, error) {
	if len(msgs) > MaxBatch {
		msgs = msgs[:MaxBatch]
	}
	if !c.gro || len(msgs) == 0 || c.r != nil && c.r.spill.pending() {
		n, err := c.ReadBatch(msgs)
		for i := range n {
			msgs[i].Seg = 0
		}
		return n, err
	}
	if c.r == nil {
		c.r = newReader()
	}
	r := c.r
	k := max(1, len(msgs)/r.hint)
	for i := range k {
		if len(msgs[i].Buf) < MaxDatagram {
			return 0, fmt.Errorf("udp: read coalesced: buffer %d holds %d bytes, want MaxDatagram", i, len(msgs[i].Buf))
		}
	}
	got, err := c.recvInto(msgs, k, nil)
	if err != nil {
		return 0, err
	}
	total := 0
	for j := range got {
		m := &msgs[j]
		m.N = int(r.hdrs[j].Len)
		m.Addr = c.decodeSockaddr(&r.names[j])
		m.Seg = 0
		size := groSize(r.oob[j][:min(int(r.hdrs[j].Hdr.Controllen), oobSize)])
		if size > 0 && m.N > size {
			m.Seg = size
			total += (m.N + size - 1) / size
		} else {
			total++
		}
	}
	if got > 0 {
		r.hint = min(max(1, (total+got-1)/got), len(msgs))
	}
	return got, nil
}

// split turns the got kernel datagrams in msgs[:got] (or the one in bounce,
// if not nil) into one Message per segment and returns the number of
// Messages filled. The segments of datagram j go to the slots starting at
// out(j) = the number of segments before it, which is at least j; they are
// moved backwards from the last datagram, so that every slot is free by the
// time it is written. Segments beyond len(msgs) are copied to the spill
// first.
func (c *Conn) split(msgs []Message, got int, bounce []byte) int {
	r := c.r
	total := 0
	for j := range got {
		n := int(r.hdrs[j].Len)
		size := groSize(r.oob[j][:min(int(r.hdrs[j].Hdr.Controllen), oobSize)])
		count := 1
		if size > 0 && n > size {
			count = (n + size - 1) / size
		} else {
			size = n
		}
		r.segs[j] = segment{n: n, size: size, count: count, out: total, addr: c.decodeSockaddr(&r.names[j])}
		total += count
	}
	r.hint = min(max(1, (total+got-1)/got), len(msgs))
	if total == got && bounce == nil { // nothing was coalesced
		for j := range got {
			msgs[j].N = r.segs[j].n
			msgs[j].Addr = r.segs[j].addr
		}
		return got
	}

	// Spill, in order, the segments that land past the caller's slice.
	for j := range got {
		s := &r.segs[j]
		if s.out+s.count <= len(msgs) {
			continue
		}
		src := srcOf(msgs, j, bounce)[:s.n]
		for i := max(0, len(msgs)-s.out); i < s.count; i++ {
			r.spill.add(src[i*s.size:min((i+1)*s.size, s.n)], s.addr)
		}
	}
	// Move the rest into place, last datagram first.
	for j := got - 1; j >= 0; j-- {
		s := &r.segs[j]
		src := srcOf(msgs, j, bounce)[:s.n]
		for i := min(s.count, len(msgs)-s.out) - 1; i >= 0; i-- {
			dst := &msgs[s.out+i]
			switch {
			case i == 0 && s.out == j && bounce == nil: // already in place
				dst.N = s.size
			default:
				dst.N = copy(dst.Buf, src[i*s.size:min((i+1)*s.size, s.n)])
			}
			dst.Addr = s.addr
		}
	}
	return min(total, len(msgs))
}

// srcOf returns the buffer kernel datagram j was received into.
func srcOf(msgs []Message, j int, bounce []byte) []byte {
	if bounce != nil {
		return bounce
	}
	return msgs[j].Buf
}

// groSize returns the segment size from a UDP_GRO control message, or 0.
func groSize(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO {
			switch {
			case len(data) >= 4: // the kernel writes an int
				return int(binary.NativeEndian.Uint32(data))
			case len(data) >= 2:
				return int(binary.NativeEndian.Uint16(data))
			}
		}
		oob = rest
	}
	return 0
}

// spill holds segments of coalesced datagrams that did not fit into the
// Messages of the ReadBatch that received them.
type spill struct {
	buf  []byte
	ents []spillEntry
	head int
}

type spillEntry struct {
	off, n int
	addr   netip.AddrPort
}

func (s *spill) pending() bool { return s.head < len(s.ents) }

func (s *spill) add(b []byte, addr netip.AddrPort) {
	s.ents = append(s.ents, spillEntry{off: len(s.buf), n: len(b), addr: addr})
	s.buf = append(s.buf, b...)
}

// drain copies buffered segments into msgs and returns how many it filled.
func (s *spill) drain(msgs []Message) int {
	n := 0
	for ; n < len(msgs) && s.head < len(s.ents); n++ {
		e := s.ents[s.head]
		s.head++
		msgs[n].N = copy(msgs[n].Buf, s.buf[e.off:e.off+e.n])
		msgs[n].Addr = e.addr
	}
	if s.head == len(s.ents) {
		s.head, s.ents = 0, s.ents[:0]
		s.buf = s.buf[:0]
		if cap(s.buf) > spillKeep {
			s.buf, s.ents = nil, nil
		}
	}
	return n
}
