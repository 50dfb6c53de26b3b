package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const baseConfig = "client\nremote vpn.example\nca pki/ca.crt\ncert pki/client.crt\nkey pki/client.key\n"

// baseLines is the number of lines in baseConfig; extra lines start after it.
const baseLines = 5

func parseWith(t *testing.T, dir, extra string) (*Client, error) {
	t.Helper()
	return ParseClient(strings.NewReader(baseConfig+extra), "c.conf", dir)
}

func TestClientDefaults(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t)
	pki.write(t, dir)
	c, err := parseWith(t, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	want := NewClient()
	want.Name, want.Dir = "c.conf", dir
	want.TLSClient, want.Pull = true, true
	want.Remotes = []Remote{{Host: "vpn.example", Port: 1194, Proto: "udp"}}
	want.CA, want.CAFile = pki.CA, filepath.Join(dir, "pki/ca.crt")
	want.Cert, want.CertFile = pki.ClientCert, filepath.Join(dir, "pki/client.crt")
	want.Key, want.KeyFile = pki.ClientKey, filepath.Join(dir, "pki/client.key")
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	// Spot-check OpenVPN 2.6 defaults explicitly.
	if c.Port != 1194 || c.Proto != "udp" || c.HandWindow != 60*time.Second || c.TranWindow != time.Hour ||
		c.TLSTimeout != 2*time.Second || c.RenegSec != time.Hour || c.RenegSecMin != time.Hour ||
		c.ReplayWindow != 64 || c.ReplayWindowTime != 15*time.Second || c.ConnectRetry != time.Second ||
		c.ConnectRetryMax != 300*time.Second || c.Verb != 1 || c.PingRestart != 0 || c.KeyDirection != KeyDirNone ||
		strings.Join(c.DataCiphers, ":") != "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305" || c.Auth != "SHA1" ||
		c.TLSVersionMin != "1.2" || c.Dev != "tun" || c.DevType != "tun" || c.TunMTU != 1500 {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

func TestClientDirectives(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t)
	pki.write(t, dir)
	sec := time.Second
	type check func(c *Client) bool
	tests := []struct {
		name  string
		extra string
		ok    check
		// wantErr is the exact error location prefix plus a message substring,
		// separated by "|"; line numbers count from the base config.
		wantErr string
	}{
		// Mode and remotes.
		{"tls-client+pull", "pull\ntls-client\n", func(c *Client) bool { return c.TLSClient && c.Pull }, ""},
		{"leading dashes", "--remote b 1195 tcp\n", func(c *Client) bool { return c.Remotes[1] == Remote{"b", 1195, "tcp"} }, ""},
		{"remote port", "remote b 443\n", func(c *Client) bool { return c.Remotes[1] == Remote{"b", 443, "udp"} }, ""},
		{"remote proto", "remote b 443 tcp-client\n", func(c *Client) bool { return c.Remotes[1] == Remote{"b", 443, "tcp"} }, ""},
		{"remote inherits later port/proto", "port 1200\nproto tcp6-client\n", func(c *Client) bool {
			return c.Remotes[0] == Remote{"vpn.example", 1200, "tcp6"} && c.LPort == 1200
		}, ""},
		{"rport", "rport 1300\n", func(c *Client) bool { return c.Remotes[0].Port == 1300 && c.LPort == 0 }, ""},
		{"lport", "lport 0\n", func(c *Client) bool { return c.LPort == 0 }, ""},
		{"remote bad port", "remote b 0\n", nil, "c.conf:6: remote: |port: 0 out of range 1..65535"},
		{"remote bad port text", "remote b http\n", nil, `c.conf:6: remote: |port: "http" is not an integer`},
		{"remote bad proto", "remote b 1 sctp\n", nil, `c.conf:6: remote: |unknown protocol "sctp"`},
		{"remote server proto", "remote b 1 tcp-server\n", nil, `c.conf:6: remote: |server protocol`},
		{"remote too many", "remote b 1 udp x\n", nil, "c.conf:6: remote: |takes 1 to 3 arguments, got 4"},
		{"remote none", "remote\n", nil, "c.conf:6: remote: |takes 1 to 3 arguments, got 0"},
		{"remote-random", "remote-random\n", func(c *Client) bool { return c.RemoteRandom }, ""},
		{"remote-random args", "remote-random x\n", nil, "c.conf:6: remote-random: |takes 0 arguments, got 1"},
		{"proto udp4", "proto udp4\n", func(c *Client) bool { return c.Proto == "udp4" && c.Remotes[0].Proto == "udp4" }, ""},
		{"proto udp6", "proto udp6\n", func(c *Client) bool { return c.Proto == "udp6" }, ""},
		{"proto tcp", "proto tcp\n", func(c *Client) bool { return c.Proto == "tcp" }, ""},
		{"proto tcp4", "proto tcp4\n", func(c *Client) bool { return c.Proto == "tcp4" }, ""},
		{"proto tcp4-client", "proto tcp4-client\n", func(c *Client) bool { return c.Proto == "tcp4" }, ""},
		{"proto bad", "proto UDP\n", nil, `c.conf:6: proto: |unknown protocol "UDP"`},
		{"port bad", "\nport 70000\n", nil, "c.conf:7: port: |out of range"},
		{"nobind float", "nobind\nfloat\n", func(c *Client) bool { return c.Nobind && c.Float }, ""},
		{"resolv-retry", "resolv-retry 30\n", func(c *Client) bool { return c.ResolvRetry == "30" }, ""},
		{"resolv-retry infinite", "resolv-retry infinite\n", func(c *Client) bool { return c.ResolvRetry == "infinite" }, ""},
		{"resolv-retry bad", "resolv-retry forever\n", nil, "c.conf:6: resolv-retry: |not an integer"},
		{"server-poll-timeout", "server-poll-timeout 10\n", func(c *Client) bool { return c.ServerPollTimeout == 10*sec }, ""},
		{"connect-retry", "connect-retry 5\n", func(c *Client) bool { return c.ConnectRetry == 5*sec && c.ConnectRetryMax == 300*sec }, ""},
		{"connect-retry max", "connect-retry 5 60\n", func(c *Client) bool { return c.ConnectRetry == 5*sec && c.ConnectRetryMax == 60*sec }, ""},
		{"connect-retry max below", "connect-retry 5 2\n", nil, "c.conf:6: connect-retry: |max 2 is below 5"},
		{"connect-retry negative", "connect-retry -1\n", nil, "c.conf:6: connect-retry: |out of range"},
		{"connect-retry-max", "connect-retry-max 3\n", func(c *Client) bool { return c.ConnectRetryLimit == 3 }, ""},
		{"connect-retry-max 0", "connect-retry-max 0\n", nil, "c.conf:6: connect-retry-max: |out of range"},

		// Device.
		{"dev tun0", "dev tun0\n", func(c *Client) bool { return c.Dev == "tun0" && c.DevType == "tun" }, ""},
		{"dev name with type", "dev vpn0\ndev-type tun\n", func(c *Client) bool { return c.Dev == "vpn0" && c.DevType == "tun" }, ""},
		{"dev name without type", "dev vpn0\n", nil, `c.conf:6: dev: |add "dev-type tun"`},
		{"dev tap", "dev tap\n", nil, "c.conf:6: dev: |not supported by weft: tap devices"},
		{"dev-type tap", "dev-type tap\n", nil, "c.conf:6: dev-type: |not supported by weft: tap"},
		{"dev null", "dev null\n", nil, "c.conf:6: dev: |not supported"},
		{"tun-mtu", "tun-mtu 1400\n", func(c *Client) bool { return c.TunMTU == 1400 }, ""},
		{"tun-mtu bad", "tun-mtu 10\n", nil, "c.conf:6: tun-mtu: |out of range 68..65535"},
		{"mssfix", "mssfix 1400 mtu\n", func(c *Client) bool { return reflect.DeepEqual(c.MSSFix, []string{"1400", "mtu"}) }, ""},
		{"mssfix bare", "mssfix\n", func(c *Client) bool { return c.MSSFix != nil && len(c.MSSFix) == 0 }, ""},
		{"mssfix bad", "mssfix 1400 x\n", nil, `c.conf:6: mssfix: |unknown flag "x"`},
		{"fragment", "fragment 1300\n", nil, "c.conf:6: fragment: |not supported by weft: fragment"},
		{"bufs", "sndbuf 1000\nrcvbuf 2000\ntxqueuelen 100\n", func(c *Client) bool { return c.SndBuf == 1000 && c.RcvBuf == 2000 && c.TxQueueLen == 100 }, ""},
		{"sndbuf bad", "sndbuf x\n", nil, "c.conf:6: sndbuf: |not an integer"},

		// Credentials.
		{"ca missing file", "ca pki/nope.crt\n", nil, "c.conf:6: ca: |read " + filepath.Join(dir, "pki/nope.crt") + ": "},
		{"ca garbage", "ca pki/garbage.txt\n", nil, "c.conf:6: ca: |" + filepath.Join(dir, "pki/garbage.txt") + ": no PEM certificate found"},
		{"ca is dir", "ca pki\n", nil, "c.conf:6: ca: |not a regular file"},
		{"cert is key", "cert pki/client.key\n", nil, "c.conf:6: cert: |client.key: no PEM certificate found"},
		{"key is cert", "key pki/ca.crt\n", nil, "c.conf:6: key: |ca.crt: no PEM private key found"},
		{"key mismatch", "key pki/other.key\n", nil, "c.conf:6: key: |do not form a valid pair"},
		{"absolute path", "ca " + filepath.Join(dir, "pki/ca.crt") + "\n", func(c *Client) bool { return c.CAFile == filepath.Join(dir, "pki/ca.crt") }, ""},
		{"extra-certs", "extra-certs pki/ca.crt\n", func(c *Client) bool { return string(c.ExtraCerts) == string(pki.CA) }, ""},
		{"extra-certs bad", "extra-certs pki/ta.key\n", nil, "c.conf:6: extra-certs: |no PEM certificate"},
		{"crl-verify", "crl-verify pki/crl.pem\n", func(c *Client) bool { return string(c.CRLVerify) == string(pki.CRL) }, ""},
		{"crl-verify bad", "crl-verify pki/ca.crt\n", nil, "c.conf:6: crl-verify: |no PEM X509 CRL"},
		{"crl-verify dir", "crl-verify pki dir\n", nil, "c.conf:6: crl-verify: |not supported"},

		// Control channel.
		{"tls-crypt", "tls-crypt pki/ta.key\n", func(c *Client) bool { return string(c.TLSCrypt) == string(pki.StaticKey) && c.TLSAuth == nil }, ""},
		{"tls-crypt bad", "tls-crypt pki/ca.crt\n", nil, `c.conf:6: tls-crypt: |ca.crt: not an OpenVPN static key file`},
		{"tls-auth", "tls-auth pki/ta.key 1\n", func(c *Client) bool { return c.TLSAuth != nil && c.KeyDirection == 1 }, ""},
		{"tls-auth no dir", "tls-auth pki/ta.key\n", func(c *Client) bool { return c.TLSAuth != nil && c.KeyDirection == KeyDirNone }, ""},
		{"tls-auth key-direction", "key-direction 0\ntls-auth pki/ta.key\n", func(c *Client) bool { return c.KeyDirection == 0 }, ""},
		{"tls-auth bad dir", "tls-auth pki/ta.key 2\n", nil, `c.conf:6: tls-auth: |key direction must be 0 or 1, got "2"`},
		{"key-direction bad", "key-direction x\n", nil, `c.conf:6: key-direction: |must be 0 or 1`},
		{"tls-auth and tls-crypt", "tls-auth pki/ta.key 1\ntls-crypt pki/ta.key\n", nil, "c.conf:7: tls-crypt: |mutually exclusive"},
		{"tls-auth with auth none", "tls-auth pki/ta.key 1\nauth none\n", nil, `c.conf:7: auth: |tls-auth needs an HMAC digest`},
		{"tls-crypt-v2", "tls-crypt-v2 pki/ta.key\n", nil, "c.conf:6: tls-crypt-v2: |not supported by weft yet"},
		{"secret", "secret pki/ta.key\n", nil, "c.conf:6: secret: |static-key mode"},

		// Data channel.
		{"cipher", "cipher AES-256-CBC\n", func(c *Client) bool { return c.Cipher == "AES-256-CBC" }, ""},
		{"cipher bad", "cipher FOO\n", nil, `c.conf:6: cipher: |unknown cipher "FOO"`},
		{"data-ciphers", "data-ciphers chacha20-poly1305:AES-128-GCM\n", func(c *Client) bool {
			return reflect.DeepEqual(c.DataCiphers, []string{"CHACHA20-POLY1305", "AES-128-GCM"})
		}, ""},
		{"data-ciphers optional", "data-ciphers ?FOO-GCM:AES-192-GCM\n", func(c *Client) bool { return reflect.DeepEqual(c.DataCiphers, []string{"AES-192-GCM"}) }, ""},
		{"ncp-ciphers", "ncp-ciphers AES-256-GCM\n", func(c *Client) bool { return reflect.DeepEqual(c.DataCiphers, []string{"AES-256-GCM"}) }, ""},
		{"data-ciphers cbc", "data-ciphers AES-256-GCM:AES-256-CBC\n", nil, "c.conf:6: data-ciphers: |not supported by weft: cipher AES-256-CBC"},
		{"data-ciphers unknown", "data-ciphers FOO\n", nil, `c.conf:6: data-ciphers: |unknown cipher "FOO"`},
		{"data-ciphers empty item", "data-ciphers AES-256-GCM::AES-128-GCM\n", nil, `c.conf:6: data-ciphers: |empty cipher name`},
		{"data-ciphers all optional missing", "data-ciphers ?FOO\n", nil, `c.conf:6: data-ciphers: |no usable cipher`},
		{"fallback", "data-ciphers-fallback AES-128-GCM\n", func(c *Client) bool { return c.DataCiphersFallback == "AES-128-GCM" }, ""},
		{"fallback cbc", "data-ciphers-fallback BF-CBC\n", nil, "c.conf:6: data-ciphers-fallback: |not supported by weft: cipher BF-CBC"},
		{"auth", "auth sha256\n", func(c *Client) bool { return c.Auth == "SHA256" }, ""},
		{"auth dash", "auth SHA-512\n", func(c *Client) bool { return c.Auth == "SHA512" }, ""},
		{"auth bad", "auth MD5\n", nil, `c.conf:6: auth: |unsupported digest "MD5"`},

		// Verification.
		{"remote-cert-tls", "remote-cert-tls server\n", func(c *Client) bool { return c.RemoteCertTLS == "server" }, ""},
		{"remote-cert-tls bad", "remote-cert-tls peer\n", nil, `c.conf:6: remote-cert-tls: |want server or client, got "peer"`},
		{"ns-cert-type", "ns-cert-type server\n", func(c *Client) bool { return c.RemoteCertTLS == "server" && len(c.Warnings) == 1 }, ""},
		{"remote-cert-ku", "remote-cert-ku a0 88\n", func(c *Client) bool { return reflect.DeepEqual(c.RemoteCertKU, []uint32{0xa0, 0x88}) }, ""},
		{"remote-cert-ku bare", "remote-cert-ku\n", func(c *Client) bool { return c.RemoteCertKU != nil && len(c.RemoteCertKU) == 0 }, ""},
		{"remote-cert-ku bad", "remote-cert-ku zz\n", nil, `c.conf:6: remote-cert-ku: |key usage "zz"`},
		{"remote-cert-eku", "remote-cert-eku \"TLS Web Server Authentication\"\n", func(c *Client) bool { return c.RemoteCertEKU == "TLS Web Server Authentication" }, ""},
		{"verify-x509-name default", "verify-x509-name 'C=KG, CN=x'\n", func(c *Client) bool { return c.VerifyX509Name == "C=KG, CN=x" && c.VerifyX509Type == "subject" }, ""},
		{"verify-x509-name name", "verify-x509-name server name\n", func(c *Client) bool { return c.VerifyX509Type == "name" }, ""},
		{"verify-x509-name prefix", "verify-x509-name srv- name-prefix\n", func(c *Client) bool { return c.VerifyX509Type == "name-prefix" }, ""},
		{"verify-x509-name bad", "verify-x509-name server cn\n", nil, `c.conf:6: verify-x509-name: |unknown type "cn"`},

		// TLS.
		{"tls-version-min", "tls-version-min 1.3\n", func(c *Client) bool { return c.TLSVersionMin == "1.3" }, ""},
		{"tls-version-min or-highest", "tls-version-min 1.4 or-highest\n", func(c *Client) bool { return c.TLSVersionMin == "1.3" && c.TLSVersionMinOrHighest }, ""},
		{"tls-version-min bad", "tls-version-min 1.4\n", nil, `c.conf:6: tls-version-min: |unknown TLS version "1.4"`},
		{"tls-version-min bad flag", "tls-version-min 1.2 x\n", nil, `c.conf:6: tls-version-min: |unknown flag "x"`},
		{"tls-version-max", "tls-version-max 1.3\n", func(c *Client) bool { return c.TLSVersionMax == "1.3" }, ""},
		{"tls-version max<min", "tls-version-min 1.3\ntls-version-max 1.2\n", nil, "c.conf:7: tls-version-max: |below tls-version-min"},
		{"tls strings", "tls-cipher A:B\ntls-ciphersuites C\ntls-groups X25519:P-256\n", func(c *Client) bool {
			return c.TLSCipher == "A:B" && c.TLSCipherSuites == "C" && c.TLSGroups == "X25519:P-256"
		}, ""},
		{"windows", "hand-window 30\ntran-window 60\ntls-timeout 5\n", func(c *Client) bool {
			return c.HandWindow == 30*sec && c.TranWindow == 60*sec && c.TLSTimeout == 5*sec
		}, ""},
		{"hand-window 0", "hand-window 0\n", nil, "c.conf:6: hand-window: |out of range 1..2147483647"},
		{"reneg-sec", "reneg-sec 600\n", func(c *Client) bool { return c.RenegSec == 600*sec && c.RenegSecMin == 600*sec }, ""},
		{"reneg-sec min", "reneg-sec 600 300\n", func(c *Client) bool { return c.RenegSec == 600*sec && c.RenegSecMin == 300*sec }, ""},
		{"reneg-sec 0", "reneg-sec 0\n", func(c *Client) bool { return c.RenegSec == 0 }, ""},
		{"reneg-sec min>max", "reneg-sec 60 300\n", nil, "c.conf:6: reneg-sec: |min 300 is greater than max 60"},
		{"reneg-bytes pkts", "reneg-bytes 1000000\nreneg-pkts 5000\n", func(c *Client) bool { return c.RenegBytes == 1000000 && c.RenegPkts == 5000 }, ""},
		{"reneg-bytes bad", "reneg-bytes -1\n", nil, "c.conf:6: reneg-bytes: |out of range"},
		{"replay-window", "replay-window 128\n", func(c *Client) bool { return c.ReplayWindow == 128 && c.ReplayWindowTime == 15*sec }, ""},
		{"replay-window time", "replay-window 128 30\n", func(c *Client) bool { return c.ReplayWindowTime == 30*sec }, ""},
		{"replay-window bad", "replay-window 100000\n", nil, "c.conf:6: replay-window: |window size: 100000 out of range 0..65536"},
		{"replay-window bad time", "replay-window 64 601\n", nil, "c.conf:6: replay-window: |seconds: 601 out of range 0..600"},
		{"mute-replay-warnings", "mute-replay-warnings\n", func(c *Client) bool { return c.MuteReplayWarnings }, ""},

		// auth-user-pass.
		{"auth-user-pass", "auth-user-pass pki/up.txt\nauth-nocache\n", func(c *Client) bool {
			return c.AuthUserPass && c.Username == "alice" && c.Password == "secret" && c.AuthNoCache
		}, ""},
		{"auth-user-pass prompt", "auth-user-pass\n", nil, "c.conf:6: auth-user-pass: |weft is not interactive"},
		{"auth-user-pass no password", "auth-user-pass pki/garbage.txt\n", nil, "c.conf:6: auth-user-pass: |no password on line 2"},
		{"auth-user-pass missing", "auth-user-pass pki/none.txt\n", nil, "c.conf:6: auth-user-pass: |read " + filepath.Join(dir, "pki/none.txt")},

		// Keepalive.
		{"keepalive", "keepalive 10 60\n", func(c *Client) bool { return c.Ping == 10*sec && c.PingRestart == 60*sec }, ""},
		{"keepalive zero", "keepalive 10 0\n", nil, "c.conf:6: keepalive: |timeout: 0 out of range"},
		{"keepalive one arg", "keepalive 10\n", nil, "c.conf:6: keepalive: |takes 2 arguments, got 1"},
		{"keepalive with ping", "keepalive 10 60\nping 5\n", nil, "c.conf:7: ping: |conflicts with keepalive"},
		{"ping", "ping 5\nping-restart 30\nping-exit 120\n", func(c *Client) bool {
			return c.Ping == 5*sec && c.PingRestart == 30*sec && c.PingExit == 120*sec
		}, ""},
		{"ping bad", "ping x\n", nil, `c.conf:6: ping: |seconds: "x" is not an integer`},
		{"explicit-exit-notify", "explicit-exit-notify\n", func(c *Client) bool { return c.ExplicitExitNotify == 1 }, ""},
		{"explicit-exit-notify 3", "explicit-exit-notify 3\n", func(c *Client) bool { return c.ExplicitExitNotify == 3 }, ""},
		{"explicit-exit-notify bad", "explicit-exit-notify -3\n", nil, "c.conf:6: explicit-exit-notify: |out of range"},

		// Routing and push.
		{"route-nopull", "route-nopull\n", func(c *Client) bool { return c.RouteNoPull }, ""},
		{"pull-filter", "pull-filter ignore \"route \"\npull-filter accept x\n", func(c *Client) bool {
			return reflect.DeepEqual(c.PullFilters, []PullFilter{{"ignore", "route "}, {"accept", "x"}})
		}, ""},
		{"pull-filter bad", "pull-filter drop x\n", nil, `c.conf:6: pull-filter: |unknown action "drop"`},
		{"topology", "topology subnet\n", func(c *Client) bool { return c.Topology == "subnet" }, ""},
		{"topology bad", "topology star\n", nil, `c.conf:6: topology: |unknown topology "star"`},
		{"route", "route 10.0.0.0 255.0.0.0\nroute 192.168.0.0 255.255.0.0 vpn_gateway 5\n", func(c *Client) bool {
			return reflect.DeepEqual(c.Routes, []Route{{"10.0.0.0", "255.0.0.0", "", ""}, {"192.168.0.0", "255.255.0.0", "vpn_gateway", "5"}})
		}, ""},
		{"route too many", "route a b c d e\n", nil, "c.conf:6: route: |takes 1 to 4 arguments, got 5"},
		{"route-ipv6", "route-ipv6 2001:db8::/32\n", func(c *Client) bool { return c.RoutesIPv6[0].Network == "2001:db8::/32" }, ""},
		{"dhcp-option", "dhcp-option DNS 10.8.0.1\n", func(c *Client) bool { return reflect.DeepEqual(c.DHCPOptions, [][]string{{"DNS", "10.8.0.1"}}) }, ""},
		{"redirect-gateway", "redirect-gateway def1 bypass-dhcp\n", func(c *Client) bool { return reflect.DeepEqual(c.RedirectGateway, []string{"def1", "bypass-dhcp"}) }, ""},
		{"redirect-gateway bare", "redirect-gateway\n", func(c *Client) bool { return c.RedirectGateway != nil && len(c.RedirectGateway) == 0 }, ""},

		// Compression.
		{"comp-lzo", "comp-lzo\n", func(c *Client) bool { return c.CompLZO == "adaptive" }, ""},
		{"comp-lzo no", "comp-lzo no\n", func(c *Client) bool { return c.CompLZO == "no" }, ""},
		{"comp-lzo bad", "comp-lzo maybe\n", nil, `c.conf:6: comp-lzo: |unknown mode "maybe"`},
		{"compress", "compress\n", func(c *Client) bool { return c.Compress == "stub" }, ""},
		{"compress lz4-v2", "compress lz4-v2\n", func(c *Client) bool { return c.Compress == "lz4-v2" }, ""},
		{"compress bad", "compress zstd\n", nil, `c.conf:6: compress: |unknown algorithm "zstd"`},
		{"allow-compression", "allow-compression asym\n", func(c *Client) bool { return c.AllowCompression == "asym" }, ""},
		{"allow-compression bad", "allow-compression maybe\n", nil, "c.conf:6: allow-compression: |want yes, no or asym"},

		// Process.
		{"script-security", "script-security 2\n", func(c *Client) bool { return c.ScriptSecurity == 2 }, ""},
		{"script-security bad", "script-security 4\n", nil, "c.conf:6: script-security: |out of range 0..3"},
		{"up down", "up /etc/up.sh\ndown '/etc/down.sh arg'\n", func(c *Client) bool {
			return c.Up == "/etc/up.sh" && c.Down == "/etc/down.sh arg" && len(c.Warnings) == 2 && strings.Contains(c.Warnings[0], "c.conf:6: up: scripts are not run")
		}, ""},
		{"user group persist", "user nobody\ngroup nogroup\npersist-key\npersist-tun\n", func(c *Client) bool {
			return c.User == "nobody" && c.Group == "nogroup" && c.PersistKey && c.PersistTun
		}, ""},
		{"daemon", "daemon\n", func(c *Client) bool { return c.Daemon && strings.Contains(c.Warnings[0], "foreground") }, ""},
		{"askpass", "askpass\n", func(c *Client) bool { return c.AskPass == "stdin" }, ""},
		{"askpass file", "askpass pw.txt\n", func(c *Client) bool { return c.AskPass == filepath.Join(dir, "pw.txt") }, ""},
		{"fast-io disable-dco", "fast-io\ndisable-dco\n", func(c *Client) bool { return c.FastIO && c.DisableDCO }, ""},
		{"setenv", "setenv FOO \"bar baz\"\nsetenv EMPTY\n", func(c *Client) bool { return c.Setenv["FOO"] == "bar baz" && c.Setenv["EMPTY"] == "" }, ""},
		{"setenv too many", "setenv A b c\n", nil, "c.conf:6: setenv: |takes 1 to 2 arguments, got 3"},

		// Logging.
		{"verb mute", "verb 4\nmute 20\n", func(c *Client) bool { return c.Verb == 4 && c.Mute == 20 }, ""},
		{"verb bad", "verb 12\n", nil, "c.conf:6: verb: |out of range 0..11"},
		{"status", "status st.log 10\n", func(c *Client) bool { return c.Status == filepath.Join(dir, "st.log") && c.StatusInterval == 10*sec }, ""},
		{"log", "log /var/log/x.log\n", func(c *Client) bool { return c.Log == "/var/log/x.log" && !c.LogAppend }, ""},
		{"log-append", "log-append x.log\n", func(c *Client) bool { return c.Log == filepath.Join(dir, "x.log") && c.LogAppend }, ""},
		{"writepid", "writepid /run/w.pid\n", func(c *Client) bool { return c.WritePID == "/run/w.pid" }, ""},

		// weft directives.
		{"key-derivation default", "", func(c *Client) bool { return c.KeyDerivation == "tls-ekm" }, ""},
		{"key-derivation prf", "key-derivation prf\n", func(c *Client) bool { return c.KeyDerivation == "prf" }, ""},
		{"key-derivation tls-ekm", "key-derivation prf\nkey-derivation tls-ekm\n", func(c *Client) bool { return c.KeyDerivation == "tls-ekm" }, ""},
		{"key-derivation bad", "key-derivation hkdf\n", nil, `c.conf:6: key-derivation: |unknown method "hkdf" (want prf or tls-ekm)`},
		{"key-derivation none", "key-derivation\n", nil, "c.conf:6: key-derivation: |takes 1 argument, got 0"},
		{"tls-engine go", "tls-engine go\n", func(c *Client) bool { return c.TLSEngine == "go" }, ""},
		{"tls-engine openssl", "tls-engine openssl\n", func(c *Client) bool { return c.TLSEngine == "openssl" }, ""},
		{"tls-engine default", "", func(c *Client) bool { return c.TLSEngine == "" }, ""},
		{"tls-engine bad", "tls-engine boringssl\n", nil, `c.conf:6: tls-engine: |unknown TLS engine "boringssl"`},
		{"userspace", "userspace\n", func(c *Client) bool { return c.Userspace && len(c.Warnings) == 0 }, ""},
		{"userspace args", "userspace yes\n", nil, "c.conf:6: userspace: |takes 0 arguments, got 1"},
		{"socks-listen", "userspace\nsocks-listen 127.0.0.1:1080\n", func(c *Client) bool { return c.SocksListen == "127.0.0.1:1080" }, ""},
		{"socks-listen v6", "userspace\nsocks-listen [::1]:1080\n", func(c *Client) bool { return c.SocksListen == "[::1]:1080" }, ""},
		{"socks-listen name", "userspace\nsocks-listen localhost:0\n", func(c *Client) bool { return c.SocksListen == "localhost:0" }, ""},
		{"socks-listen without userspace", "socks-listen 127.0.0.1:1080\n", func(c *Client) bool {
			return len(c.Warnings) == 1 && c.Warnings[0] == "c.conf:6: socks-listen: has no effect without userspace"
		}, ""},
		{"socks-listen no port", "socks-listen 127.0.0.1\n", nil, `c.conf:6: socks-listen: |address "127.0.0.1": want HOST:PORT`},
		{"socks-listen bare v6", "socks-listen ::1:1080\n", nil, `c.conf:6: socks-listen: |want HOST:PORT, with IPv6 addresses in brackets`},
		{"socks-listen bracket v4", "socks-listen [127.0.0.1]:1080\n", nil, `c.conf:6: socks-listen: |brackets are only for IPv6`},
		{"socks-listen bad port", "socks-listen 127.0.0.1:70000\n", nil, `c.conf:6: socks-listen: |port: 70000 out of range 0..65535`},
		{"socks-listen bad host", "socks-listen a/b:1\n", nil, `c.conf:6: socks-listen: |"a/b" is neither an IP address nor a host name`},
		{"socks-listen empty host", "socks-listen :1080\n", nil, `c.conf:6: socks-listen: |empty host`},
		{"forward", "userspace\nforward tcp 127.0.0.1:8080 10.8.0.1:80\nforward udp [::1]:5353 [fd00:8::1]:53\n", func(c *Client) bool {
			return reflect.DeepEqual(c.Forwards, [][]string{{"tcp", "127.0.0.1:8080", "10.8.0.1:80"}, {"udp", "[::1]:5353", "[fd00:8::1]:53"}}) &&
				c.ReverseForwards == nil
		}, ""},
		{"forward dest name", "userspace\nforward tcp 127.0.0.1:8080 intranet.example:80\n", func(c *Client) bool { return c.Forwards[0][2] == "intranet.example:80" }, ""},
		{"forward bad proto", "forward sctp 127.0.0.1:1 10.0.0.1:1\n", nil, `c.conf:6: forward: |unknown protocol "sctp" (want tcp or udp)`},
		{"forward bad listen", "forward tcp 127.0.0.1 10.0.0.1:1\n", nil, `c.conf:6: forward: |listen address "127.0.0.1": want HOST:PORT`},
		{"forward bad dest", "forward tcp 127.0.0.1:1 fd00::1:80\n", nil, `c.conf:6: forward: |destination "fd00::1:80": want HOST:PORT, with IPv6 addresses in brackets`},
		{"forward dest port 0", "forward tcp 127.0.0.1:1 10.0.0.1:0\n", nil, `c.conf:6: forward: |destination "10.0.0.1:0": port: 0 out of range 1..65535`},
		{"forward args", "forward tcp 127.0.0.1:1\n", nil, "c.conf:6: forward: |takes 3 arguments, got 2"},
		{"reverse-forward", "userspace\nreverse-forward tcp 10.8.0.2:2222 127.0.0.1:22\nreverse-forward udp [fd00:8::2]:53 [::1]:53\n", func(c *Client) bool {
			return reflect.DeepEqual(c.ReverseForwards, [][]string{{"tcp", "10.8.0.2:2222", "127.0.0.1:22"}, {"udp", "[fd00:8::2]:53", "[::1]:53"}})
		}, ""},
		{"reverse-forward without userspace", "reverse-forward tcp 10.8.0.2:2222 127.0.0.1:22\n", func(c *Client) bool {
			return len(c.Warnings) == 1 && strings.HasPrefix(c.Warnings[0], "c.conf:6: reverse-forward: has no effect without userspace")
		}, ""},
		{"reverse-forward bad", "reverse-forward tcp [10.8.0.2]:2222 127.0.0.1:22\n", nil, `c.conf:6: reverse-forward: |brackets are only for IPv6`},
		{"comp-lzo async rejected", "comp-lzo async\n", nil, `c.conf:6: comp-lzo: |unknown mode "async" (want yes, no or adaptive)`},
		{"comp-lzo yes", "comp-lzo yes\n", func(c *Client) bool { return c.CompLZO == "yes" }, ""},
		{"keepalive ratio", "keepalive 10 15\n", nil, "c.conf:6: keepalive: |timeout 15 must be at least twice the interval 10"},
		{"keepalive 1:2", "keepalive 10 20\n", func(c *Client) bool { return c.Ping == 10*sec && c.PingRestart == 20*sec }, ""},
		{"server-only listen", "listen udp *:1194\n", nil, `c.conf:6: listen: |"listen" is a server directive`},
		{"server-only iroute", "iroute 10.0.0.0 255.0.0.0\n", nil, `c.conf:6: iroute: |"iroute" is a server directive`},

		// Unknown and ignored directives.
		{"unknown", "frobnicate 1\n", nil, "c.conf:6: frobnicate: |unknown directive"},
		{"unknown dashes", "--frobnicate\n", nil, "c.conf:6: frobnicate: |unknown directive"},
		{"server directive", "tls-server\n", nil, `c.conf:6: tls-server: |"tls-server" is a server directive`},
		{"ignore-unknown-option", "ignore-unknown-option frob block-outside-dns\nfrob 1\nblock-outside-dns\n", func(c *Client) bool {
			return len(c.Warnings) == 2 && c.Warnings[0] == `c.conf:7: frob: ignoring unknown directive "frob" (ignore-unknown-option)`
		}, ""},
		{"ignore-unknown-option is ordered", "frob 1\nignore-unknown-option frob\n", nil, "c.conf:6: frob: |unknown directive"},
		{"ignore-unknown-option does not hide errors", "ignore-unknown-option verb\nverb x\n", nil, "c.conf:7: verb: |not an integer"},
		{"ignore-unknown-option empty", "ignore-unknown-option\n", nil, "c.conf:6: ignore-unknown-option: |needs at least one"},
		{"setenv opt unknown", "setenv opt block-outside-dns\n", func(c *Client) bool { return len(c.Warnings) == 1 && len(c.Setenv) == 0 }, ""},
		{"setenv opt known", "setenv opt verb 3\n", func(c *Client) bool { return c.Verb == 3 }, ""},
		{"setenv opt known bad", "setenv opt verb x\n", nil, "c.conf:6: verb: |not an integer"},
		{"setenv opt empty", "setenv opt\n", nil, "c.conf:6: setenv: |setenv opt needs a directive"},
		{"forward compatible", "setenv FORWARD_COMPATIBLE 1\nfrob\n", func(c *Client) bool { return len(c.Warnings) == 1 }, ""},
		{"dh ignored", "dh dh.pem\n", func(c *Client) bool { return strings.Contains(c.Warnings[0], "c.conf:6: dh: ignoring") }, ""},
		{"empty inline cert", "<cert>\n</cert>\n", nil, "c.conf:6: cert: |no PEM certificate found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseWith(t, dir, tt.extra)
			checkParsed(t, tt.extra, c, err, tt.ok, tt.wantErr)
		})
	}
}

func TestClientSemantic(t *testing.T) {
	dir := t.TempDir()
	newPKI(t).write(t, dir)
	tests := []struct{ name, conf, want string }{
		{"not a client", "remote a\nca pki/ca.crt\ncert pki/client.crt\nkey pki/client.key\n", `c.conf:4: not a client configuration`},
		{"no remote", "client\nca pki/ca.crt\ncert pki/client.crt\nkey pki/client.key\n", `c.conf:4: no remote`},
		{"no ca", "client\nremote a\ncert pki/client.crt\nkey pki/client.key\n", `c.conf:4: no ca`},
		{"no creds", "client\nremote a\nca pki/ca.crt\n", `c.conf:3: no client credentials`},
		{"cert without key", "client\nremote a\nca pki/ca.crt\ncert pki/client.crt\n", `c.conf:4: cert: cert given without key`},
		{"key without cert", "client\nremote a\nca pki/ca.crt\nkey pki/client.key\n", `c.conf:4: key: key given without cert`},
		{"empty", "", `c.conf:0: not a client configuration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseClient(strings.NewReader(tt.conf), "c.conf", dir)
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error = %v, want prefix %q", err, tt.want)
			}
		})
	}
	// auth-user-pass alone is enough credentials.
	c, err := ParseClient(strings.NewReader("client\nremote a\nca pki/ca.crt\nauth-user-pass pki/up.txt\n"), "c.conf", dir)
	if err != nil || c.Cert != nil || c.Username != "alice" {
		t.Fatalf("auth-user-pass only: %v %+v", err, c)
	}
}

func TestClientInline(t *testing.T) {
	pki := newPKI(t)
	conf := "client\nremote 10.0.0.1 1194 udp\n" +
		"<ca>\n" + string(pki.CA) + "</ca>\n" +
		"<cert>\n" + string(pki.ClientCert) + "</cert>\n" +
		"<key>\n" + string(pki.ClientKey) + "</key>\n" +
		"key-direction 1\n" +
		"<tls-auth>\n" + string(pki.StaticKey) + "</tls-auth>\n" +
		"<auth-user-pass>\nbob\npw with spaces\n</auth-user-pass>\n" +
		"<extra-certs>\n" + string(pki.CA) + "</extra-certs>\n"
	c, err := ParseClient(strings.NewReader(conf), "inline.ovpn", "")
	if err != nil {
		t.Fatal(err)
	}
	if string(c.CA) != string(pki.CA) || string(c.Cert) != string(pki.ClientCert) || string(c.Key) != string(pki.ClientKey) ||
		string(c.TLSAuth) != string(pki.StaticKey) || string(c.ExtraCerts) != string(pki.CA) {
		t.Error("inline content not kept verbatim")
	}
	if c.CAFile != "[inline]" || c.KeyDirection != 1 || c.Username != "bob" || c.Password != "pw with spaces" {
		t.Errorf("unexpected %+v", c)
	}
	// tls-crypt inline, and an inline block that is not terminated.
	conf2 := "client\nremote a\n<ca>\n" + string(pki.CA) + "</ca>\n<cert>\n" + string(pki.ClientCert) + "</cert>\n<key>\n" +
		string(pki.ClientKey) + "</key>\n<tls-crypt>\n" + string(pki.StaticKey) + "</tls-crypt>\n"
	c, err = ParseClient(strings.NewReader(conf2), "x", "")
	if err != nil || string(c.TLSCrypt) != string(pki.StaticKey) {
		t.Fatalf("tls-crypt inline: %v", err)
	}
	_, err = ParseClient(strings.NewReader("client\nremote a\n\n<tls-crypt>\n"+string(pki.StaticKey)), "x.ovpn", "")
	if err == nil || err.Error() != "x.ovpn:4: tls-crypt: inline block <tls-crypt> is not terminated by </tls-crypt>" {
		t.Fatalf("unterminated: %v", err)
	}
	_, err = ParseClient(strings.NewReader("client\nremote a\n<tls-crypt>\nnot a key\n</tls-crypt>\n"), "x.ovpn", "")
	if err == nil || !strings.HasPrefix(err.Error(), "x.ovpn:3: tls-crypt: [inline]: not an OpenVPN static key") {
		t.Fatalf("bad inline key: %v", err)
	}
	_, err = ParseClient(strings.NewReader("client\nremote a\n<auth-user-pass>\nbob\n</auth-user-pass>\n"), "x.ovpn", "")
	if err == nil || !strings.HasPrefix(err.Error(), "x.ovpn:3: auth-user-pass: [inline]: no password on line 2") {
		t.Fatalf("inline auth-user-pass: %v", err)
	}
}

// TestLabClientConfig parses the interop lab's client.conf with a generated
// PKI laid out like the lab's make-pki.sh.
func TestLabClientConfig(t *testing.T) {
	const lab = "../../shared/reference/openvpn-lab/conf/client.conf"
	src, err := os.ReadFile(lab)
	if err != nil {
		src, err = os.ReadFile("/work/shared/reference/openvpn-lab/conf/client.conf")
	}
	if err != nil {
		t.Skipf("lab config not available: %v", err)
	}
	dir := t.TempDir()
	pki := newPKI(t)
	pki.write(t, dir)
	path := filepath.Join(dir, "client.conf")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ParseClientFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLSClient || !c.Pull || !c.Nobind || c.Dev != "tun" || c.Proto != "udp" ||
		!reflect.DeepEqual(c.Remotes, []Remote{{"10.200.0.1", 1194, "udp"}}) ||
		string(c.CA) != string(pki.CA) || string(c.Cert) != string(pki.ClientCert) || string(c.Key) != string(pki.ClientKey) ||
		string(c.TLSCrypt) != string(pki.StaticKey) || c.RemoteCertTLS != "server" ||
		!reflect.DeepEqual(c.DataCiphers, []string{"AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305"}) ||
		c.ExplicitExitNotify != 1 || c.Verb != 4 || len(c.Warnings) != 0 {
		t.Errorf("unexpected lab config: %+v", c)
	}
	// A missing referenced file names the config line and the file.
	if err := os.Remove(filepath.Join(dir, "pki", "ta.key")); err != nil {
		t.Fatal(err)
	}
	_, err = ParseClientFile(path)
	var ce *Error
	if !errors.As(err, &ce) || ce.File != path || ce.Directive != "tls-crypt" || !errors.Is(err, os.ErrNotExist) ||
		!strings.Contains(err.Error(), filepath.Join(dir, "pki", "ta.key")) {
		t.Fatalf("missing ta.key: %v", err)
	}
	if _, err := ParseClientFile(filepath.Join(dir, "nope.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing config: %v", err)
	}
}

func FuzzParseClient(f *testing.F) {
	dir := f.TempDir()
	pki := newPKI(f)
	pki.write(f, dir)
	seeds := []string{
		baseConfig,
		baseConfig + "tls-crypt pki/ta.key\nremote b 443 tcp\nkeepalive 10 60\n",
		"client\nremote a\n<ca>\n" + string(pki.CA) + "</ca>\n<cert>\n" + string(pki.ClientCert) + "</cert>\n<key>\n" + string(pki.ClientKey) + "</key>\n",
		"client\n<ca>\nx\n",
		"setenv opt frob\nignore-unknown-option x\nx y\n",
		"remote \"a b\" 'c' \\ d # e\n",
		"<auth-user-pass>\na\nb\n</auth-user-pass>\n",
		"tls-auth pki/ta.key 1\nkey-direction 0\ndata-ciphers ?X:AES-128-GCM\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseClient(strings.NewReader(s), "fuzz.conf", dir)
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		if len(c.Remotes) == 0 || c.CA == nil || !c.TLSClient {
			t.Fatalf("accepted incomplete config: %+v", c)
		}
	})
}

// checkParsed checks the result of parsing a config with extra lines: with wantErr
// empty, no error and ok(v); else an *Error whose text starts with the location
// before "|" in wantErr and contains the message after it.
func checkParsed[T any](t *testing.T, extra string, v T, err error, ok func(T) bool, wantErr string) {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if !ok(v) {
			t.Fatalf("check failed for %q: %+v", extra, v)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error for %q", extra)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not *Error", err, err)
	}
	loc, msg, _ := strings.Cut(wantErr, "|")
	if !strings.HasPrefix(err.Error(), loc) || !strings.Contains(err.Error()[len(loc):], msg) {
		t.Fatalf("error = %q, want prefix %q containing %q", err, loc, msg)
	}
}

// checkFuzzError checks that a config the fuzzers fed as "fuzz.conf" was refused
// with an *Error naming that file and a valid line.
func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not *Error", err, err)
	}
	if ce.File != "fuzz.conf" || ce.Line < 0 {
		t.Fatalf("bad location in %v", err)
	}
}
