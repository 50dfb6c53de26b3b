package forward_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"weft/forward"
	"weft/netstack"
	"weft/netstack/netstacktest"

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

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want forward.Rule
	}{
		{[]string{"tcp", "127.0.0.1:8080", "10.8.0.1:80"},
			forward.Rule{Proto: "tcp", Listen: netip.MustParseAddrPort("127.0.0.1:8080"), Target: netip.MustParseAddrPort("10.8.0.1:80")}},
		{[]string{"UDP", "[::1]:5353", "[fd00::1]:53"},
			forward.Rule{Proto: "udp", Listen: netip.MustParseAddrPort("[::1]:5353"), Target: netip.MustParseAddrPort("[fd00::1]:53")}},
		{[]string{"tcp", "0.0.0.0:2222", "[::ffff:10.8.0.1]:22"},
			forward.Rule{Proto: "tcp", Listen: netip.MustParseAddrPort("0.0.0.0:2222"), Target: netip.MustParseAddrPort("10.8.0.1:22")}},
	} {
		got, err := forward.ParseRule(tc.args)
		if err != nil || got != tc.want {
			t.Errorf("ParseRule(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{nil, "want 3 arguments"},
		{[]string{"tcp", "127.0.0.1:80"}, "want 3 arguments"},
		{[]string{"tcp", "127.0.0.1:80", "10.0.0.1:80", "extra"}, "want 3 arguments"},
		{[]string{"sctp", "127.0.0.1:80", "10.0.0.1:80"}, `protocol "sctp"`},
		{[]string{"tcp", "localhost:80", "10.0.0.1:80"}, "listen address"},
		{[]string{"tcp", "127.0.0.1", "10.0.0.1:80"}, "listen address"},
		{[]string{"tcp", "127.0.0.1:0", "10.0.0.1:80"}, "1-65535"},
		{[]string{"tcp", "127.0.0.1:80", "10.0.0.1:65536"}, "target address"},
		{[]string{"tcp", "127.0.0.1:80", "example.com:80"}, "not an IP address"},
		{[]string{"tcp", "127.0.0.1:80", "0.0.0.0:80"}, "unspecified"},
		{[]string{"udp", "[fe80::1%eth0]:80", "10.0.0.1:80"}, "zoned"},
	} {
		_, err := forward.ParseRule(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRule(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	r, err := forward.ParseDirective("reverse-forward", []string{"tcp", "10.8.0.2:22", "127.0.0.1:22"})
	if err != nil || !r.Reverse || r.String() != "reverse-forward tcp 10.8.0.2:22 127.0.0.1:22" {
		t.Errorf("ParseDirective(reverse-forward) = %v, %v", r, err)
	}
	if _, err := forward.ParseDirective("forward", []string{"tcp"}); err == nil || !strings.HasPrefix(err.Error(), "forward: ") {
		t.Errorf("ParseDirective error = %v, want it prefixed by the directive", err)
	}
	if _, err := forward.ParseDirective("portforward", nil); err == nil {
		t.Error("ParseDirective(unknown) = nil error")
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, network string) uint16 {
	t.Helper()
	switch network {
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return uint16(l.Addr().(*net.TCPAddr).Port)
	default:
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	}
}

// startRule runs rule until the test ends and checks that Run returns nil.
func startRule(t *testing.T, rule forward.Rule, local, vpn forward.Network) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- forward.Run(ctx, rule, local, vpn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run(%v) = %v, want nil after cancel", rule, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run(%v) did not return after cancel", rule)
		}
	})
	// Let it start listening (a failed listen shows up at cleanup).
	time.Sleep(20 * time.Millisecond)
}

// checkTCP dials through dial and checks that 1 MiB comes back intact.
func checkTCP(t *testing.T, dial func(ctx context.Context) (net.Conn, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dial(ctx)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v after %d bytes", err, len(got))
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes back, want the same %d bytes", len(got), len(data))
	}
}

// exchangeUDP sends msg on c and returns the reply, retrying twice.
func exchangeUDP(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	buf := make([]byte, 65536)
	for range 3 {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err == nil {
			return string(buf[:n])
		}
	}
	t.Fatalf("no reply to %q", msg)
	return ""
}

// TestForwardTCP: host 127.0.0.1:P → stack a → stack b's echo on B4 and B6.
func TestForwardTCP(t *testing.T) {
	checkGoroutines(t)
	a, b := netstacktest.NewPair(t, netstack.Options{}, netstack.Options{})
	for i, ip := range []netip.Addr{netstacktest.B4, netstacktest.B6} {
		l, err := b.ListenTCP(netip.AddrPortFrom(ip, 80))
		if err != nil {
			t.Fatal(err)
		}
		testecho.TCP(t, l)
		listen := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t, "tcp"))
		rule, err := forward.ParseRule([]string{"tcp", listen.String(), netip.AddrPortFrom(ip, 80).String()})
		if err != nil {
			t.Fatal(err)
		}
		startRule(t, rule, forward.Host{}, forward.StackNetwork(a))
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var wg sync.WaitGroup
			for range 3 { // concurrent connections
				wg.Go(func() {
					checkTCP(t, func(ctx context.Context) (net.Conn, error) {
						var d net.Dialer
						return d.DialContext(ctx, "tcp", listen.String())
					})
				})
			}
			wg.Wait()
		})
	}
}

// TestReverseForwardTCP: stack b dials a's 10.99.0.1:2222 → host echo.
func TestReverseForwardTCP(t *testing.T) {
	checkGoroutines(t)
	a, b := netstacktest.NewPair(t, netstack.Options{}, netstack.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testecho.TCP(t, l)
	rule, err := forward.ParseDirective("reverse-forward", []string{"tcp", "10.99.0.1:2222", l.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	startRule(t, rule, forward.Host{}, forward.StackNetwork(a))
	// And one on the stack's IPv6 address.
	rule6, err := forward.ParseDirective("reverse-forward", []string{"tcp", "[fd00:99::1]:2223", l.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	startRule(t, rule6, forward.Host{}, forward.StackNetwork(a))
	for _, target := range []string{"10.99.0.1:2222", "[fd00:99::1]:2223"} {
		checkTCP(t, func(ctx context.Context) (net.Conn, error) { return b.DialContext(ctx, "tcp", target) })
	}
}

// TestForwardUDP: two host sockets → stack a → stack b's echo on B6, each
// its own session; the echo reports the session's source on the stack.
func TestForwardUDP(t *testing.T) {
	checkGoroutines(t)
	a, b := netstacktest.NewPair(t, netstack.Options{}, netstack.Options{})
	pc, err := b.ListenUDP(netip.AddrPortFrom(netstacktest.B6, 53))
	if err != nil {
		t.Fatal(err)
	}
	testecho.UDP(t, pc, 65536, senderPrefixed)
	listen := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t, "udp"))
	rule, err := forward.ParseRule([]string{"udp", listen.String(), "[fd00:99::2]:53"})
	if err != nil {
		t.Fatal(err)
	}
	rule.UDPIdleTimeout = 300 * time.Millisecond
	startRule(t, rule, forward.Host{}, forward.StackNetwork(a))

	c1, err := net.Dial("udp", listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := net.Dial("udp", listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	big := strings.Repeat("x", 1200)
	r1 := exchangeUDP(t, c1, "one "+big)
	r2 := exchangeUDP(t, c2, "two")
	src1, body1, _ := strings.Cut(r1, " ")
	src2, body2, _ := strings.Cut(r2, " ")
	if body1 != "one "+big || body2 != "two" {
		t.Fatalf("replies %q, %q", r1[:min(len(r1), 60)], r2)
	}
	if !strings.HasPrefix(src1, "[fd00:99::1]:") || src1 == src2 {
		t.Fatalf("sources %s and %s: want two sessions from a's fd00:99::1", src1, src2)
	}
	if again, _, _ := strings.Cut(exchangeUDP(t, c1, "again"), " "); again != src1 {
		t.Fatalf("same client, different session: %s then %s", src1, again)
	}
	// After the idle timeout the session is gone: a new one starts.
	time.Sleep(3 * rule.UDPIdleTimeout)
	if later, _, _ := strings.Cut(exchangeUDP(t, c1, "later"), " "); later == src1 {
		t.Fatalf("session %s survived %v of idleness", src1, 3*rule.UDPIdleTimeout)
	}
}

// TestReverseForwardUDP: stack b sends to a's [fd00:99::1]:5353 → host echo.
func TestReverseForwardUDP(t *testing.T) {
	checkGoroutines(t)
	a, b := netstacktest.NewPair(t, netstack.Options{}, netstack.Options{})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testecho.UDP(t, pc, 65536, senderPrefixed)
	for _, listen := range []string{"[fd00:99::1]:5353", "10.99.0.1:5353"} {
		rule, err := forward.ParseDirective("reverse-forward", []string{"udp", listen, pc.LocalAddr().String()})
		if err != nil {
			t.Fatal(err)
		}
		startRule(t, rule, forward.Host{}, forward.StackNetwork(a))
		c, err := b.DialContext(context.Background(), "udp", listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		payload := make([]byte, 1000)
		_, _ = rand.Read(payload)
		reply := exchangeUDP(t, c, string(payload))
		src, body, _ := strings.Cut(reply, " ")
		if body != string(payload) || !strings.HasPrefix(src, "127.0.0.1:") {
			t.Fatalf("reply via %s: from %s, %d bytes (want the 1000 sent)", listen, src, len(body))
		}
	}
}

// TestRunErrors checks that Run fails clearly when it cannot listen and
// returns nil at once for a cancelled context.
func TestRunErrors(t *testing.T) {
	checkGoroutines(t)
	a, _ := netstacktest.NewPair(t, netstack.Options{}, netstack.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// 10.99.0.7 is not an address of stack a.
	rule, _ := forward.ParseDirective("reverse-forward", []string{"tcp", "10.99.0.7:22", "127.0.0.1:22"})
	if err := forward.Run(ctx, rule, forward.Host{}, forward.StackNetwork(a)); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Run(%v) = %v, want a listen error", rule, err)
	}
	if err := forward.Run(ctx, forward.Rule{Proto: "tcp"}, forward.Host{}, forward.StackNetwork(a)); err == nil {
		t.Error("Run(empty rule) = nil")
	}
	bad := rule
	bad.Proto = "icmp"
	if err := forward.Run(ctx, bad, forward.Host{}, forward.StackNetwork(a)); err == nil {
		t.Error("Run(icmp) = nil")
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	ok, _ := forward.ParseRule([]string{"udp", "127.0.0.1:1", "10.99.0.2:1"})
	if err := forward.Run(done, ok, forward.Host{}, forward.StackNetwork(a)); err != nil {
		t.Errorf("Run(cancelled) = %v, want nil", err)
	}
	if err := forward.Run(ctx, ok, nil, forward.StackNetwork(a)); err == nil {
		t.Errorf("Run(nil local) = %v, want an error", err)
	}
}

// senderPrefixed is the UDP echo reply of these tests: "<sender> <payload>", so a
// test sees which address the forward used.
func senderPrefixed(from net.Addr, p []byte) []byte {
	return append([]byte(from.String()+" "), p...)
}
