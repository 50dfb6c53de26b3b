package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"weft/certcheck"
)

func TestCertHelpers(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t)
	pki.write(t, dir)
	c, err := parseWith(t, dir, "remote-cert-tls server\nverify-x509-name server name\ncrl-verify pki/crl.pem\nextra-certs pki/ca.crt\n")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := c.CertCheckOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opts.RemoteCertTLS != "server" || opts.VerifyX509Type != "name" || len(opts.CRLs) != 1 {
		t.Fatalf("options %+v", opts)
	}
	srv, _ := pem.Decode(pki.ServerCert)
	if err := certcheck.Verify(opts, [][]byte{srv.Bytes}, time.Now()); err != nil {
		t.Fatalf("server cert rejected: %v", err)
	}
	cl, _ := pem.Decode(pki.ClientCert)
	if err := certcheck.Verify(opts, [][]byte{cl.Bytes}, time.Now()); err == nil {
		t.Fatal("client cert accepted as server")
	}
	cert, err := c.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 2 {
		t.Fatalf("chain length %d, want 2 (cert + extra-certs)", len(cert.Certificate))
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil || leaf.Subject.CommonName != "client" {
		t.Fatalf("leaf %v %v", leaf, err)
	}
	var _ *tls.Certificate = cert

	up, err := ParseClient(strings.NewReader("client\nremote a\nca pki/ca.crt\nauth-user-pass pki/up.txt\n"), "c", dir)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err := up.Certificate(); cert != nil || err != nil {
		t.Fatalf("auth-user-pass only: %v %v", cert, err)
	}
}
