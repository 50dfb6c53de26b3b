// Package netstacktest wires weft's user-space network stacks together for
// tests: Pump connects two tun.Devices back to back, Router connects many by
// destination address, and NewPair builds two configured, pumped Stacks.
// Everything stays in process; no packet reaches a real network.
package netstacktest

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"

	"weft/netstack"
	"weft/tun"
)

// bufSize returns a read buffer size for dev: its MTU (at least 1500)
// after the headroom. A larger packet (after raising the MTU) is dropped by
// the device's Read.
func bufSize(dev tun.Device) int {
	mtu, err := dev.MTU()
	if err != nil {
		mtu = 0
	}
	return tun.Headroom + max(mtu, 1500)
}

// isClosed reports whether err means the device is gone.
func isClosed(err error) bool {
	return errors.Is(err, tun.ErrClosed) || errors.Is(err, net.ErrClosed)
}

// copyLoop moves batches from src to dst until src's Read or dst's Write
// fails with a closed-device error. Other errors are skipped.
func copyLoop(src, dst tun.Device) {
	batch := max(src.BatchSize(), 1)
	bufs := make([][]byte, batch)
	sizes := make([]int, batch)
	for i := range bufs {
		bufs[i] = make([]byte, bufSize(src))
	}
	out := make([][]byte, 0, batch)
	for {
		n, err := src.Read(bufs, sizes, tun.Headroom)
		if err != nil && isClosed(err) {
			return
		}
		out = out[:0]
		for i := range n {
			out = append(out, bufs[i][:tun.Headroom+sizes[i]])
		}
		if len(out) == 0 {
			continue
		}
		if _, err := dst.Write(out, tun.Headroom); err != nil && isClosed(err) {
			return
		}
	}
}

// Pump moves packets from a to b and from b to a on two goroutines, in the
// devices' batches. Each direction stops when its source is closed or its
// destination refuses writes because it is closed. The returned wait blocks
// until both goroutines have exited, so call it after closing both devices
// (closing a Stack closes its device).
func Pump(a, b tun.Device) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() { copyLoop(a, b) })
	wg.Go(func() { copyLoop(b, a) })
	return wg.Wait
}

// Router is a layer-3 switch for tests: it reads every attached device and
// writes each packet to the device whose prefix contains the packet's
// destination address (longest prefix wins). Packets with no matching
// device are dropped.
type Router struct {
	mu     sync.RWMutex
	routes []routerPort // guarded by mu
	wg     sync.WaitGroup
}

const routerBatch = 8

type routerPort struct {
	prefix netip.Prefix
	dev    tun.Device
	wmu    *sync.Mutex // serializes writes to dev
}

// Attach connects dev, taking packets destined to any of prefixes, and
// starts reading it. The reader stops when dev is closed.
func (r *Router) Attach(dev tun.Device, prefixes ...netip.Prefix) {
	wmu := new(sync.Mutex)
	r.mu.Lock()
	for _, p := range prefixes {
		r.routes = append(r.routes, routerPort{prefix: p.Masked(), dev: dev, wmu: wmu})
	}
	r.mu.Unlock()
	r.wg.Go(func() { r.readLoop(dev) })
}

func (r *Router) lookup(dst netip.Addr) (routerPort, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	best, bits := routerPort{}, -1
	for _, p := range r.routes {
		if p.prefix.Contains(dst) && p.prefix.Bits() > bits {
			best, bits = p, p.prefix.Bits()
		}
	}
	return best, bits >= 0
}

func (r *Router) readLoop(src tun.Device) {
	// A small batch keeps a router port cheap (tests attach hundreds).
	batch := min(max(src.BatchSize(), 1), routerBatch)
	bufs := make([][]byte, batch)
	sizes := make([]int, batch)
	for i := range bufs {
		bufs[i] = make([]byte, bufSize(src))
	}
	one := make([][]byte, 1)
	for {
		n, err := src.Read(bufs, sizes, tun.Headroom)
		if err != nil && isClosed(err) {
			return
		}
		for i := range n {
			pkt := bufs[i][tun.Headroom : tun.Headroom+sizes[i]]
			dst, ok := destination(pkt)
			if !ok {
				continue
			}
			port, ok := r.lookup(dst)
			if !ok {
				continue
			}
			one[0] = bufs[i][:tun.Headroom+sizes[i]]
			port.wmu.Lock()
			_, _ = port.dev.Write(one, tun.Headroom) // a closed port just drops
			port.wmu.Unlock()
		}
	}
}

// Wait blocks until the readers of all attached devices have exited (after
// the devices are closed).
func (r *Router) Wait() { r.wg.Wait() }

// destination returns an IP packet's destination address.
func destination(pkt []byte) (netip.Addr, bool) {
	if len(pkt) == 0 {
		return netip.Addr{}, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) >= 20 {
			return netip.AddrFrom4([4]byte(pkt[16:20])), true
		}
	case 6:
		if len(pkt) >= 40 {
			return netip.AddrFrom16([16]byte(pkt[24:40])), true
		}
	}
	return netip.Addr{}, false
}

// Pair addresses, used by NewPair.
var (
	// A4 and B4 are the IPv4 addresses of NewPair's stacks (in 10.99.0.0/24).
	A4, B4 = netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2")
	// A6 and B6 are the IPv6 addresses of NewPair's stacks (in fd00:99::/64).
	A6, B6 = netip.MustParseAddr("fd00:99::1"), netip.MustParseAddr("fd00:99::2")
)

// NewPair returns two Stacks, a (A4, A6) and b (B4, B6), on one /24 and one
// /64, wired back to back by Pump. Cleanup closes both and waits for the
// pump.
func NewPair(tb testing.TB, aOpts, bOpts netstack.Options) (a, b *netstack.Stack) {
	tb.Helper()
	a = newConfigured(tb, aOpts, A4, A6)
	tb.Cleanup(func() { a.Close() })
	b = newConfigured(tb, bOpts, B4, B6)
	tb.Cleanup(func() { b.Close() })
	wait := Pump(a.Device(), b.Device())
	tb.Cleanup(func() {
		a.Close()
		b.Close()
		wait()
	})
	return a, b
}

func newConfigured(tb testing.TB, opts netstack.Options, v4, v6 netip.Addr) *netstack.Stack {
	tb.Helper()
	s, err := netstack.New(opts)
	if err != nil {
		tb.Fatalf("netstack.New: %v", err)
	}
	err = s.Configure(tun.LinkConfig{Addrs: []tun.Addr{
		{Prefix: netip.PrefixFrom(v4, 24)},
		{Prefix: netip.PrefixFrom(v6, 64)},
	}})
	if err != nil {
		s.Close()
		tb.Fatalf("Configure: %v", err)
	}
	return s
}
