package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Route is a route directive, recorded verbatim (not validated beyond its
// argument count); installing routes is the job of a later layer.
type Route struct {
	Network, Netmask, Gateway, Metric string
}

// Default values (OpenVPN 2.6 defaults, and weft's own for weft directives).
const (
	DefaultPort              = 1194
	DefaultProto             = "udp"
	DefaultDataCiphers       = "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305"
	DefaultAuth              = "SHA1"
	DefaultTunMTU            = 1500
	DefaultVerb              = 1
	DefaultReplayWindow      = 64
	DefaultReplayWindowTime  = 15 * time.Second
	DefaultHandWindow        = 60 * time.Second
	DefaultTranWindow        = 3600 * time.Second
	DefaultTLSTimeout        = 2 * time.Second
	DefaultRenegSec          = 3600 * time.Second
	DefaultConnectRetry      = 1 * time.Second
	DefaultConnectRetryMax   = 300 * time.Second
	DefaultServerPollTimeout = 120 * time.Second
	DefaultStatusInterval    = 60 * time.Second
	DefaultTLSVersionMin     = "1.2"
	// DefaultKeyDerivation is weft's key-derivation default: use TLS keying
	// material export (RFC 5705) when the peer supports it.
	DefaultKeyDerivation = "tls-ekm"
)

// KeyDirNone is Common.KeyDirection when no key direction is configured:
// the tls-auth key is used bidirectionally.
const KeyDirNone = -1

// Common holds the directives that client and server configurations share.
// It is embedded in Client and Server, so its fields are accessed directly
// (c.CA, c.DataCiphers, ...). Field comments name the directive that sets
// each field and its default. Durations come from directives given in
// seconds. Files named by directives (ca, cert, key, extra-certs,
// tls-crypt, tls-auth, crl-verify) are read while parsing; the
// corresponding ...File field holds the resolved path, or "[inline]" for
// inline blocks.
type Common struct {
	// Name is the configuration's name (usually its path), used in errors.
	Name string
	// Dir is the directory relative file names were resolved against.
	Dir string

	// Float is set by float. A client records it; a weft server always
	// lets authenticated peers float (P_DATA_V2 peer-id), as if given.
	Float bool

	// Device.
	Dev        string   // dev; default "tun"
	DevType    string   // dev-type, or derived from dev; always "tun"
	TunMTU     int      // tun-mtu; default 1500
	MSSFix     []string // mssfix arguments (recorded); nil = not given
	TxQueueLen int      // txqueuelen; 0 = system default
	SndBuf     int      // sndbuf; 0 = system default
	RcvBuf     int      // rcvbuf; 0 = system default

	// TLS credentials (raw PEM as read, validated while parsing).
	CA             []byte // ca (required): at least one PEM certificate
	CAFile         string
	Cert           []byte // cert: PEM certificate (with key)
	CertFile       string
	Key            []byte // key: PEM private key (unencrypted) matching Cert
	KeyFile        string
	ExtraCerts     []byte // extra-certs: PEM certificates sent with Cert
	ExtraCertsFile string
	CRLVerify      []byte // crl-verify FILE: PEM CRL(s), for certcheck.ParseCRLs
	CRLVerifyFile  string

	// Control-channel protection (raw static key files; parsed by package
	// controlwrap). At most one of TLSAuth and TLSCrypt is set.
	TLSCrypt     []byte // tls-crypt
	TLSCryptFile string
	TLSAuth      []byte // tls-auth FILE [DIR]
	TLSAuthFile  string
	KeyDirection int // tls-auth's DIR or key-direction: 0, 1 or KeyDirNone (default)

	// Data channel.
	DataCiphers         []string // data-ciphers / ncp-ciphers; canonical upper-case names; default AES-256-GCM, AES-128-GCM, CHACHA20-POLY1305
	DataCiphersFallback string   // data-ciphers-fallback; "" = none
	Cipher              string   // cipher (legacy; recorded, not used for negotiation in TLS mode)
	Auth                string   // auth: HMAC digest for tls-auth; default "SHA1"
	// KeyDerivation is weft's key-derivation directive: "tls-ekm" (default)
	// derives data keys with TLS keying-material export when the peer
	// supports it; "prf" always uses OpenVPN's legacy TLS-PRF derivation.
	KeyDerivation string

	// Peer verification (see package certcheck).
	RemoteCertTLS  string   // remote-cert-tls / ns-cert-type: "", "server" or "client"
	RemoteCertKU   []uint32 // remote-cert-ku values (OpenSSL numbering); nil = not given
	RemoteCertEKU  string   // remote-cert-eku OID or name
	VerifyX509Name string   // verify-x509-name NAME
	VerifyX509Type string   // verify-x509-name type: "subject" (OpenVPN's default), "name" or "name-prefix"; "" when NAME unset

	// TLS parameters.
	TLSEngine              string        // weft's tls-engine go|openssl; "" = the default engine (go)
	DataPipeline           bool          // weft's data-pipeline yes|no: two goroutines per data direction (default no)
	TLSVersionMin          string        // tls-version-min: "1.0".."1.3"; default "1.2"
	TLSVersionMinOrHighest bool          // tls-version-min V or-highest
	TLSVersionMax          string        // tls-version-max; "" = library maximum
	TLSCipher              string        // tls-cipher (recorded)
	TLSCipherSuites        string        // tls-ciphersuites (recorded)
	TLSGroups              string        // tls-groups (recorded)
	HandWindow             time.Duration // hand-window; default 60s
	TranWindow             time.Duration // tran-window; default 3600s
	TLSTimeout             time.Duration // tls-timeout; default 2s
	RenegSec               time.Duration // reneg-sec MAX; default 3600s; 0 disables
	RenegSecMin            time.Duration // reneg-sec MAX MIN; default: MAX for a client, 90% of MAX for a server
	RenegBytes             int64         // reneg-bytes; 0 = disabled (default)
	RenegPkts              int64         // reneg-pkts; 0 = disabled (default)

	// Replay protection.
	ReplayWindow       int           // replay-window N; default 64
	ReplayWindowTime   time.Duration // replay-window N T; default 15s
	MuteReplayWarnings bool          // mute-replay-warnings

	// Keepalive and exit. keepalive A B sets Ping and PingRestart (see
	// Client and Server for the mode-specific expansion).
	Ping               time.Duration // ping / keepalive; 0 = disabled (default)
	PingRestart        time.Duration // ping-restart / keepalive; 0 = disabled (default)
	PingExit           time.Duration // ping-exit; 0 = disabled (default)
	ExplicitExitNotify int           // explicit-exit-notify [N]; 1 when given without N; 0 = off (default)

	// Routing (recorded).
	Topology   string  // topology net30|p2p|subnet; "" = not given (a Server resolves it)
	Routes     []Route // route
	RoutesIPv6 []Route // route-ipv6 NET/BITS [GW [METRIC]] (Netmask unused)

	// Compression (recorded; see package compress).
	CompLZO          string // comp-lzo [yes|no|adaptive]; "adaptive" when given without argument (OpenVPN's default mode)
	Compress         string // compress [ALGO]; "stub" when given without argument
	AllowCompression string // allow-compression yes|no|asym

	// Process (recorded; weft runs no scripts and stays in the foreground).
	ScriptSecurity int               // script-security 0..3; default 1
	Up             string            // up CMD (never executed)
	Down           string            // down CMD (never executed)
	User           string            // user
	Group          string            // group
	PersistKey     bool              // persist-key
	PersistTun     bool              // persist-tun
	Daemon         bool              // daemon (ignored: weft runs in the foreground)
	AskPass        string            // askpass [FILE]; "stdin" when given without a file (encrypted keys are not supported)
	FastIO         bool              // fast-io
	DisableDCO     bool              // disable-dco
	Setenv         map[string]string // setenv NAME [VALUE]

	// Logging.
	Verb           int           // verb 0..11; default 1
	Mute           int           // mute N; 0 = off
	Status         string        // status FILE [N]
	StatusInterval time.Duration // status FILE N; default 60s
	Log            string        // log FILE or log-append FILE
	LogAppend      bool          // log-append
	WritePID       string        // writepid FILE

	// Warnings lists non-fatal problems ("file:line: directive: message"),
	// such as ignored directives, for the caller to log.
	Warnings []string

	// Userspace mode (weft directives). With userspace the tunnel ends in
	// an in-process network stack instead of a kernel TUN device; local
	// programs reach it through SocksListen and the forwards.
	Userspace bool // userspace
	// SocksListen is socks-listen HOST:PORT: the address of the SOCKS5
	// server that dials through the tunnel ("" = none).
	SocksListen string
	// Forwards are forward PROTO LISTEN DEST directives, as their three
	// arguments: PROTO is tcp or udp; connections to the local address
	// LISTEN are relayed through the tunnel to DEST.
	Forwards [][]string
	// ReverseForwards are reverse-forward PROTO LISTEN DEST directives:
	// LISTEN is an address on the tunnel side, DEST one on the host's
	// network.
	ReverseForwards [][]string
}

// defaultCommon returns the OpenVPN 2.6 defaults shared by both modes.
func defaultCommon() Common {
	return Common{
		Dev:              "tun",
		DevType:          "tun",
		TunMTU:           DefaultTunMTU,
		KeyDirection:     KeyDirNone,
		DataCiphers:      strings.Split(DefaultDataCiphers, ":"),
		Auth:             DefaultAuth,
		KeyDerivation:    DefaultKeyDerivation,
		TLSVersionMin:    DefaultTLSVersionMin,
		HandWindow:       DefaultHandWindow,
		TranWindow:       DefaultTranWindow,
		TLSTimeout:       DefaultTLSTimeout,
		RenegSec:         DefaultRenegSec,
		RenegSecMin:      DefaultRenegSec,
		ReplayWindow:     DefaultReplayWindow,
		ReplayWindowTime: DefaultReplayWindowTime,
		ScriptSecurity:   1,
		Verb:             DefaultVerb,
		StatusInterval:   DefaultStatusInterval,
		Setenv:           map[string]string{},
	}
}

// withCommon returns a mode's directive table: own plus every common
// directive, lifted to T through get. A directive in own overrides the
// common one of the same name (a mode may wrap the common handler to add
// checks).
func withCommon[T any](own map[string]handler[T], get func(*T) *Common) map[string]handler[T] {
	out := make(map[string]handler[T], len(own)+len(commonDirectives))
	for name, h := range commonDirectives {
		out[name] = lift(h, get)
	}
	for name, h := range own {
		out[name] = h
	}
	return out
}

// lift turns a handler for Common into one for a mode embedding it.
func lift[T any](h handler[Common], get func(*T) *Common) handler[T] {
	return handler[T]{minArgs: h.minArgs, maxArgs: h.maxArgs, inline: h.inline,
		fn: func(t *T, p *parser, d Directive) error { return h.fn(get(t), p, d) }}
}

// failFunc reports a semantic error located at the last occurrence of a
// directive (or at the end of the file when it was not given).
type failFunc func(directive string, err error) error

// newFail returns the failFunc for a parsed configuration.
func newFail(p *parser, lastLine int) failFunc {
	return func(name string, err error) error {
		d, ok := p.seen[name]
		if !ok {
			d = Directive{File: p.file, Line: lastLine}
		}
		return dirErr(d, err)
	}
}

// lastLine returns the line of the last directive in ds (0 when empty).
func lastLine(ds []Directive) int {
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)-1].Line
}

// finishDevice derives the device type from the device name.
func (c *Common) finishDevice(p *parser, fail failFunc) error {
	if _, ok := p.seen["dev-type"]; ok {
		return nil
	}
	switch {
	case strings.HasPrefix(c.Dev, "tun"):
		c.DevType = "tun"
	case strings.HasPrefix(c.Dev, "tap"):
		return fail("dev", fmt.Errorf("%w: tap devices (layer 2)", ErrUnsupported))
	default:
		return fail("dev", fmt.Errorf("cannot derive the device type from name %q: add \"dev-type tun\"", c.Dev))
	}
	return nil
}

// finishCertKey checks that cert and key come together and match. It
// reports whether a certificate is configured.
func (c *Common) finishCertKey(fail failFunc) (bool, error) {
	switch {
	case c.Cert != nil && c.Key == nil:
		return false, fail("cert", errors.New("cert given without key"))
	case c.Key != nil && c.Cert == nil:
		return false, fail("key", errors.New("key given without cert"))
	case c.Cert != nil:
		if _, err := tls.X509KeyPair(c.Cert, c.Key); err != nil {
			return false, fail("key", fmt.Errorf("certificate %s and key %s do not form a valid pair: %w", c.CertFile, c.KeyFile, err))
		}
		return true, nil
	}
	return false, nil
}

// finishRest applies the semantic checks shared by both modes that follow
// the credential checks.
func (c *Common) finishRest(p *parser, fail failFunc) error {
	if c.TLSAuth != nil && c.TLSCrypt != nil {
		return fail("tls-crypt", errors.New("tls-auth and tls-crypt are mutually exclusive"))
	}
	if c.TLSAuth != nil && !isDigest(c.Auth) {
		return fail("auth", fmt.Errorf("tls-auth needs an HMAC digest, but auth is %q", c.Auth))
	}
	if _, ok := p.seen["keepalive"]; ok {
		for _, n := range []string{"ping", "ping-restart", "ping-exit"} {
			if _, ok := p.seen[n]; ok {
				return fail(n, errors.New("conflicts with keepalive; use either keepalive or ping/ping-restart/ping-exit"))
			}
		}
	}
	if c.TLSVersionMax != "" && !c.TLSVersionMinOrHighest && c.TLSVersionMin > c.TLSVersionMax {
		return fail("tls-version-max", fmt.Errorf("tls-version-max %s is below tls-version-min %s", c.TLSVersionMax, c.TLSVersionMin))
	}
	if _, ok := p.seen["reneg-sec"]; ok && c.RenegSecMin > c.RenegSec {
		return fail("reneg-sec", errors.New("MIN is greater than MAX"))
	}
	return nil
}

// parseKeepalive parses keepalive INTERVAL TIMEOUT. As OpenVPN, it
// requires TIMEOUT to be at least twice INTERVAL.
func parseKeepalive(args []string) (interval, timeout time.Duration, err error) {
	a, err := secondsArg("interval", args[0], 1)
	if err != nil {
		return 0, 0, err
	}
	b, err := secondsArg("timeout", args[1], 1)
	if err != nil {
		return 0, 0, err
	}
	if b < 2*a {
		return 0, 0, fmt.Errorf("timeout %d must be at least twice the interval %d (recommended: keepalive 10 60)", b/time.Second, a/time.Second)
	}
	return a, b, nil
}

// Cipher names.
var (
	aeadCiphers = []string{"AES-128-GCM", "AES-192-GCM", "AES-256-GCM", "CHACHA20-POLY1305"}
	cbcCiphers  = []string{"AES-128-CBC", "AES-192-CBC", "AES-256-CBC", "BF-CBC", "DES-EDE3-CBC",
		"CAMELLIA-128-CBC", "CAMELLIA-192-CBC", "CAMELLIA-256-CBC", "SEED-CBC", "CAST5-CBC", "DES-CBC",
		"AES-128-CFB", "AES-256-CFB", "AES-128-OFB", "AES-256-OFB", "AES-128-CTR", "AES-256-CTR"}
	digests = []string{"SHA1", "SHA224", "SHA256", "SHA384", "SHA512"}
)

func lookup(list []string, s string) (string, bool) {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return x, true
		}
	}
	return "", false
}

// canonCipher returns the canonical name of a supported AEAD cipher.
func canonCipher(s string) (string, error) {
	if c, ok := lookup(aeadCiphers, s); ok {
		return c, nil
	}
	if c, ok := lookup(cbcCiphers, s); ok {
		return "", fmt.Errorf("%w: cipher %s (only AEAD ciphers are: %s)", ErrUnsupported, c, strings.Join(aeadCiphers, ", "))
	}
	if strings.EqualFold(s, "none") {
		return "", fmt.Errorf("%w: cipher none (no encryption)", ErrUnsupported)
	}
	return "", fmt.Errorf("unknown cipher %q (supported: %s)", s, strings.Join(aeadCiphers, ", "))
}

func isDigest(s string) bool { _, ok := lookup(digests, s); return ok }

func secondsArg(what, s string, lo int) (time.Duration, error) {
	n, err := parseInt(what, s, int64(lo), maxSeconds)
	return time.Duration(n) * time.Second, err
}

func flag[T any](set func(*T)) handler[T] {
	return handler[T]{fn: func(t *T, _ *parser, _ Directive) error { set(t); return nil }}
}

func one[T any](set func(*T, string) error) handler[T] {
	return handler[T]{minArgs: 1, maxArgs: 1, fn: func(t *T, _ *parser, d Directive) error { return set(t, d.Args[0]) }}
}

func seconds[T any](lo int, set func(*T, time.Duration)) handler[T] {
	return one(func(t *T, s string) error {
		v, err := secondsArg("seconds", s, lo)
		if err == nil {
			set(t, v)
		}
		return err
	})
}

func integer[T any](lo, hi int, set func(*T, int)) handler[T] {
	return one(func(t *T, s string) error {
		v, err := parseIntArg("value", s, lo, hi)
		if err == nil {
			set(t, v)
		}
		return err
	})
}

func str[T any](set func(*T, string)) handler[T] {
	return one(func(t *T, s string) error { set(t, s); return nil })
}

// choice is a one-argument handler accepting one of values (exactly).
func choice[T any](values []string, set func(*T, string)) handler[T] {
	return one(func(t *T, s string) error {
		if !slices.Contains(values, s) {
			return fmt.Errorf("unknown value %q (want %s)", s, orList(values))
		}
		set(t, s)
		return nil
	})
}

// orList formats values as "a, b or c".
func orList(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

// fileDirective is a handler for a directive naming a file (or given
// inline) whose content is checked by check and stored by set.
func fileDirective[T any](check func(data []byte, source string) error, set func(t *T, data []byte, source string)) handler[T] {
	return handler[T]{minArgs: 1, maxArgs: 1, inline: true, fn: func(t *T, p *parser, d Directive) error {
		data, src, err := p.load(d)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(data, src); err != nil {
				return err
			}
		}
		set(t, data, src)
		return nil
	}}
}

func parseKeyDir(s string) (int, error) {
	switch s {
	case "0":
		return 0, nil
	case "1":
		return 1, nil
	}
	return 0, fmt.Errorf("key direction must be 0 or 1, got %q", s)
}

func parseTLSVersion(s string) (string, error) {
	switch s {
	case "1.0", "1.1", "1.2", "1.3":
		return s, nil
	}
	return "", fmt.Errorf("unknown TLS version %q (want 1.0, 1.1, 1.2 or 1.3)", s)
}

func setDataCiphers(c *Common, s string) error {
	var out []string
	for _, name := range strings.Split(s, ":") {
		optional := strings.HasPrefix(name, "?")
		name = strings.TrimPrefix(name, "?")
		if name == "" {
			return fmt.Errorf("empty cipher name in %q", s)
		}
		canon, err := canonCipher(name)
		if err != nil {
			if optional {
				continue // "?NAME": skip ciphers we do not have, as OpenVPN does
			}
			return err
		}
		if _, dup := lookup(out, canon); !dup {
			out = append(out, canon)
		}
	}
	if len(out) == 0 {
		return fmt.Errorf("no usable cipher in %q", s)
	}
	c.DataCiphers = out
	return nil
}

func setMSSFix(c *Common, args []string) error {
	if len(args) >= 1 {
		if _, err := parseIntArg("size", args[0], 0, 65535); err != nil {
			return err
		}
	}
	if len(args) == 2 && args[1] != "mtu" && args[1] != "fixed" {
		return fmt.Errorf("unknown flag %q (want mtu or fixed)", args[1])
	}
	c.MSSFix = append([]string{}, args...)
	return nil
}

// commonDirectives is the handler table for the directives shared by
// client and server configurations; withCommon merges it into each mode's
// table.
// It is built by a variable initializer, so it is ready before the init
// functions that build the mode tables run.
var commonDirectives = commonTable()

func commonTable() map[string]handler[Common] {
	return map[string]handler[Common]{
		"userspace": flag(func(c *Common) { c.Userspace = true }),
		"socks-listen": one(func(c *Common, s string) error {
			if _, _, err := splitHostPort("address", s, 0); err != nil {
				return err
			}
			c.SocksListen = s
			return nil
		}),
		"forward": {minArgs: 3, maxArgs: 3, fn: func(c *Common, _ *parser, d Directive) error {
			f, err := parseForward(d.Args)
			if err == nil {
				c.Forwards = append(c.Forwards, f)
			}
			return err
		}},
		"reverse-forward": {minArgs: 3, maxArgs: 3, fn: func(c *Common, _ *parser, d Directive) error {
			f, err := parseForward(d.Args)
			if err == nil {
				c.ReverseForwards = append(c.ReverseForwards, f)
			}
			return err
		}},
		"float": flag(func(c *Common) { c.Float = true }),

		"dev": one(func(c *Common, s string) error {
			if s == "" {
				return errors.New("empty device name")
			}
			if s == "null" {
				return fmt.Errorf("%w: dev null", ErrUnsupported)
			}
			c.Dev = s
			return nil
		}),
		"dev-type": one(func(c *Common, s string) error {
			switch s {
			case "tun":
				c.DevType = s
				return nil
			case "tap":
				return fmt.Errorf("%w: tap devices (layer 2)", ErrUnsupported)
			}
			return fmt.Errorf("unknown device type %q (want tun)", s)
		}),
		"tun-mtu":    integer(68, 65535, func(c *Common, v int) { c.TunMTU = v }),
		"mssfix":     {minArgs: 0, maxArgs: 2, fn: func(c *Common, _ *parser, d Directive) error { return setMSSFix(c, d.Args) }},
		"fragment":   {minArgs: 1, maxArgs: 2, fn: func(*Common, *parser, Directive) error { return fmt.Errorf("%w: fragment", ErrUnsupported) }},
		"txqueuelen": integer(0, 1<<20, func(c *Common, v int) { c.TxQueueLen = v }),
		"sndbuf":     integer(0, 1<<30, func(c *Common, v int) { c.SndBuf = v }),
		"rcvbuf":     integer(0, 1<<30, func(c *Common, v int) { c.RcvBuf = v }),

		"ca":          fileDirective(checkCerts, func(c *Common, b []byte, s string) { c.CA, c.CAFile = b, s }),
		"cert":        fileDirective(checkCerts, func(c *Common, b []byte, s string) { c.Cert, c.CertFile = b, s }),
		"key":         fileDirective(checkKey, func(c *Common, b []byte, s string) { c.Key, c.KeyFile = b, s }),
		"extra-certs": fileDirective(checkCerts, func(c *Common, b []byte, s string) { c.ExtraCerts, c.ExtraCertsFile = b, s }),
		"crl-verify": {minArgs: 1, maxArgs: 2, inline: true, fn: func(c *Common, p *parser, d Directive) error {
			if len(d.Args) == 2 {
				if d.Args[1] == "dir" {
					return fmt.Errorf("%w: crl-verify DIR dir", ErrUnsupported)
				}
				return fmt.Errorf("unknown flag %q (want dir)", d.Args[1])
			}
			data, src, err := p.load(d)
			if err != nil {
				return err
			}
			if err := checkCRL(data, src); err != nil {
				return err
			}
			c.CRLVerify, c.CRLVerifyFile = data, src
			return nil
		}},
		"tls-crypt": fileDirective(checkStaticKey, func(c *Common, b []byte, s string) { c.TLSCrypt, c.TLSCryptFile = b, s }),
		"tls-auth": {minArgs: 1, maxArgs: 2, inline: true, fn: func(c *Common, p *parser, d Directive) error {
			data, src, err := p.load(d)
			if err != nil {
				return err
			}
			if err := checkStaticKey(data, src); err != nil {
				return err
			}
			if len(d.Args) == 2 {
				dir, err := parseKeyDir(d.Args[1])
				if err != nil {
					return err
				}
				c.KeyDirection = dir
			}
			c.TLSAuth, c.TLSAuthFile = data, src
			return nil
		}},
		"tls-crypt-v2": {minArgs: 1, maxArgs: 2, inline: true, fn: func(*Common, *parser, Directive) error {
			return fmt.Errorf("%w yet: tls-crypt-v2 (use tls-crypt or tls-auth)", ErrUnsupported)
		}},
		"secret": {minArgs: 1, maxArgs: 2, fn: func(*Common, *parser, Directive) error {
			return fmt.Errorf("%w: static-key mode (secret); use TLS", ErrUnsupported)
		}},
		"key-direction": one(func(c *Common, s string) error {
			dir, err := parseKeyDir(s)
			c.KeyDirection = dir
			return err
		}),

		"cipher": one(func(c *Common, s string) error {
			if _, ok := lookup(aeadCiphers, s); !ok {
				if _, ok := lookup(cbcCiphers, s); !ok && !strings.EqualFold(s, "none") {
					return fmt.Errorf("unknown cipher %q", s)
				}
			}
			c.Cipher = strings.ToUpper(s)
			return nil
		}),
		"data-ciphers": one(setDataCiphers),
		"ncp-ciphers":  one(setDataCiphers),
		"data-ciphers-fallback": one(func(c *Common, s string) error {
			name, err := canonCipher(s)
			c.DataCiphersFallback = name
			return err
		}),
		"auth": one(func(c *Common, s string) error {
			if strings.EqualFold(s, "none") {
				c.Auth = "none"
				return nil
			}
			d, ok := lookup(digests, strings.ReplaceAll(s, "-", ""))
			if !ok {
				return fmt.Errorf("unsupported digest %q (want %s)", s, strings.Join(digests, ", "))
			}
			c.Auth = d
			return nil
		}),
		"key-derivation": one(func(c *Common, s string) error {
			switch s {
			case "prf", "tls-ekm":
				c.KeyDerivation = s
				return nil
			}
			return fmt.Errorf("unknown method %q (want prf or tls-ekm)", s)
		}),

		"remote-cert-tls": one(func(c *Common, s string) error {
			if s != "server" && s != "client" {
				return fmt.Errorf("want server or client, got %q", s)
			}
			c.RemoteCertTLS = s
			return nil
		}),
		"ns-cert-type": {minArgs: 1, maxArgs: 1, fn: func(c *Common, p *parser, d Directive) error {
			s := d.Args[0]
			if s != "server" && s != "client" {
				return fmt.Errorf("want server or client, got %q", s)
			}
			p.warn(d, "ns-cert-type was removed in OpenVPN 2.5; treated as remote-cert-tls %s", s)
			c.RemoteCertTLS = s
			return nil
		}},
		"remote-cert-ku": {minArgs: 0, maxArgs: -1, fn: func(c *Common, _ *parser, d Directive) error {
			ku := []uint32{}
			for _, a := range d.Args {
				v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(a), "0x"), 16, 16)
				if err != nil || v == 0 {
					return fmt.Errorf("key usage %q is not a non-zero hex value", a)
				}
				ku = append(ku, uint32(v))
			}
			c.RemoteCertKU = ku
			return nil
		}},
		"remote-cert-eku": str(func(c *Common, s string) { c.RemoteCertEKU = s }),
		"verify-x509-name": {minArgs: 1, maxArgs: 2, fn: func(c *Common, _ *parser, d Directive) error {
			typ := "subject"
			if len(d.Args) == 2 {
				typ = d.Args[1]
			}
			switch typ {
			case "subject", "name", "name-prefix":
			default:
				return fmt.Errorf("unknown type %q (want subject, name or name-prefix)", typ)
			}
			if d.Args[0] == "" {
				return errors.New("empty name")
			}
			c.VerifyX509Name, c.VerifyX509Type = d.Args[0], typ
			return nil
		}},

		"data-pipeline": one(func(c *Common, s string) error {
			switch s {
			case "yes":
				c.DataPipeline = true
			case "no":
				c.DataPipeline = false
			default:
				return fmt.Errorf("want yes or no, not %q", s)
			}
			return nil
		}),
		"tls-engine": one(func(c *Common, s string) error {
			switch s {
			case "go", "openssl":
				c.TLSEngine = s
				return nil
			}
			return fmt.Errorf("unknown TLS engine %q (want go or openssl)", s)
		}),
		"tls-version-min": {minArgs: 1, maxArgs: 2, fn: func(c *Common, _ *parser, d Directive) error {
			orHighest := len(d.Args) == 2
			if orHighest && d.Args[1] != "or-highest" {
				return fmt.Errorf("unknown flag %q (want or-highest)", d.Args[1])
			}
			v, err := parseTLSVersion(d.Args[0])
			if err != nil {
				if !orHighest {
					return err
				}
				v = "1.3" // OpenVPN: unknown version with or-highest means the highest supported
			}
			c.TLSVersionMin, c.TLSVersionMinOrHighest = v, orHighest
			return nil
		}},
		"tls-version-max": one(func(c *Common, s string) error {
			v, err := parseTLSVersion(s)
			c.TLSVersionMax = v
			return err
		}),
		"tls-cipher":       str(func(c *Common, s string) { c.TLSCipher = s }),
		"tls-ciphersuites": str(func(c *Common, s string) { c.TLSCipherSuites = s }),
		"tls-groups":       str(func(c *Common, s string) { c.TLSGroups = s }),
		"hand-window":      seconds(1, func(c *Common, v time.Duration) { c.HandWindow = v }),
		"tran-window":      seconds(1, func(c *Common, v time.Duration) { c.TranWindow = v }),
		"tls-timeout":      seconds(1, func(c *Common, v time.Duration) { c.TLSTimeout = v }),
		"reneg-sec": {minArgs: 1, maxArgs: 2, fn: func(c *Common, _ *parser, d Directive) error {
			v, err := secondsArg("max seconds", d.Args[0], 0)
			if err != nil {
				return err
			}
			m := v
			if len(d.Args) == 2 {
				if m, err = secondsArg("min seconds", d.Args[1], 0); err != nil {
					return err
				}
				if m > v {
					return fmt.Errorf("min %d is greater than max %d", m/time.Second, v/time.Second)
				}
			}
			c.RenegSec, c.RenegSecMin = v, m
			return nil
		}},
		"reneg-bytes": one(func(c *Common, s string) error {
			v, err := parseInt("bytes", s, 0, 1<<62)
			c.RenegBytes = v
			return err
		}),
		"reneg-pkts": one(func(c *Common, s string) error {
			v, err := parseInt("packets", s, 0, 1<<62)
			c.RenegPkts = v
			return err
		}),
		"replay-window": {minArgs: 1, maxArgs: 2, fn: func(c *Common, _ *parser, d Directive) error {
			n, err := parseIntArg("window size", d.Args[0], 0, 65536)
			if err != nil {
				return err
			}
			c.ReplayWindow = n
			if len(d.Args) == 2 {
				t, err := parseIntArg("seconds", d.Args[1], 0, 600)
				if err != nil {
					return err
				}
				c.ReplayWindowTime = time.Duration(t) * time.Second
			}
			return nil
		}},
		"mute-replay-warnings": flag(func(c *Common) { c.MuteReplayWarnings = true }),

		"ping":         seconds(0, func(c *Common, v time.Duration) { c.Ping = v }),
		"ping-restart": seconds(0, func(c *Common, v time.Duration) { c.PingRestart = v }),
		"ping-exit":    seconds(0, func(c *Common, v time.Duration) { c.PingExit = v }),
		"explicit-exit-notify": {minArgs: 0, maxArgs: 1, fn: func(c *Common, _ *parser, d Directive) error {
			c.ExplicitExitNotify = 1
			if len(d.Args) == 1 {
				n, err := parseIntArg("count", d.Args[0], 0, 1000)
				if err != nil {
					return err
				}
				c.ExplicitExitNotify = n
			}
			return nil
		}},

		"topology": one(func(c *Common, s string) error {
			switch s {
			case "net30", "p2p", "subnet":
				c.Topology = s
				return nil
			}
			return fmt.Errorf("unknown topology %q (want net30, p2p or subnet)", s)
		}),
		"route": {minArgs: 1, maxArgs: 4, fn: func(c *Common, _ *parser, d Directive) error {
			a := append(d.Args[:len(d.Args):len(d.Args)], "", "", "")
			c.Routes = append(c.Routes, Route{Network: a[0], Netmask: a[1], Gateway: a[2], Metric: a[3]})
			return nil
		}},
		"route-ipv6": {minArgs: 1, maxArgs: 3, fn: func(c *Common, _ *parser, d Directive) error {
			a := append(d.Args[:len(d.Args):len(d.Args)], "", "")
			c.RoutesIPv6 = append(c.RoutesIPv6, Route{Network: a[0], Gateway: a[1], Metric: a[2]})
			return nil
		}},

		// OpenVPN 2.6 accepts only yes, no and adaptive ("async" is rejected
		// with "must be 'yes', 'no', or 'adaptive'"); without an argument the
		// mode is adaptive, the documented default.
		"comp-lzo": {minArgs: 0, maxArgs: 1, fn: func(c *Common, _ *parser, d Directive) error {
			c.CompLZO = "adaptive"
			if len(d.Args) == 1 {
				switch d.Args[0] {
				case "yes", "no", "adaptive":
					c.CompLZO = d.Args[0]
				default:
					return fmt.Errorf("unknown mode %q (want yes, no or adaptive)", d.Args[0])
				}
			}
			return nil
		}},
		"compress": {minArgs: 0, maxArgs: 1, fn: func(c *Common, _ *parser, d Directive) error {
			c.Compress = "stub"
			if len(d.Args) == 1 {
				switch d.Args[0] {
				case "lzo", "lz4", "lz4-v2", "stub", "stub-v2", "migrate":
					c.Compress = d.Args[0]
				default:
					return fmt.Errorf("unknown algorithm %q (want lzo, lz4, lz4-v2, stub, stub-v2 or migrate)", d.Args[0])
				}
			}
			return nil
		}},
		"allow-compression": one(func(c *Common, s string) error {
			switch s {
			case "yes", "no", "asym":
				c.AllowCompression = s
				return nil
			}
			return fmt.Errorf("want yes, no or asym, got %q", s)
		}),

		"script-security": integer(0, 3, func(c *Common, v int) { c.ScriptSecurity = v }),
		"up": {minArgs: 1, maxArgs: 1, fn: func(c *Common, p *parser, d Directive) error {
			p.warn(d, "scripts are not run by weft; %q will not be executed", d.Args[0])
			c.Up = d.Args[0]
			return nil
		}},
		"down": {minArgs: 1, maxArgs: 1, fn: func(c *Common, p *parser, d Directive) error {
			p.warn(d, "scripts are not run by weft; %q will not be executed", d.Args[0])
			c.Down = d.Args[0]
			return nil
		}},
		"user":        str(func(c *Common, s string) { c.User = s }),
		"group":       str(func(c *Common, s string) { c.Group = s }),
		"persist-key": flag(func(c *Common) { c.PersistKey = true }),
		"persist-tun": flag(func(c *Common) { c.PersistTun = true }),
		"daemon": {minArgs: 0, maxArgs: 1, fn: func(c *Common, p *parser, d Directive) error {
			p.warn(d, "ignored: weft always runs in the foreground (use a service manager to run it in the background)")
			c.Daemon = true
			return nil
		}},
		"askpass": {minArgs: 0, maxArgs: 1, fn: func(c *Common, p *parser, d Directive) error {
			c.AskPass = "stdin"
			if len(d.Args) == 1 {
				c.AskPass = p.path(d.Args[0])
			}
			return nil
		}},
		"fast-io":     flag(func(c *Common) { c.FastIO = true }),
		"disable-dco": flag(func(c *Common) { c.DisableDCO = true }),
		"setenv": {minArgs: 1, maxArgs: 2, fn: func(c *Common, _ *parser, d Directive) error {
			v := ""
			if len(d.Args) == 2 {
				v = d.Args[1]
			}
			c.Setenv[d.Args[0]] = v
			return nil
		}},

		"verb": integer(0, 11, func(c *Common, v int) { c.Verb = v }),
		"mute": integer(0, 1<<30, func(c *Common, v int) { c.Mute = v }),
		"status": {minArgs: 1, maxArgs: 2, fn: func(c *Common, p *parser, d Directive) error {
			if len(d.Args) == 2 {
				v, err := secondsArg("interval", d.Args[1], 1)
				if err != nil {
					return err
				}
				c.StatusInterval = v
			}
			c.Status = p.path(d.Args[0])
			return nil
		}},
		"log": {minArgs: 1, maxArgs: 1, fn: func(c *Common, p *parser, d Directive) error {
			c.Log, c.LogAppend = p.path(d.Args[0]), false
			return nil
		}},
		"log-append": {minArgs: 1, maxArgs: 1, fn: func(c *Common, p *parser, d Directive) error {
			c.Log, c.LogAppend = p.path(d.Args[0]), true
			return nil
		}},
		"writepid": {minArgs: 1, maxArgs: 1, fn: func(c *Common, p *parser, d Directive) error {
			c.WritePID = p.path(d.Args[0])
			return nil
		}},
	}
}
