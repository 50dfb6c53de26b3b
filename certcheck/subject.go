package certcheck

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
)

// shortNames maps attribute-type OIDs to OpenSSL's short names.
var shortNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.4":                    "SN",
	"2.5.4.5":                    "serialNumber",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "title",
	"2.5.4.15":                   "businessCategory",
	"2.5.4.17":                   "postalCode",
	"2.5.4.41":                   "name",
	"2.5.4.42":                   "GN",
	"2.5.4.43":                   "initials",
	"2.5.4.44":                   "generationQualifier",
	"2.5.4.45":                   "x500UniqueIdentifier",
	"2.5.4.46":                   "dnQualifier",
	"2.5.4.65":                   "pseudonym",
	"2.5.4.97":                   "organizationIdentifier",
	"1.2.840.113549.1.9.1":       "emailAddress",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.3.6.1.4.1.311.60.2.1.1":   "jurisdictionL",
	"1.3.6.1.4.1.311.60.2.1.2":   "jurisdictionST",
	"1.3.6.1.4.1.311.60.2.1.3":   "jurisdictionC",
}

// SubjectString formats the certificate's subject DN the way OpenVPN 2.6
// (built with OpenSSL) presents it to --verify-x509-name ... subject and to
// scripts: relative distinguished names in certificate (DER) order, most
// significant first, separated by ", "; the attributes of a multi-valued RDN
// separated by " + "; each attribute as SHORTNAME=value using OpenSSL short
// names (C, ST, L, O, OU, CN, emailAddress, DC, UID, ...; unknown types as
// dotted OIDs). Values are printed verbatim (no RFC 2253 escaping of ',',
// '+' or '='), except that control characters are escaped as \XX (upper-case
// hex). Example: "C=KG, ST=NA, L=Bishkek, CN=Server-1".
//
// Note that this is the reverse of the order used by pkix.Name.String.
func SubjectString(c *x509.Certificate) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(c.RawSubject, &rdns); err != nil || len(rest) != 0 {
		rdns = c.Subject.ToRDNSequence()
	}
	var b strings.Builder
	for i, rdn := range rdns {
		if i > 0 {
			b.WriteString(", ")
		}
		for j, atv := range rdn {
			if j > 0 {
				b.WriteString(" + ")
			}
			name, ok := shortNames[atv.Type.String()]
			if !ok {
				name = atv.Type.String()
			}
			b.WriteString(name)
			b.WriteByte('=')
			writeEscaped(&b, valueString(atv.Value))
		}
	}
	return b.String()
}

func valueString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	default:
		return fmt.Sprint(v)
	}
}

func writeEscaped(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x20 || ch == 0x7f {
			fmt.Fprintf(b, "\\%02X", ch)
			continue
		}
		b.WriteByte(ch)
	}
}
