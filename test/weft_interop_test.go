package test

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"weft/test/harness"
)

// interopCase is one row of the weft client ↔ openvpn server matrix.
type interopCase struct {
	name          string
	proto         string // udp | tcp
	v6            bool   // outer transport over IPv6
	wrap          harness.Wrap
	digest        string // tls-auth HMAC digest
	keyDirLine    bool   // tls-auth direction as a separate `key-direction 1` line
	serverCiphers string // "" = all three AEADs
	clientCiphers string // "" = client default
	wantCipher    string // negotiated data cipher
	prf           bool   // client turns off TLS-EKM (weft-only directive) -> TLS-PRF keys
	keyType       harness.KeyType
}

// interopMatrix covers every dimension (transport, outer family, wrapping,
// cipher, key derivation, key type) without the full cartesian product.
var interopMatrix = []interopCase{
	{name: "udp4-tlscrypt-aes256gcm-ekm", proto: "udp", wrap: harness.WrapTLSCrypt, wantCipher: "AES-256-GCM"},
	{name: "udp6-tlscrypt-chacha20", proto: "udp", v6: true, wrap: harness.WrapTLSCrypt, clientCiphers: "CHACHA20-POLY1305", wantCipher: "CHACHA20-POLY1305"},
	{name: "tcp4-tlsauth-sha256-aes128gcm", proto: "tcp", wrap: harness.WrapTLSAuth, digest: "SHA256", clientCiphers: "AES-128-GCM", wantCipher: "AES-128-GCM"},
	{name: "tcp6-tlsauth-sha512-keydirection-aes256gcm", proto: "tcp", v6: true, wrap: harness.WrapTLSAuth, digest: "SHA512", keyDirLine: true, clientCiphers: "AES-256-GCM", wantCipher: "AES-256-GCM"},
	{name: "udp4-tlsauth-sha512-serverpref-chacha20", proto: "udp", wrap: harness.WrapTLSAuth, digest: "SHA512", serverCiphers: "CHACHA20-POLY1305:AES-128-GCM", wantCipher: "CHACHA20-POLY1305"},
	{name: "udp4-nowrap-aes128gcm", proto: "udp", wrap: harness.WrapNone, clientCiphers: "AES-128-GCM", wantCipher: "AES-128-GCM"},
	{name: "tcp4-nowrap-chacha20-prf", proto: "tcp", wrap: harness.WrapNone, clientCiphers: "CHACHA20-POLY1305", wantCipher: "CHACHA20-POLY1305", prf: true},
	{name: "udp4-tlscrypt-aes256gcm-prf", proto: "udp", wrap: harness.WrapTLSCrypt, wantCipher: "AES-256-GCM", prf: true},
	{name: "udp6-tlsauth-sha256-aes128gcm-prf", proto: "udp", v6: true, wrap: harness.WrapTLSAuth, digest: "SHA256", clientCiphers: "AES-128-GCM", wantCipher: "AES-128-GCM", prf: true},
	{name: "udp4-tlscrypt-rsa2048", proto: "udp", wrap: harness.WrapTLSCrypt, wantCipher: "AES-256-GCM", keyType: harness.KeyRSA},
}

// TestWeftClientInterop runs the weft client against openvpn 2.6 servers in
// namespaces: for every case the tunnel comes up, both server tunnel addresses
// (10.8.0.1, fd00:8::1) answer pings, a checksummed 8 MiB TCP transfer succeeds
// over IPv4 and IPv6, and the server log confirms the negotiated cipher and key
// derivation.
func TestWeftClientInterop(t *testing.T) {
	kind, bin := clientUnderTest(t)
	for _, c := range interopMatrix {
		t.Run(c.name, func(t *testing.T) {
			if c.prf && !isWeft(kind) {
				t.Skip("the PRF path needs the weft-only `key-derivation prf` directive")
			}
			t.Parallel()
			runInteropCase(t, kind, bin, c)
		})
	}
}

func runInteropCase(t *testing.T, kind harness.ClientKind, bin string, c interopCase) {
	pair := harness.NewPair(t)
	pki := harness.NewPKI(t, c.keyType)
	srv := harness.StartServer(t, pair, pki, harness.ServerOptions{
		Proto: c.proto, IPv6: c.v6, Wrap: c.wrap, Digest: c.digest, DataCiphers: c.serverCiphers,
	})
	var extra []string
	if c.prf {
		extra = append(extra, prfDirective)
	}
	cli := harness.StartClient(t, kind, bin, srv, harness.ClientOptions{
		DataCiphers: c.clientCiphers, KeyDirectionLine: c.keyDirLine, Extra: extra,
	})
	cli.MustUp(t)
	checkTraffic(t, pair, true)

	// Server-side confirmation of what was negotiated.
	if _, ok := srv.WaitLog(5*time.Second, "Incoming Data Channel: Cipher '"+c.wantCipher+"'"); !ok {
		t.Errorf("server did not set up data cipher %s", c.wantCipher)
	}
	pr := pushReply(srv)
	switch {
	case pr == "":
		t.Errorf("no PUSH_REPLY in the server log")
	case c.prf && strings.Contains(pr, "tls-ekm"):
		t.Errorf("PRF case, but the server pushed tls-ekm (client still announced TLS key export): %s", pr)
	case !c.prf && !strings.Contains(pr, "tls-ekm"):
		t.Errorf("EKM case, but the server did not push tls-ekm: %s", pr)
	}
	cli.Stop(10 * time.Second)
}

// TestWeftReneg: server `reneg-sec 10`; 60 s of pings at 5/s (v4 and v6) must
// lose < 1 %, the server must have renegotiated several times, and no data
// packet may fail to decrypt.
func TestWeftReneg(t *testing.T) {
	kind, bin := clientUnderTest(t)
	t.Parallel()
	const renegSec, pings = 10, 300 // 300 pings at 0.2 s = 60 s
	pair := harness.NewPair(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	srv := harness.StartServer(t, pair, pki, harness.ServerOptions{RenegSec: renegSec})
	cli := harness.StartClient(t, kind, bin, srv, harness.ClientOptions{})
	cli.MustUp(t)
	for _, a := range []string{harness.TunServerV4, harness.TunServerV6} {
		if err := harness.WaitPing(pair.Client, a, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, a := range []string{harness.TunServerV4, harness.TunServerV6} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := harness.Ping(pair.Client, a, pings, "0.2")
			t.Logf("ping %s: %d/%d received, %.2f%% loss, avg %s", a, r.Received, r.Transmitted, r.Loss, fmtDur(r.AvgRTT))
			if err != nil || r.Transmitted < pings || r.Loss >= 1.0 {
				t.Errorf("ping %s across renegotiations: %.2f%% loss (%d/%d), want < 1%% (%v)", a, r.Loss, r.Received, r.Transmitted, err)
			}
		}()
	}
	wg.Wait()
	log := srv.LogText()
	resets := strings.Count(log, softResetSubstr)
	t.Logf("server soft resets: %d", resets)
	if want := 60/renegSec - 2; resets < want {
		t.Errorf("server logged %d %q lines, want >= %d", resets, softResetSubstr, want)
	}
	for _, bad := range []string{"AEAD Decrypt error", "TLS keys are out of sync", "key IDs out of sync"} {
		if n := strings.Count(log, bad); n > 0 {
			l, _ := harness.FindLine(log, bad)
			t.Errorf("server logged %q %d times, e.g. %s", bad, n, l)
		}
	}
	if n := strings.Count(log, "not initialized (yet)"); n > 0 {
		t.Logf("note: server dropped %d packets on a not-yet-initialized key", n)
	}
	if !cli.Proc.Exited() {
		if _, err := harness.BulkTransfer(pair, harness.TunServerV4+":5001", bulkBytes, time.Minute); err != nil {
			t.Errorf("bulk transfer after renegotiations: %v", err)
		}
	}
	cli.Stop(10 * time.Second)
}

// TestWeftServerRestart: the openvpn server dies (SIGKILL: the client must
// notice through ping-restart) or exits cleanly (SIGTERM: the server sends
// RESTART through explicit-exit-notify), comes back, and the weft client
// reconnects by itself; traffic works again within 60 s.
func TestWeftServerRestart(t *testing.T) {
	kind, bin := clientUnderTest(t)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(strings.ToLower(strings.ReplaceAll(sig.String(), " ", "-")), func(t *testing.T) {
			t.Parallel()
			pair := harness.NewPair(t)
			pki := harness.NewPKI(t, harness.KeyEC)
			// Server pushes `ping 2, ping-restart 10`.
			srv := harness.StartServer(t, pair, pki, harness.ServerOptions{Keepalive: "2 10"})
			cli := harness.StartClient(t, kind, bin, srv, harness.ClientOptions{
				Extra: []string{"connect-retry 1", "keepalive 2 10"},
			})
			cli.MustUp(t)
			if err := harness.WaitPing(pair.Client, harness.TunServerV4, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			pid := cli.Proc.PID()
			srv.Stop(sig)
			t.Logf("openvpn server stopped with %v", sig)
			time.Sleep(2 * time.Second)
			if err := srv.Start(); err != nil {
				t.Fatalf("restart server: %v", err)
			}
			start := time.Now()
			if err := harness.WaitPing(pair.Client, harness.TunServerV4, 60*time.Second); err != nil {
				t.Fatalf("client did not reconnect after the server restart (client %s): %v", cli.State(), err)
			}
			t.Logf("traffic again %v after the server restart", time.Since(start).Round(time.Millisecond))
			if cli.Proc.Exited() || cli.Proc.PID() != pid {
				t.Errorf("client process exited (%s); it must reconnect by itself", cli.State())
			}
			if err := harness.WaitPing(pair.Client, harness.TunServerV6, 10*time.Second); err != nil {
				t.Errorf("IPv6 after reconnect: %v", err)
			}
			if _, err := harness.BulkTransfer(pair, harness.TunServerV4+":5001", bulkBytes, time.Minute); err != nil {
				t.Errorf("bulk transfer after reconnect: %v", err)
			}
			cli.Stop(10 * time.Second)
		})
	}
}

// TestWeftExitNotify: SIGTERM to the client over UDP → it sends the exit
// notification (the server logs it) and exits 0.
func TestWeftExitNotify(t *testing.T) {
	kind, bin := clientUnderTest(t)
	t.Parallel()
	pair := harness.NewPair(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	srv := harness.StartServer(t, pair, pki, harness.ServerOptions{})
	cli := harness.StartClient(t, kind, bin, srv, harness.ClientOptions{})
	cli.MustUp(t)
	if err := harness.WaitPing(pair.Client, harness.TunServerV4, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	exited, code := cli.Stop(10 * time.Second)
	switch {
	case !exited:
		t.Errorf("%s client did not exit within 10 s of SIGTERM (killed)", kind)
	case code != 0:
		t.Errorf("%s client exit code %d after SIGTERM, want 0 (%s)", kind, code, cli.State())
	default:
		t.Logf("client exited 0, %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	}
	ok := harness.WaitFor(10*time.Second, 100*time.Millisecond, func() bool {
		return srv.HasLog(exitNotifySubstr) || srv.HasLog(occExitSubstr)
	})
	if !ok {
		t.Errorf("server log has neither %q nor %q: the exit notification did not arrive", exitNotifySubstr, occExitSubstr)
	} else {
		l, found := harness.FindLine(srv.LogText(), exitNotifySubstr)
		if !found {
			l, _ = harness.FindLine(srv.LogText(), occExitSubstr)
		}
		t.Logf("server: %s", strings.TrimSpace(l))
	}
}

// describe is a short human description of a case.
func (c interopCase) describe() string {
	fam := "IPv4"
	if c.v6 {
		fam = "IPv6"
	}
	return fmt.Sprintf("%s/%s %s %s", strings.ToUpper(c.proto), fam, c.wrap, c.wantCipher)
}
