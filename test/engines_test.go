package test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"weft/test/harness"
)

// Interop of weft's two TLS engines (Go crypto/tls and OpenSSL) against
// openvpn 2.6, on the client side (weft client -> openvpn server) and the
// server side (openvpn client -> weft server).
//
// All tests here and in compress_test.go run their cases concurrently from
// inside one (non-parallel) top-level test, bounded by engLabSlots, so they
// fit the time budget on 2 cores no matter what -parallel says.

// engLabSlots bounds how many namespace labs (each with an openvpn and a weft
// process and traffic) run at the same time.
const engLabSlots = 4

// Tunnel addresses and pools of the server side (openvpn and weft alike:
// `server 10.8.0.0 255.255.255.0`, `server-ipv6 fd00:8::/64`).
var (
	engSrvTun4 = netip.MustParseAddr(harness.TunServerV4)
	engSrvTun6 = netip.MustParseAddr(harness.TunServerV6)
	engPool4   = netip.MustParsePrefix("10.8.0.0/24")
	engPool6   = netip.MustParsePrefix("fd00:8::/64")
)

// engSrvConnectedLog is what `weft server` logs when a client is connected.
const engSrvConnectedLog = "client connected"

// engSide is the side weft plays.
type engSide string

const (
	engWeftClient engSide = "weft-client" // weft client -> openvpn server
	engWeftServer engSide = "weft-server" // openvpn client -> weft server
)

// engLab is one namespace pair with a server and a client, one of them weft.
type engLab struct {
	side       engSide
	pair       *harness.Pair
	srv        *harness.ConfServer
	cli        *harness.ConfClient
	srvStatus  string // server --status file (status-version 2)
	cliStatus  string // client --status file (openvpn client only)
	cliTun     harness.TunInfo
	weftLog    func() string
	openvpnLog func() string
}

// engLabSpec is what runEngLab sets up.
type engLabSpec struct {
	side       engSide
	engine     string // weft TLS engine ("": the default, not named)
	engineFlag bool   // select the engine with --tls-engine; the config's tls-engine then names the other engine (the flag must win)
	pki        *harness.PKI
	proto      string // udp | tcp
	wrap       harness.Wrap
	tls12      bool     // tls-version-max 1.2 on the openvpn side
	weftExtra  []string // lines for weft's config only
	ovpnExtra  []string // lines for openvpn's config only
	srvExtra   []string // lines for the server config only (after the above)
	wantUp     bool     // wait for the tunnel (false: the caller checks a failure)
	serverCert string   // default pki.ServerCert (with pki.ServerKey, or serverKey)
	serverKey  string
	clientCert string // default pki.ClientCert (with pki.ClientKey, or clientKey)
	clientKey  string
}

// engServerConf is an OpenVPN server config (read by openvpn and weft).
func engServerConf(s engLabSpec, pair *harness.Pair, status string, extra []string) string {
	var b strings.Builder
	proto := "udp"
	if s.proto == "tcp" {
		proto = "tcp-server"
	}
	cert, key := s.pki.ServerCert, s.pki.ServerKey
	if s.serverCert != "" {
		cert, key = s.serverCert, s.serverKey
	}
	fmt.Fprintf(&b, "# engine/compression interop server (generated)\ndev tun\nproto %s\nlocal %s\nport 1194\n", proto, pair.ServerV4)
	b.WriteString("topology subnet\nserver 10.8.0.0 255.255.255.0\nserver-ipv6 fd00:8::/64\n")
	fmt.Fprintf(&b, "ca %s\ncert %s\nkey %s\ndh none\ntls-version-min 1.2\n", s.pki.CA, cert, key)
	switch s.wrap {
	case harness.WrapTLSCrypt:
		fmt.Fprintf(&b, "tls-crypt %s\n", s.pki.StaticKey)
	case harness.WrapTLSAuth:
		fmt.Fprintf(&b, "tls-auth %s 0\nauth SHA256\n", s.pki.StaticKey)
	}
	b.WriteString("data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\nkeepalive 10 60\n")
	if s.proto == "udp" {
		b.WriteString("explicit-exit-notify 1\n")
	}
	fmt.Fprintf(&b, "status %s 1\nstatus-version 2\nverb 4\n", status)
	for _, l := range append(append([]string(nil), extra...), s.srvExtra...) {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// engClientConf is an OpenVPN client config (read by openvpn and weft).
func engClientConf(s engLabSpec, pair *harness.Pair, extra []string) string {
	var b strings.Builder
	proto := "udp"
	if s.proto == "tcp" {
		proto = "tcp-client"
	}
	fmt.Fprintf(&b, "# engine/compression interop client (generated)\nclient\ndev tun\nproto %s\nremote %s 1194\nnobind\n", proto, pair.ServerV4)
	cert, key := s.pki.ClientCert, s.pki.ClientKey
	if s.clientCert != "" {
		cert, key = s.clientCert, s.clientKey
	}
	fmt.Fprintf(&b, "ca %s\ncert %s\nkey %s\nremote-cert-tls server\n", s.pki.CA, cert, key)
	switch s.wrap {
	case harness.WrapTLSCrypt:
		fmt.Fprintf(&b, "tls-crypt %s\n", s.pki.StaticKey)
	case harness.WrapTLSAuth:
		fmt.Fprintf(&b, "tls-auth %s 1\nauth SHA256\n", s.pki.StaticKey)
	}
	b.WriteString("connect-retry 1\nverb 4\n")
	if s.proto == "udp" {
		b.WriteString("explicit-exit-notify 1\n")
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// runEngLab starts the server and the client of spec in a new namespace pair
// and, if spec.wantUp, waits for the tunnel.
func runEngLab(t *testing.T, bin string, s engLabSpec) *engLab {
	t.Helper()
	pair := harness.NewPair(t)
	dir := t.TempDir()
	l := &engLab{side: s.side, pair: pair, srvStatus: filepath.Join(dir, "server-status.log")}
	var weftLines, ovpnLines []string
	weftLines = append(weftLines, s.weftExtra...)
	var args []string
	switch {
	case s.engine == "":
	case s.engineFlag:
		args = []string{"--tls-engine", s.engine}
		other := map[string]string{"go": "openssl", "openssl": "go"}[s.engine]
		weftLines = append(weftLines, "tls-engine "+other)
	default:
		weftLines = append(weftLines, "tls-engine "+s.engine)
	}
	ovpnLines = append(ovpnLines, s.ovpnExtra...)
	if s.tls12 {
		ovpnLines = append(ovpnLines, "tls-version-max 1.2")
	}
	const name = "client"
	switch s.side {
	case engWeftClient:
		l.srv = harness.StartConfServer(t, harness.OpenVPNServer, "", pair.Server, dir, engServerConf(s, pair, l.srvStatus, ovpnLines))
		l.cli = harness.StartWeftConfClientArgs(t, bin, pair.Client, name, engClientConf(s, pair, weftLines), args...)
		l.weftLog, l.openvpnLog = l.cli.LogText, l.srv.LogText
	case engWeftServer:
		l.srv = harness.StartConfServer(t, harness.WeftServer, bin, pair.Server, dir, engServerConf(s, pair, l.srvStatus, weftLines), args...)
		l.cliStatus = filepath.Join(dir, "client-status.log")
		ovpnLines = append(ovpnLines, "status "+l.cliStatus+" 1")
		l.cli = harness.StartConfClient(t, harness.OpenVPNClient, "", pair.Client, name, engClientConf(s, pair, ovpnLines))
		l.weftLog, l.openvpnLog = l.srv.LogText, l.cli.LogText
	default:
		t.Fatalf("unknown side %q", s.side)
	}
	if !s.wantUp {
		return l
	}
	ti, err := l.cli.WaitUp(30*time.Second, engPool4, engPool6)
	if err != nil {
		t.Fatalf("%s (%s engine): %v", s.side, s.engine, err)
	}
	l.cliTun = ti
	t.Logf("%s client up after %v: %s %s %s", l.cli.Kind, l.cli.UpAt.Sub(l.cli.Start).Round(time.Millisecond), ti.Dev, ti.V4, ti.V6)
	return l
}

// pingBoth pings the server's tunnel addresses (IPv4 and IPv6) from the client.
func (l *engLab) pingBoth(t *testing.T) {
	t.Helper()
	for _, a := range []netip.Addr{engSrvTun4, engSrvTun6} {
		if err := harness.PingSteady(l.pair.Client, a.String()); err != nil {
			t.Errorf("ping through the tunnel: %v", err)
		}
	}
}

// stream sends size bytes of kind through the tunnel: up (client -> server,
// to the server's tunnel address) or down (server -> client, to the client's
// tunnel address), over IPv4 or IPv6, checksummed.
func (l *engLab) stream(t *testing.T, up, v6 bool, port uint16, size int64, kind harness.Payload) (harness.StreamResult, error) {
	t.Helper()
	src, sink := l.pair.Client, l.pair.Server
	dst := engSrvTun4
	if v6 {
		dst = engSrvTun6
	}
	dir := "client->server"
	if !up {
		src, sink = sink, src
		dst = l.cliTun.V4
		if v6 {
			dst = l.cliTun.V6
		}
		dir = "server->client"
	}
	r, err := harness.NSStream(src, sink, netip.AddrPortFrom(dst, port), size, kind, 60*time.Second)
	if err != nil {
		return r, fmt.Errorf("%s %s stream of %d bytes: %w", dir, kind, size, err)
	}
	t.Logf("stream %s %s -> %s: %d bytes %s, sha256 %s… verified, %.0f Mbit/s", dir, kind, netip.AddrPortFrom(dst, port), r.Bytes, kind, r.SHA256[:12], r.Mbps())
	return r, nil
}

// stop stops the client (SIGTERM) and the server.
func (l *engLab) stop() {
	if l.cli.Proc != nil {
		l.cli.Proc.Stop(syscall.SIGTERM, 5*time.Second)
	}
	l.srv.Stop(syscall.SIGTERM)
}

// checkNoCrash fails if the weft process is gone before the end of the case,
// or its log has a panic, data race or fatal error.
func (l *engLab) checkNoCrash(t *testing.T) {
	t.Helper()
	p := l.srv.Proc
	if l.side == engWeftClient {
		p = l.cli.Proc
	}
	if p.Exited() {
		t.Errorf("the weft %s process exited during the case (%s)", strings.TrimPrefix(string(l.side), "weft-"), p.ExitState())
	}
	for _, bad := range []string{"panic:", "data race", "fatal error:"} {
		if line, ok := harness.FindLine(l.weftLog(), bad); ok {
			t.Errorf("weft log has %q: %s", bad, line)
		}
	}
}

// engRunConcurrently runs every case as a subtest of t, at most slots at a time.
// (t.Run may be called from several goroutines; it does not return before the
// subtest ends.)
func engRunConcurrently[C any](t *testing.T, slots int, cases []C, name func(C) string, fn func(*testing.T, C)) {
	sem := make(chan struct{}, slots)
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t.Run(name(c), func(t *testing.T) { fn(t, c) })
		}()
	}
	wg.Wait()
}

// engWeftAndEngines returns the weft binary and its TLS engines, or skips loudly
// (no root, TUN, openvpn or weft binary).
func engWeftAndEngines(t *testing.T) (string, []string) {
	t.Helper()
	harness.RequireOpenVPN(t)
	bin := harness.WeftBin(t)
	return bin, harness.WeftEngines(t, bin)
}

// engHas reports whether e is compiled in; for a missing engine (legitimate
// only without libssl-dev, see harness.WeftEngines) the caller skips loudly.
func engHas(engines []string, e string) bool {
	for _, x := range engines {
		if x == e {
			return true
		}
	}
	return false
}

func engRequire(t *testing.T, engines []string, e string) {
	t.Helper()
	if !engHas(engines, e) {
		harness.SkipLoud(t, "TLS engine %q is not compiled into weft (engines %v; libssl-dev is not installed)", e, engines)
	}
}

// ---- 1. Interop matrix -------------------------------------------------------

// engCase is one row of the TLS engine matrix.
type engCase struct {
	side    engSide
	engine  string
	proto   string // udp (tls-crypt) | tcp (tls-auth SHA256)
	tls12   bool   // tls-version-max 1.2 on the openvpn side (else TLS 1.3)
	keyType harness.KeyType
	flag    bool // --tls-engine on the command line, overriding a tls-engine directive naming the other engine
}

func (c engCase) name() string {
	tv := "tls13"
	if c.tls12 {
		tv = "tls12"
	}
	wrap := "tlscrypt"
	if c.proto == "tcp" {
		wrap = "tlsauth-sha256"
	}
	kt := "ec"
	if c.keyType == harness.KeyRSA {
		kt = "rsa"
	}
	n := fmt.Sprintf("%s-%s-%s-%s-%s-%s", c.side, c.engine, c.proto, wrap, tv, kt)
	if c.flag {
		n += "-flag"
	}
	return n
}

// engMatrix: an orthogonal array (L8) over side x engine x transport x TLS
// version x key type: 8 cases in which every pair of values of any two of
// these dimensions occurs (each engine on each side sees UDP and TCP, TLS 1.2
// and 1.3, EC and RSA). The UDP cases select the engine with the tls-engine
// directive, the TCP cases with --tls-engine, which must override a
// directive naming the other engine.
var engMatrix = []engCase{
	{side: engWeftClient, engine: "go", proto: "udp", keyType: harness.KeyEC},
	{side: engWeftClient, engine: "go", proto: "tcp", tls12: true, keyType: harness.KeyRSA, flag: true},
	{side: engWeftClient, engine: "openssl", proto: "udp", tls12: true, keyType: harness.KeyRSA},
	{side: engWeftClient, engine: "openssl", proto: "tcp", keyType: harness.KeyEC, flag: true},
	{side: engWeftServer, engine: "go", proto: "udp", tls12: true, keyType: harness.KeyEC},
	{side: engWeftServer, engine: "go", proto: "tcp", keyType: harness.KeyRSA, flag: true},
	{side: engWeftServer, engine: "openssl", proto: "udp", keyType: harness.KeyRSA},
	{side: engWeftServer, engine: "openssl", proto: "tcp", tls12: true, keyType: harness.KeyEC, flag: true},
}

// Engine fingerprints: proof that weft runs the TLS engine it was told to.
//
// Server side: the weft server's config names TLS suites only OpenSSL
// implements or lets choose: tls-cipher engFingerprintCipher12 (AES-256-CBC
// with SHA-384, absent from crypto/tls) and tls-ciphersuites
// engFingerprintSuites13 (crypto/tls picks TLS 1.3 suites itself). The
// OpenSSL engine negotiates exactly these (openvpn logs them); the Go engine
// logs one warning per directive that it ignores it.
//
// Client side (the weft client does not apply tls-cipher/tls-groups; the
// openvpn server chooses by its own preference): for TLS 1.3 the openvpn
// server offers only the groups engFingerprintGroups, preferring X448, which
// OpenSSL implements and crypto/tls does not: with the OpenSSL engine openvpn
// logs "peer temporary key: 448 bits X448", with the Go engine P-256 (after a
// HelloRetryRequest: interop of that path too). For TLS 1.2 (where openvpn
// logs no key exchange as a server) the server prefers the AES-256-CBC-SHA384
// suites of engFingerprintServerCiphers12, which only the OpenSSL engine
// offers; the Go engine gets AES-128-GCM.
const (
	engFingerprintCipher12        = "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384"
	engFingerprintSuites13        = "TLS_CHACHA20_POLY1305_SHA256"
	engFingerprintGroups          = "X448:P-256"
	engFingerprintServerCiphers12 = engFingerprintCipher12 + ":ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
)

// Warnings of a weft server running the Go engine with tls-ciphersuites or a
// tls-cipher naming no suite crypto/tls implements (handlers.applyTLSCiphers).
var (
	engGoSuitesIgnoredLog = []string{"tls-ciphersuites", "ignored", "go TLS engine"}
	engGoCipherIgnoredLog = []string{"tls-cipher", "ignored", "go TLS engine"}
)

// engOpenvpnCtrlRE matches openvpn's control channel summary, e.g. "Control
// Channel: TLSv1.3, cipher TLSv1.3 TLS_AES_256_GCM_SHA384, peer certificate:
// 256 bits ECprime256v1, signature: ecdsa-with-SHA256, peer temporary key:
// 253 bits X25519": [1] version, [3] suite, [4] peer certificate, [5] the
// ephemeral key exchange.
var engOpenvpnCtrlRE = regexp.MustCompile(`(?m)Control Channel: (TLSv1\.[0-9]), cipher (\S+) ([^,\s]+)(?:, peer certificate: ([^,\n]+))?(?:[^\n]*?, peer temporary key: ([^,\n]+))?`)

// engWeftKeyReadyRE matches weft's "data channel key ready" line (slog text).
var engWeftKeyReadyRE = regexp.MustCompile(`data channel key ready.* tls="?([^"]+?)"? suite=(\S+)`)

// TestEngineInterop: for each TLS engine compiled into weft, on the client
// side (weft client -> openvpn 2.6 server) and the server side (openvpn 2.6
// client -> weft server), over UDP with tls-crypt and TCP with tls-auth
// SHA256, TLS 1.2 (tls-version-max 1.2 on the openvpn side) and 1.3, EC and
// RSA certificates (see engMatrix): the tunnel comes up, IPv4 and IPv6 pings
// pass, checksummed 4 MiB transfers pass both ways, openvpn's log shows the
// expected TLS version and certificate type, weft's log agrees on the version,
// and the engine in use is the one selected (fingerprint: see
// engFingerprintCipher12 and engCheckFingerprint).
func TestEngineInterop(t *testing.T) {
	bin, engines := engWeftAndEngines(t)
	pkis := map[harness.KeyType]*harness.PKI{
		harness.KeyEC:  harness.NewPKI(t, harness.KeyEC),
		harness.KeyRSA: harness.NewPKI(t, harness.KeyRSA),
	}
	engRunConcurrently(t, engLabSlots, engMatrix, engCase.name, func(t *testing.T, c engCase) {
		engRequire(t, engines, c.engine)
		runEngCase(t, bin, pkis[c.keyType], c)
	})
}

func runEngCase(t *testing.T, bin string, pki *harness.PKI, c engCase) {
	wrap := harness.WrapTLSCrypt
	if c.proto == "tcp" {
		wrap = harness.WrapTLSAuth
	}
	spec := engLabSpec{side: c.side, engine: c.engine, engineFlag: c.flag, pki: pki, proto: c.proto, wrap: wrap,
		tls12: c.tls12, wantUp: true}
	spec.addFingerprint()
	l := runEngLab(t, bin, spec)
	l.pingBoth(t)
	const size = 4 << 20
	if _, err := l.stream(t, true, false, 5001, size, harness.PayloadRandom); err != nil {
		t.Error(err)
	}
	if _, err := l.stream(t, false, true, 5002, size, harness.PayloadRandom); err != nil {
		t.Error(err)
	}

	// openvpn's view of the control channel.
	wantTLS := "TLSv1.3"
	if c.tls12 {
		wantTLS = "TLSv1.2"
	}
	ctrl := l.openvpnCtrl(t)
	if ctrl[1] != wantTLS {
		t.Errorf("openvpn negotiated %s, want %s", ctrl[1], wantTLS)
	}
	wantCert := "EC"
	if c.keyType == harness.KeyRSA {
		wantCert = "RSA"
	}
	if peer := ctrl[4]; !strings.Contains(peer, wantCert) {
		t.Errorf("openvpn saw peer certificate %q, want a %s certificate", peer, wantCert)
	}

	// weft's view, and the engine fingerprint.
	wl := l.weftLog()
	km := engWeftKeyReadyRE.FindStringSubmatch(wl)
	if km == nil {
		t.Errorf("weft log has no %q line with tls= and suite=", "data channel key ready")
	} else {
		t.Logf("weft: tls=%s suite=%s", km[1], km[2])
		if want := strings.Replace(wantTLS, "TLSv", "TLS ", 1); km[1] != want {
			t.Errorf("weft logged TLS version %q, want %q", km[1], want)
		}
	}
	engCheckFingerprint(t, c, wl, ctrl)
	l.checkNoCrash(t)
	l.stop()
}

// addFingerprint adds the engine fingerprint configuration (see
// engFingerprintCipher12) to s.
func (s *engLabSpec) addFingerprint() {
	if s.side == engWeftServer {
		s.weftExtra = append(s.weftExtra, "tls-cipher "+engFingerprintCipher12, "tls-ciphersuites "+engFingerprintSuites13)
	} else {
		s.ovpnExtra = append(s.ovpnExtra, "tls-groups "+engFingerprintGroups, "tls-cipher "+engFingerprintServerCiphers12)
	}
}

// openvpnCtrl returns openvpn's (last) control channel summary, parsed by
// engOpenvpnCtrlRE.
func (l *engLab) openvpnCtrl(t *testing.T) []string {
	t.Helper()
	var ctrl []string
	for _, m := range engOpenvpnCtrlRE.FindAllStringSubmatch(l.openvpnLog(), -1) {
		ctrl = m
	}
	if ctrl == nil {
		t.Fatalf("openvpn log has no %q line", "Control Channel: TLSv1.x")
	}
	t.Logf("openvpn: %s", strings.TrimSpace(ctrl[0]))
	return ctrl
}

// engCheckFingerprint checks that the engine in use is c.engine (see
// engFingerprintCipher12; only c.side, c.engine and c.tls12 matter). ctrl is
// engOpenvpnCtrlRE's match.
func engCheckFingerprint(t *testing.T, c engCase, weftLog string, ctrl []string) {
	t.Helper()
	suite, tempKey := ctrl[3], ctrl[5]
	cbc384 := strings.HasSuffix(suite, "-AES256-SHA384")
	if c.side == engWeftClient && c.tls12 {
		switch {
		case c.engine == "openssl" && !cbc384:
			t.Errorf("TLS 1.2 suite %q, want the server's first choice %s (offered by OpenSSL only): is the openssl engine really in use?", suite, engFingerprintCipher12)
		case c.engine == "go" && cbc384:
			t.Errorf("TLS 1.2 suite %q: crypto/tls has no such suite: is the go engine really in use?", suite)
		default:
			t.Logf("engine fingerprint (%s): TLS 1.2 suite %s", c.engine, suite)
		}
		return
	}
	if c.side == engWeftClient {
		x448 := strings.Contains(tempKey, "X448")
		switch {
		case tempKey == "":
			t.Errorf("openvpn logged no peer temporary key: cannot tell the engine")
		case c.engine == "openssl" && !x448:
			t.Errorf("key exchange %q, want X448 (the OpenSSL engine supports it and the server prefers it): is the openssl engine really in use?", tempKey)
		case c.engine == "go" && x448:
			t.Errorf("key exchange %q: crypto/tls has no X448: is the go engine really in use?", tempKey)
		default:
			t.Logf("engine fingerprint (%s): key exchange %s", c.engine, tempKey)
		}
		return
	}
	_, w13 := harness.FindLine(weftLog, engGoSuitesIgnoredLog...)
	_, w12 := harness.FindLine(weftLog, engGoCipherIgnoredLog...)
	switch c.engine {
	case "go":
		if !w12 || !w13 {
			t.Errorf("weft server (go engine) did not warn that it ignores tls-cipher (%v) and tls-ciphersuites (%v): is the go engine really in use?", w12, w13)
		}
		if suite == engFingerprintSuites13 && !c.tls12 || cbc384 {
			t.Errorf("weft server (go engine) negotiated %s, which only the OpenSSL engine would choose here", suite)
		}
	case "openssl":
		if w12 || w13 {
			t.Errorf("weft server (openssl engine) warned like the go engine (tls-cipher %v, tls-ciphersuites %v): the go engine is in use", w12, w13)
		}
		if c.tls12 && !cbc384 {
			t.Errorf("TLS 1.2 suite %q, want one of %s (the openssl engine honours tls-cipher): is the openssl engine really in use?", suite, engFingerprintCipher12)
		}
		if !c.tls12 && suite != engFingerprintSuites13 {
			t.Errorf("TLS 1.3 suite %q, want %s (the openssl engine honours tls-ciphersuites): is the openssl engine really in use?", suite, engFingerprintSuites13)
		}
	}
	if !t.Failed() {
		t.Logf("engine fingerprint (%s): suite %s, go-engine warnings %v/%v", c.engine, suite, w12, w13)
	}
}

// ---- 2. Bad certificates -----------------------------------------------------

// engBadCertCase: weft (client or server) with one engine meets a peer whose
// certificate is signed by another CA.
type engBadCertCase struct {
	side   engSide
	engine string
}

// engWantBadCertLog: one log line names the certificate and the reason.
var engWantBadCertLog = []string{"certificate", "unknown authority"}

// TestEngineBadCert: a weft client with each engine against an openvpn
// server whose certificate comes from another CA, and (the same check on the
// server side) an openvpn client with such a certificate against a weft
// server with each engine: no tunnel, and weft logs one clear line (client:
// warning or error level; server: at least info) containing "certificate" and
// the reason (signed by unknown authority); every weft line about the
// certificate carries the reason.
func TestEngineBadCert(t *testing.T) {
	bin, engines := engWeftAndEngines(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	var cases []engBadCertCase
	for _, side := range []engSide{engWeftClient, engWeftServer} {
		for _, e := range []string{"go", "openssl"} {
			cases = append(cases, engBadCertCase{side, e})
		}
	}
	engRunConcurrently(t, engLabSlots, cases, func(c engBadCertCase) string { return string(c.side) + "-" + c.engine }, func(t *testing.T, c engBadCertCase) {
		engRequire(t, engines, c.engine)
		spec := engLabSpec{side: c.side, engine: c.engine, pki: pki, proto: "udp", wrap: harness.WrapTLSCrypt}
		if c.side == engWeftClient {
			spec.serverCert, spec.serverKey = pki.OtherServerCert, pki.OtherServerKey
		} else {
			spec.clientCert, spec.clientKey = pki.OtherClientCert, pki.OtherClientKey
		}
		l := runEngLab(t, bin, spec)
		line, ok := harness.WaitLogLine(l.weftLog, 20*time.Second, engWantBadCertLog...)
		if !ok {
			t.Fatalf("weft %s (%s engine) logged no line containing %q within 20 s", c.side, c.engine, engWantBadCertLog)
		}
		t.Logf("weft: %s", strings.TrimSpace(line))
		// The client's failure is a warning or an error; a server may log a
		// rejected client at info (visible at the default verb), never only
		// at debug.
		levels := []string{"level=WARN", "level=ERROR"}
		if c.side == engWeftServer {
			levels = append(levels, "level=INFO")
		}
		if !slices.ContainsFunc(levels, func(lv string) bool { return strings.Contains(line, lv) }) {
			t.Errorf("the certificate failure is not logged at %v: %s", levels, line)
		}
		// Let the client retry once or twice: still no tunnel.
		time.Sleep(3 * time.Second)
		log := l.weftLog()
		if n, m := harness.CountLogLines(log, "certificate"), harness.CountLogLines(log, engWantBadCertLog...); n != m {
			t.Errorf("%d weft log lines mention the certificate, but only %d give the reason %q: the failure is not reported in one clear line", n, m, engWantBadCertLog[1])
		}
		for _, lg := range []string{l.cli.LogText(), l.srv.LogText()} {
			if strings.Contains(lg, "Peer Connection Initiated") || (c.side == engWeftServer && strings.Contains(lg, engSrvConnectedLog)) {
				t.Errorf("a peer with a certificate from another CA was accepted")
			}
		}
		if c.side == engWeftClient && strings.Contains(l.cli.LogText(), harness.InitCompleted) {
			t.Errorf("weft client (%s engine) brought the tunnel up with a server certificate from another CA", c.engine)
		}
		if ti := harness.NSTun(l.pair.Client, engPool4, engPool6); ti.V4.IsValid() {
			t.Errorf("the client has tunnel address %s", ti.V4)
		}
		if l.srv.Proc.Exited() {
			t.Errorf("server exited: %s", l.srv.State())
		}
		if c.side == engWeftClient && l.cli.Proc.Exited() && l.cli.Proc.ExitCode() == 0 {
			t.Errorf("weft client exited 0 after a certificate failure")
		}
		l.checkNoCrash(t)
		l.stop()
	})
}

// ---- 3. Engine selection errors ------------------------------------------------

// TestEngineUnknownName: `tls-engine bogus` in the config, or `--tls-engine
// bogus` on the command line, makes `weft client` and `weft server` exit
// non-zero at once with one line naming the engine (no root needed).
func TestEngineUnknownName(t *testing.T) {
	bin := harness.WeftBin(t)
	harness.WeftEngines(t, bin)
	pki := harness.NewPKI(t, harness.KeyEC)
	dir := t.TempDir()
	common := fmt.Sprintf("dev tun\nca %s\ndh none\ntls-crypt %s\nverb 4\n", pki.CA, pki.StaticKey)
	confs := map[string]string{
		"client": "client\nproto udp\nremote 192.0.2.1 1194\nnobind\n" + common + fmt.Sprintf("cert %s\nkey %s\n", pki.ClientCert, pki.ClientKey),
		"server": "proto udp\nport 1194\ntopology subnet\nserver 10.8.0.0 255.255.255.0\n" + common + fmt.Sprintf("cert %s\nkey %s\n", pki.ServerCert, pki.ServerKey),
	}
	for _, mode := range []string{"client", "server"} {
		for _, how := range []string{"directive", "flag"} {
			t.Run(mode+"-"+how, func(t *testing.T) {
				conf := confs[mode]
				args := []string{bin, mode, "--config", filepath.Join(dir, mode+"-"+how+".conf")}
				if how == "directive" {
					conf += "tls-engine bogus\n"
				} else {
					args = append(args, "--tls-engine", "bogus")
				}
				if err := os.WriteFile(args[3], []byte(conf), 0o644); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				out, err := harness.Run(10*time.Second, args...)
				var ee *exec.ExitError
				switch {
				case err == nil:
					t.Fatalf("weft %s with TLS engine \"bogus\" (%s) exited 0:\n%s", mode, how, out)
				case !errors.As(err, &ee):
					t.Fatalf("weft %s with TLS engine \"bogus\" (%s) did not exit by itself within 10 s: %v", mode, how, err)
				}
				line, ok := harness.FindLine(out, "bogus", "engine")
				if !ok {
					t.Errorf("weft %s (%s) exited %d without a line naming the engine \"bogus\":\n%s", mode, how, ee.ExitCode(), out)
				} else {
					t.Logf("exit %d after %v: %s", ee.ExitCode(), time.Since(start).Round(time.Millisecond), strings.TrimSpace(line))
				}
				if n := harness.CountLogLines(out, "panic"); n > 0 {
					t.Errorf("weft panicked:\n%s", out)
				}
			})
		}
	}
}
