package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrUnknownDirective is wrapped by the *Error for a directive that is not
// recognised (and not ignored via ignore-unknown-option or setenv opt).
var ErrUnknownDirective = errors.New("unknown directive")

// ErrUnsupported is wrapped by errors for directives or values that OpenVPN
// accepts but weft does not implement.
var ErrUnsupported = errors.New("not supported by weft")

// handler handles one directive for a configuration of type T. It is the
// unit of the per-mode tables (commonDirectives for Common, lifted into the
// client and server tables by withCommon).
type handler[T any] struct {
	minArgs, maxArgs int  // allowed number of arguments; maxArgs < 0: unlimited
	inline           bool // may be given as an inline block <name>...</name>
	fn               func(t *T, p *parser, d Directive) error
}

// parser holds the state shared by all directives of one configuration.
type parser struct {
	file      string          // configuration file name, for error locations
	dir       string          // base directory for relative file names
	ignore    map[string]bool // ignore-unknown-option names
	fwdCompat bool            // setenv FORWARD_COMPATIBLE 1
	warn      func(d Directive, format string, args ...any)
	seen      map[string]Directive // last occurrence of each directive
	// ignored lists directives of another mode that this mode skips with a
	// warning (name → reason), as OpenVPN does for dh in client mode.
	ignored map[string]string
	// foreign lists directives that belong to another mode or context
	// (name → message); they are errors wrapping ErrUnknownDirective.
	foreign map[string]string
}

// newParser returns a parser for the configuration name whose relative
// file names resolve against dir; warnings are appended to *warnings.
func newParser(name, dir string, warnings *[]string, ignored, foreign map[string]string) *parser {
	p := &parser{file: name, dir: dir, ignore: map[string]bool{}, seen: map[string]Directive{},
		ignored: ignored, foreign: foreign}
	p.warn = func(d Directive, format string, args ...any) {
		*warnings = append(*warnings, dirErr(d, fmt.Errorf(format, args...)).Error())
	}
	return p
}

// ignoredInClient lists directives that are not implemented but that, like
// OpenVPN in client mode, we ignore with a warning instead of failing.
// The list is deliberately small: only options whose absence cannot weaken
// security or change the tunnel's behaviour for the peer.
var ignoredInClient = map[string]string{
	// OpenVPN itself prints "Ignoring option 'dh' in tls-client mode".
	"dh": "server-only option, ignored in client mode",
}

// serverOnly lists directives that only make sense in a server
// configuration, to give a better message than "unknown directive".
var serverOnly = []string{
	"server", "server-ipv6", "server-bridge", "mode", "tls-server", "listen",
	"client-config-dir", "ccd-exclusive", "ifconfig-pool", "ifconfig-ipv6-pool", "ifconfig-pool-persist",
	"push", "push-reset", "push-remove", "client-to-client", "duplicate-cn",
	"auth-user-pass-verify", "tls-verify", "max-clients", "max-routes-per-client",
	"username-as-common-name", "verify-client-cert", "client-cert-not-required",
	"status-version", "multihome", "iroute", "iroute-ipv6", "ifconfig-push", "ifconfig-ipv6-push",
	"disable", "client-connect", "client-disconnect", "learn-address", "auth-gen-token",
	"stale-routes-check", "connect-freq",
}

// clientOnly lists directives that only make sense in a client
// configuration.
var clientOnly = []string{
	"client", "tls-client", "pull", "remote", "remote-random", "rport", "nobind",
	"resolv-retry", "server-poll-timeout", "connect-retry", "connect-retry-max",
	"auth-user-pass", "auth-nocache", "route-nopull", "pull-filter", "redirect-gateway",
	"dhcp-option", "userspace", "socks-listen", "forward", "reverse-forward", "http-proxy", "socks-proxy",
}

// ccdOnly lists directives that OpenVPN only accepts in a client-specific
// context (a client-config-dir file).
var ccdOnly = []string{
	"iroute", "iroute-ipv6", "ifconfig-push", "ifconfig-ipv6-push", "push-reset", "push-remove", "disable",
}

// Foreign-directive messages for each mode, built by init.
var (
	foreignInClient map[string]string
	foreignInServer map[string]string
)

func init() {
	foreignInClient = map[string]string{}
	for _, n := range serverOnly {
		foreignInClient[n] = fmt.Sprintf("%q is a server directive, not valid in a client configuration", n)
	}
	foreignInServer = map[string]string{}
	for _, n := range clientOnly {
		foreignInServer[n] = fmt.Sprintf("%q is a client directive, not valid in a server configuration", n)
	}
	foreignInServer["dhcp-option"] = `"dhcp-option" is a client directive; a server pushes it with push "dhcp-option ..."`
	foreignInServer["redirect-gateway"] = `"redirect-gateway" is a client directive; a server pushes it with push "redirect-gateway ..."`
	for _, n := range ccdOnly {
		foreignInServer[n] = fmt.Sprintf("%q is only valid in a client-config-dir file", n)
	}
}

// run dispatches the directives ds to the handlers in table. The generic
// directives ignore-unknown-option and "setenv opt" are handled here for all
// modes; "setenv NAME VALUE" and everything else go to the table.
func run[T any](t *T, p *parser, table map[string]handler[T], ds []Directive) error {
	for _, d := range ds {
		optional := false
		if d.Name == "setenv" && len(d.Args) >= 1 && d.Args[0] == "opt" {
			if len(d.Args) < 2 {
				return dirErr(d, errors.New("setenv opt needs a directive"))
			}
			d = Directive{File: d.File, Line: d.Line, Name: strings.TrimPrefix(d.Args[1], "--"), Args: d.Args[2:]}
			optional = true
		}
		if d.Name == "ignore-unknown-option" {
			if len(d.Args) == 0 {
				return dirErr(d, errors.New("needs at least one directive name"))
			}
			for _, a := range d.Args {
				p.ignore[strings.TrimPrefix(a, "--")] = true
			}
			continue
		}
		if d.Name == "setenv" && len(d.Args) == 2 && d.Args[0] == "FORWARD_COMPATIBLE" && d.Args[1] == "1" {
			p.fwdCompat = true
		}
		h, ok := table[d.Name]
		if !ok {
			switch {
			case optional:
				p.warn(d, "ignoring unknown directive %q (setenv opt)", d.Name)
				continue
			case p.ignore[d.Name]:
				p.warn(d, "ignoring unknown directive %q (ignore-unknown-option)", d.Name)
				continue
			case p.ignored[d.Name] != "":
				p.warn(d, "ignoring %q: %s", d.Name, p.ignored[d.Name])
				continue
			case p.fwdCompat:
				p.warn(d, "ignoring unknown directive %q (setenv FORWARD_COMPATIBLE 1)", d.Name)
				continue
			case p.foreign[d.Name] != "":
				return dirErr(d, fmt.Errorf("%w: %s", ErrUnknownDirective, p.foreign[d.Name]))
			}
			return dirErr(d, ErrUnknownDirective)
		}
		if d.Inline {
			if !h.inline {
				return dirErr(d, errors.New("cannot be given as an inline block"))
			}
		} else if n := len(d.Args); n < h.minArgs || (h.maxArgs >= 0 && n > h.maxArgs) {
			return dirErr(d, argCountErr(h.minArgs, h.maxArgs, n))
		}
		if err := h.fn(t, p, d); err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				return err
			}
			return dirErr(d, err)
		}
		p.seen[d.Name] = d
	}
	return nil
}

func dirErr(d Directive, err error) *Error {
	return &Error{File: d.File, Line: d.Line, Directive: d.Name, Err: err}
}

func argCountErr(minArgs, maxArgs, got int) error {
	switch {
	case minArgs == maxArgs:
		return fmt.Errorf("takes %s, got %d", plural(minArgs, "argument"), got)
	case maxArgs < 0:
		return fmt.Errorf("takes at least %s, got %d", plural(minArgs, "argument"), got)
	default:
		return fmt.Errorf("takes %d to %d arguments, got %d", minArgs, maxArgs, got)
	}
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return strconv.Itoa(n) + " " + s + "s"
}

// path resolves a file name from a directive against the configuration's
// directory.
func (p *parser) path(name string) string {
	if filepath.IsAbs(name) || p.dir == "" {
		return name
	}
	return filepath.Join(p.dir, name)
}

// maxReferencedFile bounds files read for ca, cert, key, ... (OpenVPN
// limits inline and referenced files similarly).
const maxReferencedFile = 10 << 20

// load returns the content of a file-valued directive: the inline body, or
// the content of the file named by its first argument. source is "[inline]"
// or the resolved path, for messages.
func (p *parser) load(d Directive) (data []byte, source string, err error) {
	if d.Inline {
		return d.Body, "[inline]", nil
	}
	if len(d.Args) == 0 {
		return nil, "", errors.New("missing file name")
	}
	if d.Args[0] == "[inline]" {
		return nil, "", fmt.Errorf("%q needs an inline <%s> block instead", d.Args[0], d.Name)
	}
	path := p.path(d.Args[0])
	st, err := os.Stat(path)
	if err != nil {
		return nil, path, fmt.Errorf("read %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, path, fmt.Errorf("read %s: not a regular file", path)
	}
	if st.Size() > maxReferencedFile {
		return nil, path, fmt.Errorf("read %s: file larger than %d bytes", path, maxReferencedFile)
	}
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, path, fmt.Errorf("read %s: %w", path, err)
	}
	return data, path, nil
}

// Value parsers.

// parseInt parses a decimal integer in [lo, hi].
func parseInt(what, s string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not an integer", what, s)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%s: %d out of range %d..%d", what, n, lo, hi)
	}
	return n, nil
}

func parseIntArg(what, s string, lo, hi int) (int, error) {
	n, err := parseInt(what, s, int64(lo), int64(hi))
	return int(n), err
}

// maxSeconds bounds time values (about 68 years, as OpenVPN's int).
const maxSeconds = 1<<31 - 1

func parsePort(s string) (int, error) { return parseIntArg("port", s, 1, 65535) }
