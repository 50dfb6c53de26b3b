package config

import (
	"crypto/tls"
	"fmt"

	"weft/certcheck"
)

// CertCheckOptions returns the peer-verification options for package
// certcheck described by the configuration: roots from ca, remote-cert-tls,
// remote-cert-ku, remote-cert-eku, verify-x509-name and crl-verify.
func (c *Common) CertCheckOptions() (certcheck.Options, error) {
	roots, err := certcheck.LoadCAPool(c.CA)
	if err != nil {
		return certcheck.Options{}, fmt.Errorf("config: ca %s: %w", c.CAFile, err)
	}
	opts := certcheck.Options{
		Roots:          roots,
		RemoteCertTLS:  c.RemoteCertTLS,
		RemoteCertKU:   c.RemoteCertKU,
		RemoteCertEKU:  c.RemoteCertEKU,
		VerifyX509Name: c.VerifyX509Name,
		VerifyX509Type: c.VerifyX509Type,
	}
	if c.CRLVerify != nil {
		crls, err := certcheck.ParseCRLs(c.CRLVerify)
		if err != nil {
			return certcheck.Options{}, fmt.Errorf("config: crl-verify %s: %w", c.CRLVerifyFile, err)
		}
		opts.CRLs = crls
	}
	return opts, nil
}

// Certificate returns the local TLS certificate (cert, followed by the
// extra-certs chain, with key), or nil when the configuration has no
// certificate (a client using auth-user-pass only).
func (c *Common) Certificate() (*tls.Certificate, error) {
	if c.Cert == nil {
		return nil, nil
	}
	chain := append(append([]byte{}, c.Cert...), '\n')
	chain = append(chain, c.ExtraCerts...)
	cert, err := tls.X509KeyPair(chain, c.Key)
	if err != nil {
		return nil, fmt.Errorf("config: cert %s / key %s: %w", c.CertFile, c.KeyFile, err)
	}
	return &cert, nil
}
