package test

import (
	"strings"
	"testing"
	"time"

	"weft/test/harness"
)

// TestWeftBadCA: the client trusts a different CA than the one that signed the
// server certificate → it must not connect and must log one clear line about the
// certificate (wantBadCALog).
func TestWeftBadCA(t *testing.T) {
	kind, bin := clientUnderTest(t)
	t.Parallel()
	pair := harness.NewPair(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	srv := harness.StartServer(t, pair, pki, harness.ServerOptions{})
	cli := harness.StartClient(t, kind, bin, srv, harness.ClientOptions{CA: pki.OtherCA})
	if _, ok := cli.WaitLog(20*time.Second, wantBadCALog...); !ok {
		t.Errorf("client log has no line containing %q within 20 s", wantBadCALog)
	}
	time.Sleep(2 * time.Second)
	requireLine(t, string(kind), cli.LogText(), wantBadCALog...)
	assertNotConnected(t, cli)
}

// TestWeftExpiredServerCert: the server presents an expired certificate (from
// the right CA) → no connection, one clear line (wantExpiredLog).
func TestWeftExpiredServerCert(t *testing.T) {
	kind, bin := clientUnderTest(t)
	t.Parallel()
	pair := harness.NewPair(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	srv := harness.StartServer(t, pair, pki, harness.ServerOptions{CertFile: pki.ExpiredCert, KeyFile: pki.ExpiredKey})
	cli := harness.StartClient(t, kind, bin, srv, harness.ClientOptions{})
	if _, ok := cli.WaitLog(20*time.Second, wantExpiredLog...); !ok {
		t.Errorf("client log has no line containing %q within 20 s", wantExpiredLog)
	}
	time.Sleep(2 * time.Second)
	requireLine(t, string(kind), cli.LogText(), wantExpiredLog...)
	assertNotConnected(t, cli)
}

// TestWeftWrongTLSCryptKey: the client's tls-crypt key differs from the
// server's → the server drops every packet ("tls-crypt unwrapping failed"), the
// client never connects and keeps retrying (or exits non-zero).
func TestWeftWrongTLSCryptKey(t *testing.T) {
	kind, bin := clientUnderTest(t)
	t.Parallel()
	pair := harness.NewPair(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	srv := harness.StartServer(t, pair, pki, harness.ServerOptions{Wrap: harness.WrapTLSCrypt})
	cli := harness.StartClient(t, kind, bin, srv, harness.ClientOptions{StaticKeyFile: pki.WrongStaticKey})
	if l, ok := srv.WaitLog(15*time.Second, tlsCryptFailSubstr); !ok {
		t.Errorf("server log has no %q within 15 s (did the client send anything?)", tlsCryptFailSubstr)
	} else {
		t.Logf("server: %s", strings.TrimSpace(l))
	}
	time.Sleep(5 * time.Second)
	if srv.HasLog("Peer Connection Initiated") {
		t.Errorf("server accepted a peer with the wrong tls-crypt key")
	}
	assertNotConnected(t, cli)
}

// TestWeftNoSharedCipher: server `data-ciphers AES-128-GCM`, client
// `data-ciphers CHACHA20-POLY1305` → the server sends AUTH_FAILED (no shared
// cipher); the client logs it and exits non-zero.
func TestWeftNoSharedCipher(t *testing.T) {
	kind, bin := clientUnderTest(t)
	t.Parallel()
	pair := harness.NewPair(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	srv := harness.StartServer(t, pair, pki, harness.ServerOptions{DataCiphers: "AES-128-GCM"})
	cli := harness.StartClient(t, kind, bin, srv, harness.ClientOptions{DataCiphers: "CHACHA20-POLY1305"})
	assertFatalAuthFailure(t, cli, wantNoSharedCipherLog)
	requireLine(t, "openvpn server", srv.LogText(), "no shared cipher")
}

// TestWeftAuthFailed: the server rejects the client (client-config-dir entry
// with `disable`) → AUTH_FAILED; the client logs it and exits non-zero.
func TestWeftAuthFailed(t *testing.T) {
	kind, bin := clientUnderTest(t)
	t.Parallel()
	pair := harness.NewPair(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	srv := harness.StartServer(t, pair, pki, harness.ServerOptions{CCD: map[string]string{"client": "disable\n"}})
	cli := harness.StartClient(t, kind, bin, srv, harness.ClientOptions{})
	assertFatalAuthFailure(t, cli, nil)
	requireLine(t, "openvpn server", srv.LogText(), "rejected", "disable")
}

// assertFatalAuthFailure: the client must log AUTH_FAILED (and extra, if set)
// and, for weft, exit non-zero within 30 s without ever bringing the tunnel up.
func assertFatalAuthFailure(t *testing.T, cli *harness.Client, extra []string) {
	t.Helper()
	exited := cli.Proc.Wait(30 * time.Second)
	requireLine(t, string(cli.Kind), cli.LogText(), wantAuthFailedLog...)
	if extra != nil {
		requireLine(t, string(cli.Kind), cli.LogText(), extra...)
	}
	if strings.Contains(cli.LogText(), harness.InitCompleted) || cli.HasTunAddr() {
		t.Errorf("%s client brought the tunnel up despite AUTH_FAILED", cli.Kind)
	}
	switch {
	case !exited:
		t.Errorf("%s client still running 30 s after AUTH_FAILED; it must exit (non-zero)", cli.Kind)
	case cli.Proc.ExitCode() == 0 && isWeft(cli.Kind):
		t.Errorf("weft exited 0 after AUTH_FAILED; want non-zero (%s)", cli.State())
	default:
		t.Logf("%s client: %s", cli.Kind, cli.State())
	}
}
