package harness

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// KeyType selects the PKI key algorithm.
type KeyType int

// Key types.
const (
	KeyEC  KeyType = iota // ECDSA P-256, keys as PKCS#8 "PRIVATE KEY"
	KeyRSA                // RSA-2048, keys as PKCS#1 "RSA PRIVATE KEY"
)

func (k KeyType) String() string {
	if k == KeyRSA {
		return "RSA-2048"
	}
	return "EC-P256"
}

// PKI is a test PKI written as PEM files into Dir. All paths are absolute.
type PKI struct {
	Dir  string
	Type KeyType

	CA                      string // ca.crt (CN "Weft Test CA")
	ServerCert, ServerKey   string // CN server, SAN DNS:server, EKU serverAuth
	ClientCert, ClientKey   string // CN client, EKU clientAuth
	ExpiredCert, ExpiredKey string // server cert from CA, expired yesterday
	OtherCA                 string // an unrelated CA (CN "Other Test CA")
	OtherServerCert         string // server cert signed by OtherCA
	OtherServerKey          string
	OtherClientCert         string // client cert signed by OtherCA
	OtherClientKey          string
	StaticKey               string // ta.key: OpenVPN Static key V1 (tls-auth / tls-crypt)
	WrongStaticKey          string // ta-wrong.key: a different static key
}

type issued struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// NewPKI generates a PKI of the given type into a fresh t.TempDir().
func NewPKI(t testing.TB, kt KeyType) *PKI {
	t.Helper()
	p, err := GeneratePKI(t.TempDir(), kt)
	if err != nil {
		t.Fatalf("pki: %v", err)
	}
	return p
}

// GeneratePKI generates a PKI into dir.
func GeneratePKI(dir string, kt KeyType) (*PKI, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	p := &PKI{Dir: dir, Type: kt}
	f := func(name string) string { return filepath.Join(dir, name) }
	now := time.Now()
	ca, err := makeCA(kt, "Weft Test CA", now)
	if err != nil {
		return nil, err
	}
	other, err := makeCA(kt, "Other Test CA", now)
	if err != nil {
		return nil, err
	}
	type job struct {
		crt, key string
		ca       *issued
		cn       string
		server   bool
		from, to time.Time
	}
	valid0, valid1 := now.Add(-time.Hour), now.Add(365*24*time.Hour)
	jobs := []job{
		{"server.crt", "server.key", ca, "server", true, valid0, valid1},
		{"client.crt", "client.key", ca, "client", false, valid0, valid1},
		{"server-expired.crt", "server-expired.key", ca, "server", true, now.Add(-48 * time.Hour), now.Add(-24 * time.Hour)},
		{"other-server.crt", "other-server.key", other, "server", true, valid0, valid1},
		{"other-client.crt", "other-client.key", other, "client", false, valid0, valid1},
	}
	if err := writePEM(f("ca.crt"), "CERTIFICATE", ca.cert.Raw, 0o644); err != nil {
		return nil, err
	}
	if err := writeKey(f("ca.key"), ca.key); err != nil {
		return nil, err
	}
	if err := writePEM(f("other-ca.crt"), "CERTIFICATE", other.cert.Raw, 0o644); err != nil {
		return nil, err
	}
	for _, j := range jobs {
		leaf, err := makeLeaf(kt, j.ca, j.cn, j.server, j.from, j.to)
		if err != nil {
			return nil, err
		}
		if err := writePEM(f(j.crt), "CERTIFICATE", leaf.cert.Raw, 0o644); err != nil {
			return nil, err
		}
		if err := writeKey(f(j.key), leaf.key); err != nil {
			return nil, err
		}
	}
	if err := WriteStaticKey(f("ta.key")); err != nil {
		return nil, err
	}
	if err := WriteStaticKey(f("ta-wrong.key")); err != nil {
		return nil, err
	}
	p.CA = f("ca.crt")
	p.ServerCert, p.ServerKey = f("server.crt"), f("server.key")
	p.ClientCert, p.ClientKey = f("client.crt"), f("client.key")
	p.ExpiredCert, p.ExpiredKey = f("server-expired.crt"), f("server-expired.key")
	p.OtherCA = f("other-ca.crt")
	p.OtherServerCert, p.OtherServerKey = f("other-server.crt"), f("other-server.key")
	p.OtherClientCert, p.OtherClientKey = f("other-client.crt"), f("other-client.key")
	p.StaticKey, p.WrongStaticKey = f("ta.key"), f("ta-wrong.key")
	return p, nil
}

func newKey(kt KeyType) (crypto.Signer, error) {
	if kt == KeyRSA {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
}

func makeCA(kt KeyType, cn string, now time.Time) (*issued, error) {
	key, err := newKey(kt)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-2 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA %q: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &issued{cert: cert, key: key}, nil
}

func makeLeaf(kt KeyType, ca *issued, cn string, server bool, from, to time.Time) (*issued, error) {
	key, err := newKey(kt)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	ku := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
	if kt == KeyRSA {
		ku = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	eku := x509.ExtKeyUsageClientAuth
	if server {
		eku = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             from,
		NotAfter:              to,
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{eku},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              []string{cn},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("create cert %q: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &issued{cert: cert, key: key}, nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func writeKey(path string, key crypto.Signer) error {
	if k, ok := key.(*rsa.PrivateKey); ok {
		return writePEM(path, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k), 0o600)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// StaticKeyText formats 256 key bytes as an "OpenVPN Static key V1" file.
func StaticKeyText(key [256]byte) string {
	var b strings.Builder
	b.WriteString("#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n")
	for i := 0; i < 256; i += 16 {
		b.WriteString(hex.EncodeToString(key[i : i+16]))
		b.WriteByte('\n')
	}
	b.WriteString("-----END OpenVPN Static key V1-----\n")
	return b.String()
}

// WriteStaticKey writes 256 random bytes as an OpenVPN static key file.
func WriteStaticKey(path string) error {
	var k [256]byte
	if _, err := rand.Read(k[:]); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(StaticKeyText(k)), 0o600)
}
