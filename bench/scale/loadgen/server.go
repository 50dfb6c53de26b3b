package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// confParams fills the server and client configuration templates. Both servers
// read the same server.conf except for the lines in OpenVPNOnly.
type confParams struct {
	PKI         string
	Proto       string // udp or tcp
	Port        int
	OpenVPN     bool
	MaxClients  int
	OpenVPNOnly []string
	Verb        int
}

var serverConf = template.Must(template.New("s").Parse(`# weft scale benchmark server (generated)
{{- if .OpenVPN}}
mode server
tls-server
{{- end}}
proto {{if eq .Proto "tcp"}}tcp-server{{else}}udp{{end}}
local 127.0.0.1
port {{.Port}}
dev tun
topology subnet
server 10.64.0.0 255.255.0.0
ca   {{.PKI}}/ca.crt
cert {{.PKI}}/server.crt
key  {{.PKI}}/server.key
dh none
tls-crypt {{.PKI}}/ta.key
remote-cert-tls client
data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305
keepalive 10 60
max-clients {{.MaxClients}}
duplicate-cn
{{- if eq .Proto "udp"}}
explicit-exit-notify 1
{{- end}}
verb {{.Verb}}
{{- range .OpenVPNOnly}}
{{.}}
{{- end}}
`))

var clientConf = template.Must(template.New("c").Parse(`# weft scale benchmark client (generated; loadgen builds sessions from it)
client
dev tun
proto {{if eq .Proto "tcp"}}tcp-client{{else}}udp{{end}}
remote 127.0.0.1 {{.Port}}
nobind
ca   {{.PKI}}/ca.crt
cert {{.PKI}}/client.crt
key  {{.PKI}}/client.key
remote-cert-tls server
tls-crypt {{.PKI}}/ta.key
data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305
hand-window 60
{{- if eq .Proto "udp"}}
explicit-exit-notify 1
{{- end}}
verb 1
`))

func writeTemplate(t *template.Template, path string, p confParams) error {
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// serverProc is the server under test.
type serverProc struct {
	cmd     *exec.Cmd
	log     string
	exited  chan struct{}
	waitErr error
}

func startServer(kind, bin, conf, logPath string, env []string) (*serverProc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if kind == "weft" {
		cmd = exec.Command(bin, "server", "--config", conf)
	} else {
		cmd = exec.Command(bin, "--config", conf)
	}
	cmd.Dir = filepath.Dir(conf)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), env...)
	// The server never outlives the load generator.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	s := &serverProc{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { s.waitErr = cmd.Wait(); lf.Close(); close(s.exited) }()
	return s, nil
}

func (s *serverProc) pid() int { return s.cmd.Process.Pid }

// waitReady waits for "Initialization Sequence Completed" in the log.
func (s *serverProc) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(s.log)
		if bytes.Contains(b, []byte("Initialization Sequence Completed")) {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("server exited (%v); log:\n%s", s.waitErr, tail(b, 2000))
		case <-time.After(100 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(s.log)
	return fmt.Errorf("server not ready after %s; log:\n%s", timeout, tail(b, 2000))
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// stop sends SIGTERM and waits (bounded), then SIGKILL.
func (s *serverProc) stop(grace time.Duration) {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(grace):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *serverProc) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// procRSSKiB returns VmRSS of pid in KiB.
func procRSSKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return -1
}

// procThreads returns the thread count of pid.
func procThreads(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return -1
}

// clkTck is USER_HZ; 100 on every Linux architecture Go runs on here.
const clkTck = 100

// procCPUSeconds returns utime+stime of pid (all threads) in seconds.
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(ut+st) / clkTck
}

// selfCPUSeconds returns this process's user+system CPU time.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// raiseNoFile lifts RLIMIT_NOFILE to its hard limit (children inherit it).
func raiseNoFile() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	rl.Cur = rl.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}
