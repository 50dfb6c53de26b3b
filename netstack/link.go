package netstack

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"weft/tun"
)

// batchSize is the most packets one Device.Read returns. It bounds the
// scratch array Read dequeues into (so Read does not allocate).
const batchSize = 64

// link is both sides of the virtual wire: it is the stack.LinkEndpoint the
// gVisor stack writes to and is dispatched from, and the tun.Device the VPN
// reads from and writes to.
//
// Outbound (stack → VPN): WritePackets takes a reference on each packet and
// appends it to a FIFO bounded by queueLen; Read copies up to a batch of them
// into the caller's buffers and releases them. When the FIFO is full the
// packet is dropped and counted, like a NIC whose transmit queue overflows;
// TCP recovers through SACK. Nothing is dropped while the reader stays
// within queueLen packets. (gVisor's channel endpoint also tail-drops, but
// from a small fixed channel, silently, and its consumers typically take
// one packet per wakeup.)
//
// Inbound (VPN → stack): Write wraps each packet in a PacketBuffer and hands
// it to the stack's dispatcher on the caller's goroutine.
//
// link owns no goroutines.
type link struct {
	name     string
	queueLen int
	log      *slog.Logger

	mtu atomic.Uint32

	dmu        sync.RWMutex
	dispatcher stack.NetworkDispatcher // guarded by dmu

	qmu    sync.Mutex
	queue  []*stack.PacketBuffer // guarded by qmu; queue[head:] are pending
	head   int                   // guarded by qmu
	closed bool                  // guarded by qmu

	ready     chan struct{} // capacity 1: "the queue may be non-empty"
	done      chan struct{} // closed by closeDevice
	closeOnce sync.Once

	outPackets atomic.Uint64
	outDropped atomic.Uint64
	inPackets  atomic.Uint64
	inDropped  atomic.Uint64
}

// device is the tun.Device face of a link.
type device struct{ *link }

// endpoint is the stack.LinkEndpoint face of a link. (The two interfaces
// disagree on the signatures of MTU and Close, so one type cannot be both.)
type endpoint struct{ *link }

var (
	_ stack.LinkEndpoint = endpoint{}
	_ tun.Device         = device{}
)

func newLink(name string, mtu, queueLen int, log *slog.Logger) *link {
	l := &link{
		name:     name,
		queueLen: queueLen,
		log:      log,
		ready:    make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	l.mtu.Store(uint32(mtu))
	return l
}

// errClosed is returned (wrapped) by the device after Close. It matches both
// tun.ErrClosed and net.ErrClosed, so readers such as the client handler's
// TUN loop recognise a closed device.
func (l *link) errClosed(op string) error {
	return fmt.Errorf("netstack: device %s: %s: %w (%w)", l.name, op, tun.ErrClosed, net.ErrClosed)
}

// ---- tun.Device (device) ----

// Read implements tun.Device. It blocks until the stack has written at least
// one packet, then returns up to min(len(bufs), len(sizes), BatchSize())
// packets. A packet larger than the buffer it would go to
// (len(bufs[n])-offset) is dropped and counted, the others are still
// returned, and the error wraps io.ErrShortBuffer: n may be positive with a
// non-nil error, as with any tun.Device.
func (d device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	l := d.link
	limit := min(len(bufs), len(sizes), batchSize)
	if limit <= 0 {
		return 0, nil
	}
	if offset < 0 {
		return 0, fmt.Errorf("netstack: device %s: read: negative offset %d", l.name, offset)
	}
	var scratch [batchSize]*stack.PacketBuffer
	for {
		pkts, closed := l.dequeue(scratch[:0], limit)
		if closed {
			return 0, l.errClosed("read")
		}
		if len(pkts) == 0 {
			select {
			case <-l.ready:
				continue
			case <-l.done:
				return 0, l.errClosed("read")
			}
		}
		n := 0
		var err error
		for _, pkt := range pkts {
			if offset <= len(bufs[n]) && pkt.Size() <= len(bufs[n])-offset {
				sizes[n] = copyPacket(bufs[n][offset:], pkt)
				n++
			} else {
				l.drop(&l.outDropped, "outbound packet does not fit the read buffer", pkt.Size())
				err = fmt.Errorf("netstack: device %s: read: dropped a %d-byte packet that does not fit buffer %d at offset %d: %w",
					l.name, pkt.Size(), len(bufs[n]), offset, io.ErrShortBuffer)
			}
			pkt.DecRef()
		}
		return n, err
	}
}

// dequeue appends up to limit pending packets to dst. It reports closed once
// the device is closed.
func (l *link) dequeue(dst []*stack.PacketBuffer, limit int) ([]*stack.PacketBuffer, bool) {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	if l.closed {
		return dst, true
	}
	pending := l.queue[l.head:]
	k := min(limit, len(pending))
	dst = append(dst, pending[:k]...)
	clear(pending[:k])
	l.head += k
	switch {
	case l.head == len(l.queue):
		// Empty: rewind. Let an overgrown backing array go.
		l.head = 0
		if cap(l.queue) > 4*batchSize {
			l.queue = nil
		} else {
			l.queue = l.queue[:0]
		}
	case l.head > len(l.queue)/2:
		// Mostly consumed: slide the pending tail down.
		m := copy(l.queue, l.queue[l.head:])
		clear(l.queue[m:])
		l.queue = l.queue[:m]
		l.head = 0
	}
	if l.head < len(l.queue) {
		// More remain: make sure a concurrent reader (or our next call)
		// does not sleep on them.
		l.signal()
	}
	return dst, false
}

func (l *link) signal() {
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// copyPacket copies pkt (network header onwards) into dst, which must hold
// pkt.Size() bytes, without allocating.
func copyPacket(dst []byte, pkt *stack.PacketBuffer) int {
	vl, skip := pkt.AsViewList()
	n := 0
	for v := vl.Front(); v != nil; v = v.Next() {
		b := v.AsSlice()
		if skip >= len(b) {
			skip -= len(b)
			continue
		}
		n += copy(dst[n:], b[skip:])
		skip = 0
	}
	return n
}

// Write implements tun.Device: it delivers each bufs[i][offset:] to the
// stack as a received IP packet. Packets that are neither IPv4 nor IPv6 are
// dropped and counted; Write still reports them as written, like a device
// that accepted and then discarded them.
func (d device) Write(bufs [][]byte, offset int) (int, error) {
	l := d.link
	select {
	case <-l.done:
		return 0, l.errClosed("write")
	default:
	}
	if offset < 0 {
		return 0, fmt.Errorf("netstack: device %s: write: negative offset %d", l.name, offset)
	}
	l.dmu.RLock()
	disp := l.dispatcher
	l.dmu.RUnlock()
	if disp == nil {
		return 0, l.errClosed("write")
	}
	for _, b := range bufs {
		if offset > len(b) {
			l.drop(&l.inDropped, "inbound buffer shorter than offset", len(b))
			continue
		}
		p := b[offset:]
		var proto tcpip.NetworkProtocolNumber
		switch header.IPVersion(p) {
		case header.IPv4Version:
			proto = ipv4.ProtocolNumber
		case header.IPv6Version:
			proto = ipv6.ProtocolNumber
		default:
			l.drop(&l.inDropped, "inbound packet is not IPv4 or IPv6", len(p))
			continue
		}
		// MakeWithData copies p into pooled storage, so the caller may
		// reuse its buffer as soon as Write returns.
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p)})
		disp.DeliverNetworkPacket(proto, pkt)
		pkt.DecRef()
		l.inPackets.Add(1)
	}
	return len(bufs), nil
}

func (l *link) drop(counter *atomic.Uint64, why string, size int) {
	n := counter.Add(1)
	// Log the first drop and then every power of two, so a storm of drops
	// is visible without flooding the log.
	if n&(n-1) == 0 {
		l.log.Debug("netstack: packet dropped", "device", l.name, "reason", why, "size", size, "total", n)
	}
}

// BatchSize implements tun.Device.
func (device) BatchSize() int { return batchSize }

// Name implements tun.Device.
func (d device) Name() (string, error) { return d.name, nil }

// MTU implements tun.Device.
func (d device) MTU() (int, error) { return int(d.mtu.Load()), nil }

// Close implements tun.Device: blocked and later Reads and Writes fail, and
// queued outbound packets are discarded. The stack itself keeps running
// until Stack.Close; what it sends meanwhile is dropped.
func (d device) Close() error {
	d.closeDevice()
	return nil
}

func (l *link) closeDevice() {
	l.closeOnce.Do(func() {
		l.qmu.Lock()
		l.closed = true
		pending := l.queue[l.head:]
		l.queue, l.head = nil, 0
		l.qmu.Unlock()
		for _, p := range pending {
			p.DecRef()
		}
		close(l.done)
	})
}

// ---- stack.LinkEndpoint (endpoint) ----

// WritePackets implements stack.LinkWriter: it queues the packets for Read.
func (e endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	l := e.link
	l.qmu.Lock()
	if l.closed {
		l.qmu.Unlock()
		return 0, &tcpip.ErrClosedForSend{}
	}
	n := 0
	dropped := 0
	for _, pkt := range pkts.AsSlice() {
		if len(l.queue)-l.head >= l.queueLen {
			dropped++
			continue
		}
		l.queue = append(l.queue, pkt.IncRef())
		n++
	}
	l.qmu.Unlock()
	if n > 0 {
		l.outPackets.Add(uint64(n))
		l.signal()
	}
	for range dropped {
		l.drop(&l.outDropped, "outbound queue full", 0)
	}
	// Report dropped packets as written: like a NIC that tail-drops, the
	// loss is for the transport to recover from, not an error of the
	// caller's write.
	return n + dropped, nil
}

// MTU implements stack.NetworkLinkEndpoint.
func (e endpoint) MTU() uint32 { return e.mtu.Load() }

// SetMTU implements stack.NetworkLinkEndpoint.
func (e endpoint) SetMTU(mtu uint32) { e.mtu.Store(mtu) }

// MaxHeaderLength implements stack.NetworkLinkEndpoint: there is no link
// header.
func (endpoint) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.NetworkLinkEndpoint: a layer-3 link has none.
func (endpoint) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.NetworkLinkEndpoint; it is ignored.
func (endpoint) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.NetworkLinkEndpoint. None: the stack
// computes transmit checksums (the packets leave for real hosts) and verifies
// received ones (they come from real hosts), and no link-address resolution
// is needed on a point-to-point layer-3 link.
func (endpoint) Capabilities() stack.LinkEndpointCapabilities { return stack.CapabilityNone }

// Attach implements stack.NetworkLinkEndpoint.
func (e endpoint) Attach(d stack.NetworkDispatcher) {
	e.dmu.Lock()
	e.dispatcher = d
	e.dmu.Unlock()
}

// IsAttached implements stack.NetworkLinkEndpoint.
func (e endpoint) IsAttached() bool {
	e.dmu.RLock()
	defer e.dmu.RUnlock()
	return e.dispatcher != nil
}

// Wait implements stack.NetworkLinkEndpoint: link owns no goroutines.
func (endpoint) Wait() {}

// ARPHardwareType implements stack.NetworkLinkEndpoint.
func (endpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.NetworkLinkEndpoint: there is no link header.
func (endpoint) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.NetworkLinkEndpoint: there is no link header.
func (endpoint) ParseHeader(*stack.PacketBuffer) bool { return true }

// SetOnCloseAction implements stack.NetworkLinkEndpoint; nothing needs it.
func (endpoint) SetOnCloseAction(func()) {}

// Close implements stack.NetworkLinkEndpoint; the stack calls it when it
// removes the NIC (on Stack.Close). It closes the device side too.
func (e endpoint) Close() { e.closeDevice() }
