package udp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

func listen(t *testing.T, network, addr string) *Conn {
	t.Helper()
	c, err := Listen(network, netip.MustParseAddrPort(addr), Options{RecvBuffer: 4 << 20, SendBuffer: 4 << 20})
	if err != nil {
		t.Skipf("cannot listen on %s %s (no IPv6 loopback?): %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func payload(from string, i int) []byte {
	return fmt.Appendf(nil, "%s packet %d %s", from, i, bytes.Repeat([]byte{byte(i)}, i%700))
}

// sendBatch sends count packets from a to dst in one WriteBatch.
func sendBatch(t *testing.T, a *Conn, dst netip.AddrPort, tag string, count int) {
	t.Helper()
	msgs := make([]Message, count)
	for i := range msgs {
		p := payload(tag, i)
		msgs[i] = Message{Buf: p, N: len(p), Addr: dst}
	}
	n, err := a.WriteBatch(msgs)
	if err != nil || n != count {
		t.Fatalf("WriteBatch = %d, %v; want %d", n, err, count)
	}
}

// recvAll reads count packets into batches and checks payloads and source.
func recvAll(t *testing.T, b *Conn, from netip.AddrPort, tag string, count int) {
	t.Helper()
	b.uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer b.uc.SetReadDeadline(time.Time{})
	msgs := make([]Message, 64)
	for i := range msgs {
		// MaxDatagram: with shorter buffers a GRO socket receives one
		// datagram per call (see TestGROSmallBuffers).
		msgs[i].Buf = make([]byte, MaxDatagram)
	}
	got, calls := 0, 0
	for got < count {
		n, err := b.ReadBatch(msgs)
		if err != nil {
			t.Fatalf("ReadBatch after %d packets: %v", got, err)
		}
		calls++
		for _, m := range msgs[:n] {
			if want := payload(tag, got); !bytes.Equal(m.Buf[:m.N], want) {
				t.Fatalf("packet %d = %q, want %q", got, m.Buf[:min(m.N, 30)], want[:30])
			}
			if m.Addr != from {
				t.Fatalf("packet %d from %v, want %v", got, m.Addr, from)
			}
			got++
		}
	}
	if count > 1 && calls >= count {
		t.Errorf("%d packets took %d ReadBatch calls: not batching", count, calls)
	}
}

func TestBatchLoopback(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
		{"udp", "127.0.0.1:0"},
	} {
		t.Run(tc.network+"_"+tc.addr, func(t *testing.T) {
			a := listen(t, tc.network, tc.addr)
			b := listen(t, tc.network, tc.addr)
			if !a.LocalAddr().Addr().IsLoopback() || a.LocalAddr().Port() == 0 {
				t.Fatalf("LocalAddr = %v", a.LocalAddr())
			}
			// 300 > MaxBatch: WriteBatch must loop over sendmmsg calls.
			sendBatch(t, a, b.LocalAddr(), "a→b", 300)
			recvAll(t, b, a.LocalAddr(), "a→b", 300)
			sendBatch(t, b, a.LocalAddr(), "b→a", 50)
			recvAll(t, a, b.LocalAddr(), "b→a", 50)
		})
	}
}

// TestDualStack checks that a "udp" socket on [::] talks to IPv4 peers with
// plain IPv4 addresses in both directions, and to IPv6 peers.
func TestDualStack(t *testing.T) {
	srv := listen(t, "udp", "[::]:0")
	port := srv.LocalAddr().Port()
	v4 := listen(t, "udp4", "127.0.0.1:0")
	v6 := listen(t, "udp6", "[::1]:0")

	sendBatch(t, v4, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), "v4", 10)
	recvAll(t, srv, v4.LocalAddr(), "v4", 10) // from is unmapped 127.0.0.1
	sendBatch(t, srv, v4.LocalAddr(), "srv", 10)
	recvAll(t, v4, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), "srv", 10)
	// A v4-mapped destination works as well.
	mapped := netip.AddrPortFrom(netip.AddrFrom16(v4.LocalAddr().Addr().As16()), v4.LocalAddr().Port())
	if err := srv.WriteTo(payload("one", 0), mapped); err != nil {
		t.Fatal(err)
	}
	recvAll(t, v4, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), "one", 1)

	sendBatch(t, v6, netip.AddrPortFrom(netip.MustParseAddr("::1"), port), "v6", 10)
	recvAll(t, srv, v6.LocalAddr(), "v6", 10)
	if err := srv.WriteTo(payload("six", 0), v6.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	recvAll(t, v6, netip.AddrPortFrom(netip.MustParseAddr("::1"), port), "six", 1)
}

func TestWriteToV4Socket(t *testing.T) {
	a := listen(t, "udp4", "127.0.0.1:0")
	b := listen(t, "udp4", "127.0.0.1:0")
	// A v4-mapped destination on an IPv4 socket is unmapped.
	dst := netip.AddrPortFrom(netip.AddrFrom16(b.LocalAddr().Addr().As16()), b.LocalAddr().Port())
	if err := a.WriteTo(payload("x", 0), dst); err != nil {
		t.Fatal(err)
	}
	recvAll(t, b, a.LocalAddr(), "x", 1)
}

func TestWriteBatchErrors(t *testing.T) {
	a := listen(t, "udp4", "127.0.0.1:0")
	_, err := a.WriteBatch([]Message{{Buf: make([]byte, 4), N: 5, Addr: a.LocalAddr()}})
	if err == nil {
		t.Fatal("N > len(Buf) accepted")
	}
	_, err = a.WriteBatch([]Message{{Buf: make([]byte, 4), N: 4}})
	if err == nil {
		t.Fatal("invalid destination accepted")
	}
	// An IPv6 destination on an IPv4 socket fails on that message.
	msgs := []Message{
		{Buf: []byte("ok"), N: 2, Addr: a.LocalAddr()},
		{Buf: []byte("no"), N: 2, Addr: netip.MustParseAddrPort("[::1]:9")},
	}
	n, err := a.WriteBatch(msgs)
	if err == nil || n != 1 {
		t.Fatalf("WriteBatch = %d, %v; want 1 and an error", n, err)
	}
}

func TestReusePortAndClose(t *testing.T) {
	a, err := Listen("udp4", netip.MustParseAddrPort("127.0.0.1:0"), Options{ReusePort: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Listen("udp4", a.LocalAddr(), Options{ReusePort: true})
	if err != nil {
		t.Fatalf("second SO_REUSEPORT bind of %v: %v", a.LocalAddr(), err)
	}
	b.Close()
	if _, err := Listen("udp4", a.LocalAddr(), Options{}); err == nil {
		t.Fatal("bind without SO_REUSEPORT succeeded on a used port")
	}
	done := make(chan error)
	go func() {
		_, err := a.ReadBatch([]Message{{Buf: make([]byte, 100)}})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	a.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadBatch after Close = %v, want net.ErrClosed", err)
	}
	if _, err := Listen("tcp", netip.AddrPort{}, Options{}); err == nil {
		t.Fatal("Listen accepted network tcp")
	}
}
