package tlsengine

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"weft/internal/testpki"
)

// pump moves ciphertext between two sessions until neither has anything to send.
func pump(t *testing.T, a, b Session) {
	t.Helper()
	for i := 0; i < 50; i++ {
		ab, ba := a.TakeCiphertext(), b.TakeCiphertext()
		if len(ab) == 0 && len(ba) == 0 {
			return
		}
		if len(ab) > 0 {
			if err := b.PutCiphertext(ab); err != nil {
				return
			}
		}
		if len(ba) > 0 {
			if err := a.PutCiphertext(ba); err != nil {
				return
			}
		}
	}
	t.Fatal("handshake did not converge")
}

func pair(t *testing.T, version uint16, clientVerify, serverVerify func([][]byte) error) (Session, Session) {
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
	e, err := Lookup("go")
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.NewSession(&Config{Certificates: []tls.Certificate{cli.TLS}, VerifyPeer: clientVerify, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewSession(&Config{Server: true, Certificates: []tls.Certificate{srv.TLS}, VerifyPeer: serverVerify, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func ok([][]byte) error { return nil }

func TestHandshakeAndExport(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			c, s := pair(t, v, ok, ok)
			if err := c.WritePlaintext([]byte("hello from client")); err != nil {
				t.Fatal(err)
			}
			pump(t, c, s)
			if !c.HandshakeComplete() || !s.HandshakeComplete() {
				t.Fatalf("handshake incomplete: client %v server %v (errs %v, %v)", c.HandshakeComplete(), s.HandshakeComplete(), c.Err(), s.Err())
			}
			if got := string(s.ReadPlaintext()); got != "hello from client" {
				t.Errorf("server read %q", got)
			}
			if err := s.WritePlaintext([]byte("reply")); err != nil {
				t.Fatal(err)
			}
			pump(t, c, s)
			if got := string(c.ReadPlaintext()); got != "reply" {
				t.Errorf("client read %q", got)
			}
			k1, err := c.ExportKeyingMaterial("EXPORTER-OpenVPN-datakeys", nil, 256)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := s.ExportKeyingMaterial("EXPORTER-OpenVPN-datakeys", nil, 256)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k1, k2) || len(k1) != 256 {
				t.Error("exported keying material differs between client and server")
			}
			if ver, _ := c.Version(); ver != tls.VersionName(v) {
				t.Errorf("Version() = %q, want %q", ver, tls.VersionName(v))
			}
			if len(c.PeerCertificates()) == 0 || c.PeerCertificates()[0].Subject.CommonName != "server" {
				t.Error("client did not record the server certificate")
			}
		})
	}
}

func TestVerifyFailureSurfaces(t *testing.T) {
	reject := func([][]byte) error { return errors.New("certificate signed by unknown authority") }
	c, s := pair(t, 0, reject, ok)
	pump(t, c, s)
	if c.HandshakeComplete() {
		t.Fatal("handshake completed despite a rejected certificate")
	}
	if err := c.Err(); err == nil || !bytes.Contains([]byte(err.Error()), []byte("unknown authority")) {
		t.Errorf("client Err() = %v, want the verifier's reason", err)
	}
}

func TestLookupUnknown(t *testing.T) {
	if _, err := Lookup("nope"); err == nil {
		t.Error("Lookup of an unknown engine succeeded")
	}
}
