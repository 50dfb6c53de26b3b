package test

import (
	"os"
	"strings"
	"testing"
	"time"

	"weft/test/harness"
)

// TestStaticKeyFormat checks the generated static key file layout (no root needed).
func TestStaticKeyFormat(t *testing.T) {
	var k [256]byte
	for i := range k {
		k[i] = byte(i)
	}
	s := harness.StaticKeyText(k)
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 4+16+1 || lines[3] != "-----BEGIN OpenVPN Static key V1-----" || lines[20] != "-----END OpenVPN Static key V1-----" {
		t.Fatalf("bad layout:\n%s", s)
	}
	if lines[4] != "000102030405060708090a0b0c0d0e0f" || lines[19] != "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff" {
		t.Fatalf("bad hex lines: %q %q", lines[4], lines[19])
	}
}

// TestPKIGenerates checks the Go PKI (both key types) chains as expected (no root needed).
func TestPKIGenerates(t *testing.T) {
	for _, kt := range []harness.KeyType{harness.KeyEC, harness.KeyRSA} {
		t.Run(kt.String(), func(t *testing.T) {
			p := harness.NewPKI(t, kt)
			for _, f := range []string{p.CA, p.ServerCert, p.ServerKey, p.ClientCert, p.ClientKey,
				p.ExpiredCert, p.OtherCA, p.OtherServerCert, p.OtherClientCert, p.StaticKey, p.WrongStaticKey} {
				if st, err := os.Stat(f); err != nil || st.Size() == 0 {
					t.Fatalf("%s: %v", f, err)
				}
			}
			if err := verifyChain(p.CA, p.ServerCert, time.Now()); err != nil {
				t.Errorf("server cert: %v", err)
			}
			if err := verifyChain(p.OtherCA, p.ServerCert, time.Now()); err == nil {
				t.Errorf("server cert verified against the other CA")
			}
			if err := verifyChain(p.CA, p.ExpiredCert, time.Now()); err == nil {
				t.Errorf("expired cert verified")
			}
		})
	}
}

// TestHarnessOpenVPNtoOpenVPN proves the harness (namespaces, Go PKI, static key
// files, server/client runners, traffic checks) with openvpn on both ends: UDP,
// tls-crypt, topology subnet with IPv4+IPv6, then a clean client exit that the
// server sees as an exit notification.
func TestHarnessOpenVPNtoOpenVPN(t *testing.T) {
	harness.RequireOpenVPN(t)
	t.Parallel()
	pair := harness.NewPair(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	srv := harness.StartServer(t, pair, pki, harness.ServerOptions{})
	cli := harness.StartClient(t, harness.OpenVPNClient, "", srv, harness.ClientOptions{})
	cli.MustUp(t)
	checkTraffic(t, pair, true)
	if _, ok := srv.WaitLog(5*time.Second, "Peer Connection Initiated"); !ok {
		t.Errorf("server log lacks %q", "Peer Connection Initiated")
	}
	if ok, code := cli.Stop(10 * time.Second); !ok {
		t.Errorf("openvpn client did not exit on SIGTERM")
	} else {
		t.Logf("openvpn client exit code %d", code)
	}
	if l, ok := srv.WaitLog(10*time.Second, exitNotifySubstr); !ok {
		t.Errorf("server log lacks exit notification %q", exitNotifySubstr)
	} else {
		t.Logf("server: %s", l)
	}
}
