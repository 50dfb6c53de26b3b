package config

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Server defaults (OpenVPN 2.6).
const (
	// DefaultServerTopology is OpenVPN 2.6's topology when none is given.
	DefaultServerTopology = "net30"
	// DefaultStatusVersion is the status-file format version.
	DefaultStatusVersion = 1
	// MaxClientsLimit bounds max-clients (peer-ids are 24 bits, 0xFFFFFF is
	// reserved).
	MaxClientsLimit = 1<<24 - 2
)

// Server is a parsed server configuration. The directives it shares with
// a client configuration are in the embedded Common; the fields here are
// server-only. Field comments name the directive that sets each field and
// its default.
//
// Only OpenVPN's helper-directive setups are supported: server and/or
// server-ipv6 is required (manual ifconfig setups are not).
type Server struct {
	Common

	// Mode. server and server-ipv6 imply both.
	ModeServer bool // mode server
	TLSServer  bool // tls-server

	// Listeners. Listens is never empty after parsing: without listen
	// directives it holds the one listener OpenVPN would open for proto,
	// local and port/lport (proto udp without local binds [::], which is
	// dual-stack; udp4 binds 0.0.0.0).
	Listens []Listen // listen PROTO HOST:PORT (weft), in order
	// Proto is proto: udp (default), udp4, udp6, tcp, tcp4 or tcp6
	// (tcp-server and its variants are normalized to tcp...).
	Proto string
	// Local is local ADDR (an IP address literal); invalid = all addresses.
	Local netip.Addr
	// Port is port / lport; default 1194.
	Port int
	// Multihome is multihome (accepted; recorded).
	Multihome bool

	// Addressing (topology is Common.Topology; a server without topology
	// gets DefaultServerTopology, net30, as OpenVPN 2.6).
	Network  netip.Prefix // server NET MASK (masked); invalid = not given
	NoPool   bool         // server NET MASK nopool
	Network6 netip.Prefix // server-ipv6 NET/BITS (masked); invalid = not given
	// PoolStart and PoolEnd are ifconfig-pool START END (only with
	// server ... nopool); invalid = the pool server derives.
	PoolStart, PoolEnd netip.Addr
	PoolNetmask        netip.Addr // ifconfig-pool START END MASK; invalid = not given
	// Pool6 is ifconfig-ipv6-pool NET/BITS (recorded; rejected, see finish).
	Pool6 netip.Prefix
	// TunRoutes are the networks of the route and route-ipv6 directives
	// (also recorded verbatim in Common.Routes and Common.RoutesIPv6): kernel
	// routes to install on the server's TUN device, typically for the
	// networks clients announce with iroute.
	TunRoutes []netip.Prefix

	// Clients.
	Push                 []string // push "OPTION ...", in order (quotes stripped)
	ClientToClient       bool     // client-to-client
	ClientConfigDir      string   // client-config-dir DIR, resolved; "" = none
	CCDExclusive         bool     // ccd-exclusive
	DuplicateCN          bool     // duplicate-cn
	MaxClients           int      // max-clients N; 0 = not given (weft's default)
	VerifyClientCert     string   // verify-client-cert none|optional|require; default "require"
	UsernameAsCommonName bool     // username-as-common-name (recorded; not applied)
	// AuthUserPassVerify is auth-user-pass-verify SCRIPT METHOD's script
	// (recorded; weft runs no scripts, so passwords are not verified).
	AuthUserPassVerify       string
	AuthUserPassVerifyMethod string // via-file or via-env
	// IfconfigPoolPersist is ifconfig-pool-persist FILE [SECONDS] (recorded;
	// weft does not persist pool assignments).
	IfconfigPoolPersist        string
	IfconfigPoolPersistSeconds int // default 600

	// Keepalive: keepalive A B on a server sets Common.Ping = A and
	// Common.PingRestart = 2*B (its own timers) and pushes ping A and
	// ping-restart B, recorded here.
	KeepaliveInterval time.Duration
	KeepaliveTimeout  time.Duration

	// DH is dh: "none" or the resolved file (accepted, not read: weft uses
	// ECDHE only).
	DH string

	// StatusVersion is status-version 1|2|3; default 1.
	StatusVersion int
}

// NewServer returns a Server holding OpenVPN 2.6's defaults. Topology and
// Listens are resolved when parsing ends.
func NewServer() *Server {
	s := &Server{
		Common:                     defaultCommon(),
		Proto:                      DefaultProto,
		Port:                       DefaultPort,
		VerifyClientCert:           "require",
		StatusVersion:              DefaultStatusVersion,
		IfconfigPoolPersistSeconds: 600,
	}
	s.RenegSecMin = serverRenegMin(s.RenegSec)
	return s
}

// serverRenegMin is a server's default reneg-sec MIN: 90% of MAX.
func serverRenegMin(max time.Duration) time.Duration { return max * 9 / 10 }

// ParseServerFile reads and parses the server configuration at path.
// Relative file names inside it are resolved against the directory of path.
func ParseServerFile(path string) (*Server, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return ParseServer(f, path, filepath.Dir(path))
}

// ParseServer parses a server configuration read from r. name is used in
// error messages; relative file names (including client-config-dir) are
// resolved against dir, as for ParseClient. Errors located in the
// configuration are *Error.
func ParseServer(r io.Reader, name, dir string) (*Server, error) {
	ds, err := Lex(r, name)
	if err != nil {
		return nil, err
	}
	s := NewServer()
	s.Name, s.Dir = name, dir
	p := newParser(name, dir, &s.Warnings, nil, foreignInServer)
	if err := run(s, p, serverDirectives, ds); err != nil {
		return nil, err
	}
	if err := s.finish(p, lastLine(ds)); err != nil {
		return nil, err
	}
	return s, nil
}

// finish applies inter-directive defaults and semantic checks.
func (s *Server) finish(p *parser, last int) error {
	fail := newFail(p, last)
	_, hasServer := p.seen["server"]
	_, hasServer6 := p.seen["server-ipv6"]
	if !hasServer && !hasServer6 {
		return fail("", errors.New("not a server configuration: a weft server needs \"server NET MASK\" and/or \"server-ipv6 NET/BITS\" (manual ifconfig setups are not supported)"))
	}
	if err := s.finishDevice(p, fail); err != nil {
		return err
	}

	// Addressing.
	if s.Topology == "" {
		s.Topology = DefaultServerTopology
	}
	if hasServer {
		if s.Network.Bits() > 29 {
			return fail("server", fmt.Errorf("the network must be /29 (255.255.255.248) or larger, got /%d", s.Network.Bits()))
		}
		if s.Topology == "net30" {
			p.warn(p.seen["server"], "topology net30 (OpenVPN 2.6's default) is deprecated for servers; consider \"topology subnet\"")
		}
	}
	if _, ok := p.seen["ifconfig-pool"]; ok {
		switch {
		case hasServer && !s.NoPool:
			return fail("ifconfig-pool", errors.New("server already defines an ifconfig-pool; add nopool to the server directive to set the pool explicitly"))
		case hasServer && (!s.Network.Contains(s.PoolStart) || !s.Network.Contains(s.PoolEnd)):
			return fail("ifconfig-pool", fmt.Errorf("the pool %s-%s is not inside the server network %s", s.PoolStart, s.PoolEnd, s.Network))
		case !hasServer:
			return fail("ifconfig-pool", errors.New("an IPv4 pool needs the server directive (with nopool)"))
		}
	}
	if hasServer && s.NoPool && !s.PoolStart.IsValid() {
		p.warn(p.seen["server"], "nopool without ifconfig-pool: clients need ifconfig-push in client-config-dir")
	}
	if _, ok := p.seen["ifconfig-ipv6-pool"]; ok {
		if hasServer6 {
			return fail("ifconfig-ipv6-pool", errors.New("server-ipv6 already defines an ifconfig-ipv6-pool"))
		}
		return fail("ifconfig-ipv6-pool", fmt.Errorf("%w: ifconfig-ipv6-pool without server-ipv6 (use server-ipv6 NET/BITS)", ErrUnsupported))
	}

	// Credentials and client verification.
	if s.CA == nil {
		return fail("", errors.New("no ca: a server needs the CA certificate(s) to verify clients (\"ca FILE\" or <ca>)"))
	}
	hasCert, err := s.finishCertKey(fail)
	if err != nil {
		return err
	}
	if !hasCert {
		return fail("", errors.New("no cert/key: a server needs its certificate and private key (\"cert FILE\", \"key FILE\")"))
	}
	if s.VerifyClientCert != "require" && s.AuthUserPassVerify == "" {
		return fail("verify-client-cert", fmt.Errorf("verify-client-cert %s must be used with auth-user-pass-verify", s.VerifyClientCert))
	}
	if s.UsernameAsCommonName && s.AuthUserPassVerify == "" {
		return fail("username-as-common-name", errors.New("must be used with auth-user-pass-verify"))
	}
	if s.CCDExclusive && s.ClientConfigDir == "" {
		return fail("ccd-exclusive", errors.New("must be used with client-config-dir"))
	}
	if err := s.finishRest(p, fail); err != nil {
		return err
	}
	if d, ok := p.seen["reneg-sec"]; !ok || len(d.Args) < 2 {
		s.RenegSecMin = serverRenegMin(s.RenegSec)
	}

	// Listeners.
	if len(s.Listens) > 0 {
		for _, n := range []string{"proto", "local", "port", "lport"} {
			if d, ok := p.seen[n]; ok {
				p.warn(d, "ignored for binding: listen directives define the listeners")
			}
		}
	} else {
		a, proto := s.Local, s.Proto
		switch {
		case a.IsValid():
			if err := checkFamily(s.Proto, a); err != nil {
				return fail("local", fmt.Errorf("does not match proto: %w", err))
			}
		case proto == "udp6" || proto == "tcp6":
			// OpenVPN binds proto udp6/tcp6-server without local dual-stack on [::],
			// so IPv4 clients connect too.
			a, proto = netip.IPv6Unspecified(), strings.TrimSuffix(proto, "6")
		case proto == "udp" || proto == "tcp":
			// …and plain udp/tcp-server on IPv4 (AF_INET).
			a = netip.IPv4Unspecified()
		default:
			a = wildcard(proto)
		}
		s.Listens = []Listen{{Proto: proto, Addr: netip.AddrPortFrom(a, uint16(s.Port))}}
	}
	if d, ok := p.seen["explicit-exit-notify"]; ok {
		udp := false
		for _, l := range s.Listens {
			udp = udp || strings.HasPrefix(l.Proto, "udp")
		}
		if !udp {
			p.warn(d, "ignored for TCP: a weft server always tells TCP clients to reconnect when it shuts down")
		}
	}
	return nil
}

// serverProtos maps the proto values a server accepts to Listen protocols.
var serverProtos = map[string]string{
	"udp": "udp", "udp4": "udp4", "udp6": "udp6",
	"tcp": "tcp", "tcp4": "tcp4", "tcp6": "tcp6",
	"tcp-server": "tcp", "tcp4-server": "tcp4", "tcp6-server": "tcp6",
}

func parseServerProto(s string) (string, error) {
	if p, ok := serverProtos[s]; ok {
		return p, nil
	}
	if strings.HasSuffix(s, "-client") {
		return "", fmt.Errorf("%q is a client protocol; use tcp or tcp-server in a server configuration", s)
	}
	return "", fmt.Errorf("unknown protocol %q (want udp, udp4, udp6, tcp, tcp4, tcp6, tcp-server, tcp4-server or tcp6-server)", s)
}

// checkPush validates a pushed option: non-empty, one line, and
// tokenizable as the client will parse it.
func checkPush(opt string) error {
	if strings.TrimSpace(opt) == "" {
		return errors.New("empty option")
	}
	if strings.ContainsAny(opt, "\r\n\x00") {
		return errors.New("option contains a line break or NUL")
	}
	toks, err := Tokenize(opt)
	if err != nil {
		return fmt.Errorf("option %q: %w", opt, err)
	}
	if len(toks) == 0 {
		return fmt.Errorf("option %q is only a comment", opt)
	}
	return nil
}

var serverDirectives map[string]handler[Server]

func init() {
	common := func(s *Server) *Common { return &s.Common }
	own := map[string]handler[Server]{
		"mode": one(func(s *Server, v string) error {
			switch v {
			case "server":
				s.ModeServer = true
				return nil
			case "p2p":
				return fmt.Errorf("%w: point-to-point mode (mode p2p); a weft server needs mode server", ErrUnsupported)
			}
			return fmt.Errorf("unknown mode %q (want server)", v)
		}),
		"tls-server": flag(func(s *Server) { s.TLSServer = true }),
		"server": {minArgs: 2, maxArgs: 3, fn: func(s *Server, _ *parser, d Directive) error {
			a, err := parseIPv4("network", d.Args[0])
			if err != nil {
				return err
			}
			bits, err := ParseNetmask(d.Args[1])
			if err != nil {
				return err
			}
			pf := netip.PrefixFrom(a, bits)
			if pf.Masked().Addr() != a {
				return fmt.Errorf("network %s and netmask %s are inconsistent (did you mean %s?)", d.Args[0], d.Args[1], pf.Masked().Addr())
			}
			noPool := false
			if len(d.Args) == 3 {
				if d.Args[2] != "nopool" {
					return fmt.Errorf("unknown flag %q (want nopool)", d.Args[2])
				}
				noPool = true
			}
			s.Network, s.NoPool = pf, noPool
			s.ModeServer, s.TLSServer = true, true
			return nil
		}},
		"server-ipv6": one(func(s *Server, v string) error {
			pf, err := ParseIPv6Net(v, false)
			if err != nil {
				return err
			}
			switch {
			case pf.Bits() < 64 || pf.Bits() > 124:
				return fmt.Errorf("the network must be between /64 and /124, got /%d", pf.Bits())
			case pf.Bits() > 112:
				return fmt.Errorf("%w: server-ipv6 networks smaller than /112", ErrUnsupported)
			}
			s.Network6 = pf
			s.ModeServer, s.TLSServer = true, true
			return nil
		}),
		"topology": one(func(s *Server, v string) error {
			switch v {
			case "net30", "subnet":
				s.Topology = v
				return nil
			case "p2p":
				return fmt.Errorf("%w: topology p2p on a server (use subnet or net30)", ErrUnsupported)
			}
			return fmt.Errorf("unknown topology %q (want subnet or net30)", v)
		}),
		"ifconfig-pool": {minArgs: 2, maxArgs: 3, fn: func(s *Server, _ *parser, d Directive) error {
			start, err := parseIPv4("start", d.Args[0])
			if err != nil {
				return err
			}
			end, err := parseIPv4("end", d.Args[1])
			if err != nil {
				return err
			}
			if end.Less(start) {
				return fmt.Errorf("end %s is below start %s", end, start)
			}
			var mask netip.Addr
			if len(d.Args) == 3 {
				if _, err := ParseNetmask(d.Args[2]); err != nil {
					return err
				}
				mask, _ = netip.ParseAddr(d.Args[2])
			}
			s.PoolStart, s.PoolEnd, s.PoolNetmask = start, end, mask
			return nil
		}},
		"ifconfig-ipv6-pool": one(func(s *Server, v string) error {
			pf, err := netip.ParsePrefix(v)
			if err != nil || !pf.Addr().Is6() || pf.Addr().Is4In6() {
				return fmt.Errorf("%q is not an IPv6 ADDR/BITS", v)
			}
			s.Pool6 = pf
			return nil
		}),
		"push": one(func(s *Server, v string) error {
			if err := checkPush(v); err != nil {
				return err
			}
			s.Push = append(s.Push, v)
			return nil
		}),
		"client-to-client": flag(func(s *Server) { s.ClientToClient = true }),
		"client-config-dir": {minArgs: 1, maxArgs: 1, fn: func(s *Server, p *parser, d Directive) error {
			dir := p.path(d.Args[0])
			st, err := os.Stat(dir)
			if err != nil {
				return fmt.Errorf("%s: %w", dir, err)
			}
			if !st.IsDir() {
				return fmt.Errorf("%s: not a directory", dir)
			}
			s.ClientConfigDir = dir
			return nil
		}},
		"ccd-exclusive": flag(func(s *Server) { s.CCDExclusive = true }),
		"duplicate-cn":  flag(func(s *Server) { s.DuplicateCN = true }),
		"max-clients":   integer(1, MaxClientsLimit, func(s *Server, v int) { s.MaxClients = v }),
		// keepalive A B on a server: own ping A and ping-restart 2*B; pushes
		// ping A and ping-restart B (OpenVPN's expansion).
		"keepalive": {minArgs: 2, maxArgs: 2, fn: func(s *Server, _ *parser, d Directive) error {
			a, b, err := parseKeepalive(d.Args)
			if err != nil {
				return err
			}
			s.KeepaliveInterval, s.KeepaliveTimeout = a, b
			s.Ping, s.PingRestart = a, 2*b
			return nil
		}},
		"dh": {minArgs: 1, maxArgs: 1, fn: func(s *Server, p *parser, d Directive) error {
			if d.Args[0] == "none" {
				s.DH = "none"
				return nil
			}
			s.DH = p.path(d.Args[0])
			p.warn(d, "the DH parameters are not used: weft uses ECDHE key exchange only")
			return nil
		}},
		"verify-client-cert": choice([]string{"none", "optional", "require"}, func(s *Server, v string) { s.VerifyClientCert = v }),
		"remote-cert-tls": one(func(s *Server, v string) error {
			switch v {
			case "client":
				s.RemoteCertTLS = v
				return nil
			case "server":
				return errors.New("remote-cert-tls server would reject every client certificate; a server uses remote-cert-tls client")
			}
			return fmt.Errorf("want client, got %q", v)
		}),
		"status-version": integer(1, 3, func(s *Server, v int) { s.StatusVersion = v }),
		"proto": one(func(s *Server, v string) error {
			p, err := parseServerProto(v)
			s.Proto = p
			return err
		}),
		"local": one(func(s *Server, v string) error {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return fmt.Errorf("%q is not an IP address (weft does not resolve host names for local; use an address or listen)", v)
			}
			s.Local = a
			return nil
		}),
		"port":      one(func(s *Server, v string) (err error) { s.Port, err = parsePort(v); return err }),
		"lport":     one(func(s *Server, v string) (err error) { s.Port, err = parsePort(v); return err }),
		"multihome": flag(func(s *Server) { s.Multihome = true }),
		"listen": {minArgs: 2, maxArgs: 2, fn: func(s *Server, _ *parser, d Directive) error {
			l, err := ParseListen(d.Args[0], d.Args[1])
			if err != nil {
				return err
			}
			for _, o := range s.Listens {
				if o == l {
					return fmt.Errorf("duplicate listener %s", l)
				}
			}
			s.Listens = append(s.Listens, l)
			return nil
		}},

		"ifconfig-pool-persist": {minArgs: 1, maxArgs: 2, fn: func(s *Server, p *parser, d Directive) error {
			secs := 600
			if len(d.Args) == 2 {
				v, err := parseIntArg("seconds", d.Args[1], 0, maxSeconds)
				if err != nil {
					return err
				}
				secs = v
			}
			s.IfconfigPoolPersist, s.IfconfigPoolPersistSeconds = p.path(d.Args[0]), secs
			p.warn(d, "not supported by weft: pool assignments are not persisted (use ifconfig-push in client-config-dir for fixed addresses)")
			return nil
		}},
		"route": {minArgs: 1, maxArgs: 4, fn: func(s *Server, p *parser, d Directive) error {
			mask := "255.255.255.255"
			if len(d.Args) >= 2 && d.Args[1] != "default" {
				mask = d.Args[1]
			}
			pf, err := ParseIPv4Net(d.Args[0], mask, true)
			if err != nil {
				return err
			}
			if err := commonDirectives["route"].fn(&s.Common, p, d); err != nil {
				return err
			}
			s.TunRoutes = append(s.TunRoutes, pf)
			return nil
		}},
		"route-ipv6": {minArgs: 1, maxArgs: 3, fn: func(s *Server, p *parser, d Directive) error {
			pf, err := ParseIPv6Net(d.Args[0], true)
			if err != nil {
				return err
			}
			if err := commonDirectives["route-ipv6"].fn(&s.Common, p, d); err != nil {
				return err
			}
			s.TunRoutes = append(s.TunRoutes, pf)
			return nil
		}},
		"username-as-common-name": {fn: func(s *Server, p *parser, d Directive) error {
			s.UsernameAsCommonName = true
			p.warn(d, "not applied by weft: common names always come from the client certificate")
			return nil
		}},
		"auth-user-pass-verify": {minArgs: 2, maxArgs: 2, fn: func(s *Server, p *parser, d Directive) error {
			if d.Args[1] != "via-file" && d.Args[1] != "via-env" {
				return fmt.Errorf("unknown method %q (want via-file or via-env)", d.Args[1])
			}
			s.AuthUserPassVerify, s.AuthUserPassVerifyMethod = d.Args[0], d.Args[1]
			p.warn(d, "scripts are not run by weft: %q will not be executed and usernames/passwords are NOT verified", d.Args[0])
			return nil
		}},
	}
	serverDirectives = withCommon(own, common)
}
