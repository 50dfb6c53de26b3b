package test

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"weft/test/harness"
)

// Compression interop against openvpn 2.6: every comp-lzo / compress setting,
// weft as client (-> openvpn server) and as server (<- openvpn client), weft
// at allow-compression asym (the default: decompress, never compress) and
// yes (also compress, with a one-time VORACLE warning). Each case pings over
// IPv4 and IPv6 and runs checksummed transfers both ways with compressible
// text and random bytes; the link byte counters of openvpn's --status file
// tell whether each side really compressed what it sent. The TLS engine in
// use is proven as in TestEngineInterop (engCheckFingerprint), so "go" cases,
// which do not name an engine, also check that go is the default.

// compSetting is one compression configuration.
type compSetting struct {
	name       string   // subtest name part
	lines      []string // config lines on both ends (weft and openvpn)
	alg        bool     // names an algorithm: openvpn (allow-compression yes) compresses, and so does weft with allow-compression yes
	weftOnly   []string // lines for weft only (instead of lines), e.g. compress migrate
	ovpnOnly   []string // lines for openvpn only (instead of lines)
	noPush     bool     // the server does not push the setting
	wantPush   string   // an option the client must receive in PUSH_REPLY (migrate)
	serverOnly bool     // only weft-server cases
}

var compSettings = []compSetting{
	{name: "comp-lzo-no", lines: []string{"comp-lzo no"}},
	{name: "comp-lzo-yes", lines: []string{"comp-lzo yes"}, alg: true},
	{name: "compress-stub", lines: []string{"compress stub"}},
	{name: "compress-stub-v2", lines: []string{"compress stub-v2"}},
	{name: "compress-lz4", lines: []string{"compress lz4"}, alg: true},
	{name: "compress-lz4-v2", lines: []string{"compress lz4-v2"}, alg: true},
	{name: "compress-lzo", lines: []string{"compress lzo"}, alg: true},
	// migrate: a weft server with compress migrate, an openvpn 2.6 client
	// with comp-lzo: the server pushes "compress stub-v2" (the client sends
	// IV_COMP_STUBv2=1) and nothing is compressed either way.
	{name: "compress-migrate", weftOnly: []string{"compress migrate"}, ovpnOnly: []string{"comp-lzo yes"},
		noPush: true, wantPush: "compress stub-v2", serverOnly: true},
}

// compCase is one compression interop case.
type compCase struct {
	set      compSetting
	side     engSide
	allowYes bool   // weft allow-compression yes (else the default, asym)
	engine   string // weft TLS engine
	pushOnly bool   // weft client: no local compression config, only what the server pushes
	tcp      bool   // TCP with tls-auth SHA256 (else UDP with tls-crypt)
}

func (c compCase) name() string {
	allow := "asym"
	if c.allowYes {
		allow = "allow-yes"
	}
	n := fmt.Sprintf("%s-%s-%s-%s", c.side, c.set.name, allow, c.engine)
	if c.pushOnly {
		n += "-pushed-only"
	}
	if c.tcp {
		n += "-tcp"
	}
	return n
}

// compCases: every setting x side x allow-compression with the go engine
// (the default, not named in the config) over UDP with tls-crypt; the openssl
// engine for comp-lzo yes and lz4-v2; for the weft client, comp-lzo yes and
// lz4-v2 configured only by the server's push; and lz4-v2 (allow-compression
// yes) over TCP with tls-auth.
func compCases() []compCase {
	var out []compCase
	for _, s := range compSettings {
		for _, side := range []engSide{engWeftClient, engWeftServer} {
			if s.serverOnly && side != engWeftServer {
				continue
			}
			for _, yes := range []bool{false, true} {
				out = append(out, compCase{set: s, side: side, allowYes: yes, engine: "go"})
				if s.name == "comp-lzo-yes" || s.name == "compress-lz4-v2" {
					out = append(out, compCase{set: s, side: side, allowYes: yes, engine: "openssl"})
					if side == engWeftClient {
						out = append(out, compCase{set: s, side: side, allowYes: yes, engine: "go", pushOnly: true})
					}
					if yes && s.name == "compress-lz4-v2" {
						out = append(out, compCase{set: s, side: side, allowYes: yes, engine: "go", tcp: true})
					}
				}
			}
		}
	}
	return out
}

// Transfer sizes: the compressible text that weft sends is 8 MiB (the
// measured transfer of the issue), everything else is smaller.
const (
	compTextFromWeft = 8 << 20
	compTextToWeft   = 4 << 20
	compRandomBytes  = 1 << 20
)

// Link/payload ratio limits for compressible text: compressed well below,
// uncompressed at least the payload (plus headers).
const (
	compMaxRatio       = 0.5
	compUncompMinRatio = 0.95
)

// compVoracleLog is the substring of weft's warning when it compresses what it
// sends (allow-compression yes with an algorithm).
const compVoracleLog = "VORACLE"

// TestCompressInterop runs compCases (see the file comment).
func TestCompressInterop(t *testing.T) {
	bin, engines := engWeftAndEngines(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	start := time.Now()
	engRunConcurrently(t, engLabSlots, compCases(), compCase.name, func(t *testing.T, c compCase) {
		engRequire(t, engines, c.engine)
		runCompCase(t, bin, pki, c)
	})
	t.Logf("%d compression cases in %v", len(compCases()), time.Since(start).Round(time.Second))
}

// compLinkCounters are openvpn's link byte counters: from weft (received by
// openvpn) and to weft (sent by openvpn), plus openvpn's compression counters
// when it is the client (status files of openvpn clients have them).
type compLinkCounters struct {
	fromWeft, toWeft int64
	p2p              map[string]int64
}

// counters reads openvpn's status file after its next rewrite after `after`.
func (l *engLab) compCounters(t *testing.T, after time.Time) compLinkCounters {
	t.Helper()
	if l.side == engWeftClient {
		text, err := harness.StatusAfter(l.srvStatus, after, 10*time.Second)
		if err != nil {
			t.Fatalf("openvpn server status: %v", err)
		}
		st, err := harness.ParseStatusV2(text)
		if err != nil {
			t.Fatalf("openvpn server status: %v", err)
		}
		rows := st.Rows["CLIENT_LIST"]
		if len(rows) != 1 {
			t.Fatalf("openvpn server status lists %d clients, want 1:\n%s", len(rows), text)
		}
		in, err1 := strconv.ParseInt(st.Col("CLIENT_LIST", rows[0], "Bytes Received"), 10, 64)
		out, err2 := strconv.ParseInt(st.Col("CLIENT_LIST", rows[0], "Bytes Sent"), 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("openvpn server status: bad byte counters (%v, %v):\n%s", err1, err2, text)
		}
		return compLinkCounters{fromWeft: in, toWeft: out}
	}
	text, err := harness.StatusAfter(l.cliStatus, after, 10*time.Second)
	if err != nil {
		t.Fatalf("openvpn client status: %v", err)
	}
	m, err := harness.ParseP2PStatus(text)
	if err != nil {
		t.Fatalf("openvpn client status: %v", err)
	}
	in, ok1 := m["TCP/UDP read bytes"]
	out, ok2 := m["TCP/UDP write bytes"]
	if !ok1 || !ok2 {
		t.Fatalf("openvpn client status lacks the TCP/UDP byte counters:\n%s", text)
	}
	return compLinkCounters{fromWeft: in, toWeft: out, p2p: m}
}

func runCompCase(t *testing.T, bin string, pki *harness.PKI, c compCase) {
	set := c.set
	weftLines, ovpnLines := set.lines, set.lines
	if set.weftOnly != nil {
		weftLines = set.weftOnly
	}
	if set.ovpnOnly != nil {
		ovpnLines = set.ovpnOnly
	}
	spec := engLabSpec{side: c.side, engine: c.engine, pki: pki, proto: "udp", wrap: harness.WrapTLSCrypt, wantUp: true}
	if c.tcp {
		spec.proto, spec.wrap = "tcp", harness.WrapTLSAuth
	}
	// Prove the engine (for "go": that it is the default).
	spec.addFingerprint()
	if c.engine == "go" {
		// The default engine: no tls-engine directive.
		spec.engine = ""
	}
	if !c.pushOnly {
		spec.weftExtra = append(spec.weftExtra, weftLines...)
	}
	if c.allowYes {
		spec.weftExtra = append(spec.weftExtra, "allow-compression yes")
	}
	spec.ovpnExtra = append(spec.ovpnExtra, ovpnLines...)
	if set.alg || set.ovpnOnly != nil {
		spec.ovpnExtra = append(spec.ovpnExtra, "allow-compression yes")
	}
	if !set.noPush {
		for _, l := range set.lines {
			spec.srvExtra = append(spec.srvExtra, fmt.Sprintf("push %q", l))
		}
	}
	t0 := time.Now()
	l := runEngLab(t, bin, spec)
	tUp := time.Now()
	engCheckFingerprint(t, engCase{side: c.side, engine: c.engine}, l.weftLog(), l.openvpnCtrl(t))
	// weft compresses what it sends only with an algorithm and allow-compression yes.
	weftCompresses := set.alg && c.allowYes

	// 1. Compressible text both ways, with openvpn's link counters.
	c0 := l.compCounters(t, time.Now())
	if _, err := l.stream(t, c.side == engWeftClient, false, 5001, compTextFromWeft, harness.PayloadText); err != nil {
		t.Fatalf("weft -> openvpn: %v", err)
	}
	c1 := l.compCounters(t, time.Now())
	if _, err := l.stream(t, c.side == engWeftServer, false, 5002, compTextToWeft, harness.PayloadText); err != nil {
		t.Fatalf("openvpn -> weft: %v", err)
	}
	c2 := l.compCounters(t, time.Now())
	fromWeft := c1.fromWeft - c0.fromWeft
	toWeft := c2.toWeft - c1.toWeft
	rFrom := float64(fromWeft) / compTextFromWeft
	rTo := float64(toWeft) / compTextToWeft
	t.Logf("link bytes for compressible text: weft -> openvpn %d for %d (%.2f), openvpn -> weft %d for %d (%.2f)",
		fromWeft, compTextFromWeft, rFrom, toWeft, compTextToWeft, rTo)
	switch {
	case weftCompresses && rFrom >= compMaxRatio:
		t.Errorf("weft did not compress what it sent (allow-compression yes, %s): openvpn received %d link bytes for %d bytes of text (ratio %.2f, want < %.2f)",
			set.name, fromWeft, compTextFromWeft, rFrom, compMaxRatio)
	case !weftCompresses && rFrom < compUncompMinRatio:
		t.Errorf("weft compressed what it sent although it must not (%s, allow-compression %s): ratio %.2f, want >= %.2f",
			set.name, map[bool]string{true: "yes", false: "asym"}[c.allowYes], rFrom, compUncompMinRatio)
	}
	// openvpn (allow-compression yes) compresses with an algorithm: weft must
	// have decompressed that (the checksums above passed).
	switch {
	case set.alg && rTo >= compMaxRatio:
		t.Errorf("openvpn did not compress what it sent (%s, allow-compression yes): ratio %.2f, want < %.2f: the decompression path of weft was not exercised",
			set.name, rTo, compMaxRatio)
	case !set.alg && rTo < compUncompMinRatio:
		t.Errorf("openvpn compressed what it sent with %s: ratio %.2f", set.name, rTo)
	}
	if c.side == engWeftServer {
		// openvpn client's own compression counters agree.
		dIn := c1.p2p["post-decompress bytes"] - c0.p2p["post-decompress bytes"]
		dOut := c2.p2p["pre-compress bytes"] - c1.p2p["pre-compress bytes"]
		dOutC := c2.p2p["post-compress bytes"] - c1.p2p["post-compress bytes"]
		t.Logf("openvpn client: post-decompress +%d (from weft), pre-compress +%d -> post-compress +%d (to weft)", dIn, dOut, dOutC)
		if weftCompresses && dIn < compTextFromWeft/2 {
			t.Errorf("openvpn client decompressed only %d bytes of what weft sent (%d bytes of text)", dIn, compTextFromWeft)
		}
		if !weftCompresses && dIn != 0 {
			t.Errorf("openvpn client decompressed %d bytes from weft, but weft must not compress here", dIn)
		}
	}

	tText := time.Now()

	// 2. Random bytes both ways, IPv6, and pings.
	if _, err := l.stream(t, true, true, 5003, compRandomBytes, harness.PayloadRandom); err != nil {
		t.Error(err)
	}
	if _, err := l.stream(t, false, true, 5004, compRandomBytes, harness.PayloadRandom); err != nil {
		t.Error(err)
	}
	l.pingBoth(t)

	// 3. Logs: the VORACLE warning exactly when weft compresses, once per
	// process (a weft server: also when a second client session starts, so
	// the openvpn client reconnects once); no decompression errors.
	wl := l.weftLog()
	n := harness.CountLogLines(wl, compVoracleLog)
	if n >= 1 {
		line, _ := harness.FindLine(wl, compVoracleLog)
		t.Logf("weft (%d %s lines): %s", n, compVoracleLog, strings.TrimSpace(line))
	}
	n2 := n // after a second session (weft server only)
	if weftCompresses && c.side == engWeftServer && n > 0 {
		l.cli.Proc.Stop(syscall.SIGTERM, 5*time.Second)
		if err := l.cli.Launch(); err != nil {
			t.Fatal(err)
		}
		if _, err := l.cli.WaitUp(30*time.Second, engPool4, engPool6); err != nil {
			t.Fatalf("openvpn client reconnect: %v", err)
		}
		if err := harness.PingSteady(l.pair.Client, harness.TunServerV4); err != nil {
			t.Errorf("after the reconnect: %v", err)
		}
		wl = l.weftLog()
		n2 = harness.CountLogLines(wl, compVoracleLog)
		t.Logf("weft: %d %s lines after a second client session", n2, compVoracleLog)
	}
	switch {
	case weftCompresses && n == 0:
		t.Errorf("weft compresses (allow-compression yes, %s) but logged no %s warning", set.name, compVoracleLog)
	case weftCompresses && n2 > 1:
		t.Errorf("weft logged the %s warning %d times after two client sessions, want once", compVoracleLog, n2)
	case weftCompresses && n > 1:
		line, _ := harness.FindLine(wl, compVoracleLog)
		t.Errorf("weft logged the %s warning %d times for one session, want once: %s", compVoracleLog, n, line)
	case !weftCompresses && n > 0:
		line, _ := harness.FindLine(wl, compVoracleLog)
		t.Errorf("weft does not compress here (%s, allow-compression yes=%v) but warned: %s", set.name, c.allowYes, line)
	}
	for _, who := range []struct {
		name string
		log  string
	}{{"weft", wl}, {"openvpn", l.openvpnLog()}} {
		for _, bad := range [][]string{{"decompress", "error"}, {"decompress", "fail"}, {"Bad LZO"}, {"Bad compression"}, {"compression", "not allowed"}} {
			if line, ok := harness.FindLine(who.log, bad...); ok {
				t.Errorf("%s log: %s", who.name, strings.TrimSpace(line))
			}
		}
	}
	if set.wantPush != "" {
		line, ok := harness.FindLine(l.openvpnLog(), "PUSH_REPLY")
		if !ok || !strings.Contains(line, set.wantPush) {
			t.Errorf("openvpn client did not receive %q in PUSH_REPLY: %q", set.wantPush, line)
		}
	}
	l.checkNoCrash(t)
	l.stop()
	t.Logf("phases: setup %v, text %v, random+ping %v", tUp.Sub(t0).Round(time.Millisecond), tText.Sub(tUp).Round(time.Millisecond), time.Since(tText).Round(time.Millisecond))
}
