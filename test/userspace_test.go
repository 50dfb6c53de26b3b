package test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"weft/test/harness"
)

// TestUserspaceClientRootless runs `weft client --userspace` as an unprivileged user
// (no root, no TUN) against a stock openvpn 2.6 server in a namespace, and drives real
// traffic through its SOCKS5 server (curl, IPv4 and IPv6 inside the tunnel), a forward
// (local port → VPN) and a reverse-forward (VPN → local service).
func TestUserspaceClientRootless(t *testing.T) {
	harness.RequireOpenVPN(t)
	bin := harness.WeftBin(t)
	if _, err := exec.LookPath("curl"); err != nil {
		harness.SkipLoud(t, "curl is not installed (scripts/setup.sh installs it)")
	}
	nobody := unprivileged(t)
	pair := harness.NewPair(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	srv := harness.StartServer(t, pair, pki, harness.ServerOptions{Proto: "udp", Wrap: harness.WrapTLSCrypt})
	harness.StartHTTP(t, pair.Server, "10.8.0.1:8080", 90*time.Second)
	harness.StartHTTP(t, pair.Server, "[fd00:8::1]:8080", 90*time.Second)
	// A service on the client host, exposed to the VPN by reverse-forward.
	harness.StartHTTP(t, pair.Client, "127.0.0.1:2223", 90*time.Second)

	// The unprivileged user gets its own copy of the config and keys.
	dir := userDir(t, nobody, map[string]string{"ca.crt": pki.CA, "client.crt": pki.ClientCert, "client.key": pki.ClientKey, "ta.key": pki.StaticKey})
	conf := fmt.Sprintf(`client
dev tun
proto udp
remote %s %d
nobind
ca ca.crt
cert client.crt
key client.key
remote-cert-tls server
tls-crypt ta.key
verb 4
userspace
socks-listen 127.0.0.1:1080
forward tcp 127.0.0.1:8081 10.8.0.1:8080
reverse-forward tcp 10.8.0.2:2222 127.0.0.1:2223
`, srv.Addr(), srv.Opts.Port)
	confPath := filepath.Join(dir, "client.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "weft-userspace.log")
	args := harness.NSExec(pair.Client, "setpriv", "--reuid="+nobody.Uid, "--regid="+nobody.Gid, "--clear-groups",
		bin, "client", "--config", confPath)
	proc, err := harness.StartProc(t, "weft-userspace", logPath, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Stop(15, 10*time.Second) })
	if _, ok := harness.WaitLogLine(func() string { return harness.ReadLog(logPath) }, 30*time.Second, harness.InitCompleted); !ok {
		t.Fatalf("weft --userspace did not connect:\n%s", harness.Tail(harness.ReadLog(logPath), 30))
	}

	// It really runs unprivileged, and no TUN device appeared.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", weftPID(t, proc.PID())))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nUid:\t"+nobody.Uid+"\t") {
		t.Errorf("weft does not run as uid %s:\n%s", nobody.Uid, status)
	}
	links, _ := harness.Run(10*time.Second, "ip", "-n", pair.Client, "link", "show")
	if strings.Contains(links, "tun") {
		t.Errorf("a TUN device exists in the client namespace:\n%s", links)
	}

	curl := func(args ...string) string {
		t.Helper()
		full := append([]string{"curl", "-sS", "-m", "10"}, args...)
		out, err := harness.Run(20*time.Second, harness.NSExec(pair.Client, full...)...)
		if err != nil {
			t.Errorf("curl %v: %v\n%s", args, err, out)
		}
		return out
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"socks5 IPv4", []string{"--socks5-hostname", "127.0.0.1:1080", "http://10.8.0.1:8080/socks4"}, harness.HTTPBody + "/socks4"},
		{"socks5 IPv6", []string{"--socks5-hostname", "127.0.0.1:1080", "http://[fd00:8::1]:8080/socks6"}, harness.HTTPBody + "/socks6"},
		{"forward", []string{"http://127.0.0.1:8081/fwd"}, harness.HTTPBody + "/fwd"},
	}
	for _, tc := range cases {
		if got := curl(tc.args...); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// reverse-forward: from the VPN server's side to the client's tunnel address.
	out, err := harness.Run(20*time.Second, harness.NSExec(pair.Server, "curl", "-sS", "-m", "10", "http://10.8.0.2:2222/rev")...)
	if err != nil || out != harness.HTTPBody+"/rev" {
		t.Errorf("reverse-forward: got %q, %v", out, err)
	}
	if !strings.Contains(srv.LogText(), "Initialization Sequence Completed") {
		t.Error("the openvpn server never came up")
	}
}

// weftPID returns the PID of weft itself: the harness starts `ip netns exec …
// setpriv … weft`, and both exec in place, so it is the same process.
func weftPID(t *testing.T, pid int) int {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(exe, "weft") {
		t.Fatalf("process %d is %s, not weft", pid, exe)
	}
	return pid
}

// unprivileged returns the 'nobody' user, skipping loudly without it or setpriv.
func unprivileged(t *testing.T) *user.User {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		harness.SkipLoud(t, "setpriv (util-linux) is not installed")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		harness.SkipLoud(t, "no unprivileged user 'nobody': %v", err)
	}
	return u
}

// userDir copies files (name -> source path) into a fresh directory that u owns.
func userDir(t *testing.T, u *user.User, files map[string]string) string {
	t.Helper()
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "weft-userspace-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, name)
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dst, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestUserspaceServerRootless runs `weft server --userspace` as an unprivileged user
// (no TUN) and connects a stock openvpn 2.6 client: the client pings the server's
// tunnel addresses (answered by the user-space stack) and reaches a host service the
// server exposes on its tunnel address with reverse-forward.
func TestUserspaceServerRootless(t *testing.T) {
	harness.RequireOpenVPN(t)
	bin := harness.WeftBin(t)
	nobody := unprivileged(t)
	if _, err := exec.LookPath("curl"); err != nil {
		harness.SkipLoud(t, "curl is not installed (scripts/setup.sh installs it)")
	}
	pair := harness.NewPair(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	harness.StartHTTP(t, pair.Server, "127.0.0.1:2223", 90*time.Second)
	dir := userDir(t, nobody, map[string]string{"ca.crt": pki.CA, "server.crt": pki.ServerCert, "server.key": pki.ServerKey, "ta.key": pki.StaticKey})
	conf := fmt.Sprintf(`mode server
tls-server
dev tun
topology subnet
server 10.8.0.0 255.255.255.0
server-ipv6 fd00:8::/64
listen udp %s:1194
ca ca.crt
cert server.crt
key server.key
dh none
tls-crypt ta.key
keepalive 10 60
verb 4
userspace
reverse-forward tcp 10.8.0.1:8080 127.0.0.1:2223
`, pair.ServerV4)
	confPath := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "weft-server.log")
	args := harness.NSExec(pair.Server, "setpriv", "--reuid="+nobody.Uid, "--regid="+nobody.Gid, "--clear-groups",
		bin, "server", "--config", confPath)
	proc, err := harness.StartProc(t, "weft-server", logPath, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Stop(15, 10*time.Second) })
	if _, ok := harness.WaitLogLine(func() string { return harness.ReadLog(logPath) }, 20*time.Second, harness.InitCompleted); !ok {
		t.Fatalf("weft server --userspace did not start:\n%s", harness.Tail(harness.ReadLog(logPath), 30))
	}
	srv := &harness.Server{Pair: pair, PKI: pki, Opts: harness.ServerOptions{Proto: "udp", Port: 1194, Wrap: harness.WrapTLSCrypt}}
	cli := harness.StartClient(t, harness.OpenVPNClient, "", srv, harness.ClientOptions{})
	cli.MustUp(t)
	for _, dst := range []string{"10.8.0.1", "fd00:8::1"} {
		if out, err := harness.Run(20*time.Second, harness.NSExec(pair.Client, "ping", "-c", "3", "-w", "10", dst)...); err != nil {
			t.Errorf("ping %s through the user-space server: %v\n%s", dst, err, out)
		}
	}
	out, err := harness.Run(20*time.Second, harness.NSExec(pair.Client, "curl", "-sS", "-m", "10", "http://10.8.0.1:8080/srv")...)
	if err != nil || out != harness.HTTPBody+"/srv" {
		t.Errorf("reverse-forward on the server: got %q, %v", out, err)
	}
	links, _ := harness.Run(10*time.Second, "ip", "-n", pair.Server, "link", "show")
	if strings.Contains(links, "tun") {
		t.Errorf("a TUN device exists in the server namespace:\n%s", links)
	}
	if !strings.Contains(harness.ReadLog(logPath), "client connected") {
		t.Errorf("the server did not log the client:\n%s", harness.Tail(harness.ReadLog(logPath), 20))
	}
}
