// Package demo builds throw-away OpenVPN setups (a PKI, a tls-crypt key, server and
// client configs) for weft's demo and for tests, and runs the demo scenario.
package demo

import (
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"weft/controlwrap"
	"weft/internal/testpki"
)

// Setup is a directory holding a CA, a server identity, client identities and a
// tls-crypt key.
type Setup struct {
	Dir     string
	Clients []string
}

// NewSetup writes a fresh PKI for a server and the named clients into dir.
func NewSetup(dir string, clients []string) (*Setup, error) {
	ca, err := testpki.NewCA("weft demo CA")
	if err != nil {
		return nil, err
	}
	write := func(name string, b []byte) error {
		return os.WriteFile(filepath.Join(dir, name), b, 0o600)
	}
	if err := write("ca.crt", ca.PEM); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	leaf, err := ca.Issue("server", x509.ExtKeyUsageServerAuth, time.Time{}, time.Now().Add(30*24*time.Hour))
	if err != nil {
		return nil, err
	}
	if err := write("server.crt", leaf.CertPEM); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := write("server.key", leaf.KeyPEM); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	for _, cn := range clients {
		l, err := ca.Issue(cn, x509.ExtKeyUsageClientAuth, time.Time{}, time.Now().Add(30*24*time.Hour))
		if err != nil {
			return nil, err
		}
		if err := write(cn+".crt", l.CertPEM); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if err := write(cn+".key", l.KeyPEM); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	var k controlwrap.StaticKey
	if _, err := rand.Read(k[:]); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := write("ta.key", k.Encode()); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return &Setup{Dir: dir, Clients: clients}, nil
}

// ServerConfig writes server.conf listening on the given listeners (weft `listen`
// lines, e.g. "udp 127.0.0.1:0") and returns its path.
func (s *Setup) ServerConfig(listens []string, extra ...string) (string, error) {
	var b strings.Builder
	b.WriteString("# weft demo server\nmode server\ntls-server\ndev tun\ntopology subnet\n")
	b.WriteString("server 10.8.0.0 255.255.255.0\nserver-ipv6 fd00:8::/64\n")
	for _, l := range listens {
		fmt.Fprintf(&b, "listen %s\n", l)
	}
	b.WriteString("ca ca.crt\ncert server.crt\nkey server.key\ndh none\ntls-crypt ta.key\n")
	b.WriteString("data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\nkeepalive 10 60\nclient-to-client\nduplicate-cn\nverb 3\n")
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	path := filepath.Join(s.Dir, "server.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return path, nil
}

// ClientConfig writes <cn>.conf for a client of the server at remote (proto udp or
// tcp) and returns its path.
func (s *Setup) ClientConfig(cn, proto string, remote netip.AddrPort, extra ...string) (string, error) {
	if proto == "tcp" {
		proto = "tcp-client"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# weft demo client %s\nclient\ndev tun\nproto %s\nremote %s %d\nnobind\n", cn, proto, remote.Addr(), remote.Port())
	fmt.Fprintf(&b, "ca ca.crt\ncert %s.crt\nkey %s.key\nremote-cert-tls server\ntls-crypt ta.key\n", cn, cn)
	b.WriteString("data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\nconnect-retry 1 5\nverb 3\n")
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	path := filepath.Join(s.Dir, cn+".conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return path, nil
}
