package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// ClientKind selects the client implementation.
type ClientKind string

// Client implementations.
const (
	OpenVPNClient ClientKind = "openvpn"
	WeftClient    ClientKind = "weft"
)

// InitCompleted is the line both openvpn and weft log when the tunnel is up.
const InitCompleted = "Initialization Sequence Completed"

// ClientOptions configures the client config file (an ordinary OpenVPN client
// config, read by openvpn and weft alike). Transport and wrapping settings that
// must match the server are copied from the Server unless overridden.
type ClientOptions struct {
	DataCiphers      string   // client `data-ciphers` (default: omitted, i.e. the client default)
	CA               string   // default pki.CA
	Cert, Key        string   // default pki.ClientCert / pki.ClientKey
	StaticKeyFile    string   // default pki.StaticKey
	KeyDirectionLine bool     // tls-auth: write `key-direction 1` on its own line instead of `tls-auth FILE 1`
	NoExitNotify     bool     // omit explicit-exit-notify on UDP
	Extra            []string // extra config lines (e.g. "key-derivation prf", "connect-retry 1")
	Verb             int      // default 4
	WeftArgs         []string // extra weft CLI args after --config FILE
	UpTimeout        time.Duration
	DisableTunCheck  bool // do not require a 10.8.0.x address for "up"
}

var clientTmpl = template.Must(template.New("client").Parse(`# weft interop lab client (generated)
client
dev tun
proto {{.ProtoWord}}
remote {{.Remote}} {{.S.Port}}
nobind
ca   {{.O.CA}}
cert {{.O.Cert}}
key  {{.O.Key}}
remote-cert-tls server
{{- if eq .S.Wrap "tls-crypt"}}
tls-crypt {{.O.StaticKeyFile}}
{{- else if eq .S.Wrap "tls-auth"}}
{{- if .O.KeyDirectionLine}}
key-direction 1
tls-auth {{.O.StaticKeyFile}}
{{- else}}
tls-auth {{.O.StaticKeyFile}} 1
{{- end}}
auth {{.S.Digest}}
{{- end}}
{{- if .O.DataCiphers}}
data-ciphers {{.O.DataCiphers}}
{{- end}}
{{- if and .UDP (not .O.NoExitNotify)}}
explicit-exit-notify 1
{{- end}}
verb {{.O.Verb}}
{{- range .O.Extra}}
{{.}}
{{- end}}
`))

// Client is an openvpn or weft client running in the client namespace.
type Client struct {
	t      testing.TB
	Kind   ClientKind
	Server *Server
	Opts   ClientOptions
	Dir    string
	Conf   string
	Log    string
	Proc   *Proc
	Start  time.Time
	UpAt   time.Time
}

// StartClient writes the client config and starts the client (it does not wait
// for the tunnel: call WaitUp). For WeftClient, bin is the weft binary.
func StartClient(t testing.TB, kind ClientKind, bin string, srv *Server, opts ClientOptions) *Client {
	t.Helper()
	pki := srv.PKI
	if opts.CA == "" {
		opts.CA = pki.CA
	}
	if opts.Cert == "" {
		opts.Cert, opts.Key = pki.ClientCert, pki.ClientKey
	}
	if opts.StaticKeyFile == "" {
		opts.StaticKeyFile = pki.StaticKey
	}
	if opts.Verb == 0 {
		opts.Verb = 4
	}
	if opts.UpTimeout == 0 {
		opts.UpTimeout = 30 * time.Second
	}
	dir := t.TempDir()
	c := &Client{t: t, Kind: kind, Server: srv, Opts: opts, Dir: dir,
		Conf: filepath.Join(dir, "client.conf"), Log: filepath.Join(dir, string(kind)+"-client.log")}
	udp := srv.Opts.Proto == "udp"
	word := "udp"
	if !udp {
		word = "tcp-client"
	}
	var buf bytes.Buffer
	err := clientTmpl.Execute(&buf, map[string]any{
		"O": opts, "S": srv.Opts, "ProtoWord": word, "Remote": srv.Addr(), "UDP": udp,
	})
	if err != nil {
		t.Fatalf("client template: %v", err)
	}
	if err := os.WriteFile(c.Conf, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var args []string
	switch kind {
	case OpenVPNClient:
		args = NSExec(srv.Pair.Client, "openvpn", "--cd", dir, "--config", c.Conf, "--log", c.Log)
	case WeftClient:
		args = NSExec(srv.Pair.Client, append([]string{bin, "client", "--config", c.Conf}, opts.WeftArgs...)...)
	default:
		t.Fatalf("unknown client kind %q", kind)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- %s client config %s ----\n%s", kind, c.Conf, buf.String())
			t.Logf("---- %s client log (tail) [%s] ----\n%s", kind, c.State(), Tail(c.LogText(), 80))
		}
	})
	logOut := c.Log
	if kind == OpenVPNClient {
		logOut = c.Log + ".out"
	}
	c.Start = time.Now()
	p, err := StartProc(t, string(kind)+"-client", logOut, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	c.Proc = p
	t.Logf("%s client started (pid %d): %s", kind, p.PID(), strings.Join(args, " "))
	return c
}

// State describes the process state.
func (c *Client) State() string { return c.Proc.ExitState() }

// LogText returns the client's log (stdout+stderr for weft; --log for openvpn).
func (c *Client) LogText() string {
	if c.Kind == OpenVPNClient {
		return ReadLog(c.Log+".out") + ReadLog(c.Log)
	}
	return ReadLog(c.Log)
}

// HasTunAddr reports whether the client namespace has a pushed 10.8.0.x address.
func (c *Client) HasTunAddr() bool {
	return strings.Contains(Addrs(c.Server.Pair.Client), "inet 10.8.0.")
}

// IsUp reports whether the log says the tunnel is up and the address is set.
func (c *Client) IsUp() bool {
	if !strings.Contains(c.LogText(), InitCompleted) {
		return false
	}
	return c.Opts.DisableTunCheck || c.HasTunAddr()
}

// WaitUp waits (bounded by Opts.UpTimeout) until the tunnel is up: the log line
// "Initialization Sequence Completed" and a 10.8.0.x address in the namespace.
func (c *Client) WaitUp() error {
	ok := WaitFor(c.Opts.UpTimeout, 10*time.Millisecond, func() bool {
		return c.Proc.Exited() || c.IsUp()
	})
	if c.IsUp() {
		if c.UpAt.IsZero() {
			c.UpAt = time.Now()
		}
		return nil
	}
	if c.Proc.Exited() {
		return fmt.Errorf("%s client exited before the tunnel came up (%s)", c.Kind, c.State())
	}
	_ = ok
	return fmt.Errorf("%s client: tunnel not up within %v (log line %q seen: %v, 10.8.0.x address: %v)",
		c.Kind, c.Opts.UpTimeout, InitCompleted, strings.Contains(c.LogText(), InitCompleted), c.HasTunAddr())
}

// MustUp is WaitUp that fails the test.
func (c *Client) MustUp(t testing.TB) {
	t.Helper()
	if err := c.WaitUp(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s client up after %v", c.Kind, c.UpAt.Sub(c.Start).Round(time.Millisecond))
}

// HandshakeTime is the time from start until the tunnel was seen up.
func (c *Client) HandshakeTime() time.Duration {
	if c.UpAt.IsZero() {
		return 0
	}
	return c.UpAt.Sub(c.Start)
}

// Stop sends SIGTERM and waits up to timeout; it reports whether the client
// exited by itself (otherwise it was SIGKILLed) and its exit code.
func (c *Client) Stop(timeout time.Duration) (bool, int) {
	ok := c.Proc.Stop(syscall.SIGTERM, timeout)
	return ok, c.Proc.ExitCode()
}

// WaitLog polls the client log up to timeout for a line containing all subs
// (case-insensitive) and returns it.
func (c *Client) WaitLog(timeout time.Duration, subs ...string) (string, bool) {
	return WaitLogLine(c.LogText, timeout, subs...)
}
