package handlers

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"

	"weft/config"
	"weft/controlwrap"
	"weft/datachan"
	"weft/ovpn"
	"weft/tlsengine"
)

// ServerParamsFromConfig turns a parsed OpenVPN server config into ServerParams:
// the TLS identity and client-certificate checks (remote-cert-tls, remote-cert-ku,
// remote-cert-eku, verify-x509-name, crl-verify), the control-channel wrapping
// (tls-crypt, tls-auth), data ciphers, listeners, address pools, the push list,
// client-config-dir and the timers. engine selects the TLS engine; "" uses the
// config's tls-engine, and if that is unset too, the default engine.
//
// The server handler adds route-gateway, topology, ifconfig, ifconfig-ipv6, ping and
// ping-restart to each client's push list itself; Push holds only the configured
// options (plus "route NET MASK" for net30 with client-to-client, as OpenVPN's server
// directive pushes). keepalive A B becomes PushPing A and PushPingRestart B, and the
// server's own Session.Ping A and Session.PingRestart 2*B.
//
// verify-client-cert none and optional are refused: weft always requires a client
// certificate (and runs no auth-user-pass-verify script).
func ServerParamsFromConfig(c *config.Server, engine string, log *slog.Logger) (ServerParams, error) {
	var p ServerParams
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p.Logger = log
	p.Pipeline = c.DataPipeline
	if c.VerifyClientCert != "" && c.VerifyClientCert != "require" {
		return p, fmt.Errorf("%s: verify-client-cert %s: %w: weft always requires a client certificate", c.Name, c.VerifyClientCert, config.ErrUnsupported)
	}
	if engine == "" {
		engine = c.TLSEngine
	}
	for _, l := range c.Listens {
		p.Listens = append(p.Listens, Listen{Proto: l.Proto, Addr: l.Addr})
	}
	if len(p.Listens) == 0 {
		return p, fmt.Errorf("%s: no listener", c.Name)
	}
	var err error
	if p.Session, p.NewWrapper, err = sessionTemplate(&c.Common, ovpn.RoleServer, engine, p.Listens[0].isTCP(), log); err != nil {
		return p, err
	}
	if w := p.Session.Compression.Warning(); w != "" {
		log.Warn(w)
	}

	// Addressing.
	p.Network = c.Network
	p.Network6 = c.Network6
	p.Topology = c.Topology
	if p.Topology == "" {
		p.Topology = config.DefaultServerTopology
	}
	p.PoolStart, p.PoolEnd = c.PoolStart, c.PoolEnd
	p.NoPool = c.NoPool
	p.RenegSecMin = c.RenegSecMin
	p.Routes = append([]netip.Prefix(nil), c.TunRoutes...)

	// Clients.
	p.Push = append([]string(nil), c.Push...)
	if p.Topology == "net30" && c.ClientToClient && c.Network.IsValid() {
		p.Push = append(p.Push, fmt.Sprintf("route %s %s", c.Network.Addr(), net.IP(net.CIDRMask(c.Network.Bits(), 32))))
	}
	p.ClientToClient = c.ClientToClient
	p.DuplicateCN = c.DuplicateCN
	p.MaxClients = c.MaxClients
	if c.ClientConfigDir != "" {
		p.CCD = LoadCCD(c.ClientConfigDir, c.CCDExclusive)
		p.CCDExclusive = c.CCDExclusive
	}
	p.PushPing = int(c.KeepaliveInterval.Seconds())
	p.PushPingRestart = int(c.KeepaliveTimeout.Seconds())
	p.ExplicitExitNotify = c.ExplicitExitNotify

	p.StatusFile = c.Status
	p.StatusInterval = c.StatusInterval
	p.StatusVersion = c.StatusVersion
	p.Device = c.Dev
	p.TunMTU = c.TunMTU

	return p, nil
}

// wrapperFactory returns the control-channel wrapper constructor for tls-crypt or
// tls-auth (nil when neither is configured). The key is parsed, and a tls-auth
// wrapper built once, so configuration errors surface here.
func wrapperFactory(c *config.Common, server bool) (func() (controlwrap.Wrapper, error), error) {
	switch {
	case len(c.TLSCrypt) > 0:
		k, err := controlwrap.ParseStaticKey(c.TLSCrypt)
		if err != nil {
			return nil, fmt.Errorf("%s: tls-crypt %s: %w", c.Name, c.TLSCryptFile, err)
		}
		if _, err := controlwrap.NewTLSCrypt(k, server); err != nil {
			return nil, fmt.Errorf("%s: tls-crypt %s: %w", c.Name, c.TLSCryptFile, err)
		}
		return func() (controlwrap.Wrapper, error) { return controlwrap.NewTLSCrypt(k, server) }, nil
	case len(c.TLSAuth) > 0:
		k, err := controlwrap.ParseStaticKey(c.TLSAuth)
		if err != nil {
			return nil, fmt.Errorf("%s: tls-auth %s: %w", c.Name, c.TLSAuthFile, err)
		}
		dir := controlwrap.DirNone
		switch c.KeyDirection {
		case 0:
			dir = controlwrap.Dir0
		case 1:
			dir = controlwrap.Dir1
		}
		digest := c.Auth
		if _, err := controlwrap.NewTLSAuth(k, dir, digest); err != nil {
			return nil, fmt.Errorf("%s: tls-auth with auth %s: %w", c.Name, digest, err)
		}
		return func() (controlwrap.Wrapper, error) { return controlwrap.NewTLSAuth(k, dir, digest) }, nil
	}
	return nil, nil
}

// dataCiphers converts data-ciphers and data-ciphers-fallback.
func dataCiphers(c *config.Common) ([]datachan.Cipher, *datachan.Cipher, error) {
	var ciphers []datachan.Cipher
	for _, n := range c.DataCiphers {
		ci, err := datachan.ParseCipher(strings.TrimPrefix(n, "?"))
		if err != nil {
			if strings.HasPrefix(n, "?") {
				continue
			}
			return nil, nil, fmt.Errorf("%s: data-ciphers: %w", c.Name, err)
		}
		ciphers = append(ciphers, ci)
	}
	if len(ciphers) == 0 {
		return nil, nil, fmt.Errorf("%s: data-ciphers: no cipher weft supports", c.Name)
	}
	var fallback *datachan.Cipher
	if c.DataCiphersFallback != "" {
		ci, err := datachan.ParseCipher(c.DataCiphersFallback)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: data-ciphers-fallback: %w", c.Name, err)
		}
		fallback = &ci
	}
	return ciphers, fallback, nil
}

// applyTLSCiphers passes tls-cipher, tls-ciphersuites and tls-groups to the TLS
// engine configuration. The openssl engine applies the OpenSSL strings as given. For
// the go engine, tls-cipher names of TLS 1.2 suites that crypto/tls implements and
// considers secure (OpenSSL names such as ECDHE-ECDSA-AES256-GCM-SHA384, or IANA names
// such as TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384) become tc.CipherSuites; other
// names, and tls-ciphersuites (crypto/tls does not let TLS 1.3 suites be chosen), are
// ignored with a warning.
func applyTLSCiphers(tc *tlsengine.Config, engine string, c *config.Common, log *slog.Logger) {
	tc.CipherList = c.TLSCipher
	tc.CipherSuites13 = c.TLSCipherSuites
	tc.Groups = c.TLSGroups
	if c.TLSCipher != "" {
		ids, ignored := GoCipherSuites(c.TLSCipher)
		tc.CipherSuites = ids
		if engine == "go" && len(ignored) > 0 {
			if len(ids) == 0 {
				log.Warn("tls-cipher is ignored by the go TLS engine: no TLS 1.2 suite it implements is named", "tls-cipher", c.TLSCipher)
			} else {
				log.Warn("tls-cipher: the go TLS engine ignores some entries", "ignored", strings.Join(ignored, ":"))
			}
		}
	}
	if engine == "go" && c.TLSCipherSuites != "" {
		log.Warn("tls-ciphersuites is ignored by the go TLS engine (crypto/tls chooses TLS 1.3 suites itself)", "tls-ciphersuites", c.TLSCipherSuites)
	}
}

// opensslSuites maps OpenSSL's TLS 1.2 cipher names to IANA names.
var opensslSuites = map[string]string{
	"ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-RSA-AES128-GCM-SHA256":   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-RSA-AES256-GCM-SHA384":   "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-RSA-CHACHA20-POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-ECDSA-AES128-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
	"ECDHE-RSA-AES128-SHA":          "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
	"ECDHE-ECDSA-AES256-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
	"ECDHE-RSA-AES256-SHA":          "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
	"AES128-GCM-SHA256":             "TLS_RSA_WITH_AES_128_GCM_SHA256",
	"AES256-GCM-SHA384":             "TLS_RSA_WITH_AES_256_GCM_SHA384",
	"AES128-SHA":                    "TLS_RSA_WITH_AES_128_CBC_SHA",
	"AES256-SHA":                    "TLS_RSA_WITH_AES_256_CBC_SHA",
}

// GoCipherSuites maps an OpenVPN tls-cipher list (OpenSSL syntax, entries separated
// by ':', ',' or spaces) to crypto/tls cipher suite ids, in order and without
// duplicates. Only TLS 1.2 suites in tls.CipherSuites() (implemented and not
// considered insecure by crypto/tls) are mapped; every other entry, including OpenSSL keywords
// and operators ("HIGH", "!aNULL"), is returned in ignored.
func GoCipherSuites(list string) (ids []uint16, ignored []string) {
	secure := map[string]uint16{}
	for _, cs := range tls.CipherSuites() {
		if slices.Contains(cs.SupportedVersions, tls.VersionTLS12) { // not the TLS 1.3 suites
			secure[cs.Name] = cs.ID
		}
	}
	seen := map[uint16]bool{}
	for _, name := range strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		iana := strings.ReplaceAll(strings.ToUpper(name), "-", "_")
		if n, ok := opensslSuites[strings.ToUpper(name)]; ok {
			iana = n
		}
		id, ok := secure[iana]
		if !ok {
			ignored = append(ignored, name)
			continue
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, ignored
}
