package netstack_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"weft/netstack"
	"weft/netstack/netstacktest"
	"weft/tun"
)

// checkGoroutines fails the test if, after its cleanups, more goroutines run
// than before it started. Register it first so it runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if runtime.NumGoroutine() <= before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		var buf bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Errorf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf.String())
	})
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestManyStacks runs 100 stacks behind a test router; each serves UDP echo
// and pings the next one. It reports the heap and goroutines per stack. It
// is the first test of the package so that memory released late by earlier
// tests (TCP endpoints leaving TIME-WAIT) does not skew the numbers; run it
// alone (-run ManyStacks) for clean figures.
func TestManyStacks(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping 100 stacks in -short mode")
	}
	checkGoroutines(t)
	const n = 100
	prefix := netip.MustParsePrefix("10.100.0.0/16")
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 100, byte(i / 250), byte(i%250 + 1)}) }

	var m0, m1, m2 runtime.MemStats
	// Two collections: the first moves sync.Pool contents (gVisor pools
	// its buffers) to the victim cache, the second frees them.
	gc := func() { runtime.GC(); runtime.GC() }
	gc()
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()

	stacks := make([]*netstack.Stack, n)
	var router netstacktest.Router
	t.Cleanup(router.Wait)
	for i := range stacks {
		s, err := netstack.New(netstack.Options{MTU: 1420})
		if err != nil {
			t.Fatalf("stack %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Configure(tun.LinkConfig{Addrs: []tun.Addr{{Prefix: netip.PrefixFrom(addr(i), prefix.Bits())}}}); err != nil {
			t.Fatalf("stack %d: %v", i, err)
		}
		stacks[i] = s
	}
	gc()
	runtime.ReadMemStats(&m1)
	g1 := runtime.NumGoroutine()
	t.Logf("idle: %d stacks: heap %+d KiB (%.1f KiB/stack), goroutines %+d (%.1f/stack)",
		n, (int64(m1.HeapAlloc)-int64(m0.HeapAlloc))>>10, float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/n/1024,
		g1-g0, float64(g1-g0)/n)

	// A loose regression bound; about 42 KiB when this was written.
	if perStack := (int64(m1.HeapAlloc) - int64(m0.HeapAlloc)) / n; perStack > 512<<10 {
		t.Errorf("an idle stack costs %d KiB of heap, want under 512 KiB", perStack>>10)
	}

	var servers sync.WaitGroup
	t.Cleanup(servers.Wait)
	for i, s := range stacks {
		router.Attach(s.Device(), netip.PrefixFrom(addr(i), 32))
		pc, err := s.ListenUDP(netip.AddrPortFrom(addr(i), 7))
		if err != nil {
			t.Fatalf("stack %d: ListenUDP: %v", i, err)
		}
		t.Cleanup(func() { pc.Close() })
		servers.Go(func() { udpEcho(pc) })
	}

	errs := make(chan error, n)
	for i, s := range stacks {
		go func() {
			peer := netip.AddrPortFrom(addr((i+1)%n), 7)
			c, err := s.DialContext(context.Background(), "udp", peer.String())
			if err != nil {
				errs <- fmt.Errorf("stack %d: dial %v: %w", i, peer, err)
				return
			}
			defer c.Close()
			msg := fmt.Sprintf("ping from %d", i)
			buf := make([]byte, 100)
			var lastErr error
			for range 3 { // UDP: allow a retry
				if _, err := c.Write([]byte(msg)); err != nil {
					lastErr = err
					continue
				}
				_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
				k, err := c.Read(buf)
				if err == nil && string(buf[:k]) == msg {
					errs <- nil
					return
				}
				lastErr = fmt.Errorf("got %q, %w", buf[:k], err)
			}
			errs <- fmt.Errorf("stack %d: no echo from %v: %w", i, peer, lastErr)
		}()
	}
	failed := 0
	for range n {
		if err := <-errs; err != nil {
			failed++
			t.Error(err)
		}
	}
	gc()
	runtime.ReadMemStats(&m2)
	t.Logf("after %d echoes (%d failed): heap %+d KiB (%.1f KiB/stack incl. one UDP socket, router port and echo goroutine), goroutines %+d",
		n, failed, (int64(m2.HeapAlloc)-int64(m0.HeapAlloc))>>10, float64(int64(m2.HeapAlloc)-int64(m0.HeapAlloc))/n/1024,
		runtime.NumGoroutine()-g0)
	runtime.KeepAlive(stacks)
}

// TestTCPTransfer sends a few MiB through a TCP echo between two stacks, in
// both directions at once, and checks the SHA-256 of what comes back.
func TestTCPTransfer(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr netip.Addr
	}{{"v4", netstacktest.B4}, {"v6", netstacktest.B6}} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			a, b := netstacktest.NewPair(t, netstack.Options{}, netstack.Options{})
			target := netip.AddrPortFrom(tc.addr, 5001)
			ln, err := b.ListenTCP(target)
			if err != nil {
				t.Fatalf("ListenTCP(%v): %v", target, err)
			}
			defer ln.Close()

			serverErr := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					serverErr <- err
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(60 * time.Second))
				if _, err := io.Copy(c, c); err != nil {
					serverErr <- fmt.Errorf("echo: %w", err)
					return
				}
				serverErr <- c.(interface{ CloseWrite() error }).CloseWrite()
			}()

			const size = 4 << 20
			data := randomBytes(t, size)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			c, err := a.DialContext(ctx, "tcp", target.String())
			if err != nil {
				t.Fatalf("DialContext(tcp, %v): %v", target, err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			writeErr := make(chan error, 1)
			go func() {
				_, err := io.Copy(c, bytes.NewReader(data))
				if err == nil {
					err = c.(interface{ CloseWrite() error }).CloseWrite()
				}
				writeErr <- err
			}()
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil {
				t.Fatalf("reading the echo: %v after %d bytes", err, n)
			}
			if err := <-writeErr; err != nil {
				t.Fatalf("writing: %v", err)
			}
			if err := <-serverErr; err != nil {
				t.Fatalf("server: %v", err)
			}
			elapsed := time.Since(start)
			want := sha256.Sum256(data)
			if n != size || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("echo: %d bytes, sha256 %x; want %d bytes, %x", n, h.Sum(nil), size, want)
			}
			if got := c.RemoteAddr().String(); got != target.String() {
				t.Errorf("RemoteAddr = %s, want %s", got, target)
			}
			sa, sb := a.Stats(), b.Stats()
			t.Logf("%d MiB each way in %v (%.0f Mbit/s per direction); a %+v; b %+v",
				size>>20, elapsed.Round(time.Millisecond), float64(size*8)/elapsed.Seconds()/1e6, sa, sb)
		})
	}
}

// udpEcho serves UDP echo on pc until it is closed.
func udpEcho(pc net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if _, err := pc.WriteTo(buf[:n], from); err != nil {
			return
		}
	}
}

func TestUDPEcho(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr netip.Addr
	}{{"v4", netstacktest.B4}, {"v6", netstacktest.B6}} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			a, b := netstacktest.NewPair(t, netstack.Options{}, netstack.Options{})
			target := netip.AddrPortFrom(tc.addr, 7)
			pc, err := b.ListenUDP(target)
			if err != nil {
				t.Fatalf("ListenUDP(%v): %v", target, err)
			}
			var wg sync.WaitGroup
			wg.Go(func() { udpEcho(pc) })
			defer wg.Wait()
			defer pc.Close()

			c, err := a.DialContext(context.Background(), "udp", target.String())
			if err != nil {
				t.Fatalf("DialContext(udp, %v): %v", target, err)
			}
			defer c.Close()
			buf := make([]byte, 2000)
			for i, size := range []int{1, 100, 512, 1000, 1400} {
				msg := randomBytes(t, size)
				if _, err := c.Write(msg); err != nil {
					t.Fatalf("Write #%d: %v", i, err)
				}
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("Read #%d: %v", i, err)
				}
				if !bytes.Equal(buf[:n], msg) {
					t.Fatalf("echo #%d: got %d bytes, want %d identical bytes", i, n, size)
				}
			}

			// An unconnected socket, addressed with net.ParseIP's 16-byte
			// form of an IPv4 address, must reach the same server.
			upc, err := a.ListenUDP(netip.AddrPort{})
			if err != nil {
				t.Fatalf("ListenUDP(any): %v", err)
			}
			defer upc.Close()
			to := &net.UDPAddr{IP: net.ParseIP(tc.addr.String()), Port: 7}
			if _, err := upc.WriteTo([]byte("hello"), to); err != nil {
				t.Fatalf("WriteTo(%v): %v", to, err)
			}
			_ = upc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := upc.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "hello" {
				t.Fatalf("ReadFrom = %q, %v, %v; want hello", buf[:n], from, err)
			}
			if got := from.String(); got != target.String() {
				t.Errorf("reply from %s, want %s", got, target)
			}
		})
	}
}

// TestDualStackListen checks that the wildcard listener takes both families.
func TestDualStackListen(t *testing.T) {
	checkGoroutines(t)
	a, b := netstacktest.NewPair(t, netstack.Options{}, netstack.Options{})
	ln, err := b.ListenTCP(netip.AddrPortFrom(netip.Addr{}, 80))
	if err != nil {
		t.Fatalf("ListenTCP(:80): %v", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, c.RemoteAddr().String())
			c.Close()
		}
	})
	for _, dst := range []netip.Addr{netstacktest.B4, netstacktest.B6} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := a.DialContext(ctx, "tcp", netip.AddrPortFrom(dst, 80).String())
		cancel()
		if err != nil {
			t.Fatalf("dial %v: %v", dst, err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(got) == 0 {
			t.Fatalf("read from %v: %q, %v", dst, got, err)
		}
		t.Logf("%v saw the client as %s", dst, got)
	}
}

// csum is the Internet checksum of b, starting from the partial sum s.
func csum(b []byte, s uint32) uint16 {
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// echoRequest builds an ICMP or ICMPv6 echo request from src to dst.
func echoRequest(src, dst netip.Addr, id, seq uint16, payload []byte) []byte {
	icmp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(icmp[4:], id)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	copy(icmp[8:], payload)
	if src.Is4() {
		icmp[0] = 8 // echo request
		binary.BigEndian.PutUint16(icmp[2:], csum(icmp, 0))
		ip := make([]byte, 20, 20+len(icmp))
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(icmp)))
		ip[8], ip[9] = 64, 1
		s4, d4 := src.As4(), dst.As4()
		copy(ip[12:], s4[:])
		copy(ip[16:], d4[:])
		binary.BigEndian.PutUint16(ip[10:], csum(ip, 0))
		return append(ip, icmp...)
	}
	icmp[0] = 128 // echo request
	ip := make([]byte, 40, 40+len(icmp))
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(icmp)))
	ip[6], ip[7] = 58, 64
	s16, d16 := src.As16(), dst.As16()
	copy(ip[8:], s16[:])
	copy(ip[24:], d16[:])
	// Pseudo-header: addresses, upper-layer length, next header.
	var ps uint32
	for i := 8; i < 40; i += 2 {
		ps += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	ps += uint32(len(icmp)) + 58
	binary.BigEndian.PutUint16(icmp[2:], csum(icmp, ps))
	return append(ip, icmp...)
}

// TestICMPEcho injects echo requests into the device and expects replies.
func TestICMPEcho(t *testing.T) {
	checkGoroutines(t)
	s, err := netstack.New(netstack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Configure(tun.LinkConfig{Addrs: []tun.Addr{
		{Prefix: netip.MustParsePrefix("10.99.0.2/24")},
		{Prefix: netip.MustParsePrefix("fd00:99::2/64")},
	}}); err != nil {
		t.Fatal(err)
	}
	dev := s.Device()
	for _, tc := range []struct{ src, dst string }{
		{"10.99.0.9", "10.99.0.2"},
		{"fd00:99::9", "fd00:99::2"},
	} {
		src, dst := netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst)
		req := echoRequest(src, dst, 0x1234, 7, []byte("weft ping"))
		buf := make([]byte, tun.Headroom+len(req))
		copy(buf[tun.Headroom:], req)
		if n, err := dev.Write([][]byte{buf}, tun.Headroom); err != nil || n != 1 {
			t.Fatalf("Write(echo request to %v) = %d, %v", dst, n, err)
		}
		reply := readOne(t, dev)
		var typ byte
		var from, to netip.Addr
		var body []byte
		if src.Is4() {
			from, to = netip.AddrFrom4([4]byte(reply[12:16])), netip.AddrFrom4([4]byte(reply[16:20]))
			typ, body = reply[20], reply[20:]
		} else {
			from, to = netip.AddrFrom16([16]byte(reply[8:24])), netip.AddrFrom16([16]byte(reply[24:40]))
			typ, body = reply[40], reply[40:]
		}
		wantType := map[bool]byte{true: 0, false: 129}[src.Is4()]
		if typ != wantType || from != dst || to != src ||
			binary.BigEndian.Uint16(body[4:]) != 0x1234 || binary.BigEndian.Uint16(body[6:]) != 7 ||
			string(body[8:]) != "weft ping" {
			t.Fatalf("reply to %v: type %d from %v to %v, body %x", dst, typ, from, to, body)
		}
	}
}

// readOne reads one packet from dev, failing after 5 s.
func readOne(t *testing.T, dev tun.Device) []byte {
	t.Helper()
	type res struct {
		p   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		bufs := [][]byte{make([]byte, tun.Headroom+65536)}
		sizes := []int{0}
		n, err := dev.Read(bufs, sizes, tun.Headroom)
		if n == 1 {
			ch <- res{p: bufs[0][tun.Headroom : tun.Headroom+sizes[0]]}
			return
		}
		ch <- res{err: fmt.Errorf("read %d packets: %w", n, err)}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.p
	case <-time.After(5 * time.Second):
		dev.Close() // unblocks the reader
		t.Fatal("no packet from the device within 5 s")
		return nil
	}
}

// TestDeviceBatching checks that one Read returns many queued packets, and
// that a packet too large for its buffer is dropped, not fatal.
func TestDeviceBatching(t *testing.T) {
	checkGoroutines(t)
	s, err := netstack.New(netstack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Configure(tun.LinkConfig{Addrs: []tun.Addr{{Prefix: netip.MustParsePrefix("10.99.0.2/24")}}}); err != nil {
		t.Fatal(err)
	}
	dev := s.Device()
	if bs := dev.BatchSize(); bs < 16 {
		t.Fatalf("BatchSize = %d, want at least 16", bs)
	}
	// 20 pings produce 20 replies, queued before anyone reads.
	var in [][]byte
	for i := range 20 {
		req := echoRequest(netip.MustParseAddr("10.99.0.9"), netip.MustParseAddr("10.99.0.2"), 1, uint16(i), make([]byte, 100))
		in = append(in, append(make([]byte, tun.Headroom), req...))
	}
	if n, err := dev.Write(in, tun.Headroom); err != nil || n != 20 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	bufs := make([][]byte, 32)
	for i := range bufs {
		bufs[i] = make([]byte, tun.Headroom+1500)
	}
	bufs[19] = make([]byte, tun.Headroom+50) // too small for a 128-byte reply
	sizes := make([]int, 32)
	n, err := dev.Read(bufs, sizes, tun.Headroom)
	if !errors.Is(err, io.ErrShortBuffer) || n != 19 {
		t.Fatalf("Read = %d, %v; want 19 packets in one batch and io.ErrShortBuffer for the 20th", n, err)
	}
	for i := range n {
		if sizes[i] != 128 {
			t.Fatalf("packet %d is %d bytes, want 128", i, sizes[i])
		}
	}
	if st := s.Stats(); st.OutDropped != 1 || st.InPackets != 20 {
		t.Fatalf("Stats = %+v, want OutDropped 1, InPackets 20", st)
	}
	// Garbage is dropped and counted, not an error.
	if n, err := dev.Write([][]byte{{0, 0, 0, 0, 0}}, 0); err != nil || n != 1 {
		t.Fatalf("Write(garbage) = %d, %v", n, err)
	}
	if st := s.Stats(); st.InDropped != 1 {
		t.Fatalf("InDropped = %d, want 1", st.InDropped)
	}
	if m, _ := dev.MTU(); m != 1500 {
		t.Fatalf("MTU = %d, want 1500", m)
	}
	if err := s.Configure(tun.LinkConfig{MTU: 1400}); err != nil {
		t.Fatal(err)
	}
	if m, _ := dev.MTU(); m != 1400 {
		t.Fatalf("MTU after Configure = %d, want 1400", m)
	}
}

func TestConfigureErrors(t *testing.T) {
	checkGoroutines(t)
	s, err := netstack.New(netstack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []tun.LinkConfig{
		{MTU: 20},
		{MTU: 70000},
		{Addrs: []tun.Addr{{}}},
		{Addrs: []tun.Addr{{Prefix: netip.MustParsePrefix("::ffff:10.0.0.1/120")}}},
		{Addrs: []tun.Addr{{Prefix: netip.MustParsePrefix("10.0.0.1/32"), Peer: netip.MustParseAddr("fd00::1")}}},
		{Routes: []tun.Route{{}}},
		{Routes: []tun.Route{{Dst: netip.MustParsePrefix("10.0.0.0/8"), Gateway: netip.MustParseAddr("fd00::1")}}},
	} {
		if err := s.Configure(c); err == nil {
			t.Errorf("Configure(%+v) = nil, want an error", c)
		}
	}
	// Idempotent, and a changed prefix length replaces the address.
	good := tun.LinkConfig{
		Addrs: []tun.Addr{
			{Prefix: netip.MustParsePrefix("10.8.0.6/32"), Peer: netip.MustParseAddr("10.8.0.5")},
			{Prefix: netip.MustParsePrefix("fd00:8::1000/64")},
		},
		Routes: []tun.Route{{Dst: netip.MustParsePrefix("10.0.0.0/8"), Gateway: netip.MustParseAddr("10.8.0.5")}},
	}
	for range 2 {
		if err := s.Configure(good); err != nil {
			t.Fatalf("Configure(%+v): %v", good, err)
		}
	}
	if err := s.Configure(tun.LinkConfig{Addrs: []tun.Addr{{Prefix: netip.MustParsePrefix("fd00:8::1000/112")}}}); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(s.Addrs())
	if len(s.Addrs()) != 2 || !bytes.Contains([]byte(got), []byte("10.8.0.6/32")) || !bytes.Contains([]byte(got), []byte("fd00:8::1000/112")) {
		t.Fatalf("Addrs = %s, want 10.8.0.6/32 and fd00:8::1000/112", got)
	}
}

func TestDialErrors(t *testing.T) {
	checkGoroutines(t)
	s, err := netstack.New(netstack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct{ network, addr string }{
		{"tcp", "example.com:80"},
		{"sctp", "10.0.0.1:80"},
		{"tcp4", "[fd00::1]:80"},
		{"udp6", "10.0.0.1:53"},
		{"tcp", "10.0.0.1:0"},
		{"tcp", "10.0.0.1"},
		{"tcp", "10.0.0.1:80"}, // no route yet
		{"udp", "[fd00::1]:53"},
	} {
		if c, err := s.DialContext(ctx, tc.network, tc.addr); err == nil {
			c.Close()
			t.Errorf("DialContext(%s, %s) = nil error", tc.network, tc.addr)
		}
	}
}

// TestCloseUnblocks checks that Close wakes every blocked call, that calls
// after Close fail with net.ErrClosed, and that no goroutine outlives it.
func TestCloseUnblocks(t *testing.T) {
	checkGoroutines(t)
	a, b := netstacktest.NewPair(t, netstack.Options{}, netstack.Options{})
	ln, err := b.ListenTCP(netip.AddrPortFrom(netstacktest.B4, 9))
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := a.DialContext(ctx, "tcp", "10.99.0.2:9")
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	pc, err := a.ListenUDP(netip.MustParseAddrPort("10.99.0.1:5353"))
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := a.ListenTCP(netip.MustParseAddrPort("0.0.0.0:81"))
	if err != nil {
		t.Fatal(err)
	}

	errs := make(chan error, 4)
	go func() { _, err := conn.Read(make([]byte, 10)); errs <- fmt.Errorf("tcp read: %w", err) }()
	go func() { _, _, err := pc.ReadFrom(make([]byte, 10)); errs <- fmt.Errorf("udp read: %w", err) }()
	go func() { _, err := ln2.Accept(); errs <- fmt.Errorf("accept: %w", err) }()
	go func() {
		bufs, sizes := [][]byte{make([]byte, 2000)}, []int{0}
		// Drain until closed: the pump also reads this device, so read
		// our own device after Close only.
		_, err := a.Device().Read(bufs, sizes, 0)
		for err == nil {
			_, err = a.Device().Read(bufs, sizes, 0)
		}
		errs <- fmt.Errorf("device read: %w", err)
	}()
	time.Sleep(100 * time.Millisecond) // let them block
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 4 {
		select {
		case err := <-errs:
			if err == nil || errors.Unwrap(err) == nil {
				t.Errorf("blocked call returned %v, want an error", err)
			}
			t.Logf("after Close: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("a blocked call did not return within 5 s of Close")
		}
	}
	if _, err := a.DialContext(ctx, "tcp", "10.99.0.2:9"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("DialContext after Close = %v, want net.ErrClosed", err)
	}
	if _, err := a.Device().Write([][]byte{make([]byte, 40)}, 0); !errors.Is(err, tun.ErrClosed) {
		t.Errorf("Device.Write after Close = %v, want tun.ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	conn.Close()
	srv.Close()
	pc.Close()
	ln.Close()
	ln2.Close()
}

// BenchmarkTCPThroughput measures one TCP flow between two stacks joined by
// the pump (MTU 1420, as a typical tunnel), with gVisor's RACK off (weft's
// setting) and on.
func BenchmarkTCPThroughput(b *testing.B) {
	for _, rack := range []bool{false, true} {
		b.Run(fmt.Sprintf("rack=%v", rack), func(b *testing.B) {
			opts := netstack.Options{MTU: 1420}
			netstack.SetRACK(&opts, rack)
			a, s := netstacktest.NewPair(b, opts, opts)
			ln, err := s.ListenTCP(netip.AddrPortFrom(netstacktest.B4, 5201))
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			done := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					done <- -1
					return
				}
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				done <- n
			}()
			c, err := a.DialContext(context.Background(), "tcp", "10.99.0.2:5201")
			if err != nil {
				b.Fatal(err)
			}
			chunk := make([]byte, 64<<10)
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			c.(interface{ CloseWrite() error }).CloseWrite()
			got := <-done
			b.StopTimer()
			c.Close()
			if got != int64(b.N)*int64(len(chunk)) {
				b.Fatalf("receiver got %d bytes, want %d", got, int64(b.N)*int64(len(chunk)))
			}
			b.ReportMetric(float64(a.Stats().OutDropped), "drops")
		})
	}
}
