// Package certcheck implements OpenVPN-style verification of a peer's
// certificate chain: chain building to the configured CA, validity dates,
// the --remote-cert-tls, --remote-cert-ku and --remote-cert-eku key-usage
// checks and the --verify-x509-name subject checks.
//
// Unlike TLS in browsers, OpenVPN never compares host names with the
// certificate's subjectAltName; peers are identified by their subject alone.
// This package follows that model: no host-name checks are made.
//
// The core function Verify is pure: it takes the current time as an argument.
// Options.VerifyPeerCertificate adapts it to crypto/tls.
package certcheck

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Values of Options.RemoteCertTLS.
const (
	RemoteServer = "server" // peer must be a TLS server (EKU serverAuth)
	RemoteClient = "client" // peer must be a TLS client (EKU clientAuth)
)

// Values of Options.VerifyX509Type.
const (
	// X509Subject compares the whole subject DN, formatted by SubjectString.
	X509Subject = "subject"
	// X509Name compares the common name (CN) exactly.
	X509Name = "name"
	// X509NamePrefix requires the common name (CN) to start with the name.
	X509NamePrefix = "name-prefix"
)

// Sentinel errors. Errors returned by Verify wrap one of these, so callers
// can classify failures with errors.Is.
var (
	ErrNoCertificate  = errors.New("no peer certificate")
	ErrParse          = errors.New("cannot parse certificate")
	ErrNoRoots        = errors.New("no CA certificates configured")
	ErrExpired        = errors.New("certificate has expired")
	ErrNotYetValid    = errors.New("certificate is not yet valid")
	ErrUnknownCA      = errors.New("certificate signed by unknown authority")
	ErrChain          = errors.New("certificate chain is invalid")
	ErrKeyUsage       = errors.New("key usage check failed")
	ErrExtKeyUsage    = errors.New("extended key usage check failed")
	ErrNameMismatch   = errors.New("X.509 name mismatch")
	ErrInvalidOptions = errors.New("invalid certificate check options")
	ErrRevoked        = errors.New("certificate has been revoked")
	ErrCRL            = errors.New("invalid CRL")
)

var (
	oidKeyUsage   = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidServerAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	oidClientAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
)

// Options configures Verify. The zero value rejects everything (no Roots).
type Options struct {
	// Roots holds the trusted CA certificates (OpenVPN --ca). Required:
	// the system roots are never used.
	Roots *x509.CertPool
	// Intermediates holds additional untrusted intermediate CA
	// certificates that may be used to build the chain. The certificates
	// the peer sends after its leaf (rawCerts[1:]) are always used as
	// intermediates as well. May be nil.
	Intermediates *x509.CertPool
	// RemoteCertTLS is "" (no check), "server" or "client" (OpenVPN
	// --remote-cert-tls). "server" requires the leaf to carry a non-empty
	// keyUsage extension and the serverAuth extended key usage; "client"
	// requires a non-empty keyUsage extension and clientAuth. When set, it
	// takes precedence over RemoteCertKU and RemoteCertEKU, as in OpenVPN.
	RemoteCertTLS string
	// RemoteCertKU (OpenVPN --remote-cert-ku) lists acceptable keyUsage
	// values in OpenSSL's numeric form as written in OpenVPN configs
	// (digitalSignature=0x80, nonRepudiation=0x40, keyEncipherment=0x20,
	// dataEncipherment=0x10, keyAgreement=0x08, keyCertSign=0x04,
	// cRLSign=0x02, encipherOnly=0x01, decipherOnly=0x8000). The leaf's
	// keyUsage must contain all bits of at least one value. A nil slice
	// disables the check; an empty non-nil slice only requires the keyUsage
	// extension to be present.
	RemoteCertKU []uint32
	// RemoteCertEKU (OpenVPN --remote-cert-eku) is an extended key usage
	// the leaf must carry, as a dotted OID ("1.3.6.1.5.5.7.3.1"), an OpenSSL
	// short name ("serverAuth") or long name ("TLS Web Server
	// Authentication"). Empty disables the check.
	RemoteCertEKU string
	// VerifyX509Name, when non-empty, is compared with the leaf's subject
	// according to VerifyX509Type (OpenVPN --verify-x509-name).
	VerifyX509Name string
	// VerifyX509Type is "subject", "name" or "name-prefix". Empty means
	// "subject", which is OpenVPN's default: the whole subject DN in the
	// format of SubjectString ("C=KG, ST=NA, L=Bishkek, CN=Server-1") must
	// equal VerifyX509Name. "name" requires the common name to equal it and
	// "name-prefix" requires the common name to start with it.
	VerifyX509Type string
	// CRLs are certificate revocation lists (OpenVPN --crl-verify; see
	// ParseCRLs). For every certificate in the verified chain except the
	// root, each CRL issued by that certificate's issuer is checked: a
	// listed serial number is ErrRevoked, a CRL whose signature does not
	// verify with the issuer's key is ErrCRL. As in OpenVPN, a missing CRL
	// for some CA is not an error. CRL validity dates (thisUpdate,
	// nextUpdate) are not enforced.
	CRLs []*x509.RevocationList
}

// ParseCRLs parses PEM data holding one or more "X509 CRL" blocks. Blocks of
// other types are ignored; it is an error if no CRL is found or a CRL block
// does not parse.
func ParseCRLs(pemData []byte) ([]*x509.RevocationList, error) {
	var out []*x509.RevocationList
	rest := pemData
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certcheck: CRL #%d: %w: %w", len(out)+1, ErrCRL, err)
		}
		out = append(out, crl)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("certcheck: %w: no PEM X509 CRL block found", ErrCRL)
	}
	return out, nil
}

// LoadCAPool parses PEM data holding one or more CERTIFICATE blocks into a
// pool. Blocks of other types are ignored; it is an error if no certificate
// is found or any certificate block does not parse.
func LoadCAPool(pemData []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	rest := pemData
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certcheck: CA certificate #%d: %w: %w", n+1, ErrParse, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("certcheck: no PEM CERTIFICATE block found in CA data: %w", ErrNoRoots)
	}
	return pool, nil
}

// VerifyPeerCertificate returns a function suitable for
// tls.Config.VerifyPeerCertificate that calls Verify with the current time.
// It is meant to be used with tls.Config.InsecureSkipVerify (client side) or
// ClientAuth RequireAnyClientCert (server side), so that this package, not
// crypto/tls, performs the (host-name free) verification.
func (o Options) VerifyPeerCertificate() func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	return func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
		return Verify(o, rawCerts, time.Now())
	}
}

// Verify checks the peer certificate chain rawCerts (leaf first, DER
// encoded, as received in the TLS handshake) at time now, according to opts.
// The returned error names the offending certificate by its subject CN and
// wraps one of the package's sentinel errors.
func Verify(opts Options, rawCerts [][]byte, now time.Time) error {
	if err := opts.validate(); err != nil {
		return err
	}
	if len(rawCerts) == 0 {
		return fmt.Errorf("certcheck: %w", ErrNoCertificate)
	}
	certs := make([]*x509.Certificate, 0, len(rawCerts))
	for i, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return fmt.Errorf("certcheck: peer certificate #%d: %w: %w", i, ErrParse, err)
		}
		certs = append(certs, c)
	}
	leaf := certs[0]
	if opts.Roots == nil {
		return fmt.Errorf("certcheck: peer certificate %s: %w", describe(leaf), ErrNoRoots)
	}
	// Report the leaf's own validity first: it is the most common failure
	// and crypto/x509's message for it is less direct.
	if err := checkDates(leaf, now); err != nil {
		return err
	}
	inter := x509.NewCertPool()
	if opts.Intermediates != nil {
		inter = opts.Intermediates.Clone()
	}
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         opts.Roots,
		Intermediates: inter,
		CurrentTime:   now,
		// EKUs are checked by remote-cert-tls / remote-cert-eku instead.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return chainError(leaf, now, err)
	}
	if err := checkCRLs(opts.CRLs, leaf, chains); err != nil {
		return err
	}
	if err := checkUsage(opts, leaf); err != nil {
		return err
	}
	return checkName(opts, leaf)
}

func (o Options) validate() error {
	switch o.RemoteCertTLS {
	case "", RemoteServer, RemoteClient:
	default:
		return fmt.Errorf("certcheck: %w: remote-cert-tls %q (want server or client)", ErrInvalidOptions, o.RemoteCertTLS)
	}
	switch o.VerifyX509Type {
	case "", X509Subject, X509Name, X509NamePrefix:
	default:
		return fmt.Errorf("certcheck: %w: verify-x509-name type %q (want subject, name or name-prefix)", ErrInvalidOptions, o.VerifyX509Type)
	}
	if o.RemoteCertEKU != "" && o.RemoteCertTLS == "" {
		if _, ok := parseEKU(o.RemoteCertEKU); !ok {
			return fmt.Errorf("certcheck: %w: remote-cert-eku %q is not an OID or known name", ErrInvalidOptions, o.RemoteCertEKU)
		}
	}
	return nil
}

// describe names a certificate for error messages.
func describe(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("CN=%q", c.Subject.CommonName)
	}
	return fmt.Sprintf("subject %q", SubjectString(c))
}

func checkDates(c *x509.Certificate, now time.Time) error {
	if now.After(c.NotAfter) {
		return fmt.Errorf("certcheck: certificate %s: %w: expired at %s (now %s)", describe(c), ErrExpired,
			c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.Before(c.NotBefore) {
		return fmt.Errorf("certcheck: certificate %s: %w: valid from %s (now %s)", describe(c), ErrNotYetValid,
			c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// chainError converts a crypto/x509 verification error into a package error.
func chainError(leaf *x509.Certificate, now time.Time, err error) error {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired && inv.Cert != nil {
		if derr := checkDates(inv.Cert, now); derr != nil {
			return fmt.Errorf("certcheck: peer certificate %s: chain: %w", describe(leaf), derr)
		}
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		issuer := leaf.Issuer.CommonName
		if ua.Cert != nil {
			issuer = ua.Cert.Issuer.CommonName
		}
		return fmt.Errorf("certcheck: peer certificate %s: %w (issuer CN=%q): %w", describe(leaf), ErrUnknownCA, issuer, err)
	}
	return fmt.Errorf("certcheck: peer certificate %s: %w: %w", describe(leaf), ErrChain, err)
}

func hasExtension(c *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return true
		}
	}
	return false
}

func checkUsage(opts Options, leaf *x509.Certificate) error {
	ku, eku := opts.RemoteCertKU, opts.RemoteCertEKU
	switch opts.RemoteCertTLS {
	case RemoteServer:
		ku, eku = []uint32{}, "serverAuth"
	case RemoteClient:
		ku, eku = []uint32{}, "clientAuth"
	}
	if ku != nil {
		if !hasExtension(leaf, oidKeyUsage) || leaf.KeyUsage == 0 {
			return fmt.Errorf("certcheck: peer certificate %s: %w: keyUsage extension is missing or empty", describe(leaf), ErrKeyUsage)
		}
		if len(ku) > 0 {
			have := opensslKU(leaf.KeyUsage)
			ok := false
			for _, want := range ku {
				if want != 0 && have&want == want {
					ok = true
					break
				}
			}
			if !ok {
				return fmt.Errorf("certcheck: peer certificate %s: %w: keyUsage %#x matches none of %s", describe(leaf), ErrKeyUsage, have, hexList(ku))
			}
		}
	}
	if eku != "" {
		oid, ok := parseEKU(eku)
		if !ok {
			return fmt.Errorf("certcheck: %w: remote-cert-eku %q is not an OID or known name", ErrInvalidOptions, eku)
		}
		if !leafHasEKU(leaf, oid) {
			return fmt.Errorf("certcheck: peer certificate %s: %w: missing EKU %s", describe(leaf), ErrExtKeyUsage, ekuName(oid))
		}
	}
	return nil
}

func hexList(v []uint32) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%#x", x)
	}
	return strings.Join(s, ",")
}

// opensslKU converts Go's KeyUsage bits into OpenSSL's numeric keyUsage
// representation (the first two bytes of the BIT STRING, as used by
// OpenVPN's --remote-cert-ku).
func opensslKU(k x509.KeyUsage) uint32 {
	var v uint32
	for i := 0; i < 8; i++ {
		if k&(1<<i) != 0 {
			v |= 0x80 >> i
		}
	}
	if k&x509.KeyUsageDecipherOnly != 0 {
		v |= 0x8000
	}
	return v
}

type ekuInfo struct {
	oid        asn1.ObjectIdentifier
	short, lng string
	goEKU      x509.ExtKeyUsage
}

var ekuTable = []ekuInfo{
	{oidServerAuth, "serverAuth", "TLS Web Server Authentication", x509.ExtKeyUsageServerAuth},
	{oidClientAuth, "clientAuth", "TLS Web Client Authentication", x509.ExtKeyUsageClientAuth},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3}, "codeSigning", "Code Signing", x509.ExtKeyUsageCodeSigning},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 4}, "emailProtection", "E-mail Protection", x509.ExtKeyUsageEmailProtection},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}, "timeStamping", "Time Stamping", x509.ExtKeyUsageTimeStamping},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 9}, "OCSPSigning", "OCSP Signing", x509.ExtKeyUsageOCSPSigning},
}

// parseEKU accepts a dotted OID or an OpenSSL short or long EKU name.
func parseEKU(s string) (asn1.ObjectIdentifier, bool) {
	for _, e := range ekuTable {
		if s == e.short || s == e.lng {
			return e.oid, true
		}
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, false
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		n := 0
		if p == "" || len(p) > 9 {
			return nil, false
		}
		for _, ch := range p {
			if ch < '0' || ch > '9' {
				return nil, false
			}
			n = n*10 + int(ch-'0')
		}
		oid[i] = n
	}
	return oid, true
}

func ekuName(oid asn1.ObjectIdentifier) string {
	for _, e := range ekuTable {
		if e.oid.Equal(oid) {
			return e.short
		}
	}
	return oid.String()
}

func leafHasEKU(c *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, e := range ekuTable {
		if e.oid.Equal(oid) {
			for _, have := range c.ExtKeyUsage {
				if have == e.goEKU {
					return true
				}
			}
		}
	}
	for _, have := range c.UnknownExtKeyUsage {
		if have.Equal(oid) {
			return true
		}
	}
	return false
}

func checkName(opts Options, leaf *x509.Certificate) error {
	if opts.VerifyX509Name == "" {
		return nil
	}
	want := opts.VerifyX509Name
	switch opts.VerifyX509Type {
	case "", X509Subject:
		if got := SubjectString(leaf); got != want {
			return fmt.Errorf("certcheck: peer certificate %s: %w: subject got %q want %q", describe(leaf), ErrNameMismatch, got, want)
		}
	case X509Name:
		if got := leaf.Subject.CommonName; got != want {
			return fmt.Errorf("certcheck: peer certificate %s: %w: CN got %q want %q", describe(leaf), ErrNameMismatch, got, want)
		}
	case X509NamePrefix:
		if got := leaf.Subject.CommonName; !strings.HasPrefix(got, want) {
			return fmt.Errorf("certcheck: peer certificate %s: %w: CN got %q want prefix %q", describe(leaf), ErrNameMismatch, got, want)
		}
	}
	return nil
}

// checkCRLs checks each verified chain's certificates (except the root)
// against the CRLs of their issuers. Every chain must pass.
func checkCRLs(crls []*x509.RevocationList, leaf *x509.Certificate, chains [][]*x509.Certificate) error {
	if len(crls) == 0 {
		return nil
	}
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			cert, issuer := chain[i], chain[i+1]
			for _, crl := range crls {
				if !bytes.Equal(crl.RawIssuer, cert.RawIssuer) {
					continue
				}
				if err := crl.CheckSignatureFrom(issuer); err != nil {
					return fmt.Errorf("certcheck: peer certificate %s: %w: CRL of issuer %s: %w", describe(leaf), ErrCRL, describe(issuer), err)
				}
				for _, e := range crl.RevokedCertificateEntries {
					if e.SerialNumber != nil && e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
						what := describe(cert)
						if cert != leaf {
							what = describe(leaf) + " (chain certificate " + what + ")"
						}
						return fmt.Errorf("certcheck: certificate %s: %w: serial %s revoked at %s", what, ErrRevoked,
							cert.SerialNumber, e.RevocationTime.UTC().Format(time.RFC3339))
					}
				}
			}
		}
	}
	return nil
}
