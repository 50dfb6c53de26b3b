package udp

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// maxGSOSegments is the most datagrams WriteBatch puts into one
	// super-datagram (UDP_MAX_SEGMENTS was 64 before Linux 6.9).
	maxGSOSegments = 64
	// maxGSOSegment is the largest segment size a UDP_SEGMENT cmsg carries.
	maxGSOSegment = 1<<16 - 1
	// minGSOSegment is the smallest segment size worth using GSO for after
	// the kernel refused larger ones: below it, GSO is turned off.
	minGSOSegment = 548 // 576-byte IPv4 minimum MTU - headers
	// maxIovs bounds the iovecs of one sendmmsg call (UIO_MAXIOV).
	maxIovs = 1024
	// maxPayload4 and maxPayload6 bound a super-datagram's payload.
	maxPayload4 = 1<<16 - 1 - 20 - 8
	maxPayload6 = 1<<16 - 1 - 8
	// gsoOOBSize holds one UDP_SEGMENT cmsg (CmsgSpace(2) = 24 on 64-bit).
	gsoOOBSize = 32
)

// writer is the state of one WriteBatch call: preallocated sendmmsg headers.
// Writers are pooled, so that concurrent WriteBatch calls each have one.
type writer struct {
	hdrs  [MaxBatch]unix.Mmsghdr
	iovs  [maxIovs]unix.Iovec
	names [MaxBatch]rawSockaddr
	oob   [MaxBatch][gsoOOBSize]byte
	first [MaxBatch + 1]int // entry e sends input messages first[e]..first[e+1]-1
	seg   [MaxBatch]int     // entry e's segment size if it is a super-datagram, else 0
	niov  int

	// sendmmsg call state, used by send (bound once to fn, so the
	// RawConn.Write callback does not allocate).
	cnt, done int
	errno     unix.Errno
	fn        func(fd uintptr) bool
}

func newWriter() *writer {
	w := new(writer)
	for i := range w.hdrs {
		w.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&w.names[i]))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&w.oob[i][0]))
		h.Level = unix.SOL_UDP
		h.Type = unix.UDP_SEGMENT
		h.SetLen(unix.CmsgLen(2))
	}
	w.fn = w.send
	return w
}

// send runs sendmmsg from entry done; it returns false to wait for
// writability.
func (w *writer) send(fd uintptr) bool {
	for w.done < w.cnt {
		n, e := sendmmsg(fd, w.hdrs[w.done:w.cnt])
		switch e {
		case 0:
			if n == 0 {
				w.errno = unix.EAGAIN // no progress; never seen in practice
				return true
			}
			w.done += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			// sendmmsg reports an error only for the first message it
			// could not send, which is entry done.
			w.errno = e
			return true
		}
	}
	return true
}

// sendmmsg sends hdrs with one sendmmsg call; it is a variable so that tests
// can inject kernel errors.
var sendmmsg = func(fd uintptr, hdrs []unix.Mmsghdr) (int, unix.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), 0, 0, 0)
	return int(n), e
}

// getWriter takes the Conn's cached writer, or one from the pool.
func (c *Conn) getWriter() *writer {
	if w := c.wcache.Swap(nil); w != nil {
		return w
	}
	return c.wpool.Get().(*writer)
}

func (c *Conn) putWriter(w *writer) {
	if !c.wcache.CompareAndSwap(nil, w) {
		c.wpool.Put(w)
	}
}

// WriteBatch sends Buf[:N] of each message to its Addr, calling sendmmsg as
// often as needed (the kernel may accept only part of a batch). With GSO (see
// Offloads), runs of consecutive messages to the same Addr with equal N (the
// last one may be shorter) go to the kernel as one super-datagram each; the
// peer still receives one datagram per message.
//
// It returns the number of messages sent; on error, msgs[n] is the message
// that failed (for a super-datagram, its first message), and the caller may
// resume with msgs[n+1:] (for example after an unreachable peer).
func (c *Conn) WriteBatch(msgs []Message) (int, error) {
	w := c.getWriter()
	defer c.putWriter(w)
	sent := 0
	for sent < len(msgs) {
		entries, perr := c.prepare(w, msgs[sent:])
		if entries > 0 {
			w.cnt, w.done, w.errno = entries, 0, 0
			err := c.rc.Write(w.fn)
			w.release()
			base := sent
			sent = base + w.first[w.done]
			if err != nil {
				return sent, fmt.Errorf("udp: write batch to %v: %w", msgs[sent].Addr, err)
			}
			if w.errno != 0 {
				if c.gsoRefused(w.seg[w.done], w.errno) {
					continue // resend from the refused super-datagram on
				}
				return sent, fmt.Errorf("udp: write batch to %v: %w", msgs[sent].Addr, os.NewSyscallError("sendmmsg", w.errno))
			}
		}
		if perr != nil {
			return sent, perr
		}
	}
	return sent, nil
}

// gsoRefused handles an error for a super-datagram of segment size seg (0 for
// a plain datagram): it reports whether the kernel refused GSO itself, after
// restricting GSO so that the messages go out as plain datagrams on retry.
func (c *Conn) gsoRefused(seg int, errno unix.Errno) bool {
	if seg == 0 {
		return false
	}
	switch errno {
	case unix.EIO:
		// udp_send_skb: the route's device lacks checksum offload, which
		// UDP_SEGMENT needs. It will not get better.
		c.gso.Store(false)
		return true
	case unix.EINVAL, unix.EMSGSIZE:
		// A segment larger than the path MTU (the datagrams would need IP
		// fragmentation, which GSO does not do): use GSO only for
		// smaller segments from now on.
		for {
			cur := c.gsoMax.Load()
			if int(cur) < seg || c.gsoMax.CompareAndSwap(cur, int32(seg-1)) {
				break
			}
		}
		if seg-1 < minGSOSegment {
			c.gso.Store(false)
		}
		return true
	}
	return false
}

// prepare fills w with up to MaxBatch entries (datagrams or super-datagrams)
// for the first messages of msgs. It returns the number of entries; w.first
// maps them to messages. It stops early at an invalid message, returning the
// entries before it and an error for it (w.first[entries] is its index).
func (c *Conn) prepare(w *writer, msgs []Message) (int, error) {
	gso := c.gso.Load()
	gsoMax := int(c.gsoMax.Load())
	w.niov = 0
	e, i := 0, 0
	var err error
	for i < len(msgs) && e < MaxBatch && w.niov < maxIovs {
		m := &msgs[i]
		if m.N < 0 || m.N > len(m.Buf) {
			err = fmt.Errorf("udp: write batch: message length %d out of range [0, %d]", m.N, len(m.Buf))
			break
		}
		h := &w.hdrs[e].Hdr
		h.Namelen = c.encodeSockaddr(&w.names[e], m.Addr)
		if h.Namelen == 0 {
			err = fmt.Errorf("udp: write batch: %w %v", errInvalidAddr, m.Addr)
			break
		}
		w.first[e] = i
		h.Iov = &w.iovs[w.niov]
		w.addIov(m.Buf[:m.N])
		i++
		count := 1
		if gso && m.N > 0 && m.N <= gsoMax {
			count, i = w.coalesce(msgs, i, maxPayload(m.Addr))
		}
		h.SetIovlen(count)
		w.seg[e] = 0
		h.Control = nil
		h.SetControllen(0)
		if count > 1 {
			w.seg[e] = m.N
			h.Control = &w.oob[e][0]
			h.SetControllen(unix.CmsgSpace(2))
			*(*uint16)(unsafe.Pointer(&w.oob[e][unix.CmsgLen(0)])) = uint16(m.N)
		}
		w.hdrs[e].Len = 0
		e++
	}
	w.first[e] = i
	return e, err
}

// coalesce appends to the current entry the messages from msgs[i] on that can
// share its super-datagram (first message msgs[i-1]) and returns the entry's
// segment count and the index of the next message.
func (w *writer) coalesce(msgs []Message, i, limit int) (int, int) {
	m := &msgs[i-1]
	count, total := 1, m.N
	for i < len(msgs) && count < maxGSOSegments && w.niov < maxIovs {
		n := &msgs[i]
		// A zero-length datagram cannot be a segment; an invalid one is
		// left for prepare to report.
		if n.Addr != m.Addr || n.N <= 0 || n.N > m.N || n.N > len(n.Buf) || total+n.N > limit {
			break
		}
		w.addIov(n.Buf[:n.N])
		i++
		count++
		total += n.N
		if n.N < m.N {
			break // a shorter datagram ends the super-datagram
		}
	}
	return count, i
}

func (w *writer) addIov(b []byte) {
	iov := &w.iovs[w.niov]
	iov.Base = nil
	if len(b) > 0 {
		iov.Base = &b[0]
	}
	iov.SetLen(len(b))
	w.niov++
}

// release drops the references to caller buffers.
func (w *writer) release() {
	for i := range w.niov {
		w.iovs[i].Base = nil
	}
	w.niov = 0
}

func maxPayload(a netip.AddrPort) int {
	if a.Addr().Unmap().Is4() {
		return maxPayload4
	}
	return maxPayload6
}

var errInvalidAddr = errors.New("invalid destination")
