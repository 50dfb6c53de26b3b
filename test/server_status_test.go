package test

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"weft/test/harness"
)

// TestServerStatusFormat runs the SAME server configs (status FILE 1,
// status-version 2) first with openvpn 2.6 and then with weft, each with the
// same openvpn client, once over IPv4 (proto udp4) and once over IPv6 (proto
// udp6, local <v6>), and compares the status files: the HEADER columns of
// CLIENT_LIST and ROUTING_TABLE must be identical, the GLOBAL_STATS keys the
// same, and every client row must carry the same kinds of values (CN, real
// address, pool addresses, byte counters, times, username, cipher).
func TestServerStatusFormat(t *testing.T) {
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
	for _, fam := range []string{"4", "6"} {
		t.Run("ipv"+fam, func(t *testing.T) {
			bind, host, under := "proto udp4\nport 1194", lab.V4, sp.V4
			if fam == "6" {
				bind, host, under = "proto udp6\nlocal "+lab.V6+"\nport 1194", lab.V6, sp.V6
			}
			// One config for both servers; the relative status path resolves in
			// each run's own directory.
			conf := fmt.Sprintf(`# status format reference (generated)
dev tun
%s
topology subnet
server 10.8.0.0 255.255.255.0
server-ipv6 fd00:8::/64
ca   %s
cert %s
key  %s
dh none
tls-crypt %s
keepalive 10 60
explicit-exit-notify 1
status status.log 1
status-version 2
verb 4
`, bind, pki.CA, pki.ServerCert, pki.ServerKey, pki.StaticKey)
			got := map[harness.ServerKind]*harness.StatusV2{}
			for _, kind := range []harness.ServerKind{harness.OpenVPNServer, harness.WeftServer} {
				got[kind] = statusOf(t, kind, bin, lab.NS, sp.NS, conf, srvClientConf(pki, ic, "udp"+fam, host, 1194))
			}
			compareStatus(t, got[harness.OpenVPNServer], got[harness.WeftServer], ic.CN, under)
		})
	}
}

// statusOf runs a server of kind with conf and one openvpn client, and returns
// the status file once it lists the client.
func statusOf(t *testing.T, kind harness.ServerKind, bin, srvNS, cliNS, conf, cliConf string) *harness.StatusV2 {
	t.Helper()
	dir := t.TempDir()
	srv := harness.StartConfServer(t, kind, bin, srvNS, dir, conf)
	defer func() {
		if !srv.Stop(syscall.SIGTERM) {
			t.Errorf("%s server did not exit within 10 s of SIGTERM", kind)
		}
	}()
	cc := harness.StartConfClient(t, harness.OpenVPNClient, "", cliNS, string(kind)+"-client", cliConf)
	defer cc.Kill()
	if _, err := cc.WaitUp(30*time.Second, srvPool4, srvPool6); err != nil {
		t.Fatalf("%s server: %v", kind, err)
	}
	st, err := statusWait(dir+"/status.log", 10*time.Second, func(s *harness.StatusV2) bool {
		return len(s.Rows["CLIENT_LIST"]) == 1 && len(s.Rows["ROUTING_TABLE"]) == 2
	})
	if err != nil {
		t.Fatalf("%s server: %v", kind, err)
	}
	t.Logf("---- %s status (status-version 2) ----\n%s", kind, st.Raw)
	return st
}

// compareStatus compares weft's status (wst) with openvpn's (ref) for one
// client cn whose outer address is under.
func compareStatus(t *testing.T, ref, wst *harness.StatusV2, cn, under string) {
	t.Helper()
	for _, typ := range []string{"CLIENT_LIST", "ROUTING_TABLE"} {
		r, w := ref.Headers[typ], wst.Headers[typ]
		if len(r) == 0 {
			t.Errorf("openvpn status has no HEADER,%s (reference broken?)", typ)
		}
		if strings.Join(r, ",") != strings.Join(w, ",") {
			t.Errorf("HEADER,%s differs from openvpn 2.6:\n openvpn: %v\n weft:    %v\n missing in weft: %v\n extra in weft: %v",
				typ, r, w, setMinus(r, w), setMinus(w, r))
		}
	}
	if r, w := globalKeys(ref), globalKeys(wst); strings.Join(r, "|") != strings.Join(w, "|") {
		t.Errorf("GLOBAL_STATS keys differ: openvpn %v, weft %v", r, w)
	}
	rr, wr := statusCNs(ref)[cn], statusCNs(wst)[cn]
	if len(rr) != 1 || len(wr) != 1 {
		t.Fatalf("%s: %d openvpn rows, %d weft rows, want 1 each", cn, len(rr), len(wr))
	}
	col := func(st *harness.StatusV2, row []string, name string) string { return st.Col("CLIENT_LIST", row, name) }
	for _, x := range []struct {
		kind harness.ServerKind
		st   *harness.StatusV2
		row  []string
	}{{harness.OpenVPNServer, ref, rr[0]}, {harness.WeftServer, wst, wr[0]}} {
		if x.st.Title == "" || x.st.Time.IsZero() {
			t.Errorf("%s status lacks TITLE or TIME", x.kind)
		}
		if ra := col(x.st, x.row, "Real Address"); realHost(ra) != under {
			t.Errorf("%s: Real Address %q, want host %s", x.kind, ra, under)
		}
		if a, err := netip.ParseAddr(col(x.st, x.row, "Virtual Address")); err != nil || !srvPool4.Contains(a) {
			t.Errorf("%s: Virtual Address %q not in %s", x.kind, col(x.st, x.row, "Virtual Address"), srvPool4)
		}
		if a, err := netip.ParseAddr(col(x.st, x.row, "Virtual IPv6 Address")); err != nil || !srvPool6.Contains(a) {
			t.Errorf("%s: Virtual IPv6 Address %q not in %s", x.kind, col(x.st, x.row, "Virtual IPv6 Address"), srvPool6)
		}
		for _, n := range []string{"Bytes Received", "Bytes Sent", "Client ID", "Peer ID"} {
			if _, err := strconv.ParseUint(col(x.st, x.row, n), 10, 64); err != nil {
				t.Errorf("%s: %s %q is not a number", x.kind, n, col(x.st, x.row, n))
			}
		}
		since, err := time.ParseInLocation("2006-01-02 15:04:05", col(x.st, x.row, "Connected Since"), time.Local)
		tt, err2 := strconv.ParseInt(col(x.st, x.row, "Connected Since (time_t)"), 10, 64)
		if err != nil || err2 != nil || since.Unix() != tt {
			t.Errorf("%s: Connected Since %q and (time_t) %q disagree (%v %v)", x.kind,
				col(x.st, x.row, "Connected Since"), col(x.st, x.row, "Connected Since (time_t)"), err, err2)
		}
	}
	for _, n := range []string{"Common Name", "Username", "Data Channel Cipher"} {
		if r, w := col(ref, rr[0], n), col(wst, wr[0], n); r != w {
			t.Errorf("%s: openvpn %q, weft %q", n, r, w)
		}
	}
	v4PortRE := regexp.MustCompile(`^\d+\.\d+\.\d+\.\d+:\d+$`)
	rra, wra := col(ref, rr[0], "Real Address"), col(wst, wr[0], "Real Address")
	if v4PortRE.MatchString(rra) && !v4PortRE.MatchString(wra) {
		t.Errorf("Real Address format differs for an IPv4 client: openvpn %q (a.b.c.d:port), weft %q", rra, wra)
	}
	if !v4PortRE.MatchString(rra) && rra != wra {
		t.Logf("note: IPv6 client Real Address: openvpn writes %q, weft %q", rra, wra)
	}
}

func setMinus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func globalKeys(st *harness.StatusV2) []string {
	var out []string
	for _, r := range st.Rows["GLOBAL_STATS"] {
		if len(r) > 0 {
			out = append(out, r[0])
		}
	}
	sort.Strings(out)
	return out
}
