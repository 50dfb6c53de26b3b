package test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"time"
)

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func verifyChain(caPath, certPath string, now time.Time) error {
	ca, err := readCert(caPath)
	if err != nil {
		return err
	}
	c, err := readCert(certPath)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err = c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}
