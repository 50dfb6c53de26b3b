package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const baseServer = "server 10.8.0.0 255.255.255.0\nca pki/ca.crt\ncert pki/server.crt\nkey pki/server.key\n"

// baseServerLines is the number of lines in baseServer; extra lines start after it.
const baseServerLines = 4

func parseServerWith(t *testing.T, dir, extra string) (*Server, error) {
	t.Helper()
	return ParseServer(strings.NewReader(baseServer+extra), "s.conf", dir)
}

func serverDir(t *testing.T) (string, *testPKI) {
	t.Helper()
	dir := t.TempDir()
	pki := newPKI(t)
	pki.write(t, dir)
	if err := os.Mkdir(filepath.Join(dir, "ccd"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, pki
}

func lp(proto, addr string) Listen {
	return Listen{Proto: proto, Addr: netip.MustParseAddrPort(addr)}
}

func TestServerDefaults(t *testing.T) {
	dir, pki := serverDir(t)
	s, err := parseServerWith(t, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	want := NewServer()
	want.Name, want.Dir = "s.conf", dir
	want.ModeServer, want.TLSServer = true, true
	want.Network = netip.MustParsePrefix("10.8.0.0/24")
	want.Topology = "net30"
	want.Listens = []Listen{lp("udp", "0.0.0.0:1194")}
	want.CA, want.CAFile = pki.CA, filepath.Join(dir, "pki/ca.crt")
	want.Cert, want.CertFile = pki.ServerCert, filepath.Join(dir, "pki/server.crt")
	want.Key, want.KeyFile = pki.ServerKey, filepath.Join(dir, "pki/server.key")
	want.Warnings = []string{`s.conf:1: server: topology net30 (OpenVPN 2.6's default) is deprecated for servers; consider "topology subnet"`}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	if s.RenegSec != time.Hour || s.RenegSecMin != 3240*time.Second || s.VerifyClientCert != "require" ||
		s.StatusVersion != 1 || s.KeyDerivation != "tls-ekm" || s.Port != 1194 || s.Proto != "udp" ||
		s.MaxClients != 0 || s.Ping != 0 || s.IfconfigPoolPersistSeconds != 600 || s.KeyDirection != KeyDirNone {
		t.Errorf("unexpected defaults: %+v", s)
	}
}

func TestServerDirectives(t *testing.T) {
	dir, pki := serverDir(t)
	sec := time.Second
	pf := netip.MustParsePrefix
	ad := netip.MustParseAddr
	noWarn := func(s *Server) bool { return len(s.Warnings) == 1 } // the net30 warning only
	tests := []struct {
		name  string
		extra string
		ok    func(s *Server) bool
		// wantErr is the exact error location prefix plus a message substring,
		// separated by "|"; line numbers count from the base config.
		wantErr string
	}{
		// Mode.
		{"mode tls-server", "mode server\ntls-server\n", func(s *Server) bool { return s.ModeServer && s.TLSServer }, ""},
		{"mode p2p", "mode p2p\n", nil, "s.conf:5: mode: |not supported by weft: point-to-point mode"},
		{"mode bad", "mode hub\n", nil, `s.conf:5: mode: |unknown mode "hub" (want server)`},
		{"tls-server args", "tls-server x\n", nil, "s.conf:5: tls-server: |takes 0 arguments, got 1"},

		// server / server-ipv6 / topology / pools.
		{"server again", "server 10.9.0.0 255.255.0.0\n", func(s *Server) bool { return s.Network == pf("10.9.0.0/16") && !s.NoPool }, ""},
		{"server host bits", "server 10.9.0.1 255.255.255.0\n", nil, "s.conf:5: server: |network 10.9.0.1 and netmask 255.255.255.0 are inconsistent (did you mean 10.9.0.0?)"},
		{"server mask", "server 10.9.0.0 255.0.255.0\n", nil, `s.conf:5: server: |netmask "255.0.255.0" is not contiguous`},
		{"server too small", "server 10.9.0.0 255.255.255.252\n", nil, "s.conf:5: server: |must be /29 (255.255.255.248) or larger, got /30"},
		{"server /29", "server 10.9.0.0 255.255.255.248\n", func(s *Server) bool { return s.Network.Bits() == 29 }, ""},
		{"server v6", "server fd00:: 255.255.255.0\n", nil, `s.conf:5: server: |network "fd00::" is not an IPv4 address`},
		{"server nopool", "server 10.9.0.0 255.255.255.0 nopool\n", func(s *Server) bool {
			return s.NoPool && len(s.Warnings) == 2 && strings.Contains(s.Warnings[1], "s.conf:5: server: nopool without ifconfig-pool")
		}, ""},
		{"server bad flag", "server 10.9.0.0 255.255.255.0 pool\n", nil, `s.conf:5: server: |unknown flag "pool" (want nopool)`},
		{"server one arg", "server 10.9.0.0\n", nil, "s.conf:5: server: |takes 2 to 3 arguments, got 1"},
		{"server-ipv6", "server-ipv6 fd00:8::/64\n", func(s *Server) bool { return s.Network6 == pf("fd00:8::/64") }, ""},
		{"server-ipv6 host bits", "server-ipv6 fd00:8::1/64\n", func(s *Server) bool { return s.Network6 == pf("fd00:8::/64") }, ""},
		{"server-ipv6 /112", "server-ipv6 fd00:8::/112\n", func(s *Server) bool { return s.Network6.Bits() == 112 }, ""},
		{"server-ipv6 too big", "server-ipv6 fd00::/48\n", nil, "s.conf:5: server-ipv6: |between /64 and /124, got /48"},
		{"server-ipv6 too small", "server-ipv6 fd00::/125\n", nil, "s.conf:5: server-ipv6: |between /64 and /124, got /125"},
		{"server-ipv6 weft limit", "server-ipv6 fd00::/120\n", nil, "s.conf:5: server-ipv6: |not supported by weft: server-ipv6 networks smaller than /112"},
		{"server-ipv6 v4", "server-ipv6 10.0.0.0/8\n", nil, `s.conf:5: server-ipv6: |"10.0.0.0/8" is not an IPv6 network`},
		{"server-ipv6 no bits", "server-ipv6 fd00::\n", nil, `s.conf:5: server-ipv6: |"fd00::" is not an IPv6 network`},
		{"topology subnet", "topology subnet\n", func(s *Server) bool { return s.Topology == "subnet" && len(s.Warnings) == 0 }, ""},
		{"topology net30", "topology net30\n", func(s *Server) bool { return s.Topology == "net30" && len(s.Warnings) == 1 }, ""},
		{"topology p2p", "topology p2p\n", nil, "s.conf:5: topology: |not supported by weft: topology p2p on a server"},
		{"topology bad", "topology star\n", nil, `s.conf:5: topology: |unknown topology "star" (want subnet or net30)`},
		{"ifconfig-pool", "server 10.8.0.0 255.255.255.0 nopool\nifconfig-pool 10.8.0.10 10.8.0.20\n", func(s *Server) bool {
			return s.PoolStart == ad("10.8.0.10") && s.PoolEnd == ad("10.8.0.20") && !s.PoolNetmask.IsValid() && noWarn(s)
		}, ""},
		{"ifconfig-pool mask", "server 10.8.0.0 255.255.255.0 nopool\nifconfig-pool 10.8.0.10 10.8.0.20 255.255.255.0\n", func(s *Server) bool {
			return s.PoolNetmask == ad("255.255.255.0")
		}, ""},
		{"ifconfig-pool with pool", "ifconfig-pool 10.8.0.10 10.8.0.20\n", nil, "s.conf:5: ifconfig-pool: |server already defines an ifconfig-pool"},
		{"ifconfig-pool outside", "server 10.8.0.0 255.255.255.0 nopool\nifconfig-pool 10.9.0.10 10.9.0.20\n", nil, "s.conf:6: ifconfig-pool: |not inside the server network 10.8.0.0/24"},
		{"ifconfig-pool reversed", "ifconfig-pool 10.8.0.20 10.8.0.10\n", nil, "s.conf:5: ifconfig-pool: |end 10.8.0.10 is below start 10.8.0.20"},
		{"ifconfig-pool bad end", "ifconfig-pool 10.8.0.10 x\n", nil, `s.conf:5: ifconfig-pool: |end "x" is not an IPv4 address`},
		{"ifconfig-pool bad mask", "ifconfig-pool 10.8.0.10 10.8.0.20 255.0.255.0\n", nil, `s.conf:5: ifconfig-pool: |not contiguous`},
		{"ifconfig-ipv6-pool with server-ipv6", "server-ipv6 fd00::/64\nifconfig-ipv6-pool fd01::/64\n", nil, "s.conf:6: ifconfig-ipv6-pool: |server-ipv6 already defines an ifconfig-ipv6-pool"},
		{"ifconfig-ipv6-pool alone", "ifconfig-ipv6-pool fd01::/64\n", nil, "s.conf:5: ifconfig-ipv6-pool: |not supported by weft: ifconfig-ipv6-pool without server-ipv6"},
		{"ifconfig-ipv6-pool bad", "ifconfig-ipv6-pool 10.0.0.0/8\n", nil, `s.conf:5: ifconfig-ipv6-pool: |"10.0.0.0/8" is not an IPv6 ADDR/BITS`},

		// Push and client handling.
		{"push", "push \"route 10.0.0.0 255.0.0.0\"\npush 'dhcp-option DNS 10.8.0.1'\npush block-outside-dns\n", func(s *Server) bool {
			return reflect.DeepEqual(s.Push, []string{"route 10.0.0.0 255.0.0.0", "dhcp-option DNS 10.8.0.1", "block-outside-dns"})
		}, ""},
		{"push unquoted", "push route 10.0.0.0 255.0.0.0\n", nil, "s.conf:5: push: |takes 1 argument, got 3"},
		{"push empty", "push \"\"\n", nil, "s.conf:5: push: |empty option"},
		{"push bad quoting", "push \"route 'x\"\n", nil, "s.conf:5: push: |no closing quotation mark"},
		{"push comment", "push \"# x\"\n", nil, "s.conf:5: push: |is only a comment"},
		{"client-to-client duplicate-cn", "client-to-client\nduplicate-cn\n", func(s *Server) bool { return s.ClientToClient && s.DuplicateCN }, ""},
		{"client-config-dir", "client-config-dir ccd\nccd-exclusive\n", func(s *Server) bool {
			return s.ClientConfigDir == filepath.Join(dir, "ccd") && s.CCDExclusive
		}, ""},
		{"client-config-dir absolute", "client-config-dir " + filepath.Join(dir, "ccd") + "\n", func(s *Server) bool { return s.ClientConfigDir == filepath.Join(dir, "ccd") }, ""},
		{"client-config-dir missing", "client-config-dir nope\n", nil, "s.conf:5: client-config-dir: |" + filepath.Join(dir, "nope") + ": stat"},
		{"client-config-dir file", "client-config-dir pki/ca.crt\n", nil, "s.conf:5: client-config-dir: |not a directory"},
		{"ccd-exclusive alone", "ccd-exclusive\n", nil, "s.conf:5: ccd-exclusive: |must be used with client-config-dir"},
		{"max-clients", "max-clients 10\n", func(s *Server) bool { return s.MaxClients == 10 }, ""},
		{"max-clients 0", "max-clients 0\n", nil, "s.conf:5: max-clients: |out of range 1..16777214"},
		{"max-clients big", "max-clients 16777215\n", nil, "s.conf:5: max-clients: |out of range"},

		// Keepalive and exit.
		{"keepalive", "keepalive 10 60\n", func(s *Server) bool {
			return s.KeepaliveInterval == 10*sec && s.KeepaliveTimeout == 60*sec && s.Ping == 10*sec && s.PingRestart == 120*sec
		}, ""},
		{"keepalive ratio", "keepalive 10 15\n", nil, "s.conf:5: keepalive: |timeout 15 must be at least twice the interval 10"},
		{"keepalive with ping", "keepalive 10 60\nping 5\n", nil, "s.conf:6: ping: |conflicts with keepalive"},
		{"ping ping-restart", "ping 5\nping-restart 30\n", func(s *Server) bool { return s.Ping == 5*sec && s.PingRestart == 30*sec && s.KeepaliveInterval == 0 }, ""},
		{"explicit-exit-notify", "explicit-exit-notify\n", func(s *Server) bool { return s.ExplicitExitNotify == 1 && noWarn(s) }, ""},
		{"explicit-exit-notify 2", "explicit-exit-notify 2\n", func(s *Server) bool { return s.ExplicitExitNotify == 2 }, ""},
		{"explicit-exit-notify tcp", "proto tcp-server\nexplicit-exit-notify\n", func(s *Server) bool {
			return s.ExplicitExitNotify == 1 && len(s.Warnings) == 2 && strings.HasPrefix(s.Warnings[1], "s.conf:6: explicit-exit-notify: ignored for TCP")
		}, ""},
		{"explicit-exit-notify bad", "explicit-exit-notify x\n", nil, `s.conf:5: explicit-exit-notify: |count: "x" is not an integer`},

		// Credentials, control channel, data channel.
		{"crl-verify", "crl-verify pki/crl.pem\n", func(s *Server) bool { return string(s.CRLVerify) == string(pki.CRL) }, ""},
		{"crl-verify bad", "crl-verify pki/ca.crt\n", nil, "s.conf:5: crl-verify: |no PEM X509 CRL"},
		{"extra-certs", "extra-certs pki/ca.crt\n", func(s *Server) bool { return string(s.ExtraCerts) == string(pki.CA) }, ""},
		{"cert mismatch", "cert pki/client.crt\n", nil, "s.conf:4: key: |do not form a valid pair"},
		{"ca missing", "ca pki/nope.crt\n", nil, "s.conf:5: ca: |read " + filepath.Join(dir, "pki/nope.crt")},
		{"tls-crypt", "tls-crypt pki/ta.key\n", func(s *Server) bool { return string(s.TLSCrypt) == string(pki.StaticKey) }, ""},
		{"tls-auth", "tls-auth pki/ta.key 0\n", func(s *Server) bool { return s.TLSAuth != nil && s.KeyDirection == 0 }, ""},
		{"tls-auth key-direction", "tls-auth pki/ta.key\nkey-direction 1\n", func(s *Server) bool { return s.KeyDirection == 1 }, ""},
		{"tls-auth bad dir", "tls-auth pki/ta.key 2\n", nil, `s.conf:5: tls-auth: |key direction must be 0 or 1, got "2"`},
		{"key-direction bad", "key-direction 3\n", nil, `s.conf:5: key-direction: |must be 0 or 1`},
		{"tls-auth and tls-crypt", "tls-auth pki/ta.key 0\ntls-crypt pki/ta.key\n", nil, "s.conf:6: tls-crypt: |tls-auth and tls-crypt are mutually exclusive"},
		{"tls-crypt-v2", "tls-crypt-v2 pki/ta.key\n", nil, "s.conf:5: tls-crypt-v2: |not supported by weft yet"},
		{"auth", "auth SHA256\n", func(s *Server) bool { return s.Auth == "SHA256" }, ""},
		{"auth bad", "auth MD5\n", nil, `s.conf:5: auth: |unsupported digest "MD5"`},
		{"data-ciphers", "data-ciphers AES-128-GCM:CHACHA20-POLY1305\ndata-ciphers-fallback AES-256-GCM\n", func(s *Server) bool {
			return reflect.DeepEqual(s.DataCiphers, []string{"AES-128-GCM", "CHACHA20-POLY1305"}) && s.DataCiphersFallback == "AES-256-GCM"
		}, ""},
		{"data-ciphers bad", "data-ciphers AES-256-CBC\n", nil, "s.conf:5: data-ciphers: |not supported by weft: cipher AES-256-CBC"},
		{"data-ciphers-fallback bad", "data-ciphers-fallback BF-CBC\n", nil, "s.conf:5: data-ciphers-fallback: |not supported by weft"},
		{"key-derivation", "key-derivation prf\n", func(s *Server) bool { return s.KeyDerivation == "prf" }, ""},
		{"dh none", "dh none\n", func(s *Server) bool { return s.DH == "none" && noWarn(s) }, ""},
		{"dh file", "dh dh2048.pem\n", func(s *Server) bool {
			return s.DH == filepath.Join(dir, "dh2048.pem") && len(s.Warnings) == 2 && strings.Contains(s.Warnings[0], "s.conf:5: dh: the DH parameters are not used")
		}, ""},
		{"dh no arg", "dh\n", nil, "s.conf:5: dh: |takes 1 argument, got 0"},

		// Client verification.
		{"verify-client-cert require", "verify-client-cert require\n", func(s *Server) bool { return s.VerifyClientCert == "require" }, ""},
		{"verify-client-cert none", "verify-client-cert none\n", nil, "s.conf:5: verify-client-cert: |verify-client-cert none must be used with auth-user-pass-verify"},
		{"verify-client-cert optional", "verify-client-cert optional\nauth-user-pass-verify /bin/check via-file\n", func(s *Server) bool {
			return s.VerifyClientCert == "optional" && s.AuthUserPassVerify == "/bin/check" && s.AuthUserPassVerifyMethod == "via-file" &&
				strings.Contains(s.Warnings[0], "s.conf:6: auth-user-pass-verify: scripts are not run by weft")
		}, ""},
		{"verify-client-cert bad", "verify-client-cert maybe\n", nil, `s.conf:5: verify-client-cert: |unknown value "maybe" (want none, optional or require)`},
		{"auth-user-pass-verify via-env", "auth-user-pass-verify check.sh via-env\n", func(s *Server) bool { return s.AuthUserPassVerifyMethod == "via-env" }, ""},
		{"auth-user-pass-verify bad", "auth-user-pass-verify check.sh via-pipe\n", nil, `s.conf:5: auth-user-pass-verify: |unknown method "via-pipe"`},
		{"auth-user-pass-verify one arg", "auth-user-pass-verify check.sh\n", nil, "s.conf:5: auth-user-pass-verify: |takes 2 arguments, got 1"},
		{"username-as-common-name", "auth-user-pass-verify c via-env\nusername-as-common-name\n", func(s *Server) bool {
			return s.UsernameAsCommonName && strings.HasPrefix(s.Warnings[1], "s.conf:6: username-as-common-name: not applied")
		}, ""},
		{"username-as-common-name alone", "username-as-common-name\n", nil, "s.conf:5: username-as-common-name: |must be used with auth-user-pass-verify"},
		{"remote-cert-tls client", "remote-cert-tls client\n", func(s *Server) bool { return s.RemoteCertTLS == "client" }, ""},
		{"remote-cert-tls server", "remote-cert-tls server\n", nil, "s.conf:5: remote-cert-tls: |would reject every client certificate"},
		{"remote-cert-tls bad", "remote-cert-tls peer\n", nil, `s.conf:5: remote-cert-tls: |want client, got "peer"`},
		{"verify-x509-name", "verify-x509-name client name-prefix\n", func(s *Server) bool { return s.VerifyX509Name == "client" && s.VerifyX509Type == "name-prefix" }, ""},

		// Status and logging.
		{"status", "status st.log 10\nstatus-version 2\n", func(s *Server) bool {
			return s.Status == filepath.Join(dir, "st.log") && s.StatusInterval == 10*sec && s.StatusVersion == 2
		}, ""},
		{"status-version 3", "status-version 3\n", func(s *Server) bool { return s.StatusVersion == 3 }, ""},
		{"status-version 0", "status-version 0\n", nil, "s.conf:5: status-version: |out of range 1..3"},
		{"status-version 4", "status-version 4\n", nil, "s.conf:5: status-version: |out of range 1..3"},
		{"status bad interval", "status st.log 0\n", nil, "s.conf:5: status: |interval: 0 out of range"},
		{"verb mute", "verb 4\nmute 10\n", func(s *Server) bool { return s.Verb == 4 && s.Mute == 10 }, ""},
		{"verb bad", "verb x\n", nil, `s.conf:5: verb: |"x" is not an integer`},
		{"log writepid", "log-append weft.log\nwritepid /run/weft.pid\n", func(s *Server) bool {
			return s.Log == filepath.Join(dir, "weft.log") && s.LogAppend && s.WritePID == "/run/weft.pid"
		}, ""},
		{"log", "log /var/log/weft.log\n", func(s *Server) bool { return s.Log == "/var/log/weft.log" && !s.LogAppend }, ""},
		{"daemon", "daemon\n", func(s *Server) bool { return s.Daemon && strings.Contains(s.Warnings[0], "s.conf:5: daemon: ignored") }, ""},

		// TLS and renegotiation.
		{"reneg-sec", "reneg-sec 600\n", func(s *Server) bool { return s.RenegSec == 600*sec && s.RenegSecMin == 540*sec }, ""},
		{"reneg-sec min", "reneg-sec 600 300\n", func(s *Server) bool { return s.RenegSec == 600*sec && s.RenegSecMin == 300*sec }, ""},
		{"reneg-sec 0", "reneg-sec 0\n", func(s *Server) bool { return s.RenegSec == 0 && s.RenegSecMin == 0 }, ""},
		{"reneg-sec bad", "reneg-sec 60 300\n", nil, "s.conf:5: reneg-sec: |min 300 is greater than max 60"},
		{"tls-version", "tls-version-min 1.3\ntls-version-max 1.3\n", func(s *Server) bool { return s.TLSVersionMin == "1.3" && s.TLSVersionMax == "1.3" }, ""},
		{"tls-version max<min", "tls-version-min 1.3\ntls-version-max 1.2\n", nil, "s.conf:6: tls-version-max: |below tls-version-min"},
		{"tls strings", "tls-cipher ECDHE-ECDSA-AES256-GCM-SHA384\ntls-ciphersuites TLS_AES_256_GCM_SHA384\ntls-groups X25519\n", func(s *Server) bool {
			return s.TLSCipher == "ECDHE-ECDSA-AES256-GCM-SHA384" && s.TLSCipherSuites == "TLS_AES_256_GCM_SHA384" && s.TLSGroups == "X25519"
		}, ""},
		{"tls-engine", "tls-engine openssl\n", func(s *Server) bool { return s.TLSEngine == "openssl" }, ""},
		{"tls-engine bad", "tls-engine x\n", nil, `s.conf:5: tls-engine: |unknown TLS engine "x"`},
		{"windows", "hand-window 30\ntran-window 60\ntls-timeout 5\nreplay-window 128 30\n", func(s *Server) bool {
			return s.HandWindow == 30*sec && s.TranWindow == 60*sec && s.TLSTimeout == 5*sec && s.ReplayWindow == 128 && s.ReplayWindowTime == 30*sec
		}, ""},
		{"tran-window bad", "tran-window 0\n", nil, "s.conf:5: tran-window: |out of range"},

		// Compression.
		{"comp-lzo", "comp-lzo\n", func(s *Server) bool { return s.CompLZO == "adaptive" }, ""},
		{"comp-lzo no", "comp-lzo no\ncompress stub-v2\nallow-compression no\n", func(s *Server) bool {
			return s.CompLZO == "no" && s.Compress == "stub-v2" && s.AllowCompression == "no"
		}, ""},
		{"comp-lzo bad", "comp-lzo async\n", nil, `s.conf:5: comp-lzo: |unknown mode "async"`},

		// Listeners: proto / local / port / lport / listen.
		{"proto udp4", "proto udp4\n", func(s *Server) bool { return reflect.DeepEqual(s.Listens, []Listen{lp("udp4", "0.0.0.0:1194")}) }, ""},
		// As OpenVPN: proto udp6 without local is dual-stack, plain udp is IPv4.
		{"proto udp6", "proto udp6\n", func(s *Server) bool { return reflect.DeepEqual(s.Listens, []Listen{lp("udp", "[::]:1194")}) }, ""},
		{"proto tcp-server", "proto tcp-server\n", func(s *Server) bool {
			return s.Proto == "tcp" && reflect.DeepEqual(s.Listens, []Listen{lp("tcp", "0.0.0.0:1194")})
		}, ""},
		{"proto tcp", "proto tcp\n", func(s *Server) bool { return s.Proto == "tcp" }, ""},
		{"proto tcp4-server", "proto tcp4-server\n", func(s *Server) bool { return reflect.DeepEqual(s.Listens, []Listen{lp("tcp4", "0.0.0.0:1194")}) }, ""},
		{"proto tcp6-server", "proto tcp6-server\n", func(s *Server) bool {
			return s.Proto == "tcp6" && reflect.DeepEqual(s.Listens, []Listen{lp("tcp", "[::]:1194")})
		}, ""},
		{"proto tcp-client", "proto tcp-client\n", nil, `s.conf:5: proto: |"tcp-client" is a client protocol`},
		{"proto bad", "proto sctp\n", nil, `s.conf:5: proto: |unknown protocol "sctp"`},
		{"local v4", "local 10.200.0.1\nport 1195\n", func(s *Server) bool {
			return s.Local == ad("10.200.0.1") && reflect.DeepEqual(s.Listens, []Listen{lp("udp", "10.200.0.1:1195")})
		}, ""},
		{"local v6", "local fd00::1\nlport 443\nproto tcp-server\n", func(s *Server) bool { return reflect.DeepEqual(s.Listens, []Listen{lp("tcp", "[fd00::1]:443")}) }, ""},
		{"local family", "proto udp4\nlocal ::1\n", nil, "s.conf:6: local: |does not match proto: udp4 needs an IPv4 address, got ::1"},
		{"local name", "local vpn.example\n", nil, `s.conf:5: local: |"vpn.example" is not an IP address`},
		{"port bad", "port 0\n", nil, "s.conf:5: port: |port: 0 out of range 1..65535"},
		{"lport bad", "lport x\n", nil, `s.conf:5: lport: |"x" is not an integer`},
		{"listen", "listen udp 10.0.0.1:1194\nlisten tcp [fd00::1]:443\nlisten udp6 [::]:1194\nlisten tcp *:443\n", func(s *Server) bool {
			return reflect.DeepEqual(s.Listens, []Listen{lp("udp", "10.0.0.1:1194"), lp("tcp", "[fd00::1]:443"), lp("udp6", "[::]:1194"), lp("tcp", "[::]:443")}) && noWarn(s)
		}, ""},
		{"listen with local", "listen udp 10.0.0.1:1194\nlocal 10.0.0.2\nproto tcp\n", func(s *Server) bool {
			return len(s.Listens) == 1 && len(s.Warnings) == 3 && s.Warnings[1] == "s.conf:7: proto: ignored for binding: listen directives define the listeners" &&
				s.Warnings[2] == "s.conf:6: local: ignored for binding: listen directives define the listeners"
		}, ""},
		{"listen duplicate", "listen udp *:1194\nlisten udp [::]:1194\n", nil, "s.conf:6: listen: |duplicate listener udp [::]:1194"},
		{"listen bad proto", "listen sctp *:1\n", nil, `s.conf:5: listen: |unknown protocol "sctp"`},
		{"listen bad addr", "listen udp vpn.example:1194\n", nil, `s.conf:5: listen: |HOST must be an IPv4 address, [IPv6] or *`},
		{"listen one arg", "listen udp\n", nil, "s.conf:5: listen: |takes 2 arguments, got 1"},
		{"multihome", "multihome\n", func(s *Server) bool { return s.Multihome }, ""},

		// Device, process and misc.
		{"dev", "dev tun7\ntun-mtu 1400\n", func(s *Server) bool { return s.Dev == "tun7" && s.DevType == "tun" && s.TunMTU == 1400 }, ""},
		{"dev tap", "dev tap0\n", nil, "s.conf:5: dev: |not supported by weft: tap devices"},
		{"dev unknown type", "dev vpn\n", nil, `s.conf:5: dev: |add "dev-type tun"`},
		{"tun-mtu bad", "tun-mtu 20\n", nil, "s.conf:5: tun-mtu: |out of range 68..65535"},
		{"persist user group", "persist-key\npersist-tun\nuser nobody\ngroup nogroup\n", func(s *Server) bool {
			return s.PersistKey && s.PersistTun && s.User == "nobody" && s.Group == "nogroup"
		}, ""},
		{"ifconfig-pool-persist", "ifconfig-pool-persist ipp.txt\n", func(s *Server) bool {
			return s.IfconfigPoolPersist == filepath.Join(dir, "ipp.txt") && s.IfconfigPoolPersistSeconds == 600 &&
				strings.HasPrefix(s.Warnings[0], "s.conf:5: ifconfig-pool-persist: not supported by weft")
		}, ""},
		{"ifconfig-pool-persist 0", "ifconfig-pool-persist ipp.txt 0\n", func(s *Server) bool { return s.IfconfigPoolPersistSeconds == 0 }, ""},
		{"ifconfig-pool-persist bad", "ifconfig-pool-persist ipp.txt x\n", nil, `s.conf:5: ifconfig-pool-persist: |seconds: "x" is not an integer`},
		{"route", "route 10.9.0.0 255.255.255.0\nroute 192.168.1.7\n", func(s *Server) bool {
			return reflect.DeepEqual(s.TunRoutes, []netip.Prefix{pf("10.9.0.0/24"), pf("192.168.1.7/32")}) &&
				reflect.DeepEqual(s.Routes, []Route{{"10.9.0.0", "255.255.255.0", "", ""}, {"192.168.1.7", "", "", ""}})
		}, ""},
		{"route host bits", "route 10.9.0.1 255.255.255.0\n", nil, "s.conf:5: route: |inconsistent (host bits set; did you mean 10.9.0.0?)"},
		{"route name", "route vpn.example\n", nil, `s.conf:5: route: |network "vpn.example" is not an IPv4 address`},
		{"route-ipv6", "route-ipv6 fd01::/64\n", func(s *Server) bool {
			return reflect.DeepEqual(s.TunRoutes, []netip.Prefix{pf("fd01::/64")}) && s.RoutesIPv6[0].Network == "fd01::/64"
		}, ""},
		{"route-ipv6 host bits", "route-ipv6 fd01::1/64\n", nil, "s.conf:5: route-ipv6: |has host bits set (did you mean fd01::/64?)"},
		{"setenv", "setenv FOO bar\n", func(s *Server) bool { return s.Setenv["FOO"] == "bar" }, ""},
		{"script-security float", "script-security 2\nfloat\n", func(s *Server) bool { return s.ScriptSecurity == 2 && s.Float }, ""},
		{"bufs fast-io dco", "sndbuf 1000\nrcvbuf 2000\ntxqueuelen 500\nfast-io\ndisable-dco\n", func(s *Server) bool {
			return s.SndBuf == 1000 && s.RcvBuf == 2000 && s.TxQueueLen == 500 && s.FastIO && s.DisableDCO
		}, ""},

		// Unknown and foreign directives.
		{"unknown", "frobnicate\n", nil, "s.conf:5: frobnicate: |unknown directive"},
		{"ignore-unknown-option", "ignore-unknown-option frob\nfrob 1\n", func(s *Server) bool {
			return s.Warnings[0] == `s.conf:6: frob: ignoring unknown directive "frob" (ignore-unknown-option)`
		}, ""},
		{"client directive", "remote vpn.example\n", nil, `s.conf:5: remote: |"remote" is a client directive, not valid in a server configuration`},
		{"client", "client\n", nil, `s.conf:5: client: |"client" is a client directive`},
		{"dhcp-option", "dhcp-option DNS 10.8.0.1\n", nil, `s.conf:5: dhcp-option: |a server pushes it with push "dhcp-option ..."`},
		{"iroute in main config", "iroute 10.9.0.0 255.255.255.0\n", nil, `s.conf:5: iroute: |"iroute" is only valid in a client-config-dir file`},
		{"ifconfig-push in main config", "ifconfig-push 10.8.0.5 255.255.255.0\n", nil, `s.conf:5: ifconfig-push: |only valid in a client-config-dir file`},
		{"dh is not ignored", "dh none\n", func(s *Server) bool { return s.DH == "none" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseServerWith(t, dir, tt.extra)
			checkParsed(t, tt.extra, s, err, tt.ok, tt.wantErr)
		})
	}
}

func TestServerSemantic(t *testing.T) {
	dir, _ := serverDir(t)
	const creds = "ca pki/ca.crt\ncert pki/server.crt\nkey pki/server.key\n"
	tests := []struct{ name, conf, want string }{
		{"no server", creds, "s.conf:3: not a server configuration"},
		{"mode server only", "mode server\ntls-server\n" + creds, "s.conf:5: not a server configuration"},
		{"no ca", "server 10.8.0.0 255.255.255.0\ncert pki/server.crt\nkey pki/server.key\n", "s.conf:3: no ca"},
		{"no cert", "server 10.8.0.0 255.255.255.0\nca pki/ca.crt\n", "s.conf:2: no cert/key"},
		{"cert without key", "server 10.8.0.0 255.255.255.0\nca pki/ca.crt\ncert pki/server.crt\n", "s.conf:3: cert: cert given without key"},
		{"key without cert", "server 10.8.0.0 255.255.255.0\nca pki/ca.crt\nkey pki/server.key\n", "s.conf:3: key: key given without cert"},
		{"empty", "", "s.conf:0: not a server configuration"},
		{"client config", "client\nremote a\n", `s.conf:1: client: unknown directive: "client" is a client directive`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseServer(strings.NewReader(tt.conf), "s.conf", dir)
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error = %v, want prefix %q", err, tt.want)
			}
		})
	}
	// server-ipv6 alone is a valid (IPv6-only) server.
	s, err := ParseServer(strings.NewReader("server-ipv6 fd00:8::/64\n"+creds), "s.conf", dir)
	if err != nil || s.Network.IsValid() || s.Network6 != netip.MustParsePrefix("fd00:8::/64") || !s.ModeServer || !s.TLSServer {
		t.Fatalf("server-ipv6 only: %v %+v", err, s)
	}
}

func TestServerInline(t *testing.T) {
	pki := newPKI(t)
	conf := "server 10.8.0.0 255.255.255.0\ntopology subnet\n" +
		"<ca>\n" + string(pki.CA) + "</ca>\n" +
		"<cert>\n" + string(pki.ServerCert) + "</cert>\n" +
		"<key>\n" + string(pki.ServerKey) + "</key>\n" +
		"<extra-certs>\n" + string(pki.CA) + "</extra-certs>\n" +
		"<crl-verify>\n" + string(pki.CRL) + "</crl-verify>\n" +
		"key-direction 0\n<tls-auth>\n" + string(pki.StaticKey) + "</tls-auth>\n"
	s, err := ParseServer(strings.NewReader(conf), "inline.conf", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.CAFile != "[inline]" || string(s.Cert) != string(pki.ServerCert) || string(s.Key) != string(pki.ServerKey) ||
		string(s.ExtraCerts) != string(pki.CA) || string(s.CRLVerify) != string(pki.CRL) ||
		string(s.TLSAuth) != string(pki.StaticKey) || s.KeyDirection != 0 || len(s.Warnings) != 0 {
		t.Errorf("unexpected %+v", s)
	}
	cert, err := s.Certificate()
	if err != nil || len(cert.Certificate) != 2 {
		t.Fatalf("certificate: %v", err)
	}
	opts, err := s.CertCheckOptions()
	if err != nil || len(opts.CRLs) != 1 {
		t.Fatalf("cert check options: %v %+v", err, opts)
	}
	_, err = ParseServer(strings.NewReader("server 10.8.0.0 255.255.255.0\n<dh>\nx\n</dh>\n"), "inline.conf", "")
	if err == nil || !strings.HasPrefix(err.Error(), "inline.conf:2: dh: inline block <dh> is not supported") {
		t.Fatalf("inline dh: %v", err)
	}
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		proto, addr string
		want        string // "PROTO ADDR" or "error: substring"
	}{
		{"udp", "10.0.0.1:1194", "udp 10.0.0.1:1194"},
		{"udp4", "10.0.0.1:1194", "udp4 10.0.0.1:1194"},
		{"udp6", "[fd00::1]:1194", "udp6 [fd00::1]:1194"},
		{"udp", "[::]:1194", "udp [::]:1194"},
		{"udp", "[fe80::1%eth0]:1194", "udp [fe80::1%eth0]:1194"},
		{"tcp", "[fd00::1]:443", "tcp [fd00::1]:443"},
		{"tcp4", "192.0.2.1:443", "tcp4 192.0.2.1:443"},
		{"tcp6", "[2001:db8::1]:443", "tcp6 [2001:db8::1]:443"},
		{"udp", "*:1194", "udp [::]:1194"},
		{"udp4", "*:1194", "udp4 0.0.0.0:1194"},
		{"udp6", "*:1194", "udp6 [::]:1194"},
		{"tcp", "*:443", "tcp [::]:443"},
		{"tcp4", "*:443", "tcp4 0.0.0.0:443"},
		{"tcp6", "*:0", "tcp6 [::]:0"},
		{"udp4", "[::1]:1194", "error: udp4 needs an IPv4 address, got ::1"},
		{"tcp4", "[::ffff:10.0.0.1]:1194", "error: tcp4 needs an IPv4 address"},
		{"udp6", "10.0.0.1:1194", "error: udp6 needs an IPv6 address, got 10.0.0.1"},
		{"tcp6", "10.0.0.1:1194", "error: tcp6 needs an IPv6 address"},
		{"udp", "10.0.0.1", "error: want HOST:PORT"},
		{"udp", "fd00::1:1194", "error: want HOST:PORT"},
		{"udp", "[10.0.0.1]:1194", "error: brackets are only for IPv6 addresses"},
		{"udp", "[*]:1194", "error: brackets are only for IPv6 addresses"},
		{"udp", "vpn.example:1194", "error: HOST must be an IPv4 address, [IPv6] or *"},
		{"udp", ":1194", "error: HOST must be an IPv4 address, [IPv6] or *"},
		{"udp", "10.0.0.1:65536", "error: port: 65536 out of range 0..65535"},
		{"udp", "10.0.0.1:x", `error: port: "x" is not an integer`},
		{"udp", "10.0.0.1:-1", "error: out of range"},
		{"sctp", "*:1", `error: unknown protocol "sctp" (want udp, udp4, udp6, tcp, tcp4 or tcp6)`},
		{"tcp-server", "*:1", `error: unknown protocol "tcp-server"`},
		{"UDP", "*:1", `error: unknown protocol "UDP"`},
	}
	for _, tt := range tests {
		l, err := ParseListen(tt.proto, tt.addr)
		if msg, isErr := strings.CutPrefix(tt.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), msg) {
				t.Errorf("ParseListen(%q, %q) = %v, %v; want error containing %q", tt.proto, tt.addr, l, err, msg)
			}
			continue
		}
		if err != nil || l.String() != tt.want {
			t.Errorf("ParseListen(%q, %q) = %q, %v; want %q", tt.proto, tt.addr, l, err, tt.want)
		}
	}
}

// TestLabServerConfigs parses the interop lab's server configurations with a
// generated PKI laid out like the lab's make-pki.sh.
func TestLabServerConfigs(t *testing.T) {
	const labDir = "/work/shared/reference/openvpn-lab/conf"
	paths, _ := filepath.Glob("../../shared/reference/openvpn-lab/conf/server*.conf")
	if len(paths) == 0 {
		paths, _ = filepath.Glob(filepath.Join(labDir, "server*.conf"))
	}
	if len(paths) == 0 {
		t.Skip("lab configs not available")
	}
	dir := t.TempDir()
	pki := newPKI(t)
	pki.write(t, dir)
	pf := netip.MustParsePrefix
	sec := time.Second
	type want struct {
		dev          string
		listen       Listen
		net4, net6   string
		crypt, auth  bool
		keyDir       int
		digest       string
		een          int
		renegSec     time.Duration
		renegSecMin  time.Duration
		errSubstring string // a config weft rejects: "LINE: directive: message"
	}
	wants := map[string]want{
		"server.conf": {dev: "tun", listen: lp("udp", "10.200.0.1:1194"), net4: "10.8.0.0/24", net6: "fd00:8::/64",
			crypt: true, keyDir: KeyDirNone, digest: "SHA1", een: 1, renegSec: 3600 * sec, renegSecMin: 3240 * sec},
		"server-plain.conf": {dev: "tunp", listen: lp("udp", "10.200.0.1:1199"), net4: "10.13.0.0/24", net6: "fd00:13::/64",
			keyDir: KeyDirNone, digest: "SHA1", een: 1, renegSec: 3600 * sec, renegSecMin: 3240 * sec},
		"server-reneg.conf": {dev: "tunr", listen: lp("udp", "10.200.0.1:1196"), net4: "10.10.0.0/24", net6: "fd00:10::/64",
			crypt: true, keyDir: KeyDirNone, digest: "SHA1", een: 1, renegSec: 12 * sec, renegSecMin: 10800 * time.Millisecond},
		"server-tcp-auth.conf": {dev: "tunt", listen: lp("tcp", "10.200.0.1:1197"), net4: "10.11.0.0/24", net6: "fd00:11::/64",
			auth: true, keyDir: 0, digest: "SHA256", renegSec: 3600 * sec, renegSecMin: 3240 * sec},
		"server-tc2.conf": {errSubstring: ":13: tls-crypt-v2: not supported by weft yet"},
	}
	for _, src := range paths {
		base := filepath.Base(src)
		t.Run(base, func(t *testing.T) {
			w, ok := wants[base]
			if !ok {
				t.Skipf("no expectations for %s", base)
			}
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, base)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := ParseServerFile(path)
			if w.errSubstring != "" {
				var ce *Error
				if !errors.As(err, &ce) || !errors.Is(err, ErrUnsupported) || !strings.HasPrefix(err.Error(), path+w.errSubstring) {
					t.Fatalf("error = %v, want %s%s", err, path, w.errSubstring)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Dev != w.dev || !reflect.DeepEqual(s.Listens, []Listen{w.listen}) || s.Network != pf(w.net4) || s.Network6 != pf(w.net6) ||
				s.Topology != "subnet" || s.DH != "none" || !s.ModeServer || !s.TLSServer ||
				(s.TLSCrypt != nil) != w.crypt || (s.TLSAuth != nil) != w.auth || s.KeyDirection != w.keyDir || s.Auth != w.digest ||
				!reflect.DeepEqual(s.DataCiphers, []string{"AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305"}) ||
				s.KeepaliveInterval != 10*sec || s.KeepaliveTimeout != 60*sec || s.Ping != 10*sec || s.PingRestart != 120*sec ||
				s.ExplicitExitNotify != w.een || s.Verb != 4 || s.RenegSec != w.renegSec || s.RenegSecMin != w.renegSecMin ||
				string(s.CA) != string(pki.CA) || string(s.Cert) != string(pki.ServerCert) || string(s.Key) != string(pki.ServerKey) ||
				len(s.Warnings) != 0 {
				t.Errorf("unexpected %s: %+v", base, s)
			}
		})
	}
}

func FuzzParseServer(f *testing.F) {
	dir := f.TempDir()
	pki := newPKI(f)
	pki.write(f, dir)
	if err := os.Mkdir(filepath.Join(dir, "ccd"), 0o755); err != nil {
		f.Fatal(err)
	}
	seeds := []string{
		baseServer,
		baseServer + "server-ipv6 fd00:8::/64\ntopology subnet\ntls-crypt pki/ta.key\nkeepalive 10 60\npush \"route 10.9.0.0 255.255.255.0\"\n",
		baseServer + "listen udp *:1194\nlisten tcp [::1]:443\nlisten udp4 10.0.0.1:0\n",
		baseServer + "proto tcp-server\nlocal 10.200.0.1\nport 443\nclient-config-dir ccd\nccd-exclusive\n",
		"server 10.8.0.0 255.255.255.0 nopool\nifconfig-pool 10.8.0.10 10.8.0.20\n",
		"server-ipv6 fd00::/64\n<ca>\n" + string(pki.CA) + "</ca>\n<cert>\n" + string(pki.ServerCert) + "</cert>\n<key>\n" + string(pki.ServerKey) + "</key>\n",
		"mode server\ntls-server\nroute 10.9.0.0 255.255.255.0\nroute-ipv6 fd01::/64\n",
		"setenv opt frob\nignore-unknown-option x\nx y\nverify-client-cert none\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseServer(strings.NewReader(in), "fuzz.conf", dir)
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		if !s.Network.IsValid() && !s.Network6.IsValid() || s.CA == nil || s.Cert == nil || s.Key == nil ||
			len(s.Listens) == 0 || (s.Topology != "subnet" && s.Topology != "net30") || !s.ModeServer || !s.TLSServer ||
			(s.TLSAuth != nil && s.TLSCrypt != nil) || s.RenegSecMin > s.RenegSec {
			t.Fatalf("accepted inconsistent config: %+v", s)
		}
		for _, l := range s.Listens {
			if !l.Addr.Addr().IsValid() || checkFamily(l.Proto, l.Addr.Addr()) != nil {
				t.Fatalf("bad listener %v", l)
			}
		}
	})
}
