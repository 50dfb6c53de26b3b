package config

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// Content checks for files named by directives.

const staticKeyMarker = "-----BEGIN OpenVPN Static key V1-----"

// checkCerts checks that data holds at least one PEM certificate and that
// every CERTIFICATE block parses.
func checkCerts(data []byte, source string) error {
	return checkPEM(data, source, "CERTIFICATE", "certificate", "PEM certificate", func(der []byte) error {
		_, err := x509.ParseCertificate(der)
		return err
	})
}

// checkCRL checks that data holds at least one parseable PEM X509 CRL.
func checkCRL(data []byte, source string) error {
	return checkPEM(data, source, "X509 CRL", "CRL", "PEM X509 CRL", func(der []byte) error {
		_, err := x509.ParseRevocationList(der)
		return err
	})
}

// checkPEM checks that data holds at least one PEM block of type typ and that
// parse accepts every such block; errors name the block as "<what> #n" and an
// empty file as having "no <none> found".
func checkPEM(data []byte, source, typ, what, none string, parse func(der []byte) error) error {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != typ {
			continue
		}
		n++
		if err := parse(b.Bytes); err != nil {
			return fmt.Errorf("%s: %s #%d: %w", source, what, n, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("%s: no %s found", source, none)
	}
	return nil
}

func checkStaticKey(data []byte, source string) error {
	if !bytes.Contains(data, []byte(staticKeyMarker)) {
		return fmt.Errorf("%s: not an OpenVPN static key file (no %q line)", source, staticKeyMarker)
	}
	return nil
}

func checkKey(data []byte, source string) error {
	if !bytes.Contains(data, []byte("-----BEGIN ")) || !bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		return fmt.Errorf("%s: no PEM private key found", source)
	}
	if bytes.Contains(data, []byte("ENCRYPTED")) {
		return fmt.Errorf("%s: %w: encrypted private keys (askpass); decrypt the key first", source, ErrUnsupported)
	}
	return nil
}
