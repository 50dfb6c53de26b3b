package harness

import (
	"fmt"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Server labs: one server namespace holding a bridge, and any number of client
// ("spoke") namespaces, each joined to the bridge by its own veth. Every spoke
// gets an IPv4 and an IPv6 underlay address on the bridge's subnets, so one
// server process can be reached by many clients over both families at once.
//
// Names: server namespace wsv<pid>s<lab>, spokes wsv<pid>c<lab>_<i>; they are
// deleted (after their processes are SIGKILLed) in t.Cleanup, and leftovers of
// dead test processes are removed on first use.

var (
	serverLabCounter atomic.Int32
	serverLabStale   sync.Once
)

// ServerLab is a server namespace with a bridge (br0) and spoke namespaces.
type ServerLab struct {
	t      testing.TB
	N      int    // lab number (third octet of the underlay)
	NS     string // server namespace
	V4, V6 string // server underlay addresses on br0: 10.201.N.1/24, fd00:201:N::1/64
	Spokes []*Spoke
	mu     sync.Mutex
}

// Spoke is one client namespace joined to the server's bridge.
type Spoke struct {
	Lab    *ServerLab
	Index  int    // 1-based
	NS     string // namespace name
	If     string // underlay interface inside NS (eth0)
	V4, V6 string // 10.201.N.(10+Index), fd00:201:N::(10+Index) (the host part written in decimal)
}

// NewServerLab creates the server namespace and its bridge; add clients with
// AddSpoke. Skips loudly without root, /dev/net/tun or ip.
func NewServerLab(t testing.TB) *ServerLab {
	t.Helper()
	RequireLab(t)
	serverLabStale.Do(removeStaleServerLabs)
	n := int(serverLabCounter.Add(1))
	if n > 9 {
		t.Fatalf("server lab: too many labs in one process (%d)", n)
	}
	pid := os.Getpid()
	l := &ServerLab{t: t, N: n, NS: fmt.Sprintf("wsv%ds%d", pid, n),
		V4: fmt.Sprintf("10.201.%d.1", n), V6: fmt.Sprintf("fd00:201:%d::1", n)}
	t.Cleanup(func() {
		l.mu.Lock()
		spokes := append([]*Spoke(nil), l.Spokes...)
		l.mu.Unlock()
		for _, s := range spokes {
			killNamespacePids(s.NS)
			_, _ = Run(10*time.Second, "ip", "netns", "del", s.NS)
		}
		killNamespacePids(l.NS)
		_, _ = Run(10*time.Second, "ip", "netns", "del", l.NS)
	})
	steps := [][]string{
		{"ip", "netns", "add", l.NS},
		{"ip", "-n", l.NS, "link", "set", "lo", "up"},
		// A fixed MAC: otherwise the bridge takes the lowest port MAC and changes
		// it as spokes are added, and spokes that cached the old one lose the
		// server for up to a minute (until their neighbour entry expires).
		{"ip", "-n", l.NS, "link", "add", "br0", "address", fmt.Sprintf("02:00:00:c9:%02x:01", n), "type", "bridge", "stp_state", "0", "mcast_snooping", "0"},
		{"ip", "-n", l.NS, "addr", "add", l.V4 + "/24", "dev", "br0"},
		{"ip", "-n", l.NS, "-6", "addr", "add", l.V6 + "/64", "dev", "br0", "nodad"},
		{"ip", "-n", l.NS, "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if _, err := Run(10*time.Second, s...); err != nil {
			t.Fatalf("server lab setup: %v", err)
		}
	}
	t.Logf("server lab: namespace %s, br0 %s %s", l.NS, l.V4, l.V6)
	return l
}

// AddSpoke creates a client namespace joined to the bridge and checks that it
// reaches the server over IPv4 and IPv6.
func (l *ServerLab) AddSpoke(t testing.TB) *Spoke {
	t.Helper()
	l.mu.Lock()
	i := len(l.Spokes) + 1
	s := &Spoke{Lab: l, Index: i, NS: fmt.Sprintf("wsv%dc%d_%d", os.Getpid(), l.N, i), If: "eth0",
		V4: fmt.Sprintf("10.201.%d.%d", l.N, 10+i), V6: fmt.Sprintf("fd00:201:%d::%d", l.N, 10+i)}
	l.Spokes = append(l.Spokes, s)
	l.mu.Unlock()
	if len(s.NS) > 15 || i > 200 {
		t.Fatalf("server lab: spoke name %q too long or too many spokes", s.NS)
	}
	port := fmt.Sprintf("s%d", i)
	steps := [][]string{
		{"ip", "netns", "add", s.NS},
		{"ip", "-n", s.NS, "link", "set", "lo", "up"},
		{"ip", "link", "add", port, "netns", l.NS, "type", "veth", "peer", "name", s.If, "netns", s.NS},
		{"ip", "-n", l.NS, "link", "set", port, "master", "br0"},
		{"ip", "-n", l.NS, "link", "set", port, "up"},
		{"ip", "-n", s.NS, "addr", "add", s.V4 + "/24", "dev", s.If},
		{"ip", "-n", s.NS, "-6", "addr", "add", s.V6 + "/64", "dev", s.If, "nodad"},
		{"ip", "-n", s.NS, "link", "set", s.If, "up"},
	}
	for _, st := range steps {
		if _, err := Run(10*time.Second, st...); err != nil {
			t.Fatalf("server lab spoke %d: %v", i, err)
		}
	}
	for _, dst := range []string{l.V4, l.V6} {
		ok := WaitFor(10*time.Second, 100*time.Millisecond, func() bool {
			_, err := Run(5*time.Second, "ip", "netns", "exec", s.NS, "ping", "-n", "-c", "1", "-W", "1", dst)
			return err == nil
		})
		if !ok {
			t.Fatalf("server lab underlay: %s (%s) cannot ping %s", s.NS, s.V4, dst)
		}
	}
	return s
}

// AddSpokes adds n spokes.
func (l *ServerLab) AddSpokes(t testing.TB, n int) []*Spoke {
	t.Helper()
	out := make([]*Spoke, n)
	for i := range out {
		out[i] = l.AddSpoke(t)
	}
	return out
}

var serverLabStaleRE = regexp.MustCompile(`^wsv(\d+)(?:s\d+|c\d+_\d+)$`)

// removeStaleServerLabs deletes wsv<pid>… namespaces of test processes that no
// longer exist.
func removeStaleServerLabs() { removeStale(serverLabStaleRE) }
