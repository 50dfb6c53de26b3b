package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI holds PEM files for a small EC P-256 PKI.
type testPKI struct {
	CA, ClientCert, ClientKey, ServerCert, ServerKey, OtherKey []byte
	StaticKey, CRL                                             []byte
}

func genKey(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func genCert(t testing.TB, tmpl, parent *x509.Certificate, pub, signer any) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	now := time.Now()
	caKey, _ := genKey(t)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Interop Test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	p := &testPKI{}
	p.CA = genCert(t, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	leaf := func(cn string, eku x509.ExtKeyUsage, serial int64) ([]byte, []byte) {
		k, kpem := genKey(t)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement, ExtKeyUsage: []x509.ExtKeyUsage{eku}}
		return genCert(t, tmpl, caTmpl, &k.PublicKey, caKey), kpem
	}
	p.ClientCert, p.ClientKey = leaf("client", x509.ExtKeyUsageClientAuth, 2)
	p.ServerCert, p.ServerKey = leaf("server", x509.ExtKeyUsageServerAuth, 3)
	_, p.OtherKey = genKey(t)
	caBlock, _ := pem.Decode(p.CA)
	caCert, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour)}, caCert, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.CRL = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl})
	p.StaticKey = staticKey(t)
	return p
}

func staticKey(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 256)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b)
	var sb strings.Builder
	sb.WriteString("#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n")
	for i := 0; i < len(h); i += 32 {
		sb.WriteString(h[i:i+32] + "\n")
	}
	sb.WriteString("-----END OpenVPN Static key V1-----\n")
	return []byte(sb.String())
}

// writePKI writes the PKI into dir/pki like the lab's make-pki.sh.
func (p *testPKI) write(t testing.TB, dir string) {
	t.Helper()
	files := map[string][]byte{
		"ca.crt": p.CA, "client.crt": p.ClientCert, "client.key": p.ClientKey,
		"server.crt": p.ServerCert, "server.key": p.ServerKey, "other.key": p.OtherKey,
		"ta.key": p.StaticKey, "up.txt": []byte("alice\nsecret\n"),
		"garbage.txt": []byte("hello\n"), "crl.pem": p.CRL,
	}
	writeFiles(t, filepath.Join(dir, "pki"), files)
}

func writeFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
