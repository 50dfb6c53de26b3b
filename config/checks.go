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
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		n++
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("%s: certificate #%d: %w", source, n, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("%s: no PEM certificate found", source)
	}
	return nil
}

// checkCRL checks that data holds at least one parseable PEM X509 CRL.
func checkCRL(data []byte, source string) error {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			continue
		}
		n++
		if _, err := x509.ParseRevocationList(b.Bytes); err != nil {
			return fmt.Errorf("%s: CRL #%d: %w", source, n, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("%s: no PEM X509 CRL found", source)
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
