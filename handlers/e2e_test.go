package handlers

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"weft/certcheck"
	"weft/controlwrap"
	"weft/internal/testpki"
	"weft/ovpn"
	"weft/tlsengine"
	"weft/tun"
)

// e2e wires a server and clients in one process over loopback sockets, with
// in-memory tunnel devices, so the whole handler stack runs without root.
type e2e struct {
	t      *testing.T
	ca     *testpki.CA
	key    *controlwrap.StaticKey
	srv    *Server
	srvDev *tun.ChannelDevice
	cancel context.CancelFunc
	done   chan error

	pipeline bool // server and clients run their data directions as two-goroutine pipelines
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newE2E(t *testing.T, c2c bool, listens ...Listen) *e2e {
	t.Helper()
	return newE2EMode(t, false, c2c, listens...)
}

// newE2EMode is newE2E with the data-path mode (Pipeline) chosen for server and clients.
func newE2EMode(t *testing.T, pipeline, c2c bool, listens ...Listen) *e2e {
	t.Helper()
	ca, err := testpki.NewCA("e2e ca")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("server", x509.ExtKeyUsageServerAuth, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var key controlwrap.StaticKey
	for i := range key {
		key[i] = byte(i*13 + 1)
	}
	e := &e2e{t: t, ca: ca, key: &key, srvDev: tun.NewChannelDevice("srv0", 1500, 16), done: make(chan error, 1), pipeline: pipeline}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	verify := certcheck.Options{Roots: pool, RemoteCertTLS: "client"}.VerifyPeerCertificate()
	eng, _ := tlsengine.Lookup("go")
	e.srv, err = NewServer(ServerParams{
		Listens: listens,
		Session: ovpn.Config{TLS: eng, TLSConfig: &tlsengine.Config{Server: true, Certificates: []tls.Certificate{leaf.TLS},
			VerifyPeer: func(r [][]byte) error { return verify(r, nil) }}, Ping: 10 * time.Second, PingRestart: 120 * time.Second},
		NewWrapper:     func() (controlwrap.Wrapper, error) { return controlwrap.NewTLSCrypt(&key, true) },
		Network:        netip.MustParsePrefix("10.8.0.0/24"),
		Network6:       netip.MustParsePrefix("fd00:8::/64"),
		ClientToClient: c2c,
		DataParams:     DataParams{Pipeline: pipeline},
		PushPing:       10, PushPingRestart: 60,
		OpenTUN:   func(string, int) (tun.Device, error) { return e.srvDev, nil },
		Configure: func(string, tun.LinkConfig) error { return nil },
		Logger:    testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- e.srv.Run(ctx) }()
	select {
	case <-e.srv.Ready():
	case err := <-e.done:
		t.Fatalf("server stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-e.done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return e
}

type e2eClient struct {
	cl     *Client
	dev    *tun.ChannelDevice
	events chan Event
	cancel context.CancelFunc
	done   chan error
	addrs  []netip.Prefix
}

func (e *e2e) client(cn string, l Listen) *e2eClient {
	e.t.Helper()
	leaf, err := e.ca.Issue(cn, x509.ExtKeyUsageClientAuth, time.Time{}, time.Time{})
	if err != nil {
		e.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Cert)
	verify := certcheck.Options{Roots: pool, RemoteCertTLS: "server"}.VerifyPeerCertificate()
	eng, _ := tlsengine.Lookup("go")
	c := &e2eClient{dev: tun.NewChannelDevice("cli0", 1500, 16), events: make(chan Event, 64), done: make(chan error, 1)}
	c.cl, err = NewClient(ClientParams{
		Remotes: []Remote{{Host: l.Addr.Addr().String(), Port: int(l.Addr.Port()), Proto: l.Proto}},
		Session: ovpn.Config{TLS: eng, TLSConfig: &tlsengine.Config{Certificates: []tls.Certificate{leaf.TLS},
			VerifyPeer: func(r [][]byte) error { return verify(r, nil) }}, Pull: true, ExplicitExitNotify: 1},
		NewWrapper:   func() (controlwrap.Wrapper, error) { return controlwrap.NewTLSCrypt(e.key, false) },
		ConnectRetry: 200 * time.Millisecond,
		DataParams:   DataParams{Pipeline: e.pipeline},
		OpenTUN:      func(string, int) (tun.Device, error) { return c.dev, nil },
		Configure:    func(string, tun.LinkConfig) error { return nil },
		OnEvent:      func(ev Event) { c.events <- ev },
		Logger:       testLogger(e.t),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.done <- c.cl.Run(ctx) }()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-c.events:
			if ev.Kind == EventConnected {
				c.addrs = ev.Addrs
				e.t.Cleanup(c.stop)
				return c
			}
		case err := <-c.done:
			e.t.Fatalf("client stopped: %v", err)
		case <-deadline:
			e.t.Fatal("client did not connect")
		}
	}
}

func (c *e2eClient) stop() {
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
}

func (c *e2eClient) addr(v6 bool) netip.Addr {
	for _, p := range c.addrs {
		if p.Addr().Is6() == v6 {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// ipPacket builds a minimal IPv4 or IPv6 packet carrying payload.
func ipPacket(src, dst netip.Addr, payload string) []byte {
	if src.Is4() {
		p := make([]byte, 20+len(payload))
		p[0] = 0x45
		p[2], p[3] = byte(len(p)>>8), byte(len(p))
		p[8], p[9] = 64, 17
		s, d := src.As4(), dst.As4()
		copy(p[12:], s[:])
		copy(p[16:], d[:])
		copy(p[20:], payload)
		return p
	}
	p := make([]byte, 40+len(payload))
	p[0] = 0x60
	p[4], p[5] = byte(len(payload)>>8), byte(len(payload))
	p[6], p[7] = 17, 64
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	copy(p[40:], payload)
	return p
}

// expect waits for a packet containing want on dev.
func expect(t *testing.T, dev *tun.ChannelDevice, want []byte) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p := <-dev.Outbound:
			if bytes.Equal(p, want) {
				return
			}
		case <-timeout:
			t.Fatalf("packet %x never arrived", want[:min(len(want), 48)])
		}
	}
}

func TestServerClientsOverEveryListener(t *testing.T) {
	e := newE2E(t, true,
		Listen{Proto: "udp4", Addr: netip.MustParseAddrPort("127.0.0.1:0")},
		Listen{Proto: "udp6", Addr: netip.MustParseAddrPort("[::1]:0")},
		Listen{Proto: "tcp4", Addr: netip.MustParseAddrPort("127.0.0.1:0")},
		Listen{Proto: "tcp6", Addr: netip.MustParseAddrPort("[::1]:0")},
	)
	addrs := e.srv.Addrs()
	if len(addrs) != 4 {
		t.Fatalf("Addrs = %v", addrs)
	}
	var clients []*e2eClient
	for i, l := range addrs {
		c := e.client(fmt.Sprintf("client%d", i), l)
		clients = append(clients, c)
	}
	seen := map[netip.Addr]bool{}
	for i, c := range clients {
		for _, v6 := range []bool{false, true} {
			ip := c.addr(v6)
			if !ip.IsValid() || seen[ip] {
				t.Fatalf("client %d over %v has address %v (v6 %v); all: %v", i, addrs[i], ip, v6, c.addrs)
			}
			seen[ip] = true
			srvIP := netip.MustParseAddr("10.8.0.1")
			if v6 {
				srvIP = netip.MustParseAddr("fd00:8::1")
			}
			up := ipPacket(ip, srvIP, "to server "+addrs[i].String())
			c.dev.Inbound <- up
			expect(t, e.srvDev, up)
			down := ipPacket(srvIP, ip, "to client "+addrs[i].String())
			e.srvDev.Inbound <- down
			expect(t, c.dev, down)
		}
	}
	// Client to client, v4 and v6, across listener types.
	for i := range clients {
		j := (i + 1) % len(clients)
		for _, v6 := range []bool{false, true} {
			p := ipPacket(clients[i].addr(v6), clients[j].addr(v6), fmt.Sprintf("c2c %d->%d", i, j))
			clients[i].dev.Inbound <- p
			expect(t, clients[j].dev, p)
		}
	}
	st := e.srv.Status()
	if len(st) != 4 {
		t.Fatalf("status lists %d clients: %+v", len(st), st)
	}
	out := string(FormatStatus(st, 2, time.Now()))
	for _, c := range []string{"CLIENT_LIST,client0,", "CLIENT_LIST,client3,", "ROUTING_TABLE,10.8.0.2,"} {
		if !strings.Contains(out, c) {
			t.Errorf("status v2 lacks %q:\n%s", c, out)
		}
	}
}

func TestSpoofedSourceDropped(t *testing.T) {
	e := newE2E(t, true, Listen{Proto: "udp4", Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	c := e.client("client", e.srv.Addrs()[0])
	spoof := ipPacket(netip.MustParseAddr("10.8.0.99"), netip.MustParseAddr("10.8.0.1"), "spoofed")
	c.dev.Inbound <- spoof
	good := ipPacket(c.addr(false), netip.MustParseAddr("10.8.0.1"), "good")
	c.dev.Inbound <- good
	expect(t, e.srvDev, good)
	if e.srv.dropSpoofed.Load() == 0 {
		t.Error("spoofed packet was not counted as dropped")
	}
}

func TestSameCNReplacesSession(t *testing.T) {
	e := newE2E(t, false, Listen{Proto: "udp4", Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	a := e.client("same", e.srv.Addrs()[0])
	b := e.client("same", e.srv.Addrs()[0])
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.Connected() != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.srv.Connected(); n != 1 {
		t.Fatalf("%d sessions connected, want the new one only", n)
	}
	p := ipPacket(b.addr(false), netip.MustParseAddr("10.8.0.1"), "from the new session")
	b.dev.Inbound <- p
	expect(t, e.srvDev, p)
	_ = a
}

var _ sync.Locker = (*sync.Mutex)(nil)
