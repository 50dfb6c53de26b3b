package handlers

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"weft/config"
)

func writeCCD(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseCCD(t *testing.T) {
	pf := netip.MustParsePrefix
	ad := netip.MustParseAddr
	tests := []struct {
		name, content string
		want          *CCD
		wantErr       string // "LINE: directive: message substring"
	}{
		{"empty", "", &CCD{}, ""},
		{"comments", "# a comment\n; another\n\n", &CCD{}, ""},
		{"iroute", "iroute 10.9.0.0 255.255.255.0\niroute 192.168.7.1\niroute-ipv6 fd01::/64\n", &CCD{
			IRoutes: []netip.Prefix{pf("10.9.0.0/24"), pf("192.168.7.1/32"), pf("fd01::/64")}}, ""},
		{"iroute host bits masked", "iroute 10.9.0.5 255.255.255.0\niroute-ipv6 fd01::5/64\n", &CCD{
			IRoutes: []netip.Prefix{pf("10.9.0.0/24"), pf("fd01::/64")}}, ""},
		{"ifconfig-push", "ifconfig-push 10.8.0.50 255.255.255.0\nifconfig-ipv6-push fd00:8::50/64 fd00:8::1\n", &CCD{
			Ifconfig: ad("10.8.0.50"), IfconfigNet: ad("255.255.255.0"), Ifconfig6: pf("fd00:8::50/64")}, ""},
		{"ifconfig-push net30", "ifconfig-push 10.8.0.6 10.8.0.5\nifconfig-ipv6-push fd00:8::50/64\n", &CCD{
			Ifconfig: ad("10.8.0.6"), IfconfigNet: ad("10.8.0.5"), Ifconfig6: pf("fd00:8::50/64")}, ""},
		{"push", "push-reset\npush \"route 10.20.0.0 255.255.0.0\"\npush 'dhcp-option DNS 10.8.0.1'\n", &CCD{
			PushReset: true, Push: []string{"route 10.20.0.0 255.255.0.0", "dhcp-option DNS 10.8.0.1"}}, ""},
		{"disable", "disable\n", &CCD{Disable: true}, ""},
		{"leading dashes", "--disable\n", &CCD{Disable: true}, ""},

		{"iroute bad net", "\niroute 10.9.0.x 255.255.255.0\n", nil, `2: iroute: network "10.9.0.x" is not an IPv4 address`},
		{"iroute bad mask", "iroute 10.9.0.0 255.0.255.0\n", nil, `1: iroute: netmask "255.0.255.0" is not contiguous`},
		{"iroute v6", "iroute fd01:: 255.255.255.0\n", nil, "1: iroute: IPv6 networks need iroute-ipv6"},
		{"iroute args", "iroute\n", nil, "1: iroute: takes 1 to 2 arguments, got 0"},
		{"iroute-ipv6 bad", "iroute-ipv6 10.0.0.0/8\n", nil, `1: iroute-ipv6: "10.0.0.0/8" is not an IPv6 network`},
		{"iroute-ipv6 args", "iroute-ipv6 fd01::/64 x\n", nil, "1: iroute-ipv6: takes 1 argument, got 2"},
		{"ifconfig-push one", "ifconfig-push 10.8.0.50\n", nil, "1: ifconfig-push: takes 2 arguments, got 1"},
		{"ifconfig-push alias", "ifconfig-push 10.8.0.50 255.255.255.0 10.1.0.1\n", nil, "1: ifconfig-push: not supported by weft: the alias argument"},
		{"ifconfig-push name", "ifconfig-push client.example 255.255.255.0\n", nil, `1: ifconfig-push: local address "client.example" is not an IPv4 address`},
		{"ifconfig-push bad mask", "ifconfig-push 10.8.0.50 fd00::1\n", nil, `1: ifconfig-push: netmask or remote address "fd00::1" is not an IPv4 address`},
		{"ifconfig-ipv6-push bad", "ifconfig-ipv6-push fd00:8::50\n", nil, `1: ifconfig-ipv6-push: "fd00:8::50" is not an IPv6 ADDR/BITS`},
		{"ifconfig-ipv6-push bad remote", "ifconfig-ipv6-push fd00:8::50/64 10.8.0.1\n", nil, `1: ifconfig-ipv6-push: remote "10.8.0.1" is not an IPv6 address`},
		{"push unquoted", "push route 10.0.0.0 255.0.0.0\n", nil, "1: push: takes 1 argument, got 3"},
		{"push empty", "push \"  \"\n", nil, "1: push: empty or multi-line option"},
		{"push unparsable", "push \"route 'x\"\n", nil, `1: push: option "route 'x" cannot be parsed by the client`},
		{"push-reset args", "push-reset now\n", nil, "1: push-reset: takes 0 arguments, got 1"},
		{"unknown", "\n\ncomp-lzo yes\n", nil, "3: comp-lzo: unknown directive: not valid in a client-config-dir file"},
		{"server directive", "client-to-client\n", nil, "1: client-to-client: unknown directive"},
		{"inline", "<ca>\nx\n</ca>\n", nil, "1: ca: inline block <ca> is not valid"},
		{"lex error", "push \"unterminated\n", nil, "1: no closing quotation mark"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCCD([]byte(tt.content), "ccd/alice")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.File != "ccd/alice" || !strings.HasPrefix(err.Error(), "ccd/alice:"+tt.wantErr) {
				t.Fatalf("error = %v, want prefix %q", err, "ccd/alice:"+tt.wantErr)
			}
		})
	}
}

func TestLoadCCD(t *testing.T) {
	dir := t.TempDir()
	writeCCD(t, dir, "alice", "ifconfig-push 10.8.0.50 255.255.255.0\niroute 10.9.0.0 255.255.255.0\n")
	writeCCD(t, dir, "bob", "disable\n")
	writeCCD(t, dir, "broken", "ifconfig-push 10.8.0.50\n")
	writeCCD(t, dir, "a_b_c", "push \"route 10.30.0.0 255.255.0.0\"\n")
	writeCCD(t, dir, "carol@example.com", "push-reset\n")
	if err := os.Mkdir(filepath.Join(dir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}

	lookup := LoadCCD(dir, false)
	ccd, err := lookup("alice")
	if err != nil || ccd.Ifconfig != netip.MustParseAddr("10.8.0.50") || len(ccd.IRoutes) != 1 {
		t.Fatalf("alice: %+v %v", ccd, err)
	}
	if ccd, err := lookup("bob"); err != nil || !ccd.Disable {
		t.Fatalf("bob: %+v %v", ccd, err)
	}
	if ccd, err := lookup("nobody"); err != nil || ccd != nil {
		t.Fatalf("missing file without DEFAULT: %+v %v", ccd, err)
	}
	// Characters outside OpenVPN's class are replaced by '_'.
	if ccd, err := lookup("a b,c"); err != nil || len(ccd.Push) != 1 {
		t.Fatalf("remapped name: %+v %v", ccd, err)
	}
	if ccd, err := lookup("carol@example.com"); err != nil || !ccd.PushReset {
		t.Fatalf("name with @: %+v %v", ccd, err)
	}
	// A broken file is an error naming the file and line.
	_, err = lookup("broken")
	var ce *config.Error
	if !errors.As(err, &ce) || ce.File != filepath.Join(dir, "broken") || ce.Line != 1 || ce.Directive != "ifconfig-push" {
		t.Fatalf("broken: %v", err)
	}
	if _, err := lookup("dir"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: %v", err)
	}
	// Path separators and dot names are refused, never looked up.
	writeCCD(t, filepath.Dir(dir), "outside", "disable\n")
	for _, cn := range []string{"", ".", "..", "../outside", "a/b", `a\b`, "a\x00b", "/etc/passwd"} {
		if ccd, err := lookup(cn); !errors.Is(err, ErrBadCommonName) || ccd != nil {
			t.Errorf("CN %q: %+v %v, want ErrBadCommonName", cn, ccd, err)
		}
	}
	// DEFAULT applies to clients without a file.
	writeCCD(t, dir, "DEFAULT", "push \"route 10.99.0.0 255.255.0.0\"\n")
	if ccd, err := lookup("nobody"); err != nil || ccd == nil || ccd.Push[0] != "route 10.99.0.0 255.255.0.0" {
		t.Fatalf("DEFAULT: %+v %v", ccd, err)
	}
	if ccd, err := lookup("alice"); err != nil || len(ccd.Push) != 0 {
		t.Fatalf("alice with DEFAULT present: %+v %v", ccd, err)
	}
	// Files are read at each lookup.
	writeCCD(t, dir, "alice", "disable\n")
	if ccd, err := lookup("alice"); err != nil || !ccd.Disable {
		t.Fatalf("edited alice: %+v %v", ccd, err)
	}

	// ccd-exclusive: no file of one's own means disabled, DEFAULT or not.
	excl := LoadCCD(dir, true)
	if ccd, err := excl("nobody"); err != nil || ccd == nil || !ccd.Disable {
		t.Fatalf("exclusive missing: %+v %v", ccd, err)
	}
	if ccd, err := excl("a b,c"); err != nil || ccd.Disable {
		t.Fatalf("exclusive present: %+v %v", ccd, err)
	}
	if _, err := excl(".."); !errors.Is(err, ErrBadCommonName) {
		t.Fatalf("exclusive ..: %v", err)
	}

	// A missing directory behaves like a missing file; an unreadable file is an error.
	if ccd, err := LoadCCD(filepath.Join(dir, "nope"), false)("alice"); err != nil || ccd != nil {
		t.Fatalf("missing dir: %+v %v", ccd, err)
	}
	big := strings.Repeat("# padding padding padding padding\n", maxCCDFile/32)
	writeCCD(t, dir, "big", big)
	if _, err := lookup("big"); err == nil || errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("big file: %v", err)
	}
}
