package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Remote is one server address from a remote directive.
type Remote struct {
	// Host is a host name or IP address literal.
	Host string
	// Port is the server port; remotes without a port get Client.Port
	// (the last port or rport directive, default 1194).
	Port int
	// Proto is "udp", "udp4", "udp6", "tcp", "tcp4" or "tcp6"; remotes
	// without a protocol get Client.Proto (default "udp").
	Proto string
}

// PullFilter is one pull-filter directive.
type PullFilter struct {
	Action string // "accept", "ignore" or "reject"
	Text   string // prefix of pushed options it applies to
}

// Client is a parsed client configuration. The directives it shares with
// a server configuration are in the embedded Common; the fields here are
// client-only. Field comments name the directive that sets each field and
// its default.
type Client struct {
	Common

	// Mode. client implies TLSClient and Pull.
	TLSClient bool // tls-client or client; required
	Pull      bool // pull or client: accept options pushed by the server

	// Connection.
	Remotes           []Remote      // remote HOST [PORT [PROTO]], in order; at least one required
	RemoteRandom      bool          // remote-random
	Port              int           // port / rport; default 1194; used for remotes without a port
	LPort             int           // lport / port; 0 = not set. Local binding is disabled by Nobind.
	Proto             string        // proto, normalized; default "udp"; used for remotes without a proto
	Nobind            bool          // nobind
	ResolvRetry       string        // resolv-retry N|infinite; default "infinite"
	ServerPollTimeout time.Duration // server-poll-timeout; default 120s
	ConnectRetry      time.Duration // connect-retry N; default 1s
	ConnectRetryMax   time.Duration // connect-retry N MAX; default 300s
	ConnectRetryLimit int           // connect-retry-max N; 0 = unlimited (default)

	// Username/password authentication.
	AuthUserPass     bool   // auth-user-pass given (always with credentials)
	AuthUserPassFile string // file or "[inline]"
	Username         string // line 1 of the auth-user-pass file
	Password         string // line 2 of the auth-user-pass file
	AuthNoCache      bool   // auth-nocache

	// Pushed-option handling and routing (recorded).
	RouteNoPull     bool         // route-nopull
	PullFilters     []PullFilter // pull-filter ACTION TEXT, in order
	DHCPOptions     [][]string   // dhcp-option TYPE [VALUE...]
	RedirectGateway []string     // redirect-gateway flags; nil = not given, empty = given without flags

}

// NewClient returns a Client holding OpenVPN 2.6's defaults.
func NewClient() *Client {
	return &Client{
		Common:            defaultCommon(),
		Port:              DefaultPort,
		Proto:             DefaultProto,
		ResolvRetry:       "infinite",
		ServerPollTimeout: DefaultServerPollTimeout,
		ConnectRetry:      DefaultConnectRetry,
		ConnectRetryMax:   DefaultConnectRetryMax,
	}
}

// ParseClientFile reads and parses the client configuration at path.
// Relative file names inside it are resolved against the directory of path.
func ParseClientFile(path string) (*Client, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return ParseClient(f, path, filepath.Dir(path))
}

// ParseClient parses a client configuration read from r. name is used in
// error messages. Relative file names in directives are resolved against
// dir; this differs from OpenVPN, which resolves them against its working
// directory (see --cd), but makes a configuration independent of where
// weft is started. An empty dir leaves relative names relative to the
// working directory.
//
// Errors located in the configuration are *Error. Semantic errors found
// after the whole file was read (such as a missing ca) are located at the
// last line of the file, or at the directive concerned.
func ParseClient(r io.Reader, name, dir string) (*Client, error) {
	ds, err := Lex(r, name)
	if err != nil {
		return nil, err
	}
	c := NewClient()
	c.Name, c.Dir = name, dir
	p := newParser(name, dir, &c.Warnings, ignoredInClient, foreignInClient)
	if err := run(c, p, clientDirectives, ds); err != nil {
		return nil, err
	}
	if err := c.finish(p, lastLine(ds)); err != nil {
		return nil, err
	}
	return c, nil
}

// finish applies inter-directive defaults and semantic checks.
func (c *Client) finish(p *parser, last int) error {
	fail := newFail(p, last)
	if !c.TLSClient {
		return fail("", errors.New("not a client configuration: add \"client\" (or \"tls-client\" and \"pull\"); static-key mode is not supported"))
	}
	if len(c.Remotes) == 0 {
		return fail("", errors.New("no remote: a client needs at least one \"remote HOST [PORT [PROTO]]\""))
	}
	for i := range c.Remotes {
		if c.Remotes[i].Port == 0 {
			c.Remotes[i].Port = c.Port
		}
		if c.Remotes[i].Proto == "" {
			c.Remotes[i].Proto = c.Proto
		}
	}
	if err := c.finishDevice(p, fail); err != nil {
		return err
	}
	if c.CA == nil {
		return fail("", errors.New("no ca: a client needs the CA certificate(s) to verify the server (\"ca FILE\" or <ca>)"))
	}
	hasCert, err := c.finishCertKey(fail)
	if err != nil {
		return err
	}
	if !hasCert && !c.AuthUserPass {
		return fail("", errors.New("no client credentials: give cert and key, or auth-user-pass"))
	}
	if err := c.finishRest(p, fail); err != nil {
		return err
	}
	if !c.Userspace {
		for _, n := range []string{"socks-listen", "forward", "reverse-forward"} {
			if d, ok := p.seen[n]; ok {
				p.warn(d, "has no effect without userspace")
			}
		}
	}
	return nil
}

var protos = map[string]string{
	"udp": "udp", "udp4": "udp4", "udp6": "udp6",
	"tcp": "tcp", "tcp4": "tcp4", "tcp6": "tcp6",
	"tcp-client": "tcp", "tcp4-client": "tcp4", "tcp6-client": "tcp6",
}

func parseProto(s string) (string, error) {
	if p, ok := protos[s]; ok {
		return p, nil
	}
	if strings.HasSuffix(s, "-server") {
		return "", fmt.Errorf("%q is a server protocol; use tcp or tcp-client in a client configuration", s)
	}
	return "", fmt.Errorf("unknown protocol %q (want udp, udp4, udp6, tcp, tcp4, tcp6, tcp-client, tcp4-client or tcp6-client)", s)
}

func parseAuthUserPass(data []byte, source string) (user, pass string, err error) {
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	if lines[0] == "" {
		return "", "", fmt.Errorf("%s: no username on line 1 (want the username on line 1 and the password on line 2)", source)
	}
	if len(lines) < 2 || lines[1] == "" {
		return "", "", fmt.Errorf("%s: no password on line 2, and weft cannot prompt for it", source)
	}
	return lines[0], lines[1], nil
}

// parseForward validates forward / reverse-forward PROTO LISTEN DEST.
func parseForward(args []string) ([]string, error) {
	if args[0] != "tcp" && args[0] != "udp" {
		return nil, fmt.Errorf("unknown protocol %q (want tcp or udp)", args[0])
	}
	if _, _, err := splitHostPort("listen address", args[1], 0); err != nil {
		return nil, err
	}
	if _, _, err := splitHostPort("destination", args[2], 1); err != nil {
		return nil, err
	}
	return append([]string(nil), args...), nil
}

var clientDirectives map[string]handler[Client]

func init() {
	own := map[string]handler[Client]{
		"client":     flag(func(c *Client) { c.TLSClient, c.Pull = true, true }),
		"tls-client": flag(func(c *Client) { c.TLSClient = true }),
		"pull":       flag(func(c *Client) { c.Pull = true }),
		"remote": {minArgs: 1, maxArgs: 3, fn: func(c *Client, _ *parser, d Directive) error {
			r := Remote{Host: d.Args[0]}
			if r.Host == "" {
				return errors.New("empty host")
			}
			if len(d.Args) > 1 {
				port, err := parsePort(d.Args[1])
				if err != nil {
					return err
				}
				r.Port = port
			}
			if len(d.Args) > 2 {
				proto, err := parseProto(d.Args[2])
				if err != nil {
					return err
				}
				r.Proto = proto
			}
			c.Remotes = append(c.Remotes, r)
			return nil
		}},
		"remote-random": flag(func(c *Client) { c.RemoteRandom = true }),
		"proto": one(func(c *Client, s string) error {
			p, err := parseProto(s)
			c.Proto = p
			return err
		}),
		"port": one(func(c *Client, s string) error {
			p, err := parsePort(s)
			c.Port, c.LPort = p, p
			return err
		}),
		"rport": one(func(c *Client, s string) error {
			p, err := parsePort(s)
			c.Port = p
			return err
		}),
		"lport": one(func(c *Client, s string) error {
			p, err := parseIntArg("port", s, 0, 65535)
			c.LPort = p
			return err
		}),
		"nobind": flag(func(c *Client) { c.Nobind = true }),
		"resolv-retry": one(func(c *Client, s string) error {
			if s != "infinite" {
				if _, err := parseInt("seconds", s, 0, maxSeconds); err != nil {
					return fmt.Errorf("%w (or \"infinite\")", err)
				}
			}
			c.ResolvRetry = s
			return nil
		}),
		"server-poll-timeout": seconds(1, func(c *Client, v time.Duration) { c.ServerPollTimeout = v }),
		"connect-retry": {minArgs: 1, maxArgs: 2, fn: func(c *Client, _ *parser, d Directive) error {
			v, err := secondsArg("seconds", d.Args[0], 0)
			if err != nil {
				return err
			}
			c.ConnectRetry = v
			if len(d.Args) > 1 {
				m, err := secondsArg("max seconds", d.Args[1], 0)
				if err != nil {
					return err
				}
				if m < v {
					return fmt.Errorf("max %d is below %d", m/time.Second, v/time.Second)
				}
				c.ConnectRetryMax = m
			}
			return nil
		}},
		"connect-retry-max": integer(1, maxSeconds, func(c *Client, v int) { c.ConnectRetryLimit = v }),

		"auth-user-pass": {minArgs: 0, maxArgs: 1, inline: true, fn: func(c *Client, p *parser, d Directive) error {
			if !d.Inline && len(d.Args) == 0 {
				return fmt.Errorf("%w: auth-user-pass without a file would prompt for credentials, and weft is not interactive; "+
					"give a file (username on line 1, password on line 2) or an inline <auth-user-pass> block", ErrUnsupported)
			}
			data, src, err := p.load(d)
			if err != nil {
				return err
			}
			u, pw, err := parseAuthUserPass(data, src)
			if err != nil {
				return err
			}
			c.AuthUserPass, c.AuthUserPassFile, c.Username, c.Password = true, src, u, pw
			return nil
		}},
		"auth-nocache": flag(func(c *Client) { c.AuthNoCache = true }),

		// keepalive A B on a client is ping A, ping-restart B.
		"keepalive": {minArgs: 2, maxArgs: 2, fn: func(c *Client, _ *parser, d Directive) error {
			a, b, err := parseKeepalive(d.Args)
			if err != nil {
				return err
			}
			c.Ping, c.PingRestart = a, b
			return nil
		}},

		"route-nopull": flag(func(c *Client) { c.RouteNoPull = true }),
		"pull-filter": {minArgs: 2, maxArgs: 2, fn: func(c *Client, _ *parser, d Directive) error {
			switch d.Args[0] {
			case "accept", "ignore", "reject":
			default:
				return fmt.Errorf("unknown action %q (want accept, ignore or reject)", d.Args[0])
			}
			c.PullFilters = append(c.PullFilters, PullFilter{Action: d.Args[0], Text: d.Args[1]})
			return nil
		}},
		"dhcp-option": {minArgs: 1, maxArgs: -1, fn: func(c *Client, _ *parser, d Directive) error {
			c.DHCPOptions = append(c.DHCPOptions, append([]string(nil), d.Args...))
			return nil
		}},
		"redirect-gateway": {minArgs: 0, maxArgs: -1, fn: func(c *Client, _ *parser, d Directive) error {
			c.RedirectGateway = append([]string{}, d.Args...)
			return nil
		}},
	}
	clientDirectives = withCommon(own, func(c *Client) *Common { return &c.Common })
}
