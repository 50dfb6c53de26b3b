package certcheck

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"testing"
	"time"
)

// TestTLSHandshake checks the crypto/tls adapter on both sides of a real
// handshake (client verifies server with remote-cert-tls server, server
// verifies client with remote-cert-tls client).
func TestTLSHandshake(t *testing.T) {
	now := time.Now()
	caS := caSpec("CA")
	caS.notBefore, caS.notAfter = now.Add(-time.Hour), now.Add(time.Hour)
	ca := issue(t, caS, nil)
	mk := func(cn string, eku x509.ExtKeyUsage) tls.Certificate {
		c := issue(t, spec{subject: pkix.Name{CommonName: cn}, ku: x509.KeyUsageDigitalSignature,
			eku: []x509.ExtKeyUsage{eku}, notBefore: now.Add(-time.Hour), notAfter: now.Add(time.Hour)}, ca)
		return tls.Certificate{Certificate: [][]byte{c.der}, PrivateKey: c.key}
	}
	srvCert, cliCert := mk("server", x509.ExtKeyUsageServerAuth), mk("client", x509.ExtKeyUsageClientAuth)
	roots := pool(ca)

	run := func(clientWants string) (cliErr, srvErr error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Skipf("no loopback TCP: %v", err)
		}
		defer ln.Close()
		a, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		b, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		defer b.Close()
		deadline := time.Now().Add(10 * time.Second)
		_ = a.SetDeadline(deadline)
		_ = b.SetDeadline(deadline)
		srv := tls.Server(b, &tls.Config{
			Certificates:          []tls.Certificate{srvCert},
			ClientAuth:            tls.RequireAnyClientCert,
			VerifyPeerCertificate: Options{Roots: roots, RemoteCertTLS: "client"}.VerifyPeerCertificate(),
		})
		cli := tls.Client(a, &tls.Config{
			Certificates:          []tls.Certificate{cliCert},
			InsecureSkipVerify:    true, // verification is done by VerifyPeerCertificate
			VerifyPeerCertificate: Options{Roots: roots, RemoteCertTLS: clientWants}.VerifyPeerCertificate(),
		})
		done := make(chan error, 1)
		go func() { done <- srv.Handshake() }()
		cliErr = cli.Handshake()
		if cliErr != nil {
			a.Close()
		}
		srvErr = <-done
		return cliErr, srvErr
	}
	if cliErr, srvErr := run("server"); cliErr != nil || srvErr != nil {
		t.Fatalf("handshake: client %v, server %v", cliErr, srvErr)
	}
	if cliErr, _ := run("client"); !errors.Is(cliErr, ErrExtKeyUsage) {
		t.Fatalf("client accepted a server without clientAuth: %v", cliErr)
	}
}
