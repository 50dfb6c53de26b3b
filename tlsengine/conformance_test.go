package tlsengine

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"weft/internal/testpki"
)

// The conformance suite runs every compiled-in engine (Names()) against itself and
// against every other engine, in both roles: "go" always, "openssl" with -tags openssl.

// confLabel is OpenVPN's data-channel key export label.
const confLabel = "EXPORTER-OpenVPN-datakeys"

// confPKI is a CA with a server and a client certificate of one key type.
type confPKI struct {
	pool     *x509.CertPool
	caDER    []byte
	srv, cli tls.Certificate
}

var (
	pkiOnce  sync.Once
	pkiByKey map[string]*confPKI
	pkiErr   error
)

var keyTypes = []string{"ec", "rsa"}

// testPKI returns the PKI for "ec" (P-256, via testpki) or "rsa" (RSA-2048), made once
// per test binary.
func testPKI(tb testing.TB, keyType string) *confPKI {
	tb.Helper()
	pkiOnce.Do(func() {
		pkiByKey = map[string]*confPKI{}
		pkiByKey["ec"], pkiErr = newECPKI()
		if pkiErr != nil {
			return
		}
		pkiByKey["rsa"], pkiErr = newRSAPKI()
	})
	if pkiErr != nil {
		tb.Fatal(pkiErr)
	}
	return pkiByKey[keyType]
}

func newECPKI() (*confPKI, error) {
	ca, err := testpki.NewCA("conformance ca")
	if err != nil {
		return nil, err
	}
	srv, err := ca.Issue("server", x509.ExtKeyUsageServerAuth, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	cli, err := ca.Issue("client", x509.ExtKeyUsageClientAuth, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	p := &confPKI{pool: x509.NewCertPool(), caDER: ca.Cert.Raw, srv: srv.TLS, cli: cli.TLS}
	p.pool.AddCert(ca.Cert)
	return p, nil
}

func newRSAPKI() (*confPKI, error) {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "conformance rsa ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	issue := func(cn string, serial int64, eku x509.ExtKeyUsage) (tls.Certificate, error) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return tls.Certificate{}, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{eku},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return tls.Certificate{}, err
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
	}
	p := &confPKI{pool: x509.NewCertPool(), caDER: caDER}
	p.pool.AddCert(caCert)
	if p.srv, err = issue("server", 2, x509.ExtKeyUsageServerAuth); err != nil {
		return nil, err
	}
	if p.cli, err = issue("client", 3, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	return p, nil
}

// chainVerifier checks the raw chain against the PKI's CA, the way certcheck would,
// and records the last chain it saw.
type chainVerifier struct {
	pool  *x509.CertPool
	mu    sync.Mutex
	calls int
	last  [][]byte
}

func (v *chainVerifier) verify(raw [][]byte) error {
	v.mu.Lock()
	v.calls++
	v.last = raw
	v.mu.Unlock()
	if len(raw) == 0 {
		return errors.New("no certificate")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, der := range raw[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		inter.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: v.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// exchange moves ciphertext both ways until neither side has anything to send. Put
// errors are ignored so that alerts still reach the other side.
func exchange(tb testing.TB, a, b Session) {
	tb.Helper()
	for i := 0; i < 100; i++ {
		ab := a.TakeCiphertext()
		if len(ab) > 0 {
			_ = b.PutCiphertext(ab)
		}
		ba := b.TakeCiphertext()
		if len(ba) > 0 {
			_ = a.PutCiphertext(ba)
		}
		if len(ab) == 0 && len(ba) == 0 {
			return
		}
	}
	tb.Fatal("sessions did not settle")
}

type confCase struct {
	client, server string // engine names
	version        uint16 // max version (0: engine default)
	keyType        string
}

func (c confCase) String() string {
	v := "default"
	if c.version != 0 {
		v = strings.ReplaceAll(tls.VersionName(c.version), " ", "")
	}
	return fmt.Sprintf("%s-%s/%s/%s", c.client, c.server, v, c.keyType)
}

// everyPair lists client/server engine combinations, both roles for every engine.
func everyPair() [][2]string {
	var out [][2]string
	for _, c := range Names() {
		for _, s := range Names() {
			out = append(out, [2]string{c, s})
		}
	}
	return out
}

type confPair struct {
	c, s           Session
	cVer, sVer     *chainVerifier
	cCfg, sCfg     *Config
	clientEng, srv Engine
}

func lookup(tb testing.TB, name string) Engine {
	tb.Helper()
	e, err := Lookup(name)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// newConfPair builds a client and a server session; mod may adjust the configs.
func newConfPair(tb testing.TB, tc confCase, mod func(c, s *Config)) *confPair {
	tb.Helper()
	p := testPKI(tb, tc.keyType)
	cp := &confPair{
		cVer:      &chainVerifier{pool: p.pool},
		sVer:      &chainVerifier{pool: p.pool},
		clientEng: lookup(tb, tc.client),
		srv:       lookup(tb, tc.server),
	}
	cp.cCfg = &Config{Certificates: []tls.Certificate{p.cli}, VerifyPeer: cp.cVer.verify, MaxVersion: tc.version}
	cp.sCfg = &Config{Server: true, Certificates: []tls.Certificate{p.srv}, VerifyPeer: cp.sVer.verify, MaxVersion: tc.version}
	if mod != nil {
		mod(cp.cCfg, cp.sCfg)
	}
	var err error
	if cp.s, err = cp.srv.NewSession(cp.sCfg); err != nil {
		tb.Fatalf("server NewSession: %v", err)
	}
	if cp.c, err = cp.clientEng.NewSession(cp.cCfg); err != nil {
		cp.s.Close()
		tb.Fatalf("client NewSession: %v", err)
	}
	tb.Cleanup(func() { cp.c.Close(); cp.s.Close() })
	return cp
}

func (cp *confPair) handshake(tb testing.TB) {
	tb.Helper()
	exchange(tb, cp.c, cp.s)
	if !cp.c.HandshakeComplete() || !cp.s.HandshakeComplete() {
		tb.Fatalf("handshake incomplete: client %v (%v), server %v (%v)",
			cp.c.HandshakeComplete(), cp.c.Err(), cp.s.HandshakeComplete(), cp.s.Err())
	}
	if cp.c.Err() != nil || cp.s.Err() != nil {
		tb.Fatalf("errors after handshake: client %v, server %v", cp.c.Err(), cp.s.Err())
	}
}

func allCases() []confCase {
	var out []confCase
	for _, pr := range everyPair() {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			for _, k := range keyTypes {
				out = append(out, confCase{client: pr[0], server: pr[1], version: v, keyType: k})
			}
		}
	}
	return out
}

// isOneRecord reports whether b is exactly one TLS application_data record.
func isOneRecord(b []byte) bool {
	if len(b) < 5 || b[0] != 23 {
		return false
	}
	return int(b[3])<<8|int(b[4]) == len(b)-5
}

func TestConformanceHandshake(t *testing.T) {
	for _, tc := range allCases() {
		t.Run(tc.String(), func(t *testing.T) {
			cp := newConfPair(t, tc, nil)
			if err := cp.c.WritePlaintext([]byte("queued before the handshake")); err != nil {
				t.Fatal(err)
			}
			cp.handshake(t)

			// Version and suite agree with the requested version and with each other.
			cv, cs := cp.c.Version()
			sv, ss := cp.s.Version()
			if cv != tls.VersionName(tc.version) || sv != cv {
				t.Errorf("Version(): client %q server %q, want %q", cv, sv, tls.VersionName(tc.version))
			}
			if cs == "" || cs != ss {
				t.Errorf("cipher suites: client %q server %q", cs, ss)
			}

			// Keying material export (OpenVPN: nil context, 256 bytes).
			k1, err := cp.c.ExportKeyingMaterial(confLabel, nil, 256)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := cp.s.ExportKeyingMaterial(confLabel, nil, 256)
			if err != nil {
				t.Fatal(err)
			}
			if len(k1) != 256 || !bytes.Equal(k1, k2) {
				t.Error("exported keying material differs between client and server")
			}
			k3, err := cp.c.ExportKeyingMaterial(confLabel, []byte("ctx"), 32)
			if err != nil {
				t.Fatal(err)
			}
			k4, err := cp.s.ExportKeyingMaterial(confLabel, []byte("ctx"), 32)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k3, k4) || bytes.Equal(k3, k1[:32]) {
				t.Error("export with a context: sides differ, or equals the context-less export")
			}

			// Peer certificates, leaf first, as verified.
			if pc := cp.c.PeerCertificates(); len(pc) == 0 || pc[0].Subject.CommonName != "server" {
				t.Errorf("client PeerCertificates = %v", pc)
			}
			if pc := cp.s.PeerCertificates(); len(pc) == 0 || pc[0].Subject.CommonName != "client" {
				t.Errorf("server PeerCertificates = %v", pc)
			}
			if cp.cVer.calls != 1 || cp.sVer.calls != 1 {
				t.Errorf("verifier calls: client %d server %d, want 1 each", cp.cVer.calls, cp.sVer.calls)
			}

			// Plaintext both ways; the pre-handshake write arrives intact.
			if got := string(cp.s.ReadPlaintext()); got != "queued before the handshake" {
				t.Errorf("server read %q", got)
			}
			if err := cp.s.WritePlaintext([]byte("reply")); err != nil {
				t.Fatal(err)
			}
			exchange(t, cp.c, cp.s)
			if got := string(cp.c.ReadPlaintext()); got != "reply" {
				t.Errorf("client read %q", got)
			}

			// One WritePlaintext is one record and arrives as one chunk, up to 16 KiB.
			for _, size := range []int{1, 300, 16384} {
				msg := bytes.Repeat([]byte{byte(size)}, size)
				for _, dir := range []struct {
					name     string
					from, to Session
				}{{"c2s", cp.c, cp.s}, {"s2c", cp.s, cp.c}} {
					if err := dir.from.WritePlaintext(msg); err != nil {
						t.Fatal(err)
					}
					ct := dir.from.TakeCiphertext()
					if !isOneRecord(ct) {
						t.Errorf("%s %d bytes: ciphertext is not exactly one record (%d bytes)", dir.name, size, len(ct))
					}
					if err := dir.to.PutCiphertext(ct); err != nil {
						t.Fatal(err)
					}
					if got := dir.to.ReadPlaintext(); !bytes.Equal(got, msg) {
						t.Errorf("%s %d bytes: read %d bytes", dir.name, size, len(got))
					}
				}
			}
			exchange(t, cp.c, cp.s)
			if cp.c.Err() != nil || cp.s.Err() != nil {
				t.Fatalf("errors: client %v, server %v", cp.c.Err(), cp.s.Err())
			}
		})
	}
}

// TestConformanceChain checks that a chain certificate is sent and handed to the
// verifier leaf first.
func TestConformanceChain(t *testing.T) {
	for _, pr := range everyPair() {
		for _, k := range keyTypes {
			tc := confCase{client: pr[0], server: pr[1], keyType: k}
			t.Run(tc.String(), func(t *testing.T) {
				p := testPKI(t, k)
				cp := newConfPair(t, tc, func(c, s *Config) {
					for _, cfg := range []*Config{c, s} {
						crt := cfg.Certificates[0]
						crt.Certificate = append(append([][]byte(nil), crt.Certificate...), p.caDER)
						cfg.Certificates = []tls.Certificate{crt}
					}
				})
				cp.handshake(t)
				for name, v := range map[string]*chainVerifier{"client": cp.cVer, "server": cp.sVer} {
					if len(v.last) != 2 || !bytes.Equal(v.last[1], p.caDER) {
						t.Errorf("%s verifier saw %d certificates, want leaf + CA", name, len(v.last))
					}
				}
				if n := len(cp.c.PeerCertificates()); n != 2 {
					t.Errorf("client PeerCertificates: %d, want 2", n)
				}
			})
		}
	}
}

func TestConformanceVerifierRejects(t *testing.T) {
	const reason = "certificate signed by unknown authority"
	reject := func([][]byte) error { return errors.New(reason) }
	for _, pr := range everyPair() {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			for _, side := range []string{"client", "server"} {
				tc := confCase{client: pr[0], server: pr[1], version: v, keyType: "ec"}
				t.Run(tc.String()+"/"+side+"-rejects", func(t *testing.T) {
					cp := newConfPair(t, tc, func(c, s *Config) {
						if side == "client" {
							c.VerifyPeer = reject
						} else {
							s.VerifyPeer = reject
						}
					})
					_ = cp.c.WritePlaintext([]byte("key method 2"))
					exchange(t, cp.c, cp.s)
					rej, other := cp.c, cp.s
					if side == "server" {
						rej, other = cp.s, cp.c
					}
					if rej.HandshakeComplete() {
						t.Error("the rejecting side completed the handshake")
					}
					if err := rej.Err(); err == nil || !strings.Contains(err.Error(), reason) {
						t.Errorf("rejecting side Err() = %v, want the verifier's reason", err)
					}
					if other.Err() == nil {
						t.Error("the rejected side saw no error (no alert received)")
					}
					t.Logf("rejecting: %v; rejected: %v", rej.Err(), other.Err())
					if got := cp.s.ReadPlaintext(); len(got) != 0 {
						t.Errorf("server received plaintext %q from a rejected session", got)
					}
					if rej.PutCiphertext([]byte{23, 3, 3, 0, 1, 0}) == nil {
						t.Error("PutCiphertext after a fatal error returned nil")
					}
					if _, err := rej.ExportKeyingMaterial(confLabel, nil, 256); err == nil {
						t.Error("ExportKeyingMaterial succeeded on a failed session")
					}
				})
			}
		}
	}
}

func TestConformanceClientWithoutCertificate(t *testing.T) {
	for _, pr := range everyPair() {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			tc := confCase{client: pr[0], server: pr[1], version: v, keyType: "ec"}
			t.Run(tc.String(), func(t *testing.T) {
				cp := newConfPair(t, tc, func(c, s *Config) { c.Certificates = nil })
				_ = cp.c.WritePlaintext([]byte("key method 2"))
				exchange(t, cp.c, cp.s)
				if cp.s.HandshakeComplete() {
					t.Error("server completed a handshake without a client certificate")
				}
				if cp.s.Err() == nil {
					t.Error("server Err() is nil")
				}
				if cp.c.Err() == nil {
					t.Error("client saw no error (no alert received)")
				}
				t.Logf("server: %v; client: %v", cp.s.Err(), cp.c.Err())
				if cp.sVer.calls != 0 {
					t.Error("server verifier called without a certificate")
				}
				if got := cp.s.ReadPlaintext(); len(got) != 0 {
					t.Errorf("server received plaintext %q", got)
				}
			})
		}
	}
}

func TestConformanceClose(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			tc := confCase{client: name, server: name, keyType: "ec"}
			cp := newConfPair(t, tc, nil)
			cp.handshake(t)
			if _, err := cp.c.ExportKeyingMaterial(confLabel, nil, 256); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				cp.c.Close()
			}
			if err := cp.c.PutCiphertext([]byte{1}); !errors.Is(err, ErrClosed) {
				t.Errorf("PutCiphertext after Close = %v, want ErrClosed", err)
			}
			if err := cp.c.WritePlaintext([]byte("x")); !errors.Is(err, ErrClosed) {
				t.Errorf("WritePlaintext after Close = %v, want ErrClosed", err)
			}
			// A session closed before its handshake also closes cleanly, twice.
			e := lookup(t, name)
			s, err := e.NewSession(&Config{Server: true, Certificates: cp.sCfg.Certificates, VerifyPeer: cp.sVer.verify})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			s.Close()
		})
	}
}

func TestConformanceExportBeforeHandshake(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			cp := newConfPair(t, confCase{client: name, server: name, keyType: "ec"}, nil)
			if _, err := cp.c.ExportKeyingMaterial(confLabel, nil, 256); err == nil {
				t.Error("export before the handshake succeeded")
			}
			if cp.c.HandshakeComplete() || cp.c.PeerCertificates() != nil {
				t.Error("handshake state before any exchange")
			}
			if cp.c.TakeCiphertext() == nil {
				t.Error("a new client session has no ClientHello to send")
			}
		})
	}
}

func TestConformanceNeedsVerifier(t *testing.T) {
	for _, name := range Names() {
		if _, err := lookup(t, name).NewSession(&Config{}); err == nil {
			t.Errorf("%s: NewSession without VerifyPeer succeeded", name)
		}
	}
}

// TestConformanceOptions checks Groups and CipherSuites across engines.
func TestConformanceOptions(t *testing.T) {
	for _, pr := range everyPair() {
		tc := confCase{client: pr[0], server: pr[1], keyType: "ec"}
		t.Run(tc.String()+"/groups", func(t *testing.T) {
			for _, g := range []string{"X25519", "prime256v1", "secp384r1:X25519"} {
				cp := newConfPair(t, tc, func(c, s *Config) { c.Groups, s.Groups = g, g })
				cp.handshake(t)
			}
		})
		t.Run(tc.String()+"/tls12-suite", func(t *testing.T) {
			tc := tc
			tc.version = tls.VersionTLS12
			for _, id := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256} {
				cp := newConfPair(t, tc, func(c, s *Config) { s.CipherSuites = []uint16{id} })
				cp.handshake(t)
				if _, suite := cp.c.Version(); suite != tls.CipherSuiteName(id) {
					t.Errorf("negotiated %q, want %q", suite, tls.CipherSuiteName(id))
				}
			}
		})
	}
}

func TestGoGroupsMapping(t *testing.T) {
	c := &Config{Groups: "X448:prime256v1:x25519:ffdhe2048:P-256"}
	got := c.goCurvePreferences()
	want := []tls.CurveID{tls.CurveP256, tls.X25519}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("goCurvePreferences = %v, want %v", got, want)
	}
	if (&Config{Groups: "X448"}).goCurvePreferences() != nil {
		t.Error("unknown groups only: want nil (crypto/tls defaults)")
	}
}

func BenchmarkHandshake(b *testing.B) {
	for _, name := range Names() {
		for _, k := range keyTypes {
			b.Run(name+"/"+k, func(b *testing.B) {
				p := testPKI(b, k)
				e := lookup(b, name)
				v := (&chainVerifier{pool: p.pool}).verify
				cCfg := &Config{Certificates: []tls.Certificate{p.cli}, VerifyPeer: v}
				sCfg := &Config{Server: true, Certificates: []tls.Certificate{p.srv}, VerifyPeer: v}
				b.ReportAllocs()
				for b.Loop() {
					s, err := e.NewSession(sCfg)
					if err != nil {
						b.Fatal(err)
					}
					c, err := e.NewSession(cCfg)
					if err != nil {
						b.Fatal(err)
					}
					exchange(b, c, s)
					if !c.HandshakeComplete() || !s.HandshakeComplete() {
						b.Fatalf("handshake failed: %v / %v", c.Err(), s.Err())
					}
					c.Close()
					s.Close()
				}
			})
		}
	}
}

// exchangeChunked is exchange with ciphertext delivered in pieces of at most n bytes.
func exchangeChunked(tb testing.TB, a, b Session, n int) {
	tb.Helper()
	put := func(to Session, ct []byte) {
		for len(ct) > 0 {
			k := min(n, len(ct))
			_ = to.PutCiphertext(ct[:k])
			ct = ct[k:]
		}
	}
	for i := 0; i < 100; i++ {
		ab := a.TakeCiphertext()
		put(b, ab)
		ba := b.TakeCiphertext()
		put(a, ba)
		if len(ab) == 0 && len(ba) == 0 {
			return
		}
	}
	tb.Fatal("sessions did not settle")
}

// TestConformanceFragmentedInput delivers the handshake and a 16 KiB record in small
// pieces: engines must buffer partial records.
func TestConformanceFragmentedInput(t *testing.T) {
	for _, pr := range everyPair() {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			tc := confCase{client: pr[0], server: pr[1], version: v, keyType: "rsa"}
			t.Run(tc.String(), func(t *testing.T) {
				cp := newConfPair(t, tc, nil)
				exchangeChunked(t, cp.c, cp.s, 7)
				if !cp.c.HandshakeComplete() || !cp.s.HandshakeComplete() {
					t.Fatalf("handshake incomplete: %v / %v", cp.c.Err(), cp.s.Err())
				}
				msg := make([]byte, 16384)
				for i := range msg {
					msg[i] = byte(i * 7)
				}
				if err := cp.s.WritePlaintext(msg); err != nil {
					t.Fatal(err)
				}
				exchangeChunked(t, cp.c, cp.s, 1000)
				if got := cp.c.ReadPlaintext(); !bytes.Equal(got, msg) {
					t.Errorf("client read %d bytes, want the 16384 written", len(got))
				}
				if cp.c.Err() != nil || cp.s.Err() != nil {
					t.Fatalf("errors: client %v, server %v", cp.c.Err(), cp.s.Err())
				}
			})
		}
	}
}
