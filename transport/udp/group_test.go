package udp

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// dataV2 is a P_DATA_V2 packet (key-id 0) for peerID with a tag.
func dataV2(peerID uint32, tag string) []byte {
	return append([]byte{9 << 3, byte(peerID >> 16), byte(peerID >> 8), byte(peerID)}, tag...)
}

// collect reads from every socket of a group until want datagrams arrived,
// and returns, per payload, the index of the socket that got it.
func collect(t *testing.T, group []*Conn, want int) map[string]int {
	t.Helper()
	type arrival struct {
		payload string
		socket  int
	}
	ch := make(chan arrival, want)
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	defer func() { // stop the readers before the sockets are read again
		for _, c := range group {
			c.uc.SetReadDeadline(time.Now().Add(-time.Second))
		}
		wg.Wait()
		for _, c := range group {
			c.uc.SetReadDeadline(time.Time{})
		}
	}()
	for i, c := range group {
		c.uc.SetReadDeadline(deadline)
		wg.Go(func() {
			msgs := make([]Message, 16)
			for j := range msgs {
				msgs[j].Buf = make([]byte, 65536)
			}
			for {
				n, err := c.ReadBatch(msgs)
				if err != nil {
					return
				}
				for _, m := range msgs[:n] {
					select {
					case ch <- arrival{string(m.Buf[:m.N]), i}:
					default: // more than want: reported as missing ones
					}
				}
			}
		})
	}
	got := map[string]int{}
	for len(got) < want {
		select {
		case a := <-ch:
			if prev, dup := got[a.payload]; dup {
				t.Fatalf("%q arrived twice, at sockets %d and %d", a.payload, prev, a.socket)
			}
			got[a.payload] = a.socket
		case <-time.After(time.Until(deadline)):
			t.Fatalf("only %d of %d datagrams arrived", len(got), want)
		}
	}
	return got
}

// TestListenGroupSteering sends P_DATA_V2 packets for peer-ids 5, 6 and 7
// from three source ports to a group of 4: each peer-id lands on socket
// peer_id % 4 whatever the source. Control packets stay on one socket per
// source and spread over the group.
func TestListenGroupSteering(t *testing.T) {
	for _, tc := range []struct{ network, addr, src string }{
		{"udp4", "127.0.0.1:0", "127.0.0.1:0"},
		{"udp6", "[::1]:0", "[::1]:0"},
		{"udp", "[::]:0", "127.0.0.1:0"}, // IPv4 packets on a dual-stack group
	} {
		t.Run(tc.network, func(t *testing.T) {
			group, err := ListenGroup(tc.network, netip.MustParseAddrPort(tc.addr), 4, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				for _, c := range group {
					c.Close()
				}
			}()
			port := group[0].LocalAddr().Port()
			for i, c := range group {
				if c.LocalAddr().Port() != port {
					t.Fatalf("socket %d on %v, socket 0 on port %d", i, c.LocalAddr(), port)
				}
				if !c.Steered() {
					t.Fatalf("socket %d: Steered() = false", i)
				}
			}
			srcNet := "udp4"
			if tc.src[0] == '[' {
				srcNet = "udp6"
			}
			dst := netip.AddrPortFrom(netip.MustParseAddrPort(tc.src).Addr(), port)

			var senders []*Conn
			for range 3 {
				senders = append(senders, listen(t, srcNet, tc.src))
			}
			want := map[string]int{}
			for s, c := range senders {
				for _, peer := range []uint32{5, 6, 7} {
					p := dataV2(peer, fmt.Sprintf("from %d", s))
					if err := c.WriteTo(p, dst); err != nil {
						t.Fatal(err)
					}
					want[string(p)] = int(peer % 4)
				}
			}
			got := collect(t, group, len(want))
			for p, sock := range want {
				if got[p] != sock {
					t.Errorf("peer-id %d from source %q arrived at socket %d, want %d", p[3], p[4:], got[p], sock)
				}
			}

			// Control packets, 3 from each of 16 sources, and a P_DATA_V2
			// runt (too short for a peer-id) from each: the kernel's hash
			// keeps each source on one socket.
			for range 13 {
				senders = append(senders, listen(t, srcNet, tc.src))
			}
			want = map[string]int{}
			for s, c := range senders {
				for k := range 3 {
					p := fmt.Appendf([]byte{7 << 3}, "control %d from %d", k, s)
					if err := c.WriteTo(p, dst); err != nil {
						t.Fatal(err)
					}
					want[string(p)] = s
				}
				runt := []byte{9 << 3, byte(s)}
				if err := c.WriteTo(runt, dst); err != nil {
					t.Fatal(err)
				}
				want[string(runt)] = s
			}
			got = collect(t, group, len(want))
			socketOf := map[int]int{} // source -> socket
			used := map[int]bool{}
			for p, s := range want {
				if prev, ok := socketOf[s]; ok && prev != got[p] {
					t.Errorf("packets from source %d at sockets %d and %d", s, prev, got[p])
				}
				socketOf[s] = got[p]
				used[got[p]] = true
			}
			if len(used) < 2 {
				t.Errorf("packets from 16 sources all went to socket(s) %v", used)
			}
		})
	}
}

// TestListenGroupFallback forces the steering program off: the group still
// works, with the kernel's hash.
func TestListenGroupFallback(t *testing.T) {
	real := attachSteering
	t.Cleanup(func() { attachSteering = real })
	attachSteering = func(*Conn, uint32) error { return errors.New("not supported") }

	group, err := ListenGroup("udp4", netip.MustParseAddrPort("127.0.0.1:0"), 3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range group {
			c.Close()
		}
	}()
	src := listen(t, "udp4", "127.0.0.1:0")
	want := 0
	for peer := range uint32(6) {
		if err := src.WriteTo(dataV2(peer, "x"), group[0].LocalAddr()); err != nil {
			t.Fatal(err)
		}
		want++
	}
	got := collect(t, group, want)
	for _, c := range group {
		if c.Steered() {
			t.Error("Steered() = true without the program")
		}
	}
	sockets := map[int]bool{}
	for _, s := range got {
		sockets[s] = true
	}
	if len(sockets) != 1 {
		t.Errorf("one flow spread over sockets %v without steering", sockets)
	}
}

func TestListenGroupArgs(t *testing.T) {
	for _, n := range []int{0, -1, MaxGroup + 1} {
		if _, err := ListenGroup("udp4", netip.MustParseAddrPort("127.0.0.1:0"), n, Options{}); err == nil {
			t.Errorf("ListenGroup with n = %d succeeded", n)
		}
	}
	g, err := ListenGroup("udp4", netip.MustParseAddrPort("127.0.0.1:0"), 1, Options{})
	if err != nil || len(g) != 1 {
		t.Fatalf("ListenGroup(1) = %v, %v", g, err)
	}
	defer g[0].Close()
	// The group's port is taken by SO_REUSEPORT sockets of this user: a
	// socket without SO_REUSEPORT cannot bind it.
	if c, err := Listen("udp4", g[0].LocalAddr(), Options{}); err == nil {
		c.Close()
		t.Error("plain bind to a group's port succeeded")
	}
	if _, err := ListenGroup("tcp", netip.AddrPort{}, 2, Options{}); err == nil {
		t.Error("ListenGroup accepted network tcp")
	}
}
