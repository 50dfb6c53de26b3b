package harness

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ServerKind selects the server implementation run by StartConfServer.
type ServerKind string

// Server implementations.
const (
	OpenVPNServer ServerKind = "openvpn"
	WeftServer    ServerKind = "weft"
)

// ConfServer is an openvpn or weft server started from a complete config file
// in a namespace.
type ConfServer struct {
	t    testing.TB
	Kind ServerKind
	Bin  string
	NS   string
	Dir  string // the config's directory (relative paths in it resolve here)
	Conf string
	Args []string // extra weft CLI args
	Proc *Proc
	logs []string
}

// StartConfServer writes conf to dir/server.conf and starts the server in ns
// (bin is the weft binary for WeftServer); it waits up to 20 s for
// "Initialization Sequence Completed" and fails the test otherwise.
func StartConfServer(t testing.TB, kind ServerKind, bin, ns, dir, conf string, args ...string) *ConfServer {
	t.Helper()
	s := &ConfServer{t: t, Kind: kind, Bin: bin, NS: ns, Dir: dir, Conf: filepath.Join(dir, "server.conf"), Args: args}
	if err := os.WriteFile(s.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- %s server config %s ----\n%s", kind, s.Conf, conf)
			t.Logf("---- %s server log (tail) [%s] ----\n%s", kind, s.State(), Tail(s.LogText(), 120))
		}
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Start starts (or restarts) the server process, logging to a new file, and
// waits up to 20 s for it to initialise.
func (s *ConfServer) Start() error {
	if s.Proc != nil && !s.Proc.Exited() {
		return fmt.Errorf("%s server already running (pid %d)", s.Kind, s.Proc.PID())
	}
	log := filepath.Join(s.Dir, fmt.Sprintf("%s-server-%d.log", s.Kind, len(s.logs)))
	s.logs = append(s.logs, log)
	var args []string
	out := log
	switch s.Kind {
	case OpenVPNServer:
		args = NSExec(s.NS, "openvpn", "--cd", s.Dir, "--config", s.Conf, "--log", log)
		out = log + ".out"
	case WeftServer:
		args = NSExec(s.NS, append([]string{s.Bin, "server", "--config", s.Conf}, s.Args...)...)
	default:
		return fmt.Errorf("unknown server kind %q", s.Kind)
	}
	p, err := StartProc(s.t, string(s.Kind)+"-server", out, nil, args...)
	if err != nil {
		return err
	}
	s.Proc = p
	s.t.Logf("%s server started (pid %d): %s", s.Kind, p.PID(), strings.Join(args, " "))
	ok := WaitFor(20*time.Second, 50*time.Millisecond, func() bool {
		return p.Exited() || strings.Contains(s.CurrentLog(), InitCompleted)
	})
	if p.Exited() || !ok {
		return fmt.Errorf("%s server did not initialise (%s):\n%s", s.Kind, p.ExitState(), Tail(s.CurrentLog(), 40))
	}
	return nil
}

// State describes the process state.
func (s *ConfServer) State() string {
	if s.Proc == nil {
		return "not started"
	}
	return s.Proc.ExitState()
}

// CurrentLog is the log of the current (last started) process.
func (s *ConfServer) CurrentLog() string {
	if len(s.logs) == 0 {
		return ""
	}
	l := s.logs[len(s.logs)-1]
	return ReadLog(l+".out") + ReadLog(l)
}

// LogText is the log of every process started so far.
func (s *ConfServer) LogText() string {
	var b strings.Builder
	for _, l := range s.logs {
		b.WriteString(ReadLog(l + ".out"))
		b.WriteString(ReadLog(l))
	}
	return b.String()
}

// WaitLog waits up to timeout for a log line containing all subs.
func (s *ConfServer) WaitLog(timeout time.Duration, subs ...string) (string, bool) {
	return WaitLogLine(s.LogText, timeout, subs...)
}

// CountLines counts the log lines containing all subs (case-insensitive).
func (s *ConfServer) CountLines(subs ...string) int { return CountLogLines(s.LogText(), subs...) }

// Stop sends sig and waits up to 10 s (then SIGKILL).
func (s *ConfServer) Stop(sig syscall.Signal) bool {
	if s.Proc == nil {
		return true
	}
	return s.Proc.Stop(sig, 10*time.Second)
}

// CountLogLines counts the lines of text containing all subs (case-insensitive).
func CountLogLines(text string, subs ...string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		l := strings.ToLower(sc.Text())
		ok := true
		for _, s := range subs {
			if !strings.Contains(l, strings.ToLower(s)) {
				ok = false
				break
			}
		}
		if ok {
			n++
		}
	}
	return n
}

// ConfClient is an openvpn or weft client started from a complete client
// config in a namespace. Relaunch starts it again with the same config.
type ConfClient struct {
	t    testing.TB
	Kind ClientKind
	Bin  string
	Name string
	NS   string
	Dir  string
	Conf string
	Proc *Proc
	logs []string
	// Start is when the current process started; UpAt when it was seen up.
	Start, UpAt time.Time
}

// StartConfClient writes conf and starts the client (openvpn, or weft with
// bin) in ns. It does not wait: call WaitUp.
func StartConfClient(t testing.TB, kind ClientKind, bin, ns, name, conf string) *ConfClient {
	t.Helper()
	dir := t.TempDir()
	c := &ConfClient{t: t, Kind: kind, Bin: bin, Name: name, NS: ns, Dir: dir, Conf: filepath.Join(dir, name+".conf")}
	if err := os.WriteFile(c.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- %s %s client config ----\n%s", name, kind, conf)
			t.Logf("---- %s %s client log (tail) [%s] ----\n%s", name, kind, c.State(), Tail(c.LogText(), 60))
		}
	})
	if err := c.Launch(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Launch starts a new client process (logging to a new file). The previous
// one must have exited.
func (c *ConfClient) Launch() error {
	if c.Proc != nil && !c.Proc.Exited() {
		return fmt.Errorf("%s client %s still running", c.Kind, c.Name)
	}
	log := filepath.Join(c.Dir, fmt.Sprintf("%s-%d.log", c.Name, len(c.logs)))
	c.logs = append(c.logs, log)
	var args []string
	out := log
	switch c.Kind {
	case OpenVPNClient:
		args = NSExec(c.NS, "openvpn", "--cd", c.Dir, "--config", c.Conf, "--log", log)
		out = log + ".out"
	case WeftClient:
		args = NSExec(c.NS, c.Bin, "client", "--config", c.Conf)
	default:
		return fmt.Errorf("unknown client kind %q", c.Kind)
	}
	c.Start, c.UpAt = time.Now(), time.Time{}
	p, err := StartProc(c.t, c.Name, out, nil, args...)
	if err != nil {
		return err
	}
	c.Proc = p
	return nil
}

// State describes the current process state.
func (c *ConfClient) State() string {
	if c.Proc == nil {
		return "not started"
	}
	return c.Proc.ExitState()
}

// CurrentLog is the current process's log.
func (c *ConfClient) CurrentLog() string {
	if len(c.logs) == 0 {
		return ""
	}
	l := c.logs[len(c.logs)-1]
	return ReadLog(l+".out") + ReadLog(l)
}

// LogText is the log of every process started so far.
func (c *ConfClient) LogText() string {
	var b strings.Builder
	for _, l := range c.logs {
		b.WriteString(ReadLog(l + ".out"))
		b.WriteString(ReadLog(l))
	}
	return b.String()
}

// Tun returns the tunnel device and addresses of the client's namespace: the
// device holding an address inside pool4 (and its address in pool6).
func (c *ConfClient) Tun(pool4, pool6 netip.Prefix) TunInfo { return NSTun(c.NS, pool4, pool6) }

// WaitUp waits up to timeout for the current process to log "Initialization
// Sequence Completed" and for its namespace to hold a pool4 address.
func (c *ConfClient) WaitUp(timeout time.Duration, pool4, pool6 netip.Prefix) (TunInfo, error) {
	var ti TunInfo
	up := func() bool {
		if !strings.Contains(c.CurrentLog(), InitCompleted) {
			return false
		}
		ti = NSTun(c.NS, pool4, pool6)
		return ti.V4.IsValid() && (!pool6.IsValid() || ti.V6.IsValid())
	}
	WaitFor(timeout, 50*time.Millisecond, func() bool { return c.Proc.Exited() || up() })
	if up() {
		c.UpAt = time.Now()
		return ti, nil
	}
	if c.Proc.Exited() {
		return ti, fmt.Errorf("%s client %s exited before the tunnel came up (%s)", c.Kind, c.Name, c.State())
	}
	return ti, fmt.Errorf("%s client %s: tunnel not up within %v (log line %q: %v; addresses: %+v)", c.Kind, c.Name, timeout,
		InitCompleted, strings.Contains(c.CurrentLog(), InitCompleted), NSTun(c.NS, pool4, pool6))
}

// Kill SIGKILLs the current process and waits for it.
func (c *ConfClient) Kill() {
	if c.Proc != nil {
		c.Proc.Kill()
	}
}

// TunInfo is a namespace's tunnel device and its addresses in the VPN pools.
type TunInfo struct {
	Dev    string
	V4, V6 netip.Addr
}

// NSTun finds the device of ns holding an address in pool4, and its address in
// pool6 (from `ip -o addr`).
func NSTun(ns string, pool4, pool6 netip.Prefix) TunInfo {
	out, err := Run(5*time.Second, "ip", "-n", ns, "-o", "addr", "show")
	if err != nil {
		return TunInfo{}
	}
	type devAddr struct {
		dev string
		a   netip.Addr
	}
	var all []devAddr
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || (f[2] != "inet" && f[2] != "inet6") {
			continue
		}
		pf, err := netip.ParsePrefix(f[3])
		if err != nil {
			continue
		}
		all = append(all, devAddr{strings.TrimSuffix(f[1], ":"), pf.Addr()})
	}
	var ti TunInfo
	for _, d := range all {
		if pool4.IsValid() && pool4.Contains(d.a) {
			ti.Dev, ti.V4 = d.dev, d.a
		}
	}
	for _, d := range all {
		if pool6.IsValid() && pool6.Contains(d.a) && (ti.Dev == "" || d.dev == ti.Dev) {
			ti.V6 = d.a
			if ti.Dev == "" {
				ti.Dev = d.dev
			}
		}
	}
	return ti
}

// StatusV2 is a parsed OpenVPN status file of version 2 (comma-separated,
// with HEADER lines).
type StatusV2 struct {
	Raw     string
	Title   string
	Time    time.Time
	Headers map[string][]string   // HEADER,<TYPE>,col... -> TYPE -> cols
	Rows    map[string][][]string // <TYPE>,val... -> TYPE -> rows of values
}

// ReadStatusV2 reads and parses a version 2 status file. It fails unless the
// file is complete (ends with END), so a file being rewritten is reported as
// an error (retry).
func ReadStatusV2(path string) (*StatusV2, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseStatusV2(string(b))
}

// ParseStatusV2 parses the text of a version 2 status file.
func ParseStatusV2(text string) (*StatusV2, error) {
	st := &StatusV2{Raw: text, Headers: map[string][]string{}, Rows: map[string][][]string{}}
	end := false
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		l = strings.TrimRight(l, "\r")
		f := strings.Split(l, ",")
		switch f[0] {
		case "END":
			end = true
		case "TITLE":
			st.Title = strings.Join(f[1:], ",")
		case "TIME":
			if len(f) >= 3 {
				var sec int64
				if _, err := fmt.Sscan(f[2], &sec); err == nil {
					st.Time = time.Unix(sec, 0)
				}
			}
		case "HEADER":
			if len(f) < 2 {
				return nil, fmt.Errorf("status: bad HEADER line %q", l)
			}
			st.Headers[f[1]] = f[2:]
		default:
			st.Rows[f[0]] = append(st.Rows[f[0]], f[1:])
		}
	}
	if !end {
		return nil, fmt.Errorf("status: incomplete (no END line): %q", Tail(text, 5))
	}
	return st, nil
}

// Col returns the value of the named column of a row of type typ ("" if the
// header or the value is missing).
func (st *StatusV2) Col(typ string, row []string, name string) string {
	for i, h := range st.Headers[typ] {
		if h == name && i < len(row) {
			return row[i]
		}
	}
	return ""
}
