package certcheck

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

var (
	t0      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	serialN int64
)

type issued struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

type spec struct {
	subject    pkix.Name
	rawSubject []byte
	ca         bool
	ku         x509.KeyUsage
	eku        []x509.ExtKeyUsage
	unknownEKU []asn1.ObjectIdentifier
	notBefore  time.Time
	notAfter   time.Time
}

func issue(t testing.TB, s spec, parent *issued) *issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serialN++
	if s.notBefore.IsZero() {
		s.notBefore = t0.Add(-24 * time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = t0.Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serialN),
		Subject:               s.subject,
		RawSubject:            s.rawSubject,
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		KeyUsage:              s.ku,
		ExtKeyUsage:           s.eku,
		UnknownExtKeyUsage:    s.unknownEKU,
		BasicConstraintsValid: true,
		IsCA:                  s.ca,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &issued{cert: c, der: der, key: key}
}

func caSpec(cn string) spec {
	return spec{subject: pkix.Name{CommonName: cn}, ca: true, ku: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		notBefore: t0.Add(-48 * time.Hour), notAfter: t0.Add(10 * 365 * 24 * time.Hour)}
}

func leafSpec(cn string, eku ...x509.ExtKeyUsage) spec {
	return spec{subject: pkix.Name{CommonName: cn}, ku: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement, eku: eku}
}

func pool(cs ...*issued) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cs {
		p.AddCert(c.cert)
	}
	return p
}

func chain(cs ...*issued) [][]byte {
	var out [][]byte
	for _, c := range cs {
		out = append(out, c.der)
	}
	return out
}

func TestVerify(t *testing.T) {
	ca := issue(t, caSpec("Test CA"), nil)
	otherCA := issue(t, caSpec("Other CA"), nil)
	server := issue(t, leafSpec("server", x509.ExtKeyUsageServerAuth), ca)
	client := issue(t, leafSpec("client", x509.ExtKeyUsageClientAuth), ca)
	both := issue(t, leafSpec("both", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth), ca)
	anyEKU := issue(t, leafSpec("any", x509.ExtKeyUsageAny), ca)
	expired := issue(t, spec{subject: pkix.Name{CommonName: "old"}, ku: x509.KeyUsageDigitalSignature,
		eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, notBefore: t0.Add(-100 * 24 * time.Hour), notAfter: t0.Add(-time.Hour)}, ca)
	future := issue(t, spec{subject: pkix.Name{CommonName: "future"}, ku: x509.KeyUsageDigitalSignature,
		eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, notBefore: t0.Add(time.Hour)}, ca)
	foreign := issue(t, leafSpec("server", x509.ExtKeyUsageServerAuth), otherCA)
	noKU := issue(t, spec{subject: pkix.Name{CommonName: "noku"}, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca)
	noEKU := issue(t, spec{subject: pkix.Name{CommonName: "noeku"}, ku: x509.KeyUsageDigitalSignature}, ca)
	inter := issue(t, caSpec("Intermediate CA"), ca)
	viaInter := issue(t, leafSpec("srv-2", x509.ExtKeyUsageServerAuth), inter)
	expiredInter := issue(t, spec{subject: pkix.Name{CommonName: "Old Intermediate"}, ca: true, ku: x509.KeyUsageCertSign,
		notBefore: t0.Add(-100 * 24 * time.Hour), notAfter: t0.Add(-time.Hour)}, ca)
	viaExpiredInter := issue(t, leafSpec("srv-3", x509.ExtKeyUsageServerAuth), expiredInter)
	full := issue(t, spec{subject: pkix.Name{Country: []string{"KG"}, Province: []string{"NA"}, Locality: []string{"Bishkek"}, CommonName: "Server-1"},
		ku: x509.KeyUsageDigitalSignature, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca)
	oddEKU := issue(t, spec{subject: pkix.Name{CommonName: "odd"}, ku: x509.KeyUsageDigitalSignature,
		unknownEKU: []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 99999, 1}}}, ca)

	roots := pool(ca)
	srv := Options{Roots: roots, RemoteCertTLS: "server"}
	tests := []struct {
		name    string
		opts    Options
		certs   [][]byte
		now     time.Time
		wantErr error
		wantMsg []string
	}{
		{name: "server ok", opts: srv, certs: chain(server)},
		{name: "server ok no checks", opts: Options{Roots: roots}, certs: chain(server)},
		{name: "client ok", opts: Options{Roots: roots, RemoteCertTLS: "client"}, certs: chain(client)},
		{name: "both EKUs as server", opts: srv, certs: chain(both)},
		{name: "both EKUs as client", opts: Options{Roots: roots, RemoteCertTLS: "client"}, certs: chain(both)},
		{name: "client cert where server expected", opts: srv, certs: chain(client), wantErr: ErrExtKeyUsage,
			wantMsg: []string{`CN="client"`, "missing EKU serverAuth"}},
		{name: "server cert where client expected", opts: Options{Roots: roots, RemoteCertTLS: "client"}, certs: chain(server),
			wantErr: ErrExtKeyUsage, wantMsg: []string{"missing EKU clientAuth"}},
		{name: "anyExtendedKeyUsage is not serverAuth", opts: srv, certs: chain(anyEKU), wantErr: ErrExtKeyUsage},
		{name: "no EKU", opts: srv, certs: chain(noEKU), wantErr: ErrExtKeyUsage},
		{name: "expired", opts: srv, certs: chain(expired), wantErr: ErrExpired,
			wantMsg: []string{`CN="old"`, "expired at " + t0.Add(-time.Hour).Format(time.RFC3339)}},
		{name: "not yet valid", opts: srv, certs: chain(future), wantErr: ErrNotYetValid, wantMsg: []string{`CN="future"`, "valid from"}},
		{name: "valid later", opts: srv, certs: chain(future), now: t0.Add(2 * time.Hour)},
		{name: "other CA", opts: srv, certs: chain(foreign), wantErr: ErrUnknownCA,
			wantMsg: []string{`CN="server"`, "unknown authority", `issuer CN="Other CA"`}},
		{name: "no KU with remote-cert-tls", opts: srv, certs: chain(noKU), wantErr: ErrKeyUsage, wantMsg: []string{`CN="noku"`, "keyUsage"}},
		{name: "no KU without remote-cert-tls", opts: Options{Roots: roots}, certs: chain(noKU)},
		{name: "intermediate sent by peer", opts: srv, certs: chain(viaInter, inter)},
		{name: "intermediate missing", opts: srv, certs: chain(viaInter), wantErr: ErrUnknownCA, wantMsg: []string{`CN="srv-2"`}},
		{name: "intermediate from options", opts: Options{Roots: roots, Intermediates: pool(inter), RemoteCertTLS: "server"}, certs: chain(viaInter)},
		{name: "intermediate as root", opts: Options{Roots: pool(inter), RemoteCertTLS: "server"}, certs: chain(viaInter)},
		{name: "expired intermediate", opts: srv, certs: chain(viaExpiredInter, expiredInter), wantErr: ErrExpired,
			wantMsg: []string{`CN="srv-3"`, `CN="Old Intermediate"`, "expired at"}},
		{name: "x509 name ok", opts: Options{Roots: roots, VerifyX509Name: "server", VerifyX509Type: "name"}, certs: chain(server)},
		{name: "x509 name mismatch", opts: Options{Roots: roots, VerifyX509Name: "server2", VerifyX509Type: "name"}, certs: chain(server),
			wantErr: ErrNameMismatch, wantMsg: []string{`got "server" want "server2"`}},
		{name: "x509 name is exact", opts: Options{Roots: roots, VerifyX509Name: "Server", VerifyX509Type: "name"}, certs: chain(server), wantErr: ErrNameMismatch},
		{name: "x509 prefix ok", opts: Options{Roots: roots, VerifyX509Name: "Server-", VerifyX509Type: "name-prefix"}, certs: chain(full)},
		{name: "x509 prefix mismatch", opts: Options{Roots: roots, VerifyX509Name: "Client-", VerifyX509Type: "name-prefix"}, certs: chain(full),
			wantErr: ErrNameMismatch, wantMsg: []string{`want prefix "Client-"`}},
		{name: "x509 subject ok", opts: Options{Roots: roots, VerifyX509Name: "C=KG, ST=NA, L=Bishkek, CN=Server-1", VerifyX509Type: "subject"}, certs: chain(full)},
		{name: "x509 default type is subject", opts: Options{Roots: roots, VerifyX509Name: "C=KG, ST=NA, L=Bishkek, CN=Server-1"}, certs: chain(full)},
		{name: "x509 default type is not name", opts: Options{Roots: roots, VerifyX509Name: "Server-1"}, certs: chain(full), wantErr: ErrNameMismatch,
			wantMsg: []string{`subject got "C=KG, ST=NA, L=Bishkek, CN=Server-1" want "Server-1"`}},
		{name: "ku list ok", opts: Options{Roots: roots, RemoteCertKU: []uint32{0xa0, 0x88}}, certs: chain(server)},
		{name: "ku list subset ok", opts: Options{Roots: roots, RemoteCertKU: []uint32{0x80}}, certs: chain(server)},
		{name: "ku list mismatch", opts: Options{Roots: roots, RemoteCertKU: []uint32{0xa0}}, certs: chain(server), wantErr: ErrKeyUsage,
			wantMsg: []string{"keyUsage 0x88 matches none of 0xa0"}},
		{name: "ku required present", opts: Options{Roots: roots, RemoteCertKU: []uint32{}}, certs: chain(noKU), wantErr: ErrKeyUsage},
		{name: "eku long name", opts: Options{Roots: roots, RemoteCertEKU: "TLS Web Server Authentication"}, certs: chain(server)},
		{name: "eku oid", opts: Options{Roots: roots, RemoteCertEKU: "1.3.6.1.5.5.7.3.1"}, certs: chain(server)},
		{name: "eku unknown oid", opts: Options{Roots: roots, RemoteCertEKU: "1.3.6.1.4.1.99999.1"}, certs: chain(oddEKU)},
		{name: "eku mismatch", opts: Options{Roots: roots, RemoteCertEKU: "clientAuth"}, certs: chain(server), wantErr: ErrExtKeyUsage},
		{name: "remote-cert-tls overrides eku", opts: Options{Roots: roots, RemoteCertTLS: "server", RemoteCertEKU: "clientAuth"}, certs: chain(server)},
		{name: "bad eku option", opts: Options{Roots: roots, RemoteCertEKU: "bogus"}, certs: chain(server), wantErr: ErrInvalidOptions},
		{name: "bad remote-cert-tls", opts: Options{Roots: roots, RemoteCertTLS: "peer"}, certs: chain(server), wantErr: ErrInvalidOptions},
		{name: "bad x509 type", opts: Options{Roots: roots, VerifyX509Name: "x", VerifyX509Type: "cn"}, certs: chain(server), wantErr: ErrInvalidOptions},
		{name: "no certs", opts: srv, certs: nil, wantErr: ErrNoCertificate},
		{name: "garbage", opts: srv, certs: [][]byte{{0x30, 0x03, 0x01, 0x02}}, wantErr: ErrParse},
		{name: "garbage intermediate", opts: srv, certs: [][]byte{server.der, []byte("junk")}, wantErr: ErrParse, wantMsg: []string{"#1"}},
		{name: "no roots", opts: Options{RemoteCertTLS: "server"}, certs: chain(server), wantErr: ErrNoRoots},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			err := Verify(tt.opts, tt.certs, now)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
		})
	}
}

func TestSubjectString(t *testing.T) {
	ca := issue(t, caSpec("CA"), nil)
	mv, err := asn1.Marshal(pkix.RDNSequence{
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 6}, Value: "DE"}},
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: "Acme, Inc."}},
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: "Ops"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: "VPN"}},
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "host\x01"}},
		{{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "a@b.example"}},
		{{Type: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: "x"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		s    spec
		want string
	}{
		{"cn only", spec{subject: pkix.Name{CommonName: "server"}}, "CN=server"},
		{"openvpn example", spec{subject: pkix.Name{Country: []string{"KG"}, Province: []string{"NA"}, Locality: []string{"Bishkek"}, CommonName: "Server-1"}},
			"C=KG, ST=NA, L=Bishkek, CN=Server-1"},
		{"org", spec{subject: pkix.Name{Country: []string{"US"}, Organization: []string{"Org"}, OrganizationalUnit: []string{"Unit"}, CommonName: "c"}},
			"C=US, O=Org, OU=Unit, CN=c"},
		{"raw multi-valued", spec{rawSubject: mv}, `C=DE, O=Acme, Inc., OU=Ops + OU=VPN, CN=host\01, emailAddress=a@b.example, 1.2.3.4=x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := issue(t, tt.s, ca)
			if got := SubjectString(c.cert); got != tt.want {
				t.Errorf("SubjectString = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVerifyPeerCertificateAdapter(t *testing.T) {
	ca := issue(t, caSpec("CA"), nil)
	now := time.Now()
	srv := issue(t, spec{subject: pkix.Name{CommonName: "server"}, ku: x509.KeyUsageDigitalSignature,
		eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, notBefore: now.Add(-time.Hour), notAfter: now.Add(time.Hour)}, ca)
	f := Options{Roots: pool(ca), RemoteCertTLS: "server", VerifyX509Name: "server", VerifyX509Type: "name"}.VerifyPeerCertificate()
	if err := f(chain(srv), nil); err != nil {
		t.Fatalf("adapter: %v", err)
	}
	f = Options{Roots: pool(ca), RemoteCertTLS: "client"}.VerifyPeerCertificate()
	if err := f(chain(srv), nil); !errors.Is(err, ErrExtKeyUsage) {
		t.Fatalf("adapter: got %v, want ErrExtKeyUsage", err)
	}
}

func TestLoadCAPool(t *testing.T) {
	ca := issue(t, caSpec("CA"), nil)
	ca2 := issue(t, caSpec("CA2"), nil)
	good := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca2.der})...)
	withKey := append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2}}), good...)
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"two certs", good, nil},
		{"other blocks skipped", withKey, nil},
		{"empty", nil, ErrNoRoots},
		{"not pem", []byte("hello"), ErrNoRoots},
		{"bad cert", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), ErrParse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := LoadCAPool(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("LoadCAPool err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && p == nil {
				t.Fatal("nil pool")
			}
		})
	}
	p, _ := LoadCAPool(good)
	srv := issue(t, leafSpec("s", x509.ExtKeyUsageServerAuth), ca2)
	if err := Verify(Options{Roots: p, RemoteCertTLS: "server"}, chain(srv), t0); err != nil {
		t.Fatalf("Verify with loaded pool: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	ca := issue(f, caSpec("CA"), nil)
	srv := issue(f, leafSpec("server", x509.ExtKeyUsageServerAuth), ca)
	f.Add(srv.der, ca.der)
	f.Add([]byte{0x30, 0x00}, []byte{})
	roots := pool(ca)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		_ = Verify(Options{Roots: roots, RemoteCertTLS: "server", VerifyX509Name: "server", VerifyX509Type: "name"}, [][]byte{a, b}, t0)
		_, _ = LoadCAPool(a)
	})
}
