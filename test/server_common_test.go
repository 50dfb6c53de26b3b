package test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"weft/test/harness"
)

// Tests of `weft server` serving stock openvpn 2.6 clients (and weft clients)
// in a server lab: one server namespace with a bridge, one namespace per client.

var (
	srvPool4 = netip.MustParsePrefix("10.8.0.0/24")
	srvPool6 = netip.MustParsePrefix("fd00:8::/64")
)

// Bulk transfer size of the server tests (each transfer is checksummed).
const srvBulkBytes = 4 << 20

// Server-side log substrings of `weft server` (the contract with handlers/server.go).
const (
	srvExitLog      = "client sent an exit notification"
	srvConnectedLog = "client connected"
	srvFloatLog     = "client floated to a new address"
	srvNewSessLog   = "new client session" // debug level (verb >= 5)
	srvRevokedLog   = "revoked"
)

// srvProtoWord is the client `proto` value for a listener type.
func srvProtoWord(proto string) string {
	switch proto {
	case "tcp4", "tcp6", "tcp":
		return proto + "-client"
	}
	return proto
}

// srvClientConf is an OpenVPN client config (read by openvpn and weft alike).
func srvClientConf(pki *harness.PKI, ic *harness.IssuedCert, proto, host string, port int, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# weft server lab client %s (generated)\nclient\ndev tun\nproto %s\nremote %s %d\n", ic.CN, srvProtoWord(proto), host, port)
	bind := false
	for _, e := range extra {
		bind = bind || strings.HasPrefix(e, "lport ")
	}
	if !bind {
		b.WriteString("nobind\n") // else: bind to the fixed lport
	}
	fmt.Fprintf(&b, "ca %s\ncert %s\nkey %s\nremote-cert-tls server\ntls-crypt %s\n", pki.CA, ic.Cert, ic.Key, pki.StaticKey)
	b.WriteString("connect-retry 1\nverb 4\n")
	if strings.HasPrefix(proto, "udp") {
		b.WriteString("explicit-exit-notify 1\n")
	}
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	return b.String()
}

// srvBulk runs a checksummed TCP bulk transfer from namespace src to a sink at
// dst ("ip:port" or "[ip6]:port") in namespace sink.
func srvBulk(t *testing.T, src, sink, dst string) {
	t.Helper()
	r, err := harness.BulkTransfer(&harness.Pair{Server: sink, Client: src}, dst, srvBulkBytes, 60*time.Second)
	if err != nil {
		t.Errorf("bulk %s -> %s: %v", src, dst, err)
		return
	}
	t.Logf("bulk %s -> %s: %d bytes, sha256 %s…, %.0f Mbit/s", src, dst, r.Bytes, r.SHA256[:12], r.Throughput)
}

// hostPort formats an address and port as ip:port or [ip6]:port.
func hostPort(ip netip.Addr, port int) string {
	return netip.AddrPortFrom(ip, uint16(port)).String()
}

// realHost returns the host part of a status-file real address: "a.b.c.d:port",
// "[v6]:port", or openvpn's IPv6 form without a port ("v6").
func realHost(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().String()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String()
	}
	return s
}

// statusWait polls a version 2 status file until cond accepts it (or timeout)
// and returns the last complete parse.
func statusWait(path string, timeout time.Duration, cond func(*harness.StatusV2) bool) (*harness.StatusV2, error) {
	var st *harness.StatusV2
	var err error
	ok := harness.WaitFor(timeout, 200*time.Millisecond, func() bool {
		s, e := harness.ReadStatusV2(path)
		if e != nil {
			err = e
			return false
		}
		st, err = s, nil
		return cond(s)
	})
	if st == nil {
		return nil, fmt.Errorf("status file %s: %v", path, err)
	}
	if !ok {
		return st, fmt.Errorf("status file %s: condition not met within %v", path, timeout)
	}
	return st, nil
}

// statusCNs returns the CLIENT_LIST rows by common name.
func statusCNs(st *harness.StatusV2) map[string][][]string {
	out := map[string][][]string{}
	for _, r := range st.Rows["CLIENT_LIST"] {
		cn := st.Col("CLIENT_LIST", r, "Common Name")
		out[cn] = append(out[cn], r)
	}
	return out
}
