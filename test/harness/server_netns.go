package harness

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// InNetns runs fn on a goroutine-locked OS thread switched into the network
// namespace ns (as created by `ip netns add`). Sockets fn creates belong to ns
// for their whole life and may then be used from any goroutine. If the thread
// cannot be switched back it stays locked, so Go discards it.
func InNetns(ns string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		done <- ferr
	}()
	return <-done
}

// ListenUDPIn opens a UDP socket bound to laddr inside namespace ns.
func ListenUDPIn(ns string, laddr netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := InNetns(ns, func() error {
		network := "udp4"
		if laddr.Addr().Is6() {
			network = "udp6"
		}
		var err error
		c, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(laddr))
		return err
	})
	return c, err
}

// UDPRelay is a userspace UDP forwarder inside a namespace: a client sends to
// Listen; the relay forwards from its upstream socket to Upstream and relays the
// replies back. Rebind swaps the upstream socket for a new one (a new source
// port and/or address), which to the server looks exactly like a NAT rebinding:
// the client's packets suddenly come from a new address.
type UDPRelay struct {
	NS       string
	Listen   netip.AddrPort // where the client sends to
	Upstream netip.AddrPort // the server

	down   *net.UDPConn
	up     atomic.Pointer[net.UDPConn]
	client atomic.Pointer[net.UDPAddr]
	mu     sync.Mutex
	closed bool
	all    []*net.UDPConn
	// Counters.
	ToServer, ToClient atomic.Uint64

	recMu    sync.Mutex
	recorded [][]byte // the last data packets (P_DATA_V1/V2) sent to the server
}

// maxRecorded bounds UDPRelay's record of data packets.
const maxRecorded = 64

// Recorded returns copies of the last data packets (opcodes 6 and 9) the
// relay forwarded to the server, oldest first: material for replay attacks.
func (r *UDPRelay) Recorded() [][]byte {
	r.recMu.Lock()
	defer r.recMu.Unlock()
	out := make([][]byte, len(r.recorded))
	for i, b := range r.recorded {
		out[i] = append([]byte(nil), b...)
	}
	return out
}

func (r *UDPRelay) record(b []byte) {
	if len(b) == 0 || (b[0]>>3 != 6 && b[0]>>3 != 9) {
		return
	}
	r.recMu.Lock()
	defer r.recMu.Unlock()
	if len(r.recorded) == maxRecorded {
		r.recorded = r.recorded[1:]
	}
	r.recorded = append(r.recorded, append([]byte(nil), b...))
}

// StartUDPRelay starts a relay in ns listening on listen (port 0 picks one)
// and forwarding to upstream from a socket bound to src (port 0 picks one).
// It is closed in t.Cleanup.
func StartUDPRelay(t testing.TB, ns string, listen, upstream, src netip.AddrPort) (*UDPRelay, error) {
	down, err := ListenUDPIn(ns, listen)
	if err != nil {
		return nil, fmt.Errorf("relay listen %s: %w", listen, err)
	}
	r := &UDPRelay{NS: ns, Upstream: upstream, down: down, all: []*net.UDPConn{down}}
	r.Listen = down.LocalAddr().(*net.UDPAddr).AddrPort()
	t.Cleanup(r.Close)
	if _, err := r.Rebind(src); err != nil {
		r.Close()
		return nil, err
	}
	go r.fromClient()
	return r, nil
}

// UpstreamAddr is the current upstream socket's local address (the address
// the server sees).
func (r *UDPRelay) UpstreamAddr() netip.AddrPort {
	return r.up.Load().LocalAddr().(*net.UDPAddr).AddrPort()
}

// Rebind opens a new upstream socket bound to src (port 0 picks one), makes
// it the current one and closes the previous one. It returns the new local
// address.
func (r *UDPRelay) Rebind(src netip.AddrPort) (netip.AddrPort, error) {
	c, err := ListenUDPIn(r.NS, src)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("relay upstream socket %s: %w", src, err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		c.Close()
		return netip.AddrPort{}, net.ErrClosed
	}
	r.all = append(r.all, c)
	r.mu.Unlock()
	old := r.up.Swap(c)
	go r.fromServer(c)
	if old != nil {
		old.Close()
	}
	return c.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}

func (r *UDPRelay) fromClient() {
	buf := make([]byte, 65536)
	up := net.UDPAddrFromAddrPort(r.Upstream)
	for {
		n, from, err := r.down.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		r.client.Store(from)
		if c := r.up.Load(); c != nil {
			if _, err := c.WriteToUDP(buf[:n], up); err == nil {
				r.ToServer.Add(1)
				r.record(buf[:n])
			}
		}
	}
}

func (r *UDPRelay) fromServer(c *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if cl := r.client.Load(); cl != nil {
			if _, err := r.down.WriteToUDP(buf[:n], cl); err == nil {
				r.ToClient.Add(1)
			}
		}
	}
}

// Close closes all sockets (the relay goroutines then end).
func (r *UDPRelay) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	for _, c := range r.all {
		c.Close()
	}
}
