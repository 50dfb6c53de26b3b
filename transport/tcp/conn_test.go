package tcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// pair connects a client to a listener on addr. If dialHost is set the
// client dials it (with the listener's port) instead of the listen address.
func pair(t *testing.T, network, addr, dialHost string, opts Options) (client, server *Conn) {
	t.Helper()
	l, err := Listen(network, netip.MustParseAddrPort(addr), opts)
	if err != nil {
		t.Skipf("cannot listen on %s %s (no IPv6 loopback?): %v", network, addr, err)
	}
	defer l.Close()
	accepted := make(chan *Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raddr := l.Addr()
	if dialHost != "" {
		raddr = netip.AddrPortFrom(netip.MustParseAddr(dialHost), raddr.Port())
	}
	client, err = Dial(ctx, network, raddr.String(), netip.AddrPort{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.FailNow()
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	if client.RemoteAddr() != raddr || server.RemoteAddr() != client.LocalAddr() {
		t.Fatalf("addresses: client %v→%v, server sees %v, listener %v",
			client.LocalAddr(), client.RemoteAddr(), server.RemoteAddr(), l.Addr())
	}
	return client, server
}

func packets(tag string, n int) [][]byte {
	var pkts [][]byte
	for i := range n {
		pkts = append(pkts, fmt.Appendf(nil, "%s %d %s", tag, i, bytes.Repeat([]byte{'x'}, (i*397)%3000)))
	}
	return pkts
}

func readN(t *testing.T, c *Conn, want [][]byte) {
	t.Helper()
	c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second))
	bufs := make([][]byte, 16)
	for i := range bufs {
		bufs[i] = make([]byte, 4096)
	}
	sizes := make([]int, len(bufs))
	got := 0
	for got < len(want) {
		n, err := c.ReadBatch(bufs, sizes)
		if err != nil {
			t.Fatalf("ReadBatch after %d packets: %v", got, err)
		}
		for i := range n {
			if !bytes.Equal(bufs[i][:sizes[i]], want[got]) {
				t.Fatalf("packet %d = %.20q, want %.20q", got, bufs[i][:sizes[i]], want[got])
			}
			got++
		}
	}
}

func TestConnLoopback(t *testing.T) {
	for _, tc := range []struct{ name, network, addr, dial string }{
		{"v4", "tcp4", "127.0.0.1:0", ""},
		{"v6", "tcp6", "[::1]:0", ""},
		{"dualstack-v4-peer", "tcp", "[::]:0", "127.0.0.1"}, // addresses seen unmapped
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := pair(t, tc.network, tc.addr, tc.dial, Options{})
			c2s, s2c := packets("c2s", 200), packets("s2c", 100)
			go func() {
				for i := 0; i < len(c2s); i += 50 {
					if err := client.WritePackets(c2s[i : i+50]); err != nil {
						t.Error(err)
					}
				}
			}()
			readN(t, server, c2s)
			if err := server.WritePackets(s2c); err != nil {
				t.Fatal(err)
			}
			readN(t, client, s2c)

			// ReadPackets sees the same stream.
			if err := client.WritePackets(c2s[:3]); err != nil {
				t.Fatal(err)
			}
			var got [][]byte
			for len(got) < 3 {
				if err := server.ReadPackets(func(p []byte) { got = append(got, bytes.Clone(p)) }); err != nil {
					t.Fatal(err)
				}
			}
			for i := range got {
				if !bytes.Equal(got[i], c2s[i]) {
					t.Fatalf("ReadPackets packet %d differs", i)
				}
			}

			// A clean close at a frame boundary is io.EOF, after the data.
			client.WritePackets(c2s[:1])
			client.Close()
			readN(t, server, c2s[:1])
			if _, err := server.ReadBatch(make([][]byte, 1), make([]int, 1)); !errors.Is(err, io.EOF) {
				t.Fatalf("after close: %v, want io.EOF", err)
			}
		})
	}
}

func TestConnErrors(t *testing.T) {
	client, server := pair(t, "tcp4", "127.0.0.1:0", "", Options{MaxPacket: 100})
	if err := client.WritePackets([][]byte{{1}, nil}); !errors.Is(err, ErrPacketSize) {
		t.Fatalf("empty packet: %v", err)
	}
	if err := client.WritePackets([][]byte{make([]byte, MaxPacket+1)}); !errors.Is(err, ErrPacketSize) {
		t.Fatalf("oversized packet: %v", err)
	}
	// A packet that does not fit the caller's buffer.
	client.WritePackets([][]byte{make([]byte, 50)})
	server.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := server.ReadBatch([][]byte{make([]byte, 10)}, []int{0}); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("small buffer: %v", err)
	}
	n, err := server.ReadBatch([][]byte{make([]byte, 50)}, []int{0})
	if n != 1 || err != nil {
		t.Fatalf("retry with a big buffer: %d %v", n, err)
	}
	// Above the server's MaxPacket: fatal framing error.
	client.WritePackets([][]byte{make([]byte, 101)})
	if _, err := server.ReadBatch([][]byte{make([]byte, 200)}, []int{0}); !errors.Is(err, ErrFrameLength) {
		t.Fatalf("oversized frame: %v", err)
	}
}

func TestConnTruncatedStream(t *testing.T) {
	a, b := net.Pipe()
	c := NewConn(b, Options{})
	go func() {
		a.Write([]byte{0, 5, 1, 2})
		a.Close()
	}()
	if _, err := c.ReadBatch([][]byte{make([]byte, 10)}, []int{0}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := Dial(context.Background(), "udp", "127.0.0.1:1", netip.AddrPort{}, Options{}); err == nil {
		t.Fatal("Dial accepted network udp")
	}
}
