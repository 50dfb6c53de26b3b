package harness

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// IssuedCert is a leaf certificate issued by a PKI's CA into its directory.
type IssuedCert struct {
	CN        string
	Cert, Key string // PEM file paths
	Serial    *big.Int
}

// loadCA reads the PKI's CA certificate and private key (ca.crt, ca.key).
func (p *PKI) loadCA() (*issued, error) {
	cb, err := os.ReadFile(p.CA)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(cb)
	if blk == nil {
		return nil, errors.New("ca.crt: no PEM block")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(filepath.Join(p.Dir, "ca.key"))
	if err != nil {
		return nil, err
	}
	kblk, _ := pem.Decode(kb)
	if kblk == nil {
		return nil, errors.New("ca.key: no PEM block")
	}
	var key any
	switch kblk.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kblk.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(kblk.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("ca.key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("ca.key: not a signing key")
	}
	return &issued{cert: cert, key: signer}, nil
}

// IssueClient issues a client certificate (EKU clientAuth) with common name cn
// from the PKI's CA, written as <cn>.crt and <cn>.key in the PKI directory.
func (p *PKI) IssueClient(cn string) (*IssuedCert, error) {
	ca, err := p.loadCA()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	leaf, err := makeLeaf(p.Type, ca, cn, false, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	if err != nil {
		return nil, err
	}
	ic := &IssuedCert{CN: cn, Cert: filepath.Join(p.Dir, cn+".crt"), Key: filepath.Join(p.Dir, cn+".key"), Serial: leaf.cert.SerialNumber}
	if err := writePEM(ic.Cert, "CERTIFICATE", leaf.cert.Raw, 0o644); err != nil {
		return nil, err
	}
	if err := writeKey(ic.Key, leaf.key); err != nil {
		return nil, err
	}
	return ic, nil
}

// WriteCRL writes a PEM "X509 CRL" signed by the PKI's CA to path, revoking
// the given serial numbers (valid from an hour ago for a day).
func (p *PKI) WriteCRL(path string, serials ...*big.Int) error {
	ca, err := p.loadCA()
	if err != nil {
		return err
	}
	now := time.Now()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-30 * time.Minute)})
	}
	tmpl := &x509.RevocationList{
		Number:                    big.NewInt(now.Unix()),
		ThisUpdate:                now.Add(-time.Hour),
		NextUpdate:                now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		return fmt.Errorf("create CRL: %w", err)
	}
	return writePEM(path, "X509 CRL", der, 0o644)
}
