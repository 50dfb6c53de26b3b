package test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"weft/test/harness"
)

// TestServerDualStackProto: an OpenVPN server config with `proto udp6` (or
// tcp6-server) and no `local` serves IPv4 clients too: openvpn 2.6 binds [::]
// dual-stack (v6-only needs `bind ipv6only`). weft reads the same config, so
// an IPv4 client must connect to it as well. Each case runs openvpn first (the
// reference) and then weft, with the same config and an openvpn client over
// IPv4.
func TestServerDualStackProto(t *testing.T) {
	harness.RequireOpenVPN(t)
	bin := harness.WeftBin(t)
	t.Parallel()
	lab := harness.NewServerLab(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	sp := lab.AddSpoke(t)
	ic, err := pki.IssueClient("client1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ server, client string }{{"udp6", "udp4"}, {"tcp6-server", "tcp4"}} {
		t.Run(c.server, func(t *testing.T) {
			conf := fmt.Sprintf(`# dual-stack proto (generated)
dev tun
proto %s
port 1194
topology subnet
server 10.8.0.0 255.255.255.0
server-ipv6 fd00:8::/64
ca   %s
cert %s
key  %s
dh none
tls-crypt %s
keepalive 10 60
verb 4
`, c.server, pki.CA, pki.ServerCert, pki.ServerKey, pki.StaticKey)
			for _, kind := range []harness.ServerKind{harness.OpenVPNServer, harness.WeftServer} {
				srv := harness.StartConfServer(t, kind, bin, lab.NS, t.TempDir(), conf)
				cc := harness.StartConfClient(t, harness.OpenVPNClient, "", sp.NS, string(kind)+"-client", srvClientConf(pki, ic, c.client, lab.V4, 1194))
				ti, err := cc.WaitUp(20*time.Second, srvPool4, srvPool6)
				if err != nil {
					t.Errorf("%s server with `proto %s` (no local): IPv4 client: %v", kind, c.server, err)
				} else if err := harness.PingSteady(sp.NS, harness.TunServerV4); err != nil {
					t.Errorf("%s server with `proto %s`: %v", kind, c.server, err)
				} else {
					t.Logf("%s server with `proto %s`: IPv4 client up (%s)", kind, c.server, ti.V4)
				}
				cc.Kill()
				srv.Stop(syscall.SIGTERM)
				if kind == harness.OpenVPNServer && t.Failed() {
					t.Fatalf("reference broken: openvpn itself does not serve IPv4 clients with `proto %s`:\n%s", c.server,
						strings.Join(strings.Split(harness.Tail(srv.LogText(), 20), "\n"), "\n"))
				}
			}
		})
	}
}
