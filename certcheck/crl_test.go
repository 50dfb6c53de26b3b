package certcheck

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func makeCRL(t *testing.T, issuer *issued, revoked ...*issued) *x509.RevocationList {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: t0.Add(-time.Hour), NextUpdate: t0.Add(time.Hour)}
	for _, r := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: r.cert.SerialNumber, RevocationTime: t0.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.cert, issuer.key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func TestCRL(t *testing.T) {
	ca := issue(t, caSpec("CA"), nil)
	inter := issue(t, caSpec("Intermediate"), ca)
	good := issue(t, leafSpec("good", x509.ExtKeyUsageServerAuth), ca)
	bad := issue(t, leafSpec("bad", x509.ExtKeyUsageServerAuth), ca)
	viaInter := issue(t, leafSpec("sub", x509.ExtKeyUsageServerAuth), inter)
	// A CA with the same name but another key: its CRL must not verify.
	impostor := issue(t, caSpec("CA"), nil)

	roots := pool(ca)
	tests := []struct {
		name    string
		crls    []*x509.RevocationList
		certs   [][]byte
		wantErr error
		wantMsg string
	}{
		{"not revoked", []*x509.RevocationList{makeCRL(t, ca, bad)}, chain(good), nil, ""},
		{"revoked", []*x509.RevocationList{makeCRL(t, ca, bad)}, chain(bad), ErrRevoked, `CN="bad"`},
		{"empty crl", []*x509.RevocationList{makeCRL(t, ca)}, chain(bad), nil, ""},
		{"crl of other issuer only", []*x509.RevocationList{makeCRL(t, inter)}, chain(bad), nil, ""},
		{"revoked intermediate", []*x509.RevocationList{makeCRL(t, ca, inter)}, chain(viaInter, inter), ErrRevoked, `chain certificate CN="Intermediate"`},
		{"revoked by intermediate", []*x509.RevocationList{makeCRL(t, inter, viaInter)}, chain(viaInter, inter), ErrRevoked, `CN="sub"`},
		{"forged crl", []*x509.RevocationList{makeCRL(t, impostor, good)}, chain(good), ErrCRL, "CRL of issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(Options{Roots: roots, RemoteCertTLS: "server", CRLs: tt.crls}, tt.certs, t0)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
}

func TestParseCRLs(t *testing.T) {
	ca := issue(t, caSpec("CA"), nil)
	crl := makeCRL(t, ca)
	good := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.Raw})
	if got, err := ParseCRLs(append(good, good...)); err != nil || len(got) != 2 {
		t.Fatalf("ParseCRLs: %v %d", err, len(got))
	}
	if _, err := ParseCRLs([]byte("x")); !errors.Is(err, ErrCRL) {
		t.Fatalf("no CRL: %v", err)
	}
	if _, err := ParseCRLs(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte{1}})); !errors.Is(err, ErrCRL) {
		t.Fatalf("bad CRL: %v", err)
	}
}
