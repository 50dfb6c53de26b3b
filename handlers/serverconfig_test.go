package handlers

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"weft/compress"
	"weft/config"
	"weft/controlwrap"
	"weft/datachan"
	"weft/internal/testpki"
	"weft/ovpn"
	"weft/tlsengine"
	"weft/wire"
)

// serverPKI holds DER client certificates for verification tests.
type serverPKI struct {
	client, serverEKU, revoked []byte
}

// writeServerPKI writes a CA, a server certificate and key, a static key and a
// CRL (revoking one client) into dir/pki, laid out like the lab's make-pki.sh.
func writeServerPKI(t *testing.T, dir string) *serverPKI {
	t.Helper()
	ca, err := testpki.NewCA("Test CA")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(cn string, eku x509.ExtKeyUsage) *testpki.Leaf {
		l, err := ca.Issue(cn, eku, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	srv := issue("server", x509.ExtKeyUsageServerAuth)
	cl := issue("alice", x509.ExtKeyUsageClientAuth)
	rev := issue("mallory", x509.ExtKeyUsageClientAuth)
	der := func(p []byte) []byte {
		b, _ := pem.Decode(p)
		return b.Bytes
	}
	revCert, err := x509.ParseCertificate(der(rev.CertPEM))
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: revCert.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)}},
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 256)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(key)
	var sk strings.Builder
	sk.WriteString("-----BEGIN OpenVPN Static key V1-----\n")
	for i := 0; i < len(h); i += 32 {
		sk.WriteString(h[i:i+32] + "\n")
	}
	sk.WriteString("-----END OpenVPN Static key V1-----\n")
	files := map[string][]byte{
		"ca.crt": ca.PEM, "server.crt": srv.CertPEM, "server.key": srv.KeyPEM, "ta.key": []byte(sk.String()),
		"crl.pem": pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}),
	}
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o755); err != nil {
		t.Fatal(err)
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, "pki", n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &serverPKI{client: der(cl.CertPEM), serverEKU: der(srv.CertPEM), revoked: der(rev.CertPEM)}
}

const srvBase = "server 10.8.0.0 255.255.255.0\nca pki/ca.crt\ncert pki/server.crt\nkey pki/server.key\n"

func serverParams(t *testing.T, dir, conf, engine string) (ServerParams, *config.Server, error) {
	t.Helper()
	c, err := config.ParseServer(strings.NewReader(conf), "s.conf", dir)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	p, err := ServerParamsFromConfig(c, engine, nil)
	return p, c, err
}

func TestServerParamsListeners(t *testing.T) {
	dir := t.TempDir()
	writeServerPKI(t, dir)
	lp := func(proto, a string) Listen { return Listen{Proto: proto, Addr: netip.MustParseAddrPort(a)} }
	tests := []struct {
		extra string
		want  []Listen
		occ   string
	}{
		{"", []Listen{lp("udp", "0.0.0.0:1194")}, "proto UDPv4"},
		{"proto udp4\nport 1195\n", []Listen{lp("udp4", "0.0.0.0:1195")}, "proto UDPv4"},
		{"proto tcp-server\nlocal 10.200.0.1\nlport 443\n", []Listen{lp("tcp", "10.200.0.1:443")}, "proto TCPv4_SERVER"},
		{"proto tcp6-server\n", []Listen{lp("tcp", "[::]:1194")}, "proto TCPv4_SERVER"},
		{"listen udp 10.0.0.1:1194\nlisten tcp [fd00::1]:443\nlisten udp6 [::]:1194\nlisten tcp4 *:443\n",
			[]Listen{lp("udp", "10.0.0.1:1194"), lp("tcp", "[fd00::1]:443"), lp("udp6", "[::]:1194"), lp("tcp4", "0.0.0.0:443")}, "proto UDPv4"},
		{"listen tcp *:443\nlisten udp *:1194\n", []Listen{lp("tcp", "[::]:443"), lp("udp", "[::]:1194")}, "proto TCPv4_SERVER"},
	}
	for _, tt := range tests {
		p, _, err := serverParams(t, dir, srvBase+tt.extra, "")
		if err != nil {
			t.Fatalf("%q: %v", tt.extra, err)
		}
		if !reflect.DeepEqual(p.Listens, tt.want) {
			t.Errorf("%q: listens %v, want %v", tt.extra, p.Listens, tt.want)
		}
		if !strings.Contains(p.Session.Options, ","+tt.occ+",") {
			t.Errorf("%q: options %q, want %q", tt.extra, p.Session.Options, tt.occ)
		}
	}
}

func TestServerParamsPoolsAndPush(t *testing.T) {
	dir := t.TempDir()
	writeServerPKI(t, dir)
	pf := netip.MustParsePrefix
	ad := netip.MustParseAddr

	// The lab's shape: subnet topology, dual stack, keepalive.
	p, _, err := serverParams(t, dir, srvBase+"server-ipv6 fd00:8::/64\ntopology subnet\nkeepalive 10 60\n"+
		"push \"route 10.20.0.0 255.255.0.0\"\npush \"dhcp-option DNS 10.8.0.1\"\nclient-to-client\nduplicate-cn\nmax-clients 50\n"+
		"explicit-exit-notify 2\nstatus st.log 5\nstatus-version 2\ndev tun9\ntun-mtu 1400\n", "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Network != pf("10.8.0.0/24") || p.Network6 != pf("fd00:8::/64") || p.Topology != "subnet" || p.PoolStart.IsValid() || p.PoolEnd.IsValid() {
		t.Errorf("addressing: %+v", p)
	}
	if !reflect.DeepEqual(p.Push, []string{"route 10.20.0.0 255.255.0.0", "dhcp-option DNS 10.8.0.1"}) {
		t.Errorf("push %q", p.Push)
	}
	for _, o := range p.Push {
		for _, own := range []string{"route-gateway", "topology", "ifconfig", "ping"} {
			if strings.HasPrefix(o, own) {
				t.Errorf("push list duplicates the handler's %q: %q", own, o)
			}
		}
	}
	if p.PushPing != 10 || p.PushPingRestart != 60 || p.Session.Ping != 10*time.Second || p.Session.PingRestart != 120*time.Second {
		t.Errorf("keepalive: push %d/%d, own %v/%v", p.PushPing, p.PushPingRestart, p.Session.Ping, p.Session.PingRestart)
	}
	if !p.ClientToClient || !p.DuplicateCN || p.MaxClients != 50 || p.ExplicitExitNotify != 2 || p.CCD != nil ||
		p.StatusFile != filepath.Join(dir, "st.log") || p.StatusInterval != 5*time.Second || p.StatusVersion != 2 ||
		p.Device != "tun9" || p.TunMTU != 1400 {
		t.Errorf("params: %+v", p)
	}
	if p.Session.Options != "V4,dev-type tun,link-mtu 1559,tun-mtu 1400,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-server" {
		t.Errorf("options %q", p.Session.Options)
	}
	if _, err := NewServer(p); err != nil {
		t.Fatalf("NewServer rejects the params: %v", err)
	}

	// OpenVPN 2.6's default topology is net30; with client-to-client the server
	// directive pushes the whole network.
	p, _, err = serverParams(t, dir, srvBase+"client-to-client\n", "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Topology != "net30" || !reflect.DeepEqual(p.Push, []string{"route 10.8.0.0 255.255.255.0"}) || p.PushPing != 0 || p.Session.Ping != 0 {
		t.Errorf("net30: topology %q push %q", p.Topology, p.Push)
	}
	if _, err := NewServer(p); err != nil {
		t.Fatalf("NewServer rejects net30 params: %v", err)
	}

	// An explicit pool.
	p, _, err = serverParams(t, dir, "server 10.8.0.0 255.255.255.0 nopool\nifconfig-pool 10.8.0.100 10.8.0.150\ntopology subnet\n"+
		"ca pki/ca.crt\ncert pki/server.crt\nkey pki/server.key\n", "")
	if err != nil {
		t.Fatal(err)
	}
	if p.PoolStart != ad("10.8.0.100") || p.PoolEnd != ad("10.8.0.150") {
		t.Errorf("pool %v-%v", p.PoolStart, p.PoolEnd)
	}
	if _, err := NewServer(p); err != nil {
		t.Fatalf("NewServer rejects the pool: %v", err)
	}

	// IPv6-only.
	p, _, err = serverParams(t, dir, "server-ipv6 fd00:9::/64\nca pki/ca.crt\ncert pki/server.crt\nkey pki/server.key\n", "")
	if err != nil || p.Network.IsValid() || p.Network6 != pf("fd00:9::/64") {
		t.Fatalf("ipv6 only: %v %+v", err, p)
	}

	// client-config-dir.
	if err := os.Mkdir(filepath.Join(dir, "ccd"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeCCD(t, dir+"/ccd", "alice", "ifconfig-push 10.8.0.77 255.255.255.0\n")
	p, _, err = serverParams(t, dir, srvBase+"client-config-dir ccd\nccd-exclusive\n", "")
	if err != nil || p.CCD == nil {
		t.Fatalf("ccd: %v", err)
	}
	if ccd, err := p.CCD("alice"); err != nil || ccd.Ifconfig != ad("10.8.0.77") {
		t.Fatalf("ccd alice: %+v %v", ccd, err)
	}
	if ccd, err := p.CCD("bob"); err != nil || !ccd.Disable {
		t.Fatalf("ccd-exclusive bob: %+v %v", ccd, err)
	}
}

func TestServerParamsSession(t *testing.T) {
	dir := t.TempDir()
	writeServerPKI(t, dir)
	p, _, err := serverParams(t, dir, srvBase+"data-ciphers CHACHA20-POLY1305:AES-128-GCM\ndata-ciphers-fallback AES-256-GCM\n"+
		"reneg-sec 600\nreneg-bytes 1000\nreneg-pkts 50\nhand-window 30\ntran-window 90\ntls-timeout 3\nreplay-window 128 20\n"+
		"ping-exit 300\nkey-derivation prf\n", "")
	if err != nil {
		t.Fatal(err)
	}
	s := p.Session
	if s.Role != ovpn.RoleServer || s.TLS.Name() != "go" || !s.TLSConfig.Server || len(s.TLSConfig.Certificates) != 1 ||
		!reflect.DeepEqual(s.DataCiphers, []datachan.Cipher{datachan.ChaCha20Poly1305, datachan.AES128GCM}) ||
		s.Fallback == nil || *s.Fallback != datachan.AES256GCM || !s.DisableEKM ||
		s.RenegSec != 600*time.Second || s.RenegBytes != 1000 || s.RenegPackets != 50 || s.HandWindow != 30*time.Second ||
		s.TranWindow != 90*time.Second || s.TLSTimeout != 3*time.Second || s.ReplayWindow != 128 || s.ReplayExpire != 20*time.Second ||
		s.PingExit != 300*time.Second || s.PeerID != -1 || s.Logger == nil {
		t.Errorf("session %+v", s)
	}
	if !strings.Contains(s.Options, ",cipher CHACHA20-POLY1305,") {
		t.Errorf("options %q", s.Options)
	}
	if s.TLSConfig.MinVersion != tls.VersionTLS12 || s.TLSConfig.MaxVersion != 0 {
		t.Errorf("versions %x %x", s.TLSConfig.MinVersion, s.TLSConfig.MaxVersion)
	}
	p, _, err = serverParams(t, dir, srvBase+"reneg-sec 0\ntls-version-min 1.3\n", "")
	if err != nil || p.Session.RenegSec != -1 || p.Session.DisableEKM || p.Session.TLSConfig.MinVersion != tls.VersionTLS13 {
		t.Fatalf("reneg-sec 0: %v %+v", err, p.Session)
	}
}

func TestServerParamsClientVerification(t *testing.T) {
	dir := t.TempDir()
	pki := writeServerPKI(t, dir)
	p, _, err := serverParams(t, dir, srvBase+"remote-cert-tls client\ncrl-verify pki/crl.pem\n", "")
	if err != nil {
		t.Fatal(err)
	}
	verify := p.Session.TLSConfig.VerifyPeer
	if err := verify([][]byte{pki.client}); err != nil {
		t.Errorf("client certificate rejected: %v", err)
	}
	if err := verify([][]byte{pki.serverEKU}); err == nil {
		t.Error("certificate without clientAuth accepted with remote-cert-tls client")
	}
	if err := verify([][]byte{pki.revoked}); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked certificate: %v", err)
	}
	// Without remote-cert-tls any certificate from the CA passes (OpenVPN's default).
	p, _, err = serverParams(t, dir, srvBase+"verify-x509-name ali name-prefix\n", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Session.TLSConfig.VerifyPeer([][]byte{pki.client}); err != nil {
		t.Errorf("verify-x509-name prefix: %v", err)
	}
	if err := p.Session.TLSConfig.VerifyPeer([][]byte{pki.revoked}); err == nil {
		t.Error("verify-x509-name mismatch accepted")
	}
	// verify-client-cert none/optional cannot be honoured.
	_, _, err = serverParams(t, dir, srvBase+"verify-client-cert optional\nauth-user-pass-verify /bin/true via-env\n", "")
	if !errors.Is(err, config.ErrUnsupported) || !strings.Contains(err.Error(), "verify-client-cert optional") {
		t.Fatalf("verify-client-cert optional: %v", err)
	}
}

func TestServerParamsWrappers(t *testing.T) {
	dir := t.TempDir()
	writeServerPKI(t, dir)
	data, err := os.ReadFile(filepath.Join(dir, "pki", "ta.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := controlwrap.ParseStaticKey(data)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	plain := (&wire.ControlPacket{Opcode: wire.OpHardResetClientV2, SessionID: wire.SessionID{1, 2, 3, 4, 5, 6, 7, 8}}).Append(nil)
	// roundTrip wraps a client packet with client and checks that the server's
	// wrapper accepts it.
	roundTrip := func(server controlwrap.Wrapper, client controlwrap.Wrapper) error {
		pkt, err := client.Wrap(now, nil, plain)
		if err != nil {
			return err
		}
		got, err := server.Unwrap(now, pkt)
		if err != nil {
			return err
		}
		if !slices.Equal(got, plain) {
			return errors.New("plain text changed")
		}
		return nil
	}

	// No protection: NewServer supplies the none wrapper.
	p, _, err := serverParams(t, dir, srvBase, "")
	if err != nil || p.NewWrapper != nil {
		t.Fatalf("no wrapper: %v", err)
	}

	// tls-crypt: the server side of the key.
	p, _, err = serverParams(t, dir, srvBase+"tls-crypt pki/ta.key\n", "")
	if err != nil || p.NewWrapper == nil {
		t.Fatalf("tls-crypt: %v", err)
	}
	w, err := p.NewWrapper()
	if err != nil {
		t.Fatal(err)
	}
	cw, _ := controlwrap.NewTLSCrypt(key, false)
	if err := roundTrip(w, cw); err != nil {
		t.Errorf("tls-crypt client->server: %v", err)
	}
	w2, _ := p.NewWrapper()
	sw, _ := controlwrap.NewTLSCrypt(key, true)
	if err := roundTrip(w2, sw); err == nil {
		t.Error("tls-crypt server accepted a packet wrapped with the server key direction")
	}
	if w3, _ := p.NewWrapper(); w3 == w {
		t.Error("NewWrapper returns a shared wrapper")
	}

	// tls-auth with direction 0 on the server pairs with a client using 1.
	p, _, err = serverParams(t, dir, srvBase+"tls-auth pki/ta.key 0\nauth SHA256\n", "")
	if err != nil {
		t.Fatal(err)
	}
	w, _ = p.NewWrapper()
	cw, _ = controlwrap.NewTLSAuth(key, controlwrap.Dir1, "SHA256")
	if err := roundTrip(w, cw); err != nil {
		t.Errorf("tls-auth 0/1: %v", err)
	}
	w, _ = p.NewWrapper()
	cw, _ = controlwrap.NewTLSAuth(key, controlwrap.Dir0, "SHA256")
	if err := roundTrip(w, cw); err == nil {
		t.Error("tls-auth accepted a packet with the wrong key direction")
	}
	if !strings.Contains(p.Session.Options, ",keydir 0,auth [null-digest],") {
		t.Errorf("options %q", p.Session.Options)
	}
	// Bidirectional tls-auth (no direction).
	p, _, err = serverParams(t, dir, srvBase+"tls-auth pki/ta.key\n", "")
	if err != nil {
		t.Fatal(err)
	}
	w, _ = p.NewWrapper()
	cw, _ = controlwrap.NewTLSAuth(key, controlwrap.DirNone, "SHA1")
	if err := roundTrip(w, cw); err != nil || strings.Contains(p.Session.Options, "keydir") {
		t.Errorf("tls-auth bidirectional: %v %q", err, p.Session.Options)
	}
}

func TestServerParamsEngine(t *testing.T) {
	dir := t.TempDir()
	writeServerPKI(t, dir)
	haveOpenSSL := slices.Contains(tlsengine.Names(), "openssl")
	conf := srvBase + "tls-engine openssl\n"
	// The command line (engine argument) overrides the config.
	p, _, err := serverParams(t, dir, conf, "go")
	if err != nil || p.Session.TLS.Name() != "go" {
		t.Fatalf("override: %v", err)
	}
	p, _, err = serverParams(t, dir, conf, "")
	switch {
	case haveOpenSSL && (err != nil || p.Session.TLS.Name() != "openssl"):
		t.Fatalf("config engine: %v", err)
	case !haveOpenSSL && (err == nil || !strings.Contains(err.Error(), `tls engine "openssl" is not compiled in`)):
		t.Fatalf("config engine without openssl: %v", err)
	}
	if _, _, err := serverParams(t, dir, srvBase, "nope"); err == nil {
		t.Fatal("unknown engine accepted")
	}
}

func TestServerParamsTLSCiphers(t *testing.T) {
	dir := t.TempDir()
	writeServerPKI(t, dir)
	p, _, err := serverParams(t, dir, srvBase+"tls-cipher ECDHE-ECDSA-AES256-GCM-SHA384:TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256:HIGH:!aNULL\n"+
		"tls-ciphersuites TLS_AES_256_GCM_SHA384\ntls-groups X25519:secp384r1\n", "")
	if err != nil {
		t.Fatal(err)
	}
	tc := p.Session.TLSConfig
	if tc.CipherList != "ECDHE-ECDSA-AES256-GCM-SHA384:TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256:HIGH:!aNULL" ||
		tc.CipherSuites13 != "TLS_AES_256_GCM_SHA384" || tc.Groups != "X25519:secp384r1" ||
		!slices.Equal(tc.CipherSuites, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}) {
		t.Errorf("tls config %+v", tc)
	}

	ids, ignored := GoCipherSuites("ecdhe-rsa-chacha20-poly1305, ECDHE-RSA-CHACHA20-POLY1305 DES-CBC3-SHA:TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES128-SHA256")
	if !slices.Equal(ids, []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}) ||
		!slices.Equal(ignored, []string{"DES-CBC3-SHA", "TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-SHA256"}) {
		t.Errorf("GoCipherSuites = %v, %v", ids, ignored)
	}
	if ids, ignored := GoCipherSuites(""); ids != nil || ignored != nil {
		t.Errorf("empty list: %v %v", ids, ignored)
	}
}

// TestServerParamsLab converts the interop lab's server configurations that weft
// supports.
func TestServerParamsLab(t *testing.T) {
	paths, _ := filepath.Glob("/work/shared/reference/openvpn-lab/conf/server*.conf")
	if len(paths) == 0 {
		t.Skip("lab configs not available")
	}
	dir := t.TempDir()
	writeServerPKI(t, dir)
	n := 0
	for _, src := range paths {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Base(src))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.ParseServerFile(path)
		if errors.Is(err, config.ErrUnsupported) {
			continue // tls-crypt-v2
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := ServerParamsFromConfig(c, "", nil)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if len(p.Listens) != 1 || p.Listens[0].Addr.Addr() != netip.MustParseAddr("10.200.0.1") || p.Topology != "subnet" ||
			!p.Network.IsValid() || !p.Network6.IsValid() || p.PushPing != 10 || p.PushPingRestart != 60 {
			t.Errorf("%s: %+v", src, p)
		}
		if _, err := NewServer(p); err != nil {
			t.Errorf("%s: NewServer: %v", src, err)
		}
		n++
	}
	if n < 4 {
		t.Errorf("converted %d lab configs, want at least 4", n)
	}
}

func TestServerParamsCompression(t *testing.T) {
	dir := t.TempDir()
	writeServerPKI(t, dir)
	p, _, err := serverParams(t, dir, srvBase+"compress migrate\nallow-compression asym\n", "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Session.Compression != (compress.Spec{Compress: "migrate", Allow: "asym"}) {
		t.Errorf("compression %+v", p.Session.Compression)
	}
	p, _, err = serverParams(t, dir, srvBase+"comp-lzo\n", "")
	if err != nil || p.Session.Compression != (compress.Spec{CompLZO: "adaptive"}) {
		t.Fatalf("comp-lzo: %v %+v", err, p.Session.Compression)
	}
	_, _, err = serverParams(t, dir, srvBase+"compress lz4\nallow-compression no\n", "")
	if !errors.Is(err, compress.ErrNotAllowed) {
		t.Fatalf("compress under allow-compression no: %v", err)
	}
}
