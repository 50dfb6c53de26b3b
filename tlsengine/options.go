package tlsengine

import (
	"crypto/tls"
	"strings"
)

// Optional TLS settings from OpenVPN's configuration and how each engine treats them.
//
//   - Config.CipherList (tls-cipher) and Config.CipherSuites13 (tls-ciphersuites) are
//     OpenSSL cipher strings. The openssl engine applies them with
//     SSL_CTX_set_cipher_list and SSL_CTX_set_ciphersuites and fails NewSession with an
//     error naming the option when OpenSSL rejects the string. The go engine ignores
//     both: crypto/tls does not let TLS 1.3 suites be configured, and TLS 1.2 suites are
//     restricted through Config.CipherSuites (IANA ids) instead. When CipherList is
//     empty the openssl engine translates Config.CipherSuites into an OpenSSL list.
//   - Config.Groups (tls-groups) is a colon separated list of group names. The
//     openssl engine applies it with SSL_CTX_set1_groups_list (an unknown name is an
//     error). The go engine maps the names it knows (goGroupNames) to
//     tls.Config.CurvePreferences and silently ignores the others; when no name is
//     known it keeps crypto/tls's defaults.

// goGroupNames maps OpenSSL (and common alternative) group names, lower-cased, to
// crypto/tls curve ids.
var goGroupNames = map[string]tls.CurveID{
	"x25519":         tls.X25519,
	"prime256v1":     tls.CurveP256,
	"secp256r1":      tls.CurveP256,
	"p-256":          tls.CurveP256,
	"secp384r1":      tls.CurveP384,
	"p-384":          tls.CurveP384,
	"secp521r1":      tls.CurveP521,
	"p-521":          tls.CurveP521,
	"x25519mlkem768": tls.X25519MLKEM768,
}

// goCurvePreferences returns the crypto/tls curves named in Groups, in order and
// without duplicates, or nil when Groups names none that crypto/tls knows.
func (c *Config) goCurvePreferences() []tls.CurveID {
	if c == nil || c.Groups == "" {
		return nil
	}
	var out []tls.CurveID
	for _, name := range strings.Split(c.Groups, ":") {
		id, ok := goGroupNames[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			continue
		}
		dup := false
		for _, have := range out {
			dup = dup || have == id
		}
		if !dup {
			out = append(out, id)
		}
	}
	return out
}
