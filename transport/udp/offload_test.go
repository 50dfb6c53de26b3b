package udp

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// offloadModes are the GSO/GRO combinations the tests run with; "off/off"
// is the fallback path of a kernel without either offload.
var offloadModes = []struct {
	name     string
	gso, gro Offload
}{
	{"gso=off,gro=off", OffloadOff, OffloadOff},
	{"gso=on,gro=off", OffloadAuto, OffloadOff},
	{"gso=off,gro=on", OffloadOff, OffloadAuto},
	{"gso=on,gro=on", OffloadAuto, OffloadAuto},
}

func listenOpts(t testing.TB, network, addr string, opts Options) *Conn {
	t.Helper()
	if opts.RecvBuffer == 0 {
		opts.RecvBuffer, opts.SendBuffer = 8<<20, 8<<20
	}
	c, err := Listen(network, netip.MustParseAddrPort(addr), opts)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// seqPayload is datagram i of a test stream: its index, then filler up to n
// bytes.
func seqPayload(i, n int) []byte {
	p := make([]byte, n)
	copy(p, fmt.Sprintf("%06d:", i))
	for j := 7; j < n; j++ {
		p[j] = byte(i + j)
	}
	return p
}

// gsoPattern is a batch that exercises coalescing: runs of equal sizes with
// a shorter last one, a size increase (which starts a new super-datagram),
// zero-length datagrams, runs longer than 64 segments and a run longer than
// 64 KiB.
func gsoPattern() []int {
	var sizes []int
	for range 70 { // > maxGSOSegments
		sizes = append(sizes, 1400)
	}
	sizes = append(sizes, 1000, 1000, 999, 1200, 0, 0, 1200, 1200, 7, 1)
	for range 40 { // 40*1600 > 64 KiB
		sizes = append(sizes, 1600)
	}
	sizes = append(sizes, 1, 1, 1, 1500, 1500, 1500, 200)
	return sizes
}

func sendSizes(t *testing.T, c *Conn, dst netip.AddrPort, sizes []int) {
	t.Helper()
	msgs := make([]Message, len(sizes))
	for i, n := range sizes {
		msgs[i] = Message{Buf: seqPayload(i, n), N: n, Addr: dst}
	}
	if n, err := c.WriteBatch(msgs); err != nil || n != len(msgs) {
		t.Fatalf("WriteBatch = %d, %v; want %d", n, err, len(msgs))
	}
}

// recvSizes reads len(sizes) datagrams with batches of batch messages and
// checks order, contents and source.
func recvSizes(t *testing.T, c *Conn, from netip.AddrPort, sizes []int, batch int) {
	t.Helper()
	recvSizesBuf(t, c, from, sizes, batch, 65536)
}

// recvSizesBuf is recvSizes with Bufs of bufSize bytes.
func recvSizesBuf(t *testing.T, c *Conn, from netip.AddrPort, sizes []int, batch, bufSize int) {
	t.Helper()
	recvSizesWith(t, c, from, sizes, batch, bufSize, false)
}

// recvSizesWith is recvSizesBuf reading with ReadCoalesced (walking the
// datagrams of each Message in place) when coalesced is set.
func recvSizesWith(t *testing.T, c *Conn, from netip.AddrPort, sizes []int, batch, bufSize int, coalesced bool) {
	t.Helper()
	c.uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.uc.SetReadDeadline(time.Time{})
	msgs := make([]Message, batch)
	for i := range msgs {
		msgs[i].Buf = make([]byte, bufSize)
	}
	got := 0
	for got < len(sizes) {
		read := c.ReadBatch
		if coalesced {
			read = c.ReadCoalesced
		}
		n, err := read(msgs)
		if err != nil {
			t.Fatalf("read after %d datagrams: %v", got, err)
		}
		if n > len(msgs) {
			t.Fatalf("read = %d > len(msgs) = %d", n, len(msgs))
		}
		for _, m := range msgs[:n] {
			if !coalesced && m.Seg != 0 {
				t.Fatalf("ReadBatch set Seg %d", m.Seg)
			}
			var dgrams [][]byte
			for off, seg := 0, m.SegmentSize(); off < m.N || off == 0; off += seg {
				dgrams = append(dgrams, m.Buf[off:min(off+seg, m.N)])
				if seg == 0 {
					break // an empty datagram
				}
			}
			for _, d := range dgrams {
				if got >= len(sizes) {
					t.Fatalf("extra datagram of %d bytes", len(d))
				}
				if want := seqPayload(got, sizes[got]); !bytes.Equal(d, want) {
					t.Fatalf("datagram %d = %d bytes %q..., want %d bytes %q...", got, len(d), d[:min(len(d), 7)], len(want), want[:min(len(want), 7)])
				}
				if m.Addr != from {
					t.Fatalf("datagram %d from %v, want %v", got, m.Addr, from)
				}
				got++
			}
		}
	}
}

func TestOffloadsDefault(t *testing.T) {
	c := listenOpts(t, "udp4", "127.0.0.1:0", Options{})
	gso, gro := c.Offloads()
	t.Logf("kernel %s: GSO %v, GRO %v", release(), gso, gro)
	if !gso || (groKernel() && !gro) {
		t.Errorf("Offloads() = %v, %v with default options on this kernel, want both on", gso, gro)
	}
	off := listenOpts(t, "udp4", "127.0.0.1:0", Options{GSO: OffloadOff, GRO: OffloadOff})
	if gso, gro := off.Offloads(); gso || gro {
		t.Errorf("Offloads() = %v, %v with OffloadOff, want false, false", gso, gro)
	}
	if _, err := Listen("udp4", netip.MustParseAddrPort("127.0.0.1:0"), Options{GSO: OffloadOn, GRO: OffloadOn}); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Listen with OffloadOn: %v", err)
	}
	if s := Offload(9).String(); s != "Offload(9)" {
		t.Errorf("Offload(9).String() = %q", s)
	}
}

func release() string {
	var u unix.Utsname
	unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}

// TestOffloadLoopback sends the GSO pattern in every offload mode and
// network, and reads it back in batches of several sizes: every Message must
// be one datagram as sent, in order.
func TestOffloadLoopback(t *testing.T) {
	for _, mode := range offloadModes {
		for _, nw := range []struct{ network, addr, dst string }{
			{"udp4", "127.0.0.1:0", ""},
			{"udp6", "[::1]:0", ""},
			{"udp", "[::]:0", "127.0.0.1"}, // IPv4 peer of a dual-stack socket
		} {
			for _, batch := range []int{1, 7, 64, MaxBatch} {
				for _, coalesced := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%s/batch=%d/coalesced=%v", mode.name, nw.network, batch, coalesced), func(t *testing.T) {
						opts := Options{GSO: mode.gso, GRO: mode.gro}
						a := listenOpts(t, nw.network, nw.addr, opts)
						b := listenOpts(t, nw.network, nw.addr, opts)
						dst, from := b.LocalAddr(), a.LocalAddr()
						if nw.dst != "" {
							ip := netip.MustParseAddr(nw.dst)
							dst = netip.AddrPortFrom(ip, dst.Port())
							from = netip.AddrPortFrom(ip, from.Port())
						}
						sizes := gsoPattern()
						sendSizes(t, a, dst, sizes)
						recvSizesWith(t, b, from, sizes, batch, 65536, coalesced)
					})
				}
			}
		}
	}
}

// TestGROSpill checks the Conn-side buffering: 64 equal datagrams sent with
// GSO arrive (on loopback) as one coalesced datagram, which a ReadBatch of 8
// Messages cannot hold.
func TestGROSpill(t *testing.T) {
	a := listenOpts(t, "udp4", "127.0.0.1:0", Options{})
	b := listenOpts(t, "udp4", "127.0.0.1:0", Options{})
	if gso, _ := a.Offloads(); !gso {
		t.Skip("no UDP GSO")
	}
	if _, gro := b.Offloads(); !gro {
		t.Skip("no UDP GRO")
	}
	sizes := make([]int, 64)
	for i := range sizes {
		sizes[i] = 1000
	}
	sendSizes(t, a, b.LocalAddr(), sizes)
	msgs := make([]Message, 8)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 65536)
	}
	n, err := b.ReadBatch(msgs)
	if err != nil || n != len(msgs) {
		t.Fatalf("ReadBatch = %d, %v; want %d", n, err, len(msgs))
	}
	if !b.r.spill.pending() {
		t.Fatal("nothing spilled: the datagrams were not coalesced")
	}
	// The rest comes out of the spill without touching the socket, even
	// past a read deadline.
	b.uc.SetReadDeadline(time.Now().Add(-time.Second))
	for got := n; got < len(sizes); got += n {
		for i := range n {
			if want := seqPayload(got-n+i, 1000); !bytes.Equal(msgs[i].Buf[:msgs[i].N], want) {
				t.Fatalf("datagram %d = %q..., want %q...", got-n+i, msgs[i].Buf[:7], want[:7])
			}
		}
		if n, err = b.ReadBatch(msgs); err != nil {
			t.Fatalf("ReadBatch from the spill after %d datagrams: %v", got, err)
		}
	}
	if b.r.spill.pending() {
		t.Fatal("spill not drained")
	}
	if b.r.hint < 2 {
		t.Errorf("hint = %d after a 64-segment datagram, want >= 2", b.r.hint)
	}
}

// TestGROSmallBuffers reads coalesced datagrams with Bufs too small for
// them (2 KiB): ReadBatch must receive into its own buffer and lose nothing.
func TestGROSmallBuffers(t *testing.T) {
	a := listenOpts(t, "udp4", "127.0.0.1:0", Options{})
	b := listenOpts(t, "udp4", "127.0.0.1:0", Options{})
	if _, gro := b.Offloads(); !gro {
		t.Skip("no UDP GRO")
	}
	sizes := gsoPattern()
	sendSizes(t, a, b.LocalAddr(), sizes)
	recvSizesBuf(t, b, a.LocalAddr(), sizes, 64, 2048)
	if b.r.bounce == nil {
		t.Error("small buffers did not use the bounce buffer")
	}
}

// TestGSOFallbackEIO makes sendmmsg fail with EIO for super-datagrams, as
// the kernel does when the route's device lacks checksum offload: WriteBatch
// must deliver everything as plain datagrams and turn GSO off.
func TestGSOFallbackEIO(t *testing.T) {
	real := sendmmsg
	t.Cleanup(func() { sendmmsg = real })
	refused := 0
	sendmmsg = func(fd uintptr, hdrs []unix.Mmsghdr) (int, unix.Errno) {
		for i := range hdrs {
			if hdrs[i].Hdr.Controllen != 0 {
				if i == 0 {
					refused++
					return 0, unix.EIO
				}
				n, e := real(fd, hdrs[:i])
				return n, e
			}
		}
		return real(fd, hdrs)
	}
	a := listenOpts(t, "udp4", "127.0.0.1:0", Options{})
	b := listenOpts(t, "udp4", "127.0.0.1:0", Options{GRO: OffloadOff})
	if gso, _ := a.Offloads(); !gso {
		t.Skip("no UDP GSO")
	}
	sizes := gsoPattern()
	sendSizes(t, a, b.LocalAddr(), sizes)
	recvSizes(t, b, a.LocalAddr(), sizes, 64)
	if refused != 1 {
		t.Errorf("%d super-datagrams refused, want 1 (then GSO off)", refused)
	}
	if gso, _ := a.Offloads(); gso {
		t.Error("GSO still on after EIO")
	}
}

// TestGSOFallbackMTU runs in a fresh network namespace whose loopback MTU is
// 1200: super-datagrams of 1400-byte segments are refused (EINVAL, a segment
// would need fragmentation), so WriteBatch sends those datagrams plainly
// (the kernel fragments them) and keeps GSO for smaller segments.
func TestGSOFallbackMTU(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	done := make(chan struct{})
	var a, b *Conn
	var setupErr error
	go func() {
		defer close(done)
		// The thread stays in the new namespace and exits with this
		// goroutine, because it is never unlocked.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			setupErr = fmt.Errorf("unshare: %w", err)
			return
		}
		if err := setLoopback(1200); err != nil {
			setupErr = err
			return
		}
		opts := Options{RecvBuffer: 4 << 20, SendBuffer: 4 << 20}
		if a, setupErr = Listen("udp4", netip.MustParseAddrPort("127.0.0.1:0"), opts); setupErr != nil {
			return
		}
		b, setupErr = Listen("udp4", netip.MustParseAddrPort("127.0.0.1:0"), opts)
	}()
	<-done
	for _, c := range []*Conn{a, b} {
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	if setupErr != nil {
		t.Skipf("cannot set up a namespace: %v", setupErr)
	}
	if gso, _ := a.Offloads(); !gso {
		t.Skip("no UDP GSO")
	}
	var sizes []int
	for range 10 {
		sizes = append(sizes, 1400)
	}
	for range 10 {
		sizes = append(sizes, 1000)
	}
	sendSizes(t, a, b.LocalAddr(), sizes)
	recvSizes(t, b, a.LocalAddr(), sizes, 64)
	if gso, _ := a.Offloads(); !gso {
		t.Error("GSO turned off; want it kept for segments that fit the MTU")
	}
	if max := a.gsoMax.Load(); max != 1399 {
		t.Errorf("largest GSO segment = %d, want 1399", max)
	}
	// A second round needs no new refusal.
	sendSizes(t, a, b.LocalAddr(), sizes)
	recvSizes(t, b, a.LocalAddr(), sizes, 64)
	if max := a.gsoMax.Load(); max != 1399 {
		t.Errorf("largest GSO segment = %d after the second round, want 1399", max)
	}
}

// TestConcurrentWriteBatch runs WriteBatch from several goroutines at once
// (each gets its own scratch) while ReadBatch receives.
func TestConcurrentWriteBatch(t *testing.T) {
	a := listenOpts(t, "udp4", "127.0.0.1:0", Options{})
	b := listenOpts(t, "udp4", "127.0.0.1:0", Options{RecvBuffer: 32 << 20})
	const writers, rounds, batch = 4, 20, 32
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			msgs := make([]Message, batch)
			for i := range msgs {
				p := seqPayload(w, 1200)
				msgs[i] = Message{Buf: p, N: len(p), Addr: b.LocalAddr()}
			}
			for range rounds {
				if n, err := a.WriteBatch(msgs); err != nil || n != batch {
					t.Errorf("WriteBatch = %d, %v", n, err)
					return
				}
			}
		})
	}
	count := make([]int, writers)
	msgs := make([]Message, 64)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 65536)
	}
	b.uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got := 0; got < writers*rounds*batch; {
		n, err := b.ReadBatch(msgs)
		if err != nil {
			t.Fatalf("ReadBatch after %d datagrams: %v", got, err)
		}
		for _, m := range msgs[:n] {
			var w int
			if _, err := fmt.Sscanf(string(m.Buf[:6]), "%06d", &w); err != nil || w >= writers || !bytes.Equal(m.Buf[:m.N], seqPayload(w, 1200)) {
				t.Fatalf("unexpected datagram %q... (%d bytes)", m.Buf[:7], m.N)
			}
			count[w]++
		}
		got += n
	}
	wg.Wait()
	for w, n := range count {
		if n != rounds*batch {
			t.Errorf("writer %d: %d datagrams arrived, want %d", w, n, rounds*batch)
		}
	}
}

// setLoopback brings lo up with the given MTU in the calling thread's
// network namespace.
func setLoopback(mtu int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint32(uint32(mtu))
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr); err != nil {
		return fmt.Errorf("set lo mtu: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// TestNoAllocs checks that WriteBatch and ReadBatch do not allocate in
// steady state, with and without offloads.
func TestNoAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, mode := range offloadModes {
		t.Run(mode.name, func(t *testing.T) {
			opts := Options{GSO: mode.gso, GRO: mode.gro}
			a := listenOpts(t, "udp4", "127.0.0.1:0", opts)
			b := listenOpts(t, "udp4", "127.0.0.1:0", opts)
			out := make([]Message, 32)
			for i := range out {
				out[i] = Message{Buf: seqPayload(i, 1400), N: 1400, Addr: b.LocalAddr()}
			}
			in := make([]Message, 32)
			for i := range in {
				in[i].Buf = make([]byte, 65536)
			}
			roundTrip := func() {
				if _, err := a.WriteBatch(out); err != nil {
					t.Fatal(err)
				}
				for got := 0; got < len(out); {
					n, err := b.ReadBatch(in)
					if err != nil {
						t.Fatal(err)
					}
					got += n
				}
				if _, err := a.WriteBatch(out); err != nil {
					t.Fatal(err)
				}
				for got := 0; got < len(out); {
					n, err := b.ReadCoalesced(in)
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range in[:n] {
						got += (m.N + m.SegmentSize() - 1) / m.SegmentSize()
					}
				}
			}
			roundTrip()
			if allocs := testing.AllocsPerRun(100, roundTrip); allocs != 0 {
				t.Errorf("WriteBatch+ReadBatch and WriteBatch+ReadCoalesced of 32 datagrams: %v allocations, want 0", allocs)
			}
		})
	}
}

// TestOffloadRandom sends random runs of equal sizes (what GSO coalesces and
// GRO delivers coalesced) and reads them back with random batch sizes.
func TestOffloadRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a := listenOpts(t, "udp6", "[::1]:0", Options{})
	b := listenOpts(t, "udp6", "[::1]:0", Options{RecvBuffer: 32 << 20})
	for round := range 30 {
		var sizes []int
		for len(sizes) < 400 {
			size, run := 1+rng.IntN(2000), 1+rng.IntN(100)
			for range run {
				sizes = append(sizes, size)
			}
			if rng.IntN(2) == 0 {
				sizes = append(sizes, rng.IntN(size+1)) // a shorter last one (or empty)
			}
		}
		sendSizes(t, a, b.LocalAddr(), sizes)
		recvSizesWith(t, b, a.LocalAddr(), sizes, 1+rng.IntN(MaxBatch), 65536, round%2 == 1)
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
	}
}
