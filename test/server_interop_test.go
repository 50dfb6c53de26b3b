package test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"weft/test/harness"
)

// Fixed addresses of client4 (ifconfig-push / ifconfig-ipv6-push in its CCD).
const (
	ccdAddr4 = "10.8.0.200"
	ccdAddr6 = "fd00:8::200"
)

// client1Port is client1's fixed UDP source port.
const client1Port = 40001

// srvClient is one client of the server lab.
type srvClient struct {
	name  string // certificate CN
	kind  harness.ClientKind
	proto string // listener type it uses: udp4 udp6 tcp4 tcp6
	spoke *harness.Spoke
	cert  *harness.IssuedCert
	relay *harness.UDPRelay // float client: talks to the server through a relay
	cli   *harness.ConfClient

	mu  sync.Mutex
	up  bool
	tun harness.TunInfo
}

func (c *srvClient) state() (bool, harness.TunInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up, c.tun
}

func (c *srvClient) setUp(ti harness.TunInfo) {
	c.mu.Lock()
	c.up, c.tun = true, ti
	c.mu.Unlock()
}

// underlay is the client's outer address as the server sees it (host only).
func (c *srvClient) underlay() string {
	if c.relay != nil {
		return c.relay.UpstreamAddr().Addr().String()
	}
	if strings.HasSuffix(c.proto, "6") {
		return c.spoke.V6
	}
	return c.spoke.V4
}

// srvLab is the whole setup of TestServerInterop.
type srvLab struct {
	lab        *harness.ServerLab
	pki        *harness.PKI
	srv        *harness.ConfServer
	statusFile string
	clients    []*srvClient
	byName     map[string]*srvClient
	revoked    *srvClient
	floodNS    *harness.Spoke
	// UDP listeners (targets of the flood).
	udpTargets []netip.AddrPort
}

// upClients returns the clients that came up, in order.
func (l *srvLab) upClients() []*srvClient {
	var out []*srvClient
	for _, c := range l.clients {
		if up, _ := c.state(); up {
			out = append(out, c)
		}
	}
	return out
}

// TestServerInterop: ONE `weft server` process listens on UDP/IPv4, UDP/IPv6,
// TCP/IPv4, TCP/IPv6 (plus a wildcard UDP listener) and serves, at the same
// time, stock openvpn 2.6 clients (client1..client4, one per listener type,
// each in its own namespace), weft clients (weft1..weft4, the same four
// listener types), a client behind a NAT-like UDP relay that changes its
// source port and address (client6, float), and refuses a revoked client
// (client5, crl-verify). It checks that the one process owns all listeners,
// that a UDP flood (garbage, authentic-but-abandoned resets, forged sources)
// creates no session, pool addresses (and client-config-dir ifconfig-push),
// pushed routes (global and per-client), pings to the server and between
// clients (client-to-client), subnets behind client2 (iroute, iroute-ipv6),
// checksummed bulk transfers, the status file (status-version 2), float
// (and that spoofed or replayed packets do not float anyone), reconnection
// with a new session (kill -9, same or new source port, UDP and TCP), and
// exit notifications.
func TestServerInterop(t *testing.T) {
	harness.RequireOpenVPN(t)
	bin := harness.WeftBin(t)
	t.Parallel()
	l := setupServerLab(t, bin)

	t.Run("listeners", func(t *testing.T) { srvCheckListeners(t, l) })
	// The flood comes first: with no client connected yet, the status file
	// must stay empty, and every legitimate client must connect afterwards.
	t.Run("flood", func(t *testing.T) { srvCheckFlood(t, l) })
	for _, c := range append(l.clients, l.revoked) {
		c.cli = harness.StartConfClient(t, c.kind, bin, c.spoke.NS, c.name, srvClientConfFor(l, c))
	}
	t.Run("connect", func(t *testing.T) { srvCheckConnect(t, l) })
	t.Run("pushed-routes", func(t *testing.T) { srvCheckRoutes(t, l) })
	t.Run("ping-server", func(t *testing.T) { srvCheckPingServer(t, l) })
	t.Run("client-to-client", func(t *testing.T) { srvCheckC2C(t, l) })
	t.Run("iroute", func(t *testing.T) { srvCheckIroute(t, l) })
	t.Run("bulk", func(t *testing.T) { srvCheckBulk(t, l) })
	t.Run("revoked", func(t *testing.T) { srvCheckRevoked(t, l) })
	t.Run("status", func(t *testing.T) { srvCheckStatus(t, l) })
	t.Run("float", func(t *testing.T) { srvCheckFloat(t, l) })
	t.Run("reconnect", func(t *testing.T) { srvCheckReconnect(t, l) })
	t.Run("exit-notify", func(t *testing.T) { srvCheckExitNotify(t, l) })
	if l.srv.Proc.Exited() {
		t.Errorf("weft server exited during the test: %s", l.srv.State())
	}
	for _, bad := range []string{"panic:", "data race", "fatal error"} {
		if line, ok := harness.FindLine(l.srv.LogText(), bad); ok {
			t.Errorf("weft server log has %q: %s", bad, line)
		}
	}
}

func setupServerLab(t *testing.T, bin string) *srvLab {
	lab := harness.NewServerLab(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	dir := t.TempDir()
	l := &srvLab{lab: lab, pki: pki, statusFile: filepath.Join(dir, "status.log"), byName: map[string]*srvClient{}}
	add := func(name string, kind harness.ClientKind, proto string) *srvClient {
		ic, err := pki.IssueClient(name)
		if err != nil {
			t.Fatal(err)
		}
		c := &srvClient{name: name, kind: kind, proto: proto, spoke: lab.AddSpoke(t), cert: ic}
		l.byName[name] = c
		return c
	}
	for i, p := range []string{"udp4", "udp6", "tcp4", "tcp6"} {
		l.clients = append(l.clients, add(fmt.Sprintf("client%d", i+1), harness.OpenVPNClient, p))
	}
	l.revoked = add("client5", harness.OpenVPNClient, "udp4")
	delete(l.byName, "client5")
	float := add("client6", harness.OpenVPNClient, "udp4")
	l.clients = append(l.clients, float)
	for i, p := range []string{"udp4", "udp6", "tcp4", "tcp6"} {
		l.clients = append(l.clients, add(fmt.Sprintf("weft%d", i+1), harness.WeftClient, p))
	}
	l.floodNS = lab.AddSpoke(t)

	// client6 reaches the wildcard UDP listener (port 1196) through a relay in
	// its own namespace: 127.0.0.1:<port> -> 10.201.N.1:1196 from <spoke>:<port>.
	srv4 := netip.MustParseAddr(lab.V4)
	srv6 := netip.MustParseAddr(lab.V6)
	relay, err := harness.StartUDPRelay(t, float.spoke.NS, netip.MustParseAddrPort("127.0.0.1:0"),
		netip.AddrPortFrom(srv4, 1196), netip.AddrPortFrom(netip.MustParseAddr(float.spoke.V4), 0))
	if err != nil {
		t.Fatal(err)
	}
	float.relay = relay
	l.udpTargets = []netip.AddrPort{netip.AddrPortFrom(srv4, 1194), netip.AddrPortFrom(srv6, 1194), netip.AddrPortFrom(srv4, 1196)}

	// CRL revoking client5; CCD for client2 (a subnet behind it).
	crl := filepath.Join(dir, "crl.pem")
	if err := pki.WriteCRL(crl, l.revoked.cert.Serial); err != nil {
		t.Fatal(err)
	}
	ccd := filepath.Join(dir, "ccd")
	if err := os.Mkdir(ccd, 0o755); err != nil {
		t.Fatal(err)
	}
	for cn, content := range map[string]string{
		"client2": "iroute 192.168.50.0 255.255.255.0\niroute-ipv6 fd50::/64\n",
		// Fixed addresses for client4, an extra route only for client3.
		"client4": "ifconfig-push " + ccdAddr4 + " 255.255.255.0\nifconfig-ipv6-push " + ccdAddr6 + "/64 fd00:8::1\n",
		"client3": "push \"route 192.168.88.0 255.255.255.0\"\n",
	} {
		if err := os.WriteFile(filepath.Join(ccd, cn), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The subnet behind client2: 192.168.50.1 as a loopback alias (this
	// kernel may lack the dummy link type), without a prefix route: the pushed
	// route to 192.168.50.0/24 goes via the tunnel, also in client2's own
	// namespace, which answers over its tunnel.
	c2 := l.byName["client2"].spoke.NS
	for _, a := range []string{"192.168.50.1/32", "fd50::1/128"} {
		if _, err := harness.Run(10*time.Second, "ip", "-n", c2, "addr", "add", a, "dev", "lo"); err != nil {
			t.Fatal(err)
		}
	}

	conf := fmt.Sprintf(`# weft server lab (generated)
dev tun
topology subnet
server 10.8.0.0 255.255.255.0
server-ipv6 fd00:8::/64
listen udp4 %[1]s:1194
listen udp6 [%[2]s]:1194
listen tcp4 %[1]s:1194
listen tcp6 [%[2]s]:1194
listen udp4 *:1196
ca   %[3]s
cert %[4]s
key  %[5]s
dh none
tls-crypt %[6]s
crl-verify %[7]s
remote-cert-tls client
data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305
client-to-client
keepalive 10 60
explicit-exit-notify 1
client-config-dir %[8]s
route 192.168.50.0 255.255.255.0
route-ipv6 fd50::/64
push "route 192.168.77.0 255.255.255.0"
push "route-ipv6 fd77::/64"
push "route 192.168.50.0 255.255.255.0"
push "route-ipv6 fd50::/64"
status %[9]s 1
status-version 2
verb 5
`, lab.V4, lab.V6, pki.CA, pki.ServerCert, pki.ServerKey, pki.StaticKey, crl, ccd, l.statusFile)
	l.srv = harness.StartConfServer(t, harness.WeftServer, bin, lab.NS, dir, conf)
	return l
}

// srvClientConfFor is client c's config.
func srvClientConfFor(l *srvLab, c *srvClient) string {
	if c.relay != nil {
		return srvClientConf(l.pki, c.cert, "udp4", c.relay.Listen.Addr().String(), int(c.relay.Listen.Port()))
	}
	host := l.lab.V4
	if strings.HasSuffix(c.proto, "6") {
		host = l.lab.V6
	}
	var extra []string
	if c.name == "client1" {
		// A fixed source port: its restart (reconnect) comes from the very same
		// address and port as the session it replaces.
		extra = append(extra, fmt.Sprintf("lport %d", client1Port))
	}
	return srvClientConf(l.pki, c.cert, c.proto, host, 1194, extra...)
}

// srvCheckListeners: the one weft process owns all five listening sockets.
func srvCheckListeners(t *testing.T, l *srvLab) {
	pid := "pid=" + strconv.Itoa(l.srv.Proc.PID())
	want := map[string][]string{
		"-lnup": {l.lab.V4 + ":1194", "[" + l.lab.V6 + "]:1194", "0.0.0.0:1196"},
		"-lntp": {l.lab.V4 + ":1194", "[" + l.lab.V6 + "]:1194"},
	}
	for flags, addrs := range want {
		out, err := harness.Run(10*time.Second, harness.NSExec(l.lab.NS, "ss", "-H", flags)...)
		if err != nil {
			t.Fatalf("ss: %v", err)
		}
		for _, a := range addrs {
			found := false
			for _, line := range strings.Split(out, "\n") {
				f := strings.Fields(line)
				if len(f) >= 4 && f[3] == a && strings.Contains(line, pid) {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s listener on %s owned by the weft server (%s):\n%s", map[string]string{"-lnup": "UDP", "-lntp": "TCP"}[flags], a, pid, out)
			}
		}
	}
	if n := l.srv.CountLines("listening"); n != 5 {
		t.Errorf("weft server logged %d \"listening\" lines, want 5 (one per listen directive)", n)
	}
}

// srvCheckFlood: 2000 packets of garbage with hard-reset opcodes, authentic
// (tls-crypt) resets that are never followed up, and resets from forged source
// addresses must create no session, and the server must keep working.
func srvCheckFlood(t *testing.T, l *srvLab) {
	fs := l.floodNS
	res, err := flood(floodSpec{
		ns: fs.NS, src4: netip.MustParseAddr(fs.V4), src6: netip.MustParseAddr(fs.V6),
		targets: l.udpTargets, staticKey: l.pki.StaticKey,
		garbage: 1000, validResets: 500, spoofed: 500,
		spoofNet: netip.MustParsePrefix(fmt.Sprintf("10.201.%d.128/25", l.lab.N)),
		sockets:  16, replyDeadline: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	t.Logf("flood: %s", res)
	if total := res.garbage + res.validResets + res.spoofed; total < 2000 {
		t.Errorf("flood sent only %d packets", total)
	}
	// The server answered authentic resets statelessly: proof that the flood
	// reached it and was parsed (not just lost on the way).
	if res.replies == 0 {
		t.Errorf("no stateless P_CONTROL_HARD_RESET_SERVER_V2 came back for %d tls-crypt-valid resets: the flood did not reach the server, or the server does not answer resets any more", res.validResets)
	}
	if l.srv.Proc.Exited() {
		t.Fatalf("weft server died during the flood: %s", l.srv.State())
	}
	st, err := statusWait(l.statusFile, 10*time.Second, func(s *harness.StatusV2) bool { return !s.Time.Before(res.end.Truncate(time.Second)) })
	if err != nil {
		t.Errorf("status after flood: %v", err)
	} else if n := len(st.Rows["CLIENT_LIST"]); n != 0 {
		t.Errorf("status file lists %d clients after the flood, want none:\n%s", n, st.Raw)
	}
	for _, bad := range []string{srvNewSessLog, srvConnectedLog, "session setup failed"} {
		if line, ok := harness.FindLine(l.srv.LogText(), bad); ok {
			t.Errorf("flood created server state: log line %q", line)
		}
	}
}

// srvCheckConnect: every client comes up with addresses from the pools; the
// revoked client is checked later.
func srvCheckConnect(t *testing.T, l *srvLab) {
	var wg sync.WaitGroup
	errs := make([]error, len(l.clients))
	for i, c := range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ti, err := c.cli.WaitUp(45*time.Second, srvPool4, srvPool6)
			if err != nil {
				errs[i] = err
				return
			}
			c.setUp(ti)
		}()
	}
	wg.Wait()
	seen4, seen6 := map[netip.Addr]string{}, map[netip.Addr]string{}
	for i, c := range l.clients {
		if errs[i] != nil {
			t.Errorf("%s (%s over %s): %v", c.name, c.kind, c.proto, errs[i])
			continue
		}
		_, ti := c.state()
		t.Logf("%-8s %-7s over %s up after %v: %s %s %s", c.name, c.kind, c.proto, c.cli.UpAt.Sub(c.cli.Start).Round(time.Millisecond), ti.Dev, ti.V4, ti.V6)
		switch {
		case ti.V4 == netip.MustParseAddr("10.8.0.1") || ti.V4 == srvPool4.Addr():
			t.Errorf("%s got a reserved IPv4 address %s", c.name, ti.V4)
		case ti.V6 == netip.MustParseAddr("fd00:8::1") || ti.V6 == srvPool6.Addr():
			t.Errorf("%s got a reserved IPv6 address %s", c.name, ti.V6)
		}
		if o, dup := seen4[ti.V4]; dup {
			t.Errorf("%s and %s got the same IPv4 address %s", o, c.name, ti.V4)
		}
		if o, dup := seen6[ti.V6]; dup {
			t.Errorf("%s and %s got the same IPv6 address %s", o, c.name, ti.V6)
		}
		seen4[ti.V4], seen6[ti.V6] = c.name, c.name
		if c.name == "client4" && (ti.V4.String() != ccdAddr4 || ti.V6.String() != ccdAddr6) {
			t.Errorf("client4 got %s %s, want its client-config-dir addresses %s %s", ti.V4, ti.V6, ccdAddr4, ccdAddr6)
		}
		if _, ok := l.srv.WaitLog(5*time.Second, srvConnectedLog, "cn="+c.name+" "); !ok {
			t.Errorf("server log has no %q line with cn=%s", srvConnectedLog, c.name)
		}
	}
	// The flood check relies on the server logging every new UDP session (at
	// verb 5): make sure it does, or that check would prove nothing.
	udp := 0
	for _, c := range l.clients {
		if strings.HasPrefix(c.proto, "udp") {
			udp++
		}
	}
	if n := l.srv.CountLines(srvNewSessLog); n < udp {
		t.Errorf("server logged %q %d times for %d UDP clients; the flood check cannot see sessions", srvNewSessLog, n, udp)
	}
}

// srvCheckRoutes: the pushed routes are in each client's routing table via its
// tunnel device; the route pushed from client3's CCD only there.
func srvCheckRoutes(t *testing.T, l *srvLab) {
	for _, c := range l.upClients() {
		_, ti := c.state()
		out, err := harness.Run(5*time.Second, "ip", "-n", c.spoke.NS, "-4", "route", "show", "192.168.88.0/24")
		if has := strings.Contains(out, "dev "+ti.Dev); err != nil || has != (c.name == "client3") {
			t.Errorf("%s (%s): route 192.168.88.0/24 (pushed from client3's CCD only) present=%v: %q %v", c.name, c.kind, has, strings.TrimSpace(out), err)
		}
		for _, r := range [][]string{{"-4", "192.168.77.0/24"}, {"-6", "fd77::/64"}, {"-4", "192.168.50.0/24"}, {"-6", "fd50::/64"}} {
			out, err := harness.Run(5*time.Second, "ip", "-n", c.spoke.NS, r[0], "route", "show", r[1])
			if err != nil || !strings.Contains(out, "dev "+ti.Dev) {
				t.Errorf("%s (%s): pushed route %s not via %s: %q %v", c.name, c.kind, r[1], ti.Dev, strings.TrimSpace(out), err)
			}
		}
	}
}

// runEach runs fn for every client as parallel subtests.
func runEach(t *testing.T, cs []*srvClient, fn func(t *testing.T, c *srvClient)) {
	for _, c := range cs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fn(t, c)
		})
	}
}

// srvCheckPingServer: every client reaches 10.8.0.1 and fd00:8::1.
func srvCheckPingServer(t *testing.T, l *srvLab) {
	runEach(t, l.upClients(), func(t *testing.T, c *srvClient) {
		for _, a := range []string{harness.TunServerV4, harness.TunServerV6} {
			if err := harness.PingSteady(c.spoke.NS, a); err != nil {
				t.Errorf("%s (%s over %s): %v", c.name, c.kind, c.proto, err)
			}
		}
	})
}

// srvCheckC2C: every client pings the next one's tunnel addresses (a ring over
// openvpn and weft clients on all listener types), v4 and v6.
func srvCheckC2C(t *testing.T, l *srvLab) {
	up := l.upClients()
	if len(up) < 2 {
		t.Skip("fewer than two clients up")
	}
	for i, c := range up {
		next := up[(i+1)%len(up)]
		t.Run(c.name+"-to-"+next.name, func(t *testing.T) {
			t.Parallel()
			_, ti := next.state()
			for _, a := range []netip.Addr{ti.V4, ti.V6} {
				if err := harness.PingSteady(c.spoke.NS, a.String()); err != nil {
					t.Errorf("%s (%s/%s) -> %s (%s/%s) %s: %v", c.name, c.kind, c.proto, next.name, next.kind, next.proto, a, err)
				}
			}
		})
	}
}

// srvCheckIroute: 192.168.50.0/24 and fd50::/64 live behind client2 (iroute
// and iroute-ipv6 in its CCD; 192.168.50.1 and fd50::1 exist only in client2's
// namespace); client1, a weft client and the server itself reach them through
// the tunnel, i.e. client -> server -> client2.
func srvCheckIroute(t *testing.T, l *srvLab) {
	c2 := l.byName["client2"]
	if up, _ := c2.state(); !up {
		t.Skip("client2 is not up")
	}
	behind := []string{"192.168.50.1", "fd50::1"}
	for _, name := range []string{"client1", "weft3"} {
		c := l.byName[name]
		if up, _ := c.state(); !up {
			t.Errorf("%s is not up", name)
			continue
		}
		_, ti := c.state()
		for _, a := range behind {
			out, err := harness.Run(5*time.Second, "ip", "-n", c.spoke.NS, "route", "get", a)
			if err != nil || !strings.Contains(out, "dev "+ti.Dev) {
				t.Errorf("%s: %s is not routed via the tunnel %s: %q %v", name, a, ti.Dev, strings.TrimSpace(out), err)
			}
			if err := harness.PingSteady(c.spoke.NS, a); err != nil {
				t.Errorf("%s -> %s (behind client2): %v", name, a, err)
			}
		}
	}
	// The server's own routes (route / route-ipv6) go to its tun device.
	for _, a := range behind {
		if err := harness.PingSteady(l.lab.NS, a); err != nil {
			t.Errorf("server namespace -> %s (behind client2): %v", a, err)
		}
	}
	for _, c := range append(l.clients, l.revoked) {
		if c == nil || c == c2 {
			continue
		}
		addrs := harness.Addrs(c.spoke.NS)
		if strings.Contains(addrs, "192.168.50.1/") || strings.Contains(addrs, "fd50::1/") {
			t.Fatalf("lab error: %s also has an address behind client2", c.name)
		}
	}
}

// srvCheckBulk: a checksummed bulk transfer from every client to the server
// (over IPv4 and IPv6) and between clients of different listener types.
func srvCheckBulk(t *testing.T, l *srvLab) {
	for _, c := range l.upClients() {
		t.Run(c.name+"-to-server", func(t *testing.T) {
			srvBulk(t, c.spoke.NS, l.lab.NS, harness.TunServerV4+":5001")
			srvBulk(t, c.spoke.NS, l.lab.NS, "["+harness.TunServerV6+"]:5002")
		})
	}
	pairs := [][3]string{
		{"client1", "client3", "4"}, // openvpn UDP/IPv4 -> openvpn TCP/IPv4
		{"client4", "client2", "6"}, // openvpn TCP/IPv6 -> openvpn UDP/IPv6
		{"weft1", "client4", "4"},   // weft UDP/IPv4 -> openvpn TCP/IPv6
		{"client3", "weft2", "6"},   // openvpn TCP/IPv4 -> weft UDP/IPv6
		{"weft4", "weft3", "4"},     // weft TCP/IPv6 -> weft TCP/IPv4
	}
	for _, p := range pairs {
		src, dst := l.byName[p[0]], l.byName[p[1]]
		t.Run(p[0]+"-to-"+p[1], func(t *testing.T) {
			sup, _ := src.state()
			dup, dti := dst.state()
			if !sup || !dup {
				t.Skipf("%s or %s is not up (reported by connect)", p[0], p[1])
			}
			a := dti.V4
			if p[2] == "6" {
				a = dti.V6
			}
			srvBulk(t, src.spoke.NS, dst.spoke.NS, hostPort(a, 5003))
		})
	}
}

// srvCheckRevoked: client5's certificate is on the CRL: it never gets a tunnel
// and the server says why.
func srvCheckRevoked(t *testing.T, l *srvLab) {
	c := l.revoked
	defer c.cli.Kill()
	line, ok := l.srv.WaitLog(20*time.Second, srvRevokedLog, "client5")
	if !ok {
		t.Errorf("server log has no line with %q and client5 within 20 s of client5 connecting", srvRevokedLog)
	} else {
		t.Logf("server: %s", strings.TrimSpace(line))
	}
	// client5 retries (connect-retry 1); give it a few more attempts.
	time.Sleep(3 * time.Second)
	if strings.Contains(c.cli.LogText(), harness.InitCompleted) {
		t.Errorf("revoked client5 logged %q", harness.InitCompleted)
	}
	if ti := c.cli.Tun(srvPool4, srvPool6); ti.V4.IsValid() || ti.V6.IsValid() {
		t.Errorf("revoked client5 got tunnel addresses %+v", ti)
	}
	if line, ok := harness.FindLine(l.srv.LogText(), srvConnectedLog, "cn=client5"); ok {
		t.Errorf("server connected the revoked client: %s", line)
	}
}

// srvCheckStatus: the status file (status-version 2, written every second)
// lists every connected client with its CN, real address and virtual
// addresses, and not the revoked one.
func srvCheckStatus(t *testing.T, l *srvLab) {
	up := l.upClients()
	want := map[string]*srvClient{}
	for _, c := range up {
		want[c.name] = c
	}
	st, err := statusWait(l.statusFile, 10*time.Second, func(s *harness.StatusV2) bool {
		got := statusCNs(s)
		if len(s.Rows["CLIENT_LIST"]) != len(want) {
			return false
		}
		for n := range want {
			if len(got[n]) != 1 {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Errorf("%v: want exactly one CLIENT_LIST row for each of %v", err, sortedKeys(want))
		if st == nil {
			return
		}
		t.Logf("status:\n%s", st.Raw)
	}
	hdr := st.Headers["CLIENT_LIST"]
	for _, col := range []string{"Common Name", "Real Address", "Virtual Address", "Virtual IPv6 Address"} {
		if !contains(hdr, col) {
			t.Fatalf("HEADER,CLIENT_LIST lacks %q: %v", col, hdr)
		}
	}
	for cn, rows := range statusCNs(st) {
		c := want[cn]
		if c == nil {
			t.Errorf("status lists unexpected client %q: %v", cn, rows)
			continue
		}
		for _, r := range rows {
			_, ti := c.state()
			ra := st.Col("CLIENT_LIST", r, "Real Address")
			if h := realHost(ra); h != c.underlay() {
				t.Errorf("%s: Real Address %q, want host %s", cn, ra, c.underlay())
			}
			if c.relay != nil {
				if want := c.relay.UpstreamAddr().String(); ra != want {
					t.Errorf("%s: Real Address %q, want the relay's %s", cn, ra, want)
				}
			}
			if v := st.Col("CLIENT_LIST", r, "Virtual Address"); v != ti.V4.String() {
				t.Errorf("%s: Virtual Address %q, the client has %s", cn, v, ti.V4)
			}
			if v := st.Col("CLIENT_LIST", r, "Virtual IPv6 Address"); v != ti.V6.String() {
				t.Errorf("%s: Virtual IPv6 Address %q, the client has %s", cn, v, ti.V6)
			}
		}
	}
	if _, ok := statusCNs(st)["client5"]; ok {
		t.Errorf("status lists the revoked client5")
	}
	// ROUTING_TABLE: one row per virtual address.
	routes := map[string]string{}
	for _, r := range st.Rows["ROUTING_TABLE"] {
		routes[st.Col("ROUTING_TABLE", r, "Virtual Address")] = st.Col("ROUTING_TABLE", r, "Common Name")
	}
	for _, c := range up {
		_, ti := c.state()
		for _, a := range []netip.Addr{ti.V4, ti.V6} {
			if routes[a.String()] != c.name {
				t.Errorf("ROUTING_TABLE: %s -> %q, want %s", a, routes[a.String()], c.name)
			}
		}
	}
}

// srvCheckFloat: client6 sits behind a relay that acts like a NAT rebinding:
// its packets come from a new source port, then from a new address. The
// session must follow (the server logs the float) without a new handshake,
// and spoofed or replayed data packets from elsewhere must not hijack any
// session.
func srvCheckFloat(t *testing.T, l *srvLab) {
	c := l.byName["client6"]
	if up, _ := c.state(); !up {
		t.Skip("client6 is not up")
	}
	r := c.relay
	peer := l.byName["client1"]
	_, pti := peer.state()
	checkTraffic := func(when string) {
		t.Helper()
		for _, a := range []string{harness.TunServerV4, harness.TunServerV6} {
			if err := harness.PingSteady(c.spoke.NS, a); err != nil {
				t.Errorf("%s: client6 -> %s: %v", when, a, err)
			}
		}
		if up, _ := peer.state(); up {
			if err := harness.PingSteady(c.spoke.NS, pti.V4.String()); err != nil {
				t.Errorf("%s: client6 -> client1 %s: %v", when, pti.V4, err)
			}
		}
	}
	inits := func() int { return strings.Count(c.cli.LogText(), harness.InitCompleted) }
	conns := func() int { return l.srv.CountLines(srvConnectedLog, "cn=client6 ") }
	inits0, conns0 := inits(), conns()

	// 1. Spoofed P_DATA_V2 packets with every plausible peer-id from the flood
	// namespace: they do not authenticate, so no session may float there.
	fs := l.floodNS
	res, err := flood(floodSpec{ns: fs.NS, src4: netip.MustParseAddr(fs.V4), src6: netip.MustParseAddr(fs.V6),
		targets: l.udpTargets, staticKey: l.pki.StaticKey, dataSpoofs: 600, dataPeerIDs: 16, sockets: 4})
	if err != nil {
		t.Fatalf("spoofed data packets: %v", err)
	}
	t.Logf("spoofed data: %s", res)
	// Replays of client6's own (authentic) data packets from the flood
	// namespace: they decrypt but fail the replay check, so no float either.
	rec := r.Recorded()
	if len(rec) == 0 {
		t.Errorf("the relay recorded no data packets of client6 to replay")
	}
	replayer, err := harness.ListenUDPIn(fs.NS, netip.AddrPortFrom(netip.MustParseAddr(fs.V4), 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range rec {
		_, _ = replayer.WriteToUDPAddrPort(b, r.Upstream)
	}
	replayer.Close()
	t.Logf("replayed %d recorded data packets of client6 from %s", len(rec), fs.V4)
	checkTraffic("after spoofed and replayed data packets")
	if line, ok := harness.FindLine(l.srv.LogText(), srvFloatLog); ok {
		t.Errorf("a session floated to the spoofer: %s", line)
	}

	// 2. New source port, same address.
	for step, src := range []string{c.spoke.V4, ""} {
		old := r.UpstreamAddr()
		if src == "" {
			// 3. New source address: a second address on the client's link.
			a := fmt.Sprintf("10.201.%d.%d", l.lab.N, 100+c.spoke.Index)
			if _, err := harness.Run(5*time.Second, "ip", "-n", c.spoke.NS, "addr", "add", a+"/24", "dev", c.spoke.If); err != nil {
				t.Fatal(err)
			}
			src = a
		}
		nu, err := r.Rebind(netip.AddrPortFrom(netip.MustParseAddr(src), 0))
		if err != nil {
			t.Fatal(err)
		}
		what := [...]string{"new source port", "new source address"}[step]
		t.Logf("%s: client6 now reaches the server from %s (was %s)", what, nu, old)
		checkTraffic("after " + what)
		if line, ok := l.srv.WaitLog(5*time.Second, srvFloatLog, "cn=client6", "to="+nu.String()); !ok {
			t.Errorf("%s: server log has no %q line for client6 to %s", what, srvFloatLog, nu)
		} else {
			t.Logf("server: %s", strings.TrimSpace(line))
		}
		_, err = statusWait(l.statusFile, 5*time.Second, func(s *harness.StatusV2) bool {
			rows := statusCNs(s)["client6"]
			return len(rows) == 1 && s.Col("CLIENT_LIST", rows[0], "Real Address") == nu.String()
		})
		if err != nil {
			t.Errorf("%s: status does not show client6 at %s: %v", what, nu, err)
		}
	}
	if n := inits(); n != inits0 {
		t.Errorf("client6 logged %q %d more time(s): it reconnected instead of floating", harness.InitCompleted, n-inits0)
	}
	if n := conns(); n != conns0 {
		t.Errorf("server logged %q for client6 %d more time(s): a new handshake instead of a float", srvConnectedLog, n-conns0)
	}
}

// srvCheckReconnect: kill -9 openvpn clients and start them again from the
// same namespace: client1 (UDP, fixed source port: the new session comes from
// the very address of the old one), client2 (UDP, new source port, the one
// with the iroutes) and client3 (TCP). The new session replaces the old one
// (one status entry per CN) and works, including the iroutes.
func srvCheckReconnect(t *testing.T, l *srvLab) {
	for _, name := range []string{"client1", "client2", "client3"} {
		c := l.byName[name]
		t.Run(name, func(t *testing.T) {
			if up, _ := c.state(); !up {
				t.Skipf("%s is not up", name)
			}
			before := l.srv.CountLines(srvConnectedLog, "cn="+name+" ")
			c.cli.Kill()
			if err := c.cli.Launch(); err != nil {
				t.Fatal(err)
			}
			ti, err := c.cli.WaitUp(30*time.Second, srvPool4, srvPool6)
			if err != nil {
				t.Fatalf("%s after kill -9 and restart: %v", name, err)
			}
			c.setUp(ti)
			t.Logf("%s reconnected after %v: %s %s", name, c.cli.UpAt.Sub(c.cli.Start).Round(time.Millisecond), ti.V4, ti.V6)
			ok := harness.WaitFor(5*time.Second, 100*time.Millisecond, func() bool {
				return l.srv.CountLines(srvConnectedLog, "cn="+name+" ") > before
			})
			if !ok {
				t.Errorf("server did not log a new %q for %s", srvConnectedLog, name)
			}
			for _, a := range []string{harness.TunServerV4, harness.TunServerV6} {
				if err := harness.PingSteady(c.spoke.NS, a); err != nil {
					t.Errorf("%s after reconnect -> %s: %v", name, a, err)
				}
			}
			if p := l.byName["client4"]; p != c {
				if up, pti := p.state(); up {
					if err := harness.PingSteady(c.spoke.NS, pti.V6.String()); err != nil {
						t.Errorf("%s after reconnect -> client4: %v", name, err)
					}
				}
			}
			st, err := statusWait(l.statusFile, 10*time.Second, func(s *harness.StatusV2) bool {
				rows := statusCNs(s)[name]
				return len(rows) == 1 && s.Col("CLIENT_LIST", rows[0], "Virtual Address") == ti.V4.String() &&
					!s.Time.Before(c.cli.UpAt.Truncate(time.Second))
			})
			if err != nil {
				var rows [][]string
				if st != nil {
					rows = statusCNs(st)[name]
				}
				t.Errorf("status: want exactly one entry for %s with its new address %s, got %d %v: %v", name, ti.V4, len(rows), rows, err)
			}
			if name == "client1" {
				if st != nil {
					if rows := statusCNs(st)[name]; len(rows) == 1 {
						if ra, want := st.Col("CLIENT_LIST", rows[0], "Real Address"), hostPort(netip.MustParseAddr(c.spoke.V4), client1Port); ra != want {
							t.Errorf("client1's Real Address %q, want its fixed %s", ra, want)
						}
					}
				}
			}
			if name == "client2" {
				for _, a := range []string{"192.168.50.1", "fd50::1"} {
					if err := harness.PingSteady(l.byName["client3"].spoke.NS, a); err != nil {
						t.Errorf("client3 -> %s after client2 reconnected (the iroute must follow the new session): %v", a, err)
					}
				}
			}
		})
	}
}

// srvCheckExitNotify: an openvpn and a weft UDP client stop with SIGTERM; the
// server gets their exit notification (explicit-exit-notify) and drops them
// from the status at once, long before ping-restart.
func srvCheckExitNotify(t *testing.T, l *srvLab) {
	runEach(t, []*srvClient{l.byName["client1"], l.byName["weft2"]}, func(t *testing.T, c *srvClient) {
		if up, _ := c.state(); !up {
			t.Skipf("%s is not up", c.name)
		}
		if ok := c.cli.Proc.Stop(syscall.SIGTERM, 10*time.Second); !ok {
			t.Errorf("%s did not exit within 10 s of SIGTERM", c.name)
		}
		if _, ok := l.srv.WaitLog(5*time.Second, srvExitLog, "cn="+c.name+" "); !ok {
			t.Errorf("server log has no %q for %s", srvExitLog, c.name)
		}
		if _, err := statusWait(l.statusFile, 5*time.Second, func(s *harness.StatusV2) bool {
			return len(statusCNs(s)[c.name]) == 0
		}); err != nil {
			t.Errorf("%s still in the status file after its exit notification: %v", c.name, err)
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
