package socks5_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"weft/netstack"
	"weft/netstack/netstacktest"
	"weft/socks5"

	"weft/internal/testecho"
)

// checkGoroutines fails the test if goroutines outlive its cleanups.
// Register it first so it runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("goroutines: %d before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// fakeResolver maps names to addresses.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ips, ok := f[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// startServer serves srv on a loopback listener and returns its address.
func startServer(t *testing.T, srv *socks5.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, socks5.ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
	return l.Addr().String()
}

// request performs the handshake and one request on a new connection to
// the server and returns the connection and the reply.
func request(t *testing.T, server string, raw []byte) (net.Conn, socks5.Reply, socks5.Addr) {
	t.Helper()
	c, err := net.DialTimeout("tcp", server, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		t.Fatal(err)
	}
	var m [2]byte
	if _, err := io.ReadFull(c, m[:]); err != nil || m != [2]byte{5, 0} {
		t.Fatalf("method selection = %x, %v; want 0500", m, err)
	}
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	rep, bnd := readReply(t, c)
	_ = c.SetDeadline(time.Time{})
	return c, rep, bnd
}

func readReply(t *testing.T, c net.Conn) (socks5.Reply, socks5.Addr) {
	t.Helper()
	buf := make([]byte, 0, 262)
	one := make([]byte, 1)
	for {
		rep, bnd, _, err := socks5.ParseReply(buf)
		if err == nil {
			return rep, bnd
		}
		if !errors.Is(err, socks5.ErrShort) {
			t.Fatalf("bad reply %x: %v", buf, err)
		}
		if _, err := io.ReadFull(c, one); err != nil {
			t.Fatalf("reading reply after %x: %v", buf, err)
		}
		buf = append(buf, one[0])
	}
}

func connectReq(a socks5.Addr) []byte {
	return socks5.Request{Command: socks5.Connect, Addr: a}.Append(nil)
}

// echoCheck sends 256 KiB through c and checks it comes back unchanged.
func echoCheck(t *testing.T, c net.Conn) {
	t.Helper()
	data := make([]byte, 256<<10)
	_, _ = rand.Read(data)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		errc <- err
	}()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("echoed data differs")
	}
}

func TestConnect(t *testing.T) {
	checkGoroutines(t)
	l4, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testecho.TCP(t, l4)
	echo4 := l4.Addr().(*net.TCPAddr).AddrPort()
	srv := &socks5.Server{Resolver: fakeResolver{"echo.weft.test": {netip.MustParseAddr("127.0.0.1")}}}
	server := startServer(t, srv)

	cases := []struct {
		name string
		addr socks5.Addr
	}{
		{"v4", socks5.AddrFromAddrPort(echo4)},
		{"domain", socks5.Addr{Name: "echo.weft.test", Port: echo4.Port()}},
	}
	if l6, err := net.Listen("tcp", "[::1]:0"); err == nil {
		testecho.TCP(t, l6)
		cases = append(cases, struct {
			name string
			addr socks5.Addr
		}{"v6", socks5.AddrFromAddrPort(l6.Addr().(*net.TCPAddr).AddrPort())})
	} else {
		t.Logf("no IPv6 loopback here (%v): the v6 case runs only through netstack", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, rep, bnd := request(t, server, connectReq(tc.addr))
			if rep != socks5.Succeeded || !bnd.IP.IsValid() || bnd.Port == 0 {
				t.Fatalf("CONNECT %v: reply %v, bound %v", tc.addr, rep, bnd)
			}
			echoCheck(t, c)
		})
	}
}

// TestConnectThroughNetstack runs the server with a netstack Dial: the echo
// server lives on the other stack, reached over IPv4, IPv6 and a name.
func TestConnectThroughNetstack(t *testing.T) {
	checkGoroutines(t)
	a, b := netstacktest.NewPair(t, netstack.Options{}, netstack.Options{})
	for _, ip := range []netip.Addr{netstacktest.B4, netstacktest.B6} {
		l, err := b.ListenTCP(netip.AddrPortFrom(ip, 7))
		if err != nil {
			t.Fatal(err)
		}
		testecho.TCP(t, l)
	}
	srv := &socks5.Server{
		Dial:     a.DialContext,
		Resolver: fakeResolver{"b.vpn": {netstacktest.B6, netstacktest.B4}},
	}
	server := startServer(t, srv)
	for _, target := range []socks5.Addr{
		{IP: netstacktest.B4, Port: 7},
		{IP: netstacktest.B6, Port: 7},
		{Name: "b.vpn", Port: 7},
	} {
		t.Run(target.String(), func(t *testing.T) {
			c, rep, bnd := request(t, server, connectReq(target))
			if rep != socks5.Succeeded {
				t.Fatalf("CONNECT %v: %v", target, rep)
			}
			if bnd.IP != netstacktest.A4 && bnd.IP != netstacktest.A6 {
				t.Errorf("bound address %v is not the stack's", bnd)
			}
			echoCheck(t, c)
		})
	}
	// A closed port on the far stack is "connection refused".
	_, rep, _ := request(t, server, connectReq(socks5.Addr{IP: netstacktest.B4, Port: 9}))
	if rep != socks5.ConnectionRefused {
		t.Errorf("CONNECT to a closed port: %v, want %v", rep, socks5.ConnectionRefused)
	}
}

// associate opens a UDP association and returns the control connection,
// a client UDP socket and the relay address.
func associate(t *testing.T, server string) (net.Conn, *net.UDPConn, netip.AddrPort) {
	t.Helper()
	ctl, rep, bnd := request(t, server, socks5.Request{Command: socks5.UDPAssociate, Addr: socks5.Addr{IP: netip.IPv4Unspecified()}}.Append(nil))
	if rep != socks5.Succeeded || !bnd.IP.IsValid() || bnd.Port == 0 {
		t.Fatalf("UDP ASSOCIATE: reply %v, bound %v", rep, bnd)
	}
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	return ctl, uc, netip.AddrPortFrom(bnd.IP, bnd.Port)
}

// udpRoundTrip sends payload for target through the relay and returns the
// reply's source and payload.
func udpRoundTrip(t *testing.T, uc *net.UDPConn, relay netip.AddrPort, target socks5.Addr, payload []byte) (socks5.Addr, []byte) {
	t.Helper()
	buf := make([]byte, 65536)
	for attempt := range 3 { // UDP: allow retries
		if _, err := uc.WriteToUDPAddrPort(socks5.AppendDatagram(nil, target, payload), relay); err != nil {
			t.Fatal(err)
		}
		_ = uc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := uc.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Logf("attempt %d: %v", attempt, err)
			continue
		}
		frag, from, got, err := socks5.ParseDatagram(buf[:n])
		if err != nil || frag != 0 {
			t.Fatalf("bad datagram from relay %x: %v", buf[:n], err)
		}
		return from, got
	}
	t.Fatalf("no reply for %v through %v", target, relay)
	return socks5.Addr{}, nil
}

func TestUDPAssociate(t *testing.T) {
	checkGoroutines(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testecho.UDP(t, pc, 2048, nil)
	echo := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	srv := &socks5.Server{Resolver: fakeResolver{"echo.weft.test": {netip.MustParseAddr("127.0.0.1")}}}
	server := startServer(t, srv)
	ctl, uc, relay := associate(t, server)

	for _, target := range []socks5.Addr{
		socks5.AddrFromAddrPort(echo),
		{Name: "echo.weft.test", Port: echo.Port()},
	} {
		from, got := udpRoundTrip(t, uc, relay, target, []byte("ping "+target.String()))
		if string(got) != "ping "+target.String() || from != socks5.AddrFromAddrPort(echo) {
			t.Fatalf("reply for %v: from %v, %q", target, from, got)
		}
	}
	// Closing the control connection ends the association.
	ctl.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _ = uc.WriteToUDPAddrPort(socks5.AppendDatagram(nil, socks5.AddrFromAddrPort(echo), []byte("late")), relay)
		_ = uc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, _, err := uc.ReadFromUDPAddrPort(make([]byte, 100)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay still answers after the control connection closed")
		}
	}
}

// TestUDPAssociateThroughNetstack relays UDP to an echo server on the far
// stack over IPv4 and IPv6 with a netstack ListenPacket.
func TestUDPAssociateThroughNetstack(t *testing.T) {
	checkGoroutines(t)
	a, b := netstacktest.NewPair(t, netstack.Options{}, netstack.Options{})
	pc, err := b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7))
	if err != nil {
		t.Fatal(err)
	}
	testecho.UDP(t, pc, 2048, nil)
	srv := &socks5.Server{
		ListenPacket: func(context.Context, string, string) (net.PacketConn, error) {
			return a.ListenUDP(netip.AddrPort{})
		},
		Resolver: fakeResolver{},
	}
	server := startServer(t, srv)
	_, uc, relay := associate(t, server)
	for _, ip := range []netip.Addr{netstacktest.B4, netstacktest.B6} {
		target := socks5.Addr{IP: ip, Port: 7}
		from, got := udpRoundTrip(t, uc, relay, target, []byte("hello "+ip.String()))
		if string(got) != "hello "+ip.String() || from != target {
			t.Fatalf("reply for %v: from %v, %q", target, from, got)
		}
	}
}

// TestBadRequests checks the replies (or silence) for malformed and
// unsupported requests.
func TestBadRequests(t *testing.T) {
	checkGoroutines(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).AddrPort()
	closed.Close()
	server := startServer(t, &socks5.Server{Resolver: fakeResolver{}})

	for _, tc := range []struct {
		name string
		req  []byte
		want socks5.Reply
	}{
		{"bind", socks5.Request{Command: socks5.Bind, Addr: socks5.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 21}}.Append(nil), socks5.CommandNotSupported},
		{"unknown command", []byte{5, 9, 0, 1, 127, 0, 0, 1, 0, 80}, socks5.CommandNotSupported},
		{"unknown address type", []byte{5, 1, 0, 7, 127, 0, 0, 1, 0, 80}, socks5.AddressTypeNotSupported},
		{"reserved byte", []byte{5, 1, 9, 1, 127, 0, 0, 1, 0, 80}, socks5.GeneralFailure},
		{"wrong version", []byte{4, 1, 0, 1, 127, 0, 0, 1, 0, 80}, socks5.GeneralFailure},
		{"empty name", []byte{5, 1, 0, 3, 0, 0, 80}, socks5.GeneralFailure},
		{"port 0", connectReq(socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")}), socks5.GeneralFailure},
		{"refused", connectReq(socks5.AddrFromAddrPort(closedPort)), socks5.ConnectionRefused},
		{"unknown name", connectReq(socks5.Addr{Name: "nowhere.weft.test", Port: 80}), socks5.HostUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, rep, _ := request(t, server, tc.req)
			if rep != tc.want {
				t.Fatalf("reply %v (%d), want %v (%d)", rep, rep, tc.want, tc.want)
			}
			// The server closes the connection after a failure reply.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatalf("read %d bytes after a failure reply, want EOF", n)
			}
		})
	}

	t.Run("no acceptable method", func(t *testing.T) {
		c, err := net.Dial("tcp", server)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte{5, 1, 2}) // username/password only
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, []byte{5, 0xff}) {
			t.Fatalf("got %x, %v; want 05ff then EOF", got, err)
		}
	})
	t.Run("socks4 greeting", func(t *testing.T) {
		c, err := net.Dial("tcp", server)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte{4, 1, 0, 80, 127, 0, 0, 1, 0})
		// The server closes with unread bytes, so the kernel may reset.
		got, err := io.ReadAll(c)
		if len(got) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
			t.Fatalf("got %x, %v; want nothing, then EOF or a reset", got, err)
		}
	})
}

func TestHandshakeTimeout(t *testing.T) {
	checkGoroutines(t)
	server := startServer(t, &socks5.Server{HandshakeTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("silent client: Read = %v, want EOF from the server closing", err)
	}
	t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
}

func TestMaxConns(t *testing.T) {
	checkGoroutines(t)
	server := startServer(t, &socks5.Server{MaxConns: 1, HandshakeTimeout: 10 * time.Second})
	first, err := net.Dial("tcp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, _ = first.Write([]byte{5, 1, 0})
	_ = first.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(first, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	second, err := net.Dial("tcp", server) // the kernel accepts into the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_, _ = second.Write([]byte{5, 1, 0})
	_ = second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := second.Read(make([]byte, 2)); err == nil {
		t.Fatalf("second client served (%d bytes) while the first holds the only slot", n)
	}
	first.Close()
	_ = second.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m [2]byte
	if _, err := io.ReadFull(second, m[:]); err != nil || m != [2]byte{5, 0} {
		t.Fatalf("second client after the first left: %x, %v", m, err)
	}
}

func TestIdleTimeout(t *testing.T) {
	checkGoroutines(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testecho.TCP(t, l)
	server := startServer(t, &socks5.Server{IdleTimeout: 200 * time.Millisecond})
	c, rep, _ := request(t, server, connectReq(socks5.AddrFromAddrPort(l.Addr().(*net.TCPAddr).AddrPort())))
	if rep != socks5.Succeeded {
		t.Fatal(rep)
	}
	echoCheck(t, c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("idle relay not closed")
	}
}

// TestCloseAbortsRelays checks that Close ends active relays and Serve.
func TestCloseAbortsRelays(t *testing.T) {
	checkGoroutines(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testecho.TCP(t, l)
	srv := &socks5.Server{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c, rep, _ := request(t, ln.Addr().String(), connectReq(socks5.AddrFromAddrPort(l.Addr().(*net.TCPAddr).AddrPort())))
	if rep != socks5.Succeeded {
		t.Fatal(rep)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, socks5.ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("relay survived Close")
	}
	if err := srv.Serve(ln); !errors.Is(err, socks5.ErrServerClosed) {
		t.Fatalf("Serve after Close = %v", err)
	}
}

// dnsServer answers every A query for a name under .weft.test with ip and
// everything else with NXDOMAIN, on pc until it is closed.
func dnsServer(t *testing.T, pc net.PacketConn, ip netip.Addr) {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { pc.Close() })
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
			known := strings.HasSuffix(q.Name.String(), ".weft.test.")
			if !known {
				rh.RCode = dnsmessage.RCodeNameError
			}
			bld := dnsmessage.NewBuilder(nil, rh)
			_ = bld.StartQuestions()
			_ = bld.Question(q)
			_ = bld.StartAnswers()
			if known && q.Type == dnsmessage.TypeA {
				_ = bld.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
					dnsmessage.AResource{A: ip.As4()})
			}
			msg, err := bld.Finish()
			if err != nil {
				continue
			}
			_, _ = pc.WriteTo(msg, from)
		}
	})
}

// TestDNSResolverThroughNetstack resolves a name with a DNS server that
// lives on the far stack, queried through the near stack.
func TestDNSResolverThroughNetstack(t *testing.T) {
	checkGoroutines(t)
	a, b := netstacktest.NewPair(t, netstack.Options{}, netstack.Options{})
	pc, err := b.ListenUDP(netip.AddrPortFrom(netstacktest.B4, 53))
	if err != nil {
		t.Fatal(err)
	}
	dnsServer(t, pc, netip.MustParseAddr("10.1.2.3"))
	servers := socks5.DNSServers([][]string{{"DOMAIN", "vpn"}, {"DNS", "10.99.0.2"}, {"DNS", "bogus"}, {"DNS", "10.99.0.2"}})
	if len(servers) != 1 || servers[0] != netip.MustParseAddrPort("10.99.0.2:53") {
		t.Fatalf("DNSServers = %v, want [10.99.0.2:53]", servers)
	}
	r := socks5.DNSResolver(servers, a.DialContext)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ips, err := r.LookupNetIP(ctx, "ip4", "host.weft.test.")
	if err != nil || len(ips) != 1 || ips[0] != netip.MustParseAddr("10.1.2.3") {
		t.Fatalf("LookupNetIP = %v, %v; want [10.1.2.3]", ips, err)
	}
	if _, err := r.LookupNetIP(ctx, "ip4", "host.elsewhere.test."); err == nil {
		t.Fatal("LookupNetIP(unknown) = nil error")
	}
	if socks5.DNSResolver(nil, a.DialContext) != net.DefaultResolver {
		t.Fatal("DNSResolver without servers is not the system resolver")
	}
}

// TestCurl drives the server with Debian's curl, resolving the host name on
// the server side (--socks5-hostname) and on the client side (--socks5).
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skipf("SKIPPING the curl interoperability test: curl is not installed (%v); apt-get install curl", err)
	}
	checkGoroutines(t)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s via %s", r.URL.Path, r.Host)
	}))
	t.Cleanup(hs.Close)
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	server := startServer(t, &socks5.Server{Resolver: fakeResolver{"web.weft.test": {netip.MustParseAddr("127.0.0.1")}}})

	for _, tc := range []struct{ flag, url, want string }{
		{"--socks5-hostname", "http://web.weft.test:" + strconv.Itoa(port) + "/a", "hello /a via web.weft.test:" + strconv.Itoa(port)},
		{"--socks5", "http://127.0.0.1:" + strconv.Itoa(port) + "/b", "hello /b via 127.0.0.1:" + strconv.Itoa(port)},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, curl, "-sS", "--max-time", "10", tc.flag, server, tc.url)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()} // no *_proxy variables
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil || string(out) != tc.want {
			t.Fatalf("curl %s %s %s: %q, %v; want %q", tc.flag, server, tc.url, out, err, tc.want)
		}
		t.Logf("curl %s: %q", tc.flag, out)
	}
}
