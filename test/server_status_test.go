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

// TestServerStatusFormat runs the SAME server config (proto udp, dual-stack,
// status FILE 1, status-version 2) first with openvpn 2.6 and then with weft,
// each with the same two openvpn clients (one over IPv4, one over IPv6), and
// compares the status files: the HEADER columns of CLIENT_LIST and
// ROUTING_TABLE must be identical, the GLOBAL_STATS keys the same, and every
// client row must carry the same kinds of values (CN, real address, pool
// addresses, byte counters, times, username, cipher).
func TestServerStatusFormat(t *testing.T) {
	harness.RequireOpenVPN(t)
	bin := harness.WeftBin(t)
	t.Parallel()
	lab := harness.NewServerLab(t)
	pki := harness.NewPKI(t, harness.KeyEC)
	type cl struct {
		ic    *harness.IssuedCert
		spoke *harness.Spoke
		host  string // server address it connects to
		under string // its own address as the server sees it
	}
	var clients []cl
	for i, fam := range []string{"4", "6"} {
		ic, err := pki.IssueClient(fmt.Sprintf("client%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		sp := lab.AddSpoke(t)
		c := cl{ic: ic, spoke: sp, host: lab.V4, under: sp.V4}
		if fam == "6" {
			c.host, c.under = lab.V6, sp.V6
		}
		clients = append(clients, c)
	}
	// One config for both servers; relative paths resolve in each run's directory.
	conf := fmt.Sprintf(`# status format reference (generated)
dev tun
proto udp
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
explicit-exit-notify 1
status status.log 1
status-version 2
verb 4
`, pki.CA, pki.ServerCert, pki.ServerKey, pki.StaticKey)

	got := map[harness.ServerKind]*harness.StatusV2{}
	for _, kind := range []harness.ServerKind{harness.OpenVPNServer, harness.WeftServer} {
		dir := t.TempDir()
		srv := harness.StartConfServer(t, kind, bin, lab.NS, dir, conf)
		var ccs []*harness.ConfClient
		for _, c := range clients {
			ccs = append(ccs, harness.StartConfClient(t, harness.OpenVPNClient, "", c.spoke.NS, string(kind)+"-"+c.ic.CN,
				srvClientConf(pki, c.ic, "udp", c.host, 1194)))
		}
		for _, cc := range ccs {
			if _, err := cc.WaitUp(30*time.Second, srvPool4, srvPool6); err != nil {
				t.Fatalf("%s server: %v", kind, err)
			}
		}
		st, err := statusWait(dir+"/status.log", 10*time.Second, func(s *harness.StatusV2) bool {
			return len(s.Rows["CLIENT_LIST"]) == len(clients) && len(s.Rows["ROUTING_TABLE"]) == 2*len(clients)
		})
		if err != nil {
			t.Fatalf("%s server: %v", kind, err)
		}
		t.Logf("---- %s status (status-version 2) ----\n%s", kind, st.Raw)
		got[kind] = st
		for _, cc := range ccs {
			cc.Kill()
		}
		if !srv.Stop(syscall.SIGTERM) {
			t.Errorf("%s server did not exit within 10 s of SIGTERM", kind)
		}
	}
	ref, wst := got[harness.OpenVPNServer], got[harness.WeftServer]

	for _, typ := range []string{"CLIENT_LIST", "ROUTING_TABLE"} {
		r, w := ref.Headers[typ], wst.Headers[typ]
		if strings.Join(r, ",") != strings.Join(w, ",") {
			t.Errorf("HEADER,%s differs from openvpn 2.6:\n openvpn: %v\n weft:    %v\n missing in weft: %v\n extra in weft: %v",
				typ, r, w, setMinus(r, w), setMinus(w, r))
		}
	}
	if r, w := globalKeys(ref), globalKeys(wst); strings.Join(r, "|") != strings.Join(w, "|") {
		t.Errorf("GLOBAL_STATS keys differ: openvpn %v, weft %v", r, w)
	}
	for _, kind := range []harness.ServerKind{harness.OpenVPNServer, harness.WeftServer} {
		st := got[kind]
		if st.Title == "" || st.Time.IsZero() {
			t.Errorf("%s status lacks TITLE or TIME", kind)
		}
	}

	// Row values, column by column, for each client.
	v4PortRE := regexp.MustCompile(`^\d+\.\d+\.\d+\.\d+:\d+$`)
	for _, c := range clients {
		cn := c.ic.CN
		rr, wr := statusCNs(ref)[cn], statusCNs(wst)[cn]
		if len(rr) != 1 || len(wr) != 1 {
			t.Errorf("%s: %d openvpn rows, %d weft rows, want 1 each", cn, len(rr), len(wr))
			continue
		}
		col := func(st *harness.StatusV2, row []string, name string) string { return st.Col("CLIENT_LIST", row, name) }
		for _, x := range []struct {
			kind harness.ServerKind
			st   *harness.StatusV2
			row  []string
		}{{harness.OpenVPNServer, ref, rr[0]}, {harness.WeftServer, wst, wr[0]}} {
			ra := col(x.st, x.row, "Real Address")
			if realHost(ra) != c.under {
				t.Errorf("%s %s: Real Address %q, want host %s", x.kind, cn, ra, c.under)
			}
			if a, err := netip.ParseAddr(col(x.st, x.row, "Virtual Address")); err != nil || !srvPool4.Contains(a) {
				t.Errorf("%s %s: Virtual Address %q not in %s", x.kind, cn, col(x.st, x.row, "Virtual Address"), srvPool4)
			}
			if a, err := netip.ParseAddr(col(x.st, x.row, "Virtual IPv6 Address")); err != nil || !srvPool6.Contains(a) {
				t.Errorf("%s %s: Virtual IPv6 Address %q not in %s", x.kind, cn, col(x.st, x.row, "Virtual IPv6 Address"), srvPool6)
			}
			for _, n := range []string{"Bytes Received", "Bytes Sent", "Peer ID"} {
				if _, err := strconv.ParseUint(col(x.st, x.row, n), 10, 64); err != nil {
					t.Errorf("%s %s: %s %q is not a number", x.kind, cn, n, col(x.st, x.row, n))
				}
			}
			since, err := time.ParseInLocation("2006-01-02 15:04:05", col(x.st, x.row, "Connected Since"), time.Local)
			tt, err2 := strconv.ParseInt(col(x.st, x.row, "Connected Since (time_t)"), 10, 64)
			if err != nil || err2 != nil || since.Unix() != tt {
				t.Errorf("%s %s: Connected Since %q and (time_t) %q disagree (%v %v)", x.kind, cn,
					col(x.st, x.row, "Connected Since"), col(x.st, x.row, "Connected Since (time_t)"), err, err2)
			}
		}
		for _, n := range []string{"Common Name", "Username", "Data Channel Cipher"} {
			if r, w := col(ref, rr[0], n), col(wst, wr[0], n); r != w {
				t.Errorf("%s: %s: openvpn %q, weft %q", cn, n, r, w)
			}
		}
		rra, wra := col(ref, rr[0], "Real Address"), col(wst, wr[0], "Real Address")
		if v4PortRE.MatchString(rra) && !v4PortRE.MatchString(wra) {
			t.Errorf("%s: Real Address format differs for an IPv4 client: openvpn %q (a.b.c.d:port), weft %q", cn, rra, wra)
		}
		if rra != wra && !v4PortRE.MatchString(rra) {
			t.Logf("note: %s (IPv6 client) Real Address: openvpn writes %q, weft %q", cn, rra, wra)
		}
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
