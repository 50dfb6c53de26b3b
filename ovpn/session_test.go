package ovpn

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"weft/certcheck"
	"weft/compress"
	"weft/controlwrap"
	"weft/datachan"
	"weft/internal/testpki"
	"weft/tlsengine"
	"weft/wire"
)

// testNet connects a client and a server session in memory under a virtual clock.
type testNet struct {
	t       testing.TB
	c, s    *Session
	now     time.Time
	drop    func(toServer bool, pkt []byte) bool
	cEv     []Event
	sEv     []Event
	cTun    [][]byte
	sTun    [][]byte
	sent    int
	dropped int
}

type pkiSet struct {
	ca       *testpki.CA
	srv, cli *testpki.Leaf
}

func newPKI(t testing.TB) *pkiSet {
	t.Helper()
	ca, err := testpki.NewCA("test ca")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("server", x509.ExtKeyUsageServerAuth, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Issue("client", x509.ExtKeyUsageClientAuth, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return &pkiSet{ca: ca, srv: srv, cli: cli}
}

func (p *pkiSet) tlsConfig(server bool) *tlsengine.Config {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	want := "server"
	leaf := p.cli
	if server {
		want, leaf = "client", p.srv
	}
	opts := certcheck.Options{Roots: pool, RemoteCertTLS: want}
	return &tlsengine.Config{
		Server:       server,
		Certificates: []tls.Certificate{leaf.TLS},
		VerifyPeer:   func(raw [][]byte) error { return certcheck.Verify(opts, raw, time.Now()) },
	}
}

type wrapKind int

const (
	wrapNone wrapKind = iota
	wrapAuth
	wrapCrypt
)

func staticKey() *controlwrap.StaticKey {
	var k controlwrap.StaticKey
	for i := range k {
		k[i] = byte(i * 7)
	}
	return &k
}

func wrapper(t testing.TB, kind wrapKind, server bool) controlwrap.Wrapper {
	t.Helper()
	var w controlwrap.Wrapper
	var err error
	switch kind {
	case wrapNone:
		w = controlwrap.NewNone()
	case wrapAuth:
		dir := controlwrap.Dir1
		if server {
			dir = controlwrap.Dir0
		}
		w, err = controlwrap.NewTLSAuth(staticKey(), dir, "SHA256")
	case wrapCrypt:
		w, err = controlwrap.NewTLSCrypt(staticKey(), server)
	}
	if err != nil {
		t.Fatal(err)
	}
	return w
}

type pairOpts struct {
	wrap          wrapKind
	clientCiphers []datachan.Cipher
	serverCiphers []datachan.Cipher
	disableEKM    bool
	clientReneg   time.Duration
	serverReneg   time.Duration
	pingRestart   time.Duration
	clientEngine  string
	serverEngine  string
	clientComp    compress.Spec
	serverComp    compress.Spec
	pushExtra     []string
}

func newPair(t testing.TB, o pairOpts) *testNet {
	t.Helper()
	p := newPKI(t)
	eng, err := tlsengine.Lookup(o.clientEngine)
	if err != nil {
		t.Fatal(err)
	}
	seng, err := tlsengine.Lookup(o.serverEngine)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	if o.clientReneg == 0 {
		o.clientReneg = -1
	}
	if o.serverReneg == 0 {
		o.serverReneg = -1
	}
	cs, err := NewSession(Config{
		Role: RoleClient, TLS: eng, TLSConfig: p.tlsConfig(false), Wrapper: wrapper(t, o.wrap, false),
		DataCiphers: o.clientCiphers, DisableEKM: o.disableEKM, Pull: true,
		Options: "V4,dev-type tun,tls-client", RenegSec: o.clientReneg, PingRestart: o.pingRestart, Compression: o.clientComp,
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := NewSession(Config{
		Role: RoleServer, TLS: seng, TLSConfig: p.tlsConfig(true), Wrapper: wrapper(t, o.wrap, true),
		DataCiphers: o.serverCiphers, Options: "V4,dev-type tun,tls-server", RenegSec: o.serverReneg, PeerID: 7, Compression: o.serverComp,
		Authorize: func(ci *ClientInfo) ([]string, error) {
			if ci.CommonName != "client" {
				return nil, fmt.Errorf("unexpected client %q", ci.CommonName)
			}
			return append([]string{"topology subnet", "route-gateway 10.8.0.1", "ifconfig 10.8.0.2 255.255.255.0", "ifconfig-ipv6 fd00:8::1000/64 fd00:8::1", "ping 10", "ping-restart 60"}, o.pushExtra...), nil
		},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	return &testNet{t: t, c: cs, s: ss, now: now}
}

// settle exchanges packets until both sides are quiet at the current time.
func (n *testNet) settle() {
	for i := 0; i < 1000; i++ {
		co, so := n.c.Outgoing(), n.s.Outgoing()
		cn, sn := copyAll(co), copyAll(so)
		n.cEv = append(n.cEv, n.c.Events()...)
		n.sEv = append(n.sEv, n.s.Events()...)
		n.cTun = append(n.cTun, copyAll(n.c.Delivered())...)
		n.sTun = append(n.sTun, copyAll(n.s.Delivered())...)
		if len(cn) == 0 && len(sn) == 0 {
			return
		}
		for _, p := range cn {
			n.sent++
			if n.drop != nil && n.drop(true, p) {
				n.dropped++
				continue
			}
			n.s.HandlePacket(n.now, p)
		}
		for _, p := range sn {
			n.sent++
			if n.drop != nil && n.drop(false, p) {
				n.dropped++
				continue
			}
			n.c.HandlePacket(n.now, p)
		}
	}
	n.t.Fatal("sessions never went quiet")
}

func copyAll(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, p := range in {
		out[i] = append([]byte(nil), p...)
	}
	return out
}

// advance runs virtual time forward to until, firing deadlines on the way.
func (n *testNet) advance(until time.Time) {
	for i := 0; i < 100000; i++ {
		n.settle()
		next := until
		for _, d := range []time.Time{n.c.NextDeadline(), n.s.NextDeadline()} {
			if !d.IsZero() && d.Before(next) {
				next = d
			}
		}
		if next.Before(n.now) {
			next = n.now
		}
		if next.After(until) || (next.Equal(n.now) && !n.now.Before(until)) {
			n.now = until
			n.c.Tick(n.now)
			n.s.Tick(n.now)
			n.settle()
			return
		}
		n.now = next
		n.c.Tick(n.now)
		n.s.Tick(n.now)
	}
	n.t.Fatal("advance did not terminate")
}

func (n *testNet) connect(within time.Duration) {
	n.t.Helper()
	deadline := n.now.Add(within)
	for n.now.Before(deadline) && !(n.c.Connected() && n.s.Connected()) {
		n.advance(n.now.Add(100 * time.Millisecond))
	}
	if !n.c.Connected() || !n.s.Connected() {
		n.t.Fatalf("not connected after %v: client %v server %v; client events %v server events %v", within, n.c.Connected(), n.s.Connected(), n.cEv, n.sEv)
	}
}

func ipPacket(i int) []byte {
	p := make([]byte, 60+i%900)
	p[0] = 0x45
	for j := 1; j < len(p); j++ {
		p[j] = byte(i + j)
	}
	return p
}

// exchange sends count packets each way and checks they arrive intact.
func (n *testNet) exchange(count int) {
	n.t.Helper()
	n.cTun, n.sTun = nil, nil
	for i := 0; i < count; i++ {
		n.c.SendIP(n.now, ipPacket(i))
		n.s.SendIP(n.now, ipPacket(i+1000))
	}
	n.settle()
	if len(n.sTun) != count || len(n.cTun) != count {
		n.t.Fatalf("delivered %d to server and %d to client, want %d each (client stats %+v)", len(n.sTun), len(n.cTun), count, n.c.Stats())
	}
	for i := 0; i < count; i++ {
		if !bytes.Equal(n.sTun[i], ipPacket(i)) || !bytes.Equal(n.cTun[i], ipPacket(i+1000)) {
			n.t.Fatalf("packet %d corrupted", i)
		}
	}
}

func TestHandshakeMatrix(t *testing.T) {
	all := []datachan.Cipher{datachan.AES256GCM, datachan.AES128GCM, datachan.ChaCha20Poly1305}
	cases := []struct {
		name string
		o    pairOpts
		want datachan.Cipher
	}{
		{"none/aes256", pairOpts{wrap: wrapNone, clientCiphers: all, serverCiphers: all}, datachan.AES256GCM},
		{"tls-auth/aes128", pairOpts{wrap: wrapAuth, clientCiphers: []datachan.Cipher{datachan.AES128GCM}, serverCiphers: all}, datachan.AES128GCM},
		{"tls-crypt/chacha", pairOpts{wrap: wrapCrypt, clientCiphers: []datachan.Cipher{datachan.ChaCha20Poly1305}, serverCiphers: all}, datachan.ChaCha20Poly1305},
		{"tls-crypt/prf", pairOpts{wrap: wrapCrypt, clientCiphers: all, serverCiphers: all, disableEKM: true}, datachan.AES256GCM},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newPair(t, tc.o)
			n.connect(10 * time.Second)
			if n.c.Cipher() != tc.want || n.s.Cipher() != tc.want {
				t.Errorf("cipher client %v server %v, want %v", n.c.Cipher(), n.s.Cipher(), tc.want)
			}
			if n.c.ekm == tc.o.disableEKM {
				t.Errorf("EKM = %v with DisableEKM %v", n.c.ekm, tc.o.disableEKM)
			}
			p := n.c.Pushed()
			if p == nil || p.PeerID != 7 || p.Local.String() != "10.8.0.2" || p.Local6.String() != "fd00:8::1000/64" {
				t.Fatalf("pushed options = %+v", p)
			}
			n.exchange(50)
		})
	}
}

// TestEngines runs a full session over every pair of compiled-in TLS engines.
func TestEngines(t *testing.T) {
	for _, ce := range tlsengine.Names() {
		for _, se := range tlsengine.Names() {
			t.Run(ce+"-"+se, func(t *testing.T) {
				n := newPair(t, pairOpts{wrap: wrapCrypt, clientEngine: ce, serverEngine: se, clientReneg: 10 * time.Second})
				n.connect(10 * time.Second)
				n.exchange(10)
				for i := 0; i < 12; i++ {
					n.advance(n.now.Add(time.Second))
					n.exchange(2)
				}
				if n.c.Stats().Renegotiations == 0 {
					t.Error("no renegotiation happened")
				}
			})
		}
	}
}

func TestNoSharedCipher(t *testing.T) {
	n := newPair(t, pairOpts{wrap: wrapCrypt,
		clientCiphers: []datachan.Cipher{datachan.ChaCha20Poly1305},
		serverCiphers: []datachan.Cipher{datachan.AES128GCM}})
	n.advance(n.now.Add(5 * time.Second))
	if len(n.cEv) == 0 || n.cEv[0].Kind != EventAuthFailed || !strings.Contains(n.cEv[0].Reason, "no shared cipher") {
		t.Fatalf("client events = %v, want AUTH_FAILED with no shared cipher", n.cEv)
	}
}

func TestControlLossRecovers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := newPair(t, pairOpts{wrap: wrapCrypt})
	n.drop = func(_ bool, p []byte) bool {
		op, _ := wire.SplitHeader(p[0])
		return op.IsControl() && rng.IntN(100) < 30
	}
	n.connect(60 * time.Second)
	if n.dropped == 0 {
		t.Fatal("the test dropped nothing")
	}
	if n.c.Stats().ControlRetransmits+n.s.Stats().ControlRetransmits == 0 {
		t.Error("control packets were lost but nothing was retransmitted")
	}
	n.drop = nil
	n.exchange(20)
}

func TestRenegotiationWrapsKeyIDs(t *testing.T) {
	for _, who := range []string{"client", "server"} {
		t.Run(who, func(t *testing.T) {
			o := pairOpts{wrap: wrapCrypt}
			if who == "client" {
				o.clientReneg = 10 * time.Second
			} else {
				o.serverReneg = 10 * time.Second
			}
			n := newPair(t, o)
			n.connect(10 * time.Second)
			seen := map[uint8]bool{}
			for i := 0; i < 9; i++ {
				// Keep traffic flowing while time passes, so no packet is lost across
				// the key switch.
				for j := 0; j < 11; j++ {
					n.advance(n.now.Add(time.Second))
					n.exchange(3)
				}
				for _, k := range n.c.keys {
					if k.state == ksGenerated {
						seen[k.id] = true
					}
				}
			}
			for id := uint8(1); id <= 7; id++ {
				if !seen[id] {
					t.Errorf("key id %d never used (seen %v)", id, seen)
				}
			}
			if n.c.keys[0].id == 0 {
				t.Error("key id wrapped back to 0")
			}
			st := n.c.Stats()
			if st.DropAuth+st.DropReplay+st.DropNoKey > 0 {
				t.Errorf("client dropped data during renegotiations: %+v", st)
			}
		})
	}
}

func TestExitNotification(t *testing.T) {
	n := newPair(t, pairOpts{wrap: wrapAuth})
	n.connect(10 * time.Second)
	if d := n.c.Close(n.now); d == 0 {
		t.Fatal("Close returned no delivery window")
	}
	n.settle()
	if len(n.sEv) == 0 || n.sEv[len(n.sEv)-1].Kind != EventExit {
		t.Fatalf("server events = %v, want exit", n.sEv)
	}
	if !n.c.ExitDelivered() {
		t.Error("EXIT was not acknowledged")
	}
}

func TestPingRestart(t *testing.T) {
	n := newPair(t, pairOpts{wrap: wrapCrypt, pingRestart: 30 * time.Second})
	n.connect(10 * time.Second)
	// The server pushed ping 10 / ping-restart 60; cut the link and wait.
	n.drop = func(bool, []byte) bool { return true }
	n.advance(n.now.Add(61 * time.Second))
	found := false
	for _, e := range n.cEv {
		if e.Kind == EventRestart && strings.Contains(e.Reason, "ping-restart") {
			found = true
		}
	}
	if !found {
		t.Fatalf("client events = %v, want a ping-restart", n.cEv)
	}
}

func TestGarbageIsCountedNotFatal(t *testing.T) {
	n := newPair(t, pairOpts{wrap: wrapCrypt})
	n.connect(10 * time.Second)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		b := make([]byte, rng.IntN(200))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		n.c.HandlePacket(n.now, b)
	}
	// Replay a genuine data packet.
	n.s.SendIP(n.now, ipPacket(1))
	pkts := copyAll(n.s.Outgoing())
	for _, p := range pkts {
		n.c.HandlePacket(n.now, p)
		n.c.HandlePacket(n.now, p)
	}
	n.settle()
	st := n.c.Stats()
	if st.DropReplay == 0 {
		t.Errorf("replayed packet not counted: %+v", st)
	}
	if len(n.c.Events()) != 0 {
		t.Error("garbage produced session events")
	}
	n.exchange(10)
}

func TestCompressionFramings(t *testing.T) {
	cases := []struct {
		name       string
		server     compress.Spec
		client     compress.Spec
		push       string
		compressed bool
	}{
		{"comp-lzo no", compress.Spec{CompLZO: "no"}, compress.Spec{}, "comp-lzo no", false},
		{"compress stub-v2", compress.Spec{Compress: "stub-v2"}, compress.Spec{}, "compress stub-v2", false},
		{"lz4-v2 both allow yes", compress.Spec{Compress: "lz4-v2", Allow: "yes"}, compress.Spec{Allow: "yes"}, "compress lz4-v2", true},
		{"comp-lzo yes, client asym", compress.Spec{CompLZO: "yes", Allow: "yes"}, compress.Spec{}, "comp-lzo yes", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newPair(t, pairOpts{wrap: wrapCrypt, serverComp: tc.server, clientComp: tc.client, pushExtra: []string{tc.push}})
			n.connect(10 * time.Second)
			// Compressible packets both ways must arrive intact.
			n.cTun, n.sTun = nil, nil
			big := append([]byte{0x45}, bytes.Repeat([]byte("weft compress "), 80)...)
			n.c.SendIP(n.now, big)
			sOut := len(n.c.out[len(n.c.out)-1])
			n.s.SendIP(n.now, big)
			cOut := len(n.s.out[len(n.s.out)-1])
			n.settle()
			if len(n.sTun) != 1 || !bytes.Equal(n.sTun[0], big) || len(n.cTun) != 1 || !bytes.Equal(n.cTun[0], big) {
				t.Fatalf("compressible packet not delivered intact both ways")
			}
			// The server sends compressed only with allow-compression yes; a client
			// on the default (asym) never does.
			if got := cOut < len(big); got != tc.compressed {
				t.Errorf("server sent %d bytes for a %d-byte packet; compressed = %v, want %v", cOut, len(big), got, tc.compressed)
			}
			if clientCompressed := sOut < len(big); clientCompressed != (tc.compressed && tc.client.Allow == "yes") {
				t.Errorf("client sent %d bytes; compressed = %v", sOut, clientCompressed)
			}
			n.exchange(20)
		})
	}
}
