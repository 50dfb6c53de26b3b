//go:build openssl && cgo

package tlsengine

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"strings"
	"testing"
)

func TestOpenSSLInvalidOptions(t *testing.T) {
	p := testPKI(t, "ec")
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"tls-cipher", func(c *Config) { c.CipherList = "NO-SUCH-CIPHER" }, "tls-cipher"},
		{"tls-ciphersuites", func(c *Config) { c.CipherSuites13 = "TLS_NO_SUCH_SUITE" }, "tls-ciphersuites"},
		{"tls-groups", func(c *Config) { c.Groups = "X25519:nosuchgroup" }, "tls-groups"},
		{"cipher ids", func(c *Config) { c.CipherSuites = []uint16{0xfefe} }, "cipher suites"},
		{"version", func(c *Config) { c.MinVersion = 0x0999 }, "version"},
		{"empty chain", func(c *Config) { c.Certificates = []tls.Certificate{{PrivateKey: p.srv.PrivateKey}} }, "no DER"},
		{"mismatched key", func(c *Config) {
			c.Certificates = []tls.Certificate{{Certificate: p.srv.Certificate, PrivateKey: p.cli.PrivateKey}}
		}, "private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{Server: true, Certificates: []tls.Certificate{p.srv}, VerifyPeer: func([][]byte) error { return nil }}
			tc.mod(cfg)
			s, err := OpenSSLEngine{}.NewSession(cfg)
			if err == nil {
				s.Close()
				t.Fatal("NewSession succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestOpenSSLCipherStrings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version uint16
		mod     func(c, s *Config)
		want    string
	}{
		{"tls-cipher", tls.VersionTLS12, func(c, s *Config) { s.CipherList = "ECDHE-ECDSA-CHACHA20-POLY1305" },
			"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
		{"tls-cipher precedence", tls.VersionTLS12, func(c, s *Config) {
			s.CipherList = "ECDHE-ECDSA-AES256-GCM-SHA384"
			s.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		}, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
		{"tls-ciphersuites", tls.VersionTLS13, func(c, s *Config) { s.CipherSuites13 = "TLS_CHACHA20_POLY1305_SHA256" },
			"TLS_CHACHA20_POLY1305_SHA256"},
	} {
		for _, client := range Names() {
			t.Run(tc.name+"/"+client, func(t *testing.T) {
				cp := newConfPair(t, confCase{client: client, server: "openssl", version: tc.version, keyType: "ec"}, tc.mod)
				cp.handshake(t)
				if _, suite := cp.s.Version(); suite != tc.want {
					t.Errorf("negotiated %q, want %q", suite, tc.want)
				}
			})
		}
	}
}

func TestOpenSSLOpaqueSigner(t *testing.T) {
	// A signer x509.MarshalPKCS8PrivateKey cannot export (an HSM key, say) is refused.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI(t, "ec")
	cfg := &Config{Certificates: []tls.Certificate{{Certificate: p.cli.Certificate, PrivateKey: opaqueSigner{priv}}},
		VerifyPeer: func([][]byte) error { return nil }}
	if _, err := (OpenSSLEngine{}).NewSession(cfg); err == nil || !strings.Contains(err.Error(), "cannot be exported") {
		t.Errorf("opaque signer: err = %v", err)
	}
}

type opaqueSigner struct{ ed25519.PrivateKey }

func TestOpenSSLContextCache(t *testing.T) {
	p := testPKI(t, "ec")
	cfg := func() *Config {
		return &Config{Server: true, Certificates: []tls.Certificate{p.srv}, VerifyPeer: func([][]byte) error { return nil }}
	}
	a, err := sslCtxFor(cfg())
	if err != nil {
		t.Fatal(err)
	}
	b, err := sslCtxFor(cfg())
	if err != nil {
		t.Fatal(err)
	}
	freeCtx(a)
	freeCtx(b)
	if a != b {
		t.Error("equal configurations did not share a context")
	}
	c2 := cfg()
	c2.Groups = "X25519"
	c, err := sslCtxFor(c2)
	if err != nil {
		t.Fatal(err)
	}
	freeCtx(c)
	if c == a {
		t.Error("different configurations shared a context")
	}
}
