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

// Wrap is the control-channel wrapping.
type Wrap string

// Control-channel wrappings.
const (
	WrapNone     Wrap = "none"
	WrapTLSAuth  Wrap = "tls-auth"
	WrapTLSCrypt Wrap = "tls-crypt"
)

// DefaultDataCiphers is the server's data-ciphers unless set.
const DefaultDataCiphers = "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305"

// ServerOptions configures an openvpn server. Zero values give the §18.3 lab
// server: UDP over IPv4, port 1194, tls-crypt, all three AEAD ciphers.
type ServerOptions struct {
	Proto         string            // "udp" (default) or "tcp"
	IPv6          bool              // outer transport over IPv6 (proto udp6/tcp6-server, local = ns v6 address)
	Port          int               // default 1194
	Wrap          Wrap              // default tls-crypt
	Digest        string            // `auth` for tls-auth, e.g. SHA256 (default SHA256 with tls-auth)
	DataCiphers   string            // default DefaultDataCiphers
	RenegSec      int               // 0: openvpn default
	Keepalive     string            // default "10 60"
	TLSVersionMin string            // default "1.2"
	CertFile      string            // default pki.ServerCert
	KeyFile       string            // default pki.ServerKey
	StaticKeyFile string            // default pki.StaticKey
	CCD           map[string]string // client-config-dir files (CN -> content)
	Extra         []string          // extra config lines
}

func (o *ServerOptions) defaults(p *PKI) {
	if o.Proto == "" {
		o.Proto = "udp"
	}
	if o.Port == 0 {
		o.Port = 1194
	}
	if o.Wrap == "" {
		o.Wrap = WrapTLSCrypt
	}
	if o.Wrap == WrapTLSAuth && o.Digest == "" {
		o.Digest = "SHA256"
	}
	if o.DataCiphers == "" {
		o.DataCiphers = DefaultDataCiphers
	}
	if o.Keepalive == "" {
		o.Keepalive = "10 60"
	}
	if o.TLSVersionMin == "" {
		o.TLSVersionMin = "1.2"
	}
	if o.CertFile == "" {
		o.CertFile = p.ServerCert
	}
	if o.KeyFile == "" {
		o.KeyFile = p.ServerKey
	}
	if o.StaticKeyFile == "" {
		o.StaticKeyFile = p.StaticKey
	}
}

var serverTmpl = template.Must(template.New("server").Parse(`# weft interop lab server (generated)
dev tun
proto {{.ProtoWord}}
local {{.Local}}
port {{.O.Port}}
topology subnet
server 10.8.0.0 255.255.255.0
server-ipv6 fd00:8::/64
ca   {{.PKI.CA}}
cert {{.O.CertFile}}
key  {{.O.KeyFile}}
dh none
tls-version-min {{.O.TLSVersionMin}}
{{- if eq .O.Wrap "tls-crypt"}}
tls-crypt {{.O.StaticKeyFile}}
{{- else if eq .O.Wrap "tls-auth"}}
tls-auth {{.O.StaticKeyFile}} 0
auth {{.O.Digest}}
{{- end}}
data-ciphers {{.O.DataCiphers}}
keepalive {{.O.Keepalive}}
{{- if .UDP}}
explicit-exit-notify 1
{{- end}}
{{- if .O.RenegSec}}
reneg-sec {{.O.RenegSec}}
{{- end}}
{{- if .CCDDir}}
client-config-dir {{.CCDDir}}
{{- end}}
verb 4
{{- range .O.Extra}}
{{.}}
{{- end}}
`))

// Server is an openvpn server running in the server namespace of a Pair.
type Server struct {
	t       testing.TB
	Pair    *Pair
	PKI     *PKI
	Opts    ServerOptions
	Dir     string
	Conf    string
	Proc    *Proc
	logs    []string
	started time.Time
}

// Addr returns the server's outer address (v4 or v6 per the options).
func (s *Server) Addr() string {
	if s.Opts.IPv6 {
		return s.Pair.ServerV6
	}
	return s.Pair.ServerV4
}

// StartServer writes the config and starts openvpn; it waits (bounded) for
// "Initialization Sequence Completed". Skips loudly without openvpn.
func StartServer(t testing.TB, pair *Pair, pki *PKI, opts ServerOptions) *Server {
	t.Helper()
	RequireOpenVPN(t)
	opts.defaults(pki)
	dir := t.TempDir()
	s := &Server{t: t, Pair: pair, PKI: pki, Opts: opts, Dir: dir, Conf: filepath.Join(dir, "server.conf")}
	udp := opts.Proto == "udp"
	word := map[[2]bool]string{{true, false}: "udp", {true, true}: "udp6", {false, false}: "tcp-server", {false, true}: "tcp6-server"}[[2]bool{udp, opts.IPv6}]
	ccdDir := ""
	if len(opts.CCD) > 0 {
		ccdDir = filepath.Join(dir, "ccd")
		if err := os.Mkdir(ccdDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for cn, content := range opts.CCD {
			if err := os.WriteFile(filepath.Join(ccdDir, cn), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	err := serverTmpl.Execute(&buf, map[string]any{
		"O": opts, "PKI": pki, "ProtoWord": word, "Local": s.Addr(), "UDP": udp, "CCDDir": ccdDir,
	})
	if err != nil {
		t.Fatalf("server template: %v", err)
	}
	if err := os.WriteFile(s.Conf, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- openvpn server config %s ----\n%s", s.Conf, buf.String())
			t.Logf("---- openvpn server log (tail) ----\n%s", Tail(s.LogText(), 80))
		}
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Start starts (or restarts after Stop) the openvpn process and waits up to 20 s
// for it to finish initialisation. Each start logs to a new file.
func (s *Server) Start() error {
	if s.Proc != nil && !s.Proc.Exited() {
		return fmt.Errorf("openvpn server already running (pid %d)", s.Proc.PID())
	}
	log := filepath.Join(s.Dir, fmt.Sprintf("server-%d.log", len(s.logs)))
	s.logs = append(s.logs, log)
	args := NSExec(s.Pair.Server, "openvpn", "--cd", s.Dir, "--config", s.Conf,
		"--log", log, "--writepid", filepath.Join(s.Dir, "server.pid"))
	// openvpn writes to --log; anything it prints before that goes to the .out file.
	p, err := StartProc(s.t, "openvpn-server", log+".out", nil, args...)
	if err != nil {
		return err
	}
	s.Proc = p
	s.started = time.Now()
	ok := WaitFor(20*time.Second, 50*time.Millisecond, func() bool {
		return p.Exited() || strings.Contains(ReadLog(log), "Initialization Sequence Completed")
	})
	if p.Exited() || !ok {
		return fmt.Errorf("openvpn server did not initialise (%s): %s\n%s", p.ExitState(),
			Tail(ReadLog(log+".out"), 20), Tail(ReadLog(log), 40))
	}
	return nil
}

// Stop signals the server (SIGTERM for a clean exit, SIGKILL for a crash) and
// waits for it to exit.
func (s *Server) Stop(sig syscall.Signal) {
	if s.Proc != nil {
		s.Proc.Stop(sig, 10*time.Second)
	}
}

// Restart stops the server with sig and starts it again.
func (s *Server) Restart(sig syscall.Signal) error {
	s.Stop(sig)
	return s.Start()
}

// LogText returns all server logs (every start) concatenated.
func (s *Server) LogText() string {
	var b strings.Builder
	for _, l := range s.logs {
		b.WriteString(ReadLog(l + ".out"))
		b.WriteString(ReadLog(l))
	}
	return b.String()
}

// WaitLog polls the server log up to timeout for a line containing all subs
// (case-insensitive) and returns it.
func (s *Server) WaitLog(timeout time.Duration, subs ...string) (string, bool) {
	return WaitLogLine(s.LogText, timeout, subs...)
}

// HasLog reports whether some server log line contains all subs.
func (s *Server) HasLog(subs ...string) bool {
	_, ok := FindLine(s.LogText(), subs...)
	return ok
}
