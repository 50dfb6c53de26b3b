package handlers

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"weft/ovpn"
	"weft/wire"
)

// proxy relays UDP between one client and the server and keeps a copy of the data
// packets the client sent, so tests can replay them.
type proxy struct {
	t      *testing.T
	front  *net.UDPConn // the client talks to this
	back   *net.UDPConn // this talks to the server
	server *net.UDPAddr
	mu     sync.Mutex
	client *net.UDPAddr
	data   [][]byte
}

func newProxy(t *testing.T, server netip.AddrPort) *proxy {
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, front: front, back: back, server: net.UDPAddrFromAddrPort(server)}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.client = from
			if op, _ := wire.SplitHeader(buf[0]); op.IsData() && len(p.data) < 10000 {
				p.data = append(p.data, append([]byte(nil), buf[:n]...))
			}
			p.mu.Unlock()
			back.WriteToUDP(buf[:n], p.server)
		}
	}()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := back.ReadFromUDP(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			c := p.client
			p.mu.Unlock()
			if c != nil {
				front.WriteToUDP(buf[:n], c)
			}
		}
	}()
	t.Cleanup(func() { front.Close(); back.Close() })
	return p
}

func (p *proxy) addr() Listen {
	return Listen{Proto: "udp4", Addr: p.front.LocalAddr().(*net.UDPAddr).AddrPort()}
}

// TestNoReorderingAcrossShards sends numbered packets of one flow through a server
// with several shards and sockets: they must arrive in order, both ways.
func TestNoReorderingAcrossShards(t *testing.T) {
	for _, pipeline := range []bool{false, true} {
		t.Run(fmt.Sprintf("pipeline=%v", pipeline), func(t *testing.T) { testNoReordering(t, pipeline) })
	}
}

func testNoReordering(t *testing.T, pipeline bool) {
	e := newE2EMode(t, pipeline, true, Listen{Proto: "udp4", Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if e.srv.r.NumShards() < 2 {
		t.Logf("only %d shard(s) on this machine; the test still checks ordering", e.srv.r.NumShards())
	}
	c := e.client("client", e.srv.Addrs()[0])
	src, dst := c.addr(false), netip.MustParseAddr("10.8.0.1")
	const n = 3000
	go func() {
		for i := 0; i < n; i++ {
			var seq [4]byte
			binary.BigEndian.PutUint32(seq[:], uint32(i))
			c.dev.Inbound <- ipPacket(src, dst, string(seq[:]))
		}
	}()
	checkOrder(t, e.srvDev.Outbound, n)
	go func() {
		for i := 0; i < n; i++ {
			var seq [4]byte
			binary.BigEndian.PutUint32(seq[:], uint32(i))
			e.srvDev.Inbound <- ipPacket(dst, src, string(seq[:]))
		}
	}()
	checkOrder(t, c.dev.Outbound, n)
}

// checkOrder reads packets until n have arrived or 10 s passed: sequence numbers
// may have gaps (UDP may drop under load) but must never go backwards.
func checkOrder(t *testing.T, ch chan []byte, n int) {
	t.Helper()
	last, got := -1, 0
	timeout := time.After(10 * time.Second)
	for got < n {
		select {
		case p := <-ch:
			if len(p) < 24 {
				continue
			}
			seq := int(binary.BigEndian.Uint32(p[20:24]))
			if seq <= last {
				t.Fatalf("packet %d arrived after %d: reordered", seq, last)
			}
			last = seq
			got++
			if seq == n-1 {
				return
			}
		case <-timeout:
			if got < n*9/10 {
				t.Fatalf("only %d of %d packets arrived", got, n)
			}
			return
		}
	}
}

// TestReplayRejectedFromAnySocket replays captured data packets, from the client's
// address and from a new one (which would make the client float): none may be
// delivered twice and the session must not move.
func TestReplayRejectedFromAnySocket(t *testing.T) {
	e := newE2E(t, true, Listen{Proto: "udp4", Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	px := newProxy(t, e.srv.Addrs()[0].Addr)
	c := e.client("client", px.addr())
	src, dst := c.addr(false), netip.MustParseAddr("10.8.0.1")
	p := ipPacket(src, dst, "once only")
	c.dev.Inbound <- p
	expect(t, e.srvDev, p)
	time.Sleep(100 * time.Millisecond)
	px.mu.Lock()
	captured := append([][]byte(nil), px.data...)
	px.mu.Unlock()
	if len(captured) == 0 {
		t.Fatal("the proxy captured no data packet")
	}
	peer := e.srv.peer(0)
	before := peer.dp().Merge(ovpn.Stats{}).DropReplay
	// Replay through the proxy's own socket (same source) and from a fresh socket.
	other, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, pkt := range captured {
		px.back.WriteToUDP(pkt, px.server)
		other.WriteToUDP(pkt, px.server)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case dup := <-e.srvDev.Outbound:
		t.Fatalf("a replayed packet was delivered: %x", dup[:min(len(dup), 32)])
	default:
	}
	after := peer.dp().Merge(ovpn.Stats{}).DropReplay
	if after-before < uint64(2*len(captured)) {
		t.Errorf("replay drops grew by %d, want at least %d", after-before, 2*len(captured))
	}
	if got := *peer.addr.Load(); got != px.back.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Errorf("the session floated to %v on replayed packets", got)
	}
}

// TestDataPathAllocations proves the steady-state data path allocates nothing per
// packet: encryption into reused link buffers and decryption into reused device
// buffers.
func TestDataPathAllocations(t *testing.T) {
	e := newE2E(t, true, Listen{Proto: "udp4", Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	c := e.client("client", e.srv.Addrs()[0])
	cdp := c.cl.live.Load().sess.DataPath()
	sdp := e.srv.peer(0).dp()
	pkt := ipPacket(c.addr(false), netip.MustParseAddr("10.8.0.1"), string(make([]byte, 1350)))
	var tx txBatch
	var rx rxBatch
	now := time.Now()
	round := func() {
		tx.add(now, cdp, pkt)
		for _, b := range tx.out {
			rx.add(now, sdp, b)
		}
		tx.reset()
		clear(rx.out)
		rx.out = rx.out[:0]
	}
	round()
	if allocs := testing.AllocsPerRun(1000, round); allocs != 0 {
		t.Errorf("data path allocates %.1f times per packet, want 0", allocs)
	}
}

// peer returns the peer with the given peer-id (tests only).
func (s *Server) peer(id int32) *peer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byID[id]
}
