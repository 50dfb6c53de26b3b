package harness

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	pairCounter atomic.Int32
	staleOnce   sync.Once
)

// Pair is two network namespaces (server side and client side) joined by a veth.
// Server side: 10.200.X.1/24 and fd00:200:X::1/64; client side: .2 and ::2.
type Pair struct {
	Server, Client     string // namespace names
	ServerIf, ClientIf string // veth names (inside their namespaces)
	X                  int
	ServerV4, ClientV4 string
	ServerV6, ClientV6 string
}

// NewPair creates a namespace pair; it is deleted in t.Cleanup. Skips loudly
// without root, /dev/net/tun or ip.
func NewPair(t testing.TB) *Pair {
	t.Helper()
	RequireLab(t)
	staleOnce.Do(removeStaleNamespaces)
	n := int(pairCounter.Add(1))
	pid := os.Getpid()
	x := (n-1)%250 + 1
	p := &Pair{
		Server:   fmt.Sprintf("wft%ds%d", pid, n),
		Client:   fmt.Sprintf("wft%dc%d", pid, n),
		X:        x,
		ServerV4: fmt.Sprintf("10.200.%d.1", x),
		ClientV4: fmt.Sprintf("10.200.%d.2", x),
		ServerV6: fmt.Sprintf("fd00:200:%d::1", x),
		ClientV6: fmt.Sprintf("fd00:200:%d::2", x),
	}
	p.ServerIf, p.ClientIf = p.Server, p.Client
	if len(p.Server) > 15 || len(p.Client) > 15 {
		t.Fatalf("namespace/interface name too long: %s", p.Server)
	}
	t.Cleanup(func() {
		for _, ns := range []string{p.Server, p.Client} {
			killNamespacePids(ns)
			_, _ = Run(10*time.Second, "ip", "netns", "del", ns)
		}
	})
	steps := [][]string{
		{"ip", "netns", "add", p.Server},
		{"ip", "netns", "add", p.Client},
		{"ip", "link", "add", p.ServerIf, "netns", p.Server, "type", "veth", "peer", "name", p.ClientIf, "netns", p.Client},
		{"ip", "-n", p.Server, "addr", "add", p.ServerV4 + "/24", "dev", p.ServerIf},
		{"ip", "-n", p.Client, "addr", "add", p.ClientV4 + "/24", "dev", p.ClientIf},
		{"ip", "-n", p.Server, "-6", "addr", "add", p.ServerV6 + "/64", "dev", p.ServerIf, "nodad"},
		{"ip", "-n", p.Client, "-6", "addr", "add", p.ClientV6 + "/64", "dev", p.ClientIf, "nodad"},
		{"ip", "-n", p.Server, "link", "set", "lo", "up"},
		{"ip", "-n", p.Client, "link", "set", "lo", "up"},
		{"ip", "-n", p.Server, "link", "set", p.ServerIf, "up"},
		{"ip", "-n", p.Client, "link", "set", p.ClientIf, "up"},
	}
	for _, s := range steps {
		if _, err := Run(10*time.Second, s...); err != nil {
			t.Fatalf("namespace setup: %v", err)
		}
	}
	// The underlay must work before anything else is blamed.
	for _, dst := range []string{p.ServerV4, p.ServerV6} {
		ok := WaitFor(5*time.Second, 100*time.Millisecond, func() bool {
			_, err := Run(5*time.Second, "ip", "netns", "exec", p.Client, "ping", "-c", "1", "-W", "1", dst)
			return err == nil
		})
		if !ok {
			t.Fatalf("veth underlay: %s cannot ping %s", p.Client, dst)
		}
	}
	t.Logf("lab: namespaces %s (%s, %s) <-> %s (%s, %s)", p.Server, p.ServerV4, p.ServerV6, p.Client, p.ClientV4, p.ClientV6)
	return p
}

// NSExec returns argv running args inside namespace ns.
func NSExec(ns string, args ...string) []string {
	return append([]string{"ip", "netns", "exec", ns}, args...)
}

// Addrs returns `ip -n ns addr` output.
func Addrs(ns string) string {
	out, _ := Run(5*time.Second, "ip", "-n", ns, "addr")
	return out
}

// killNamespacePids SIGKILLs anything still running in ns (normally nothing:
// every harness process is killed by PID first).
func killNamespacePids(ns string) {
	out, err := Run(5*time.Second, "ip", "netns", "pids", ns)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

var staleRE = regexp.MustCompile(`^wft(\d+)[sc]\d+$`)

// removeStaleNamespaces deletes wft<pid>… namespaces left by test processes that
// no longer exist (a crashed or killed earlier run).
func removeStaleNamespaces() { removeStale(staleRE) }

// removeStale deletes the namespaces whose names match re (its first group is
// the PID of the test process that made them) when that process no longer
// exists, after killing what still runs in them.
func removeStale(re *regexp.Regexp) {
	out, err := Run(5*time.Second, "ip", "netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := re.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		killNamespacePids(f[0])
		_, _ = Run(10*time.Second, "ip", "netns", "del", f[0])
	}
}
