package handlers

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"weft/config"
)

// maxCCDFile bounds the size of a client-config-dir file.
const maxCCDFile = 1 << 20

// CCDDefault is the file used for clients without a file of their own.
const CCDDefault = "DEFAULT"

// ErrBadCommonName is returned by a client-config-dir lookup for a common
// name that cannot safely name a file.
var ErrBadCommonName = errors.New("common name cannot name a client-config-dir file")

// LoadCCD returns a client-config-dir lookup for ServerParams.CCD. Each
// call reads dir/CN afresh, so files may be edited while the server runs
// (as with OpenVPN). A client without a file of its own gets dir/DEFAULT
// when that exists, else no entry (nil, nil). With exclusive
// (ccd-exclusive) a client without a file of its own is disabled (DEFAULT
// does not count).
//
// Common names that are empty, "." or "..", or contain '/', '\\' or NUL are
// rejected with ErrBadCommonName; other characters outside OpenVPN's class
// for CCD file names (letters, digits, '_', '-', '.', '@') are replaced by
// '_', as OpenVPN does.
//
// A file may contain iroute NET [MASK], iroute-ipv6 NET/BITS,
// ifconfig-push LOCAL MASK|REMOTE, ifconfig-ipv6-push ADDR/BITS [REMOTE],
// push "OPTION", push-reset and disable. Anything else is an error located
// at the file and line (a *config.Error); the server then refuses the
// client.
func LoadCCD(dir string, exclusive bool) func(cn string) (*CCD, error) {
	return func(cn string) (*CCD, error) {
		name, err := ccdFileName(cn)
		if err != nil {
			return nil, err
		}
		ccd, err := readCCD(filepath.Join(dir, name))
		if !errors.Is(err, fs.ErrNotExist) {
			return ccd, err
		}
		if exclusive {
			return &CCD{Disable: true}, nil
		}
		ccd, err = readCCD(filepath.Join(dir, CCDDefault))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return ccd, err
	}
}

// ccdFileName maps a common name to its client-config-dir file name.
func ccdFileName(cn string) (string, error) {
	if cn == "" || cn == "." || cn == ".." || strings.ContainsAny(cn, "/\\\x00") {
		return "", fmt.Errorf("%w: %q", ErrBadCommonName, cn)
	}
	b := []byte(cn)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '@') {
			b[i] = '_'
		}
	}
	return string(b), nil
}

// readCCD reads and parses one client-config-dir file. A missing file is
// an error wrapping fs.ErrNotExist.
func readCCD(path string) (*CCD, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("client-config-dir: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("client-config-dir: %s: not a regular file", path)
	}
	if st.Size() > maxCCDFile {
		return nil, fmt.Errorf("client-config-dir: %s: larger than %d bytes", path, maxCCDFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client-config-dir: %w", err)
	}
	return ParseCCD(data, path)
}

// ccdArgs gives the allowed argument counts of the CCD directives.
var ccdArgs = map[string][2]int{
	"iroute":             {1, 2},
	"iroute-ipv6":        {1, 1},
	"ifconfig-push":      {2, 2},
	"ifconfig-ipv6-push": {1, 2},
	"push":               {1, 1},
	"push-reset":         {0, 0},
	"disable":            {0, 0},
}

// ParseCCD parses the content of a client-config-dir file; name locates
// errors, which are *config.Error.
func ParseCCD(data []byte, name string) (*CCD, error) {
	ds, err := config.Lex(bytes.NewReader(data), name)
	if err != nil {
		return nil, err
	}
	c := &CCD{}
	for _, d := range ds {
		if err := c.apply(d); err != nil {
			return nil, &config.Error{File: d.File, Line: d.Line, Directive: d.Name, Err: err}
		}
	}
	return c, nil
}

func (c *CCD) apply(d config.Directive) error {
	if d.Inline {
		return fmt.Errorf("inline block <%s> is not valid in a client-config-dir file", d.Name)
	}
	n, ok := ccdArgs[d.Name]
	if !ok {
		return fmt.Errorf("%w: not valid in a client-config-dir file (weft supports iroute, iroute-ipv6, ifconfig-push, ifconfig-ipv6-push, push, push-reset and disable)", config.ErrUnknownDirective)
	}
	a := d.Args
	if len(a) < n[0] || len(a) > n[1] {
		if d.Name == "ifconfig-push" && len(a) == 3 {
			return fmt.Errorf("%w: the alias argument of ifconfig-push", config.ErrUnsupported)
		}
		return fmt.Errorf("takes %s, got %d", argRange(n), len(a))
	}
	switch d.Name {
	case "iroute":
		mask := "255.255.255.255"
		if len(a) == 2 {
			mask = a[1]
		}
		if ip, err := netip.ParseAddr(a[0]); err == nil && ip.Is6() {
			return errors.New("IPv6 networks need iroute-ipv6 NET/BITS")
		}
		pf, err := config.ParseIPv4Net(a[0], mask, false)
		if err != nil {
			return err
		}
		c.IRoutes = append(c.IRoutes, pf)
	case "iroute-ipv6":
		pf, err := config.ParseIPv6Net(a[0], false)
		if err != nil {
			return err
		}
		c.IRoutes = append(c.IRoutes, pf)
	case "ifconfig-push":
		local, err := netip.ParseAddr(a[0])
		if err != nil || !local.Is4() {
			return fmt.Errorf("local address %q is not an IPv4 address", a[0])
		}
		second, err := netip.ParseAddr(a[1])
		if err != nil || !second.Is4() {
			return fmt.Errorf("netmask or remote address %q is not an IPv4 address", a[1])
		}
		c.Ifconfig, c.IfconfigNet = local, second
	case "ifconfig-ipv6-push":
		pf, err := netip.ParsePrefix(a[0])
		if err != nil || !pf.Addr().Is6() || pf.Addr().Is4In6() {
			return fmt.Errorf("%q is not an IPv6 ADDR/BITS", a[0])
		}
		if len(a) == 2 {
			if r, err := netip.ParseAddr(a[1]); err != nil || !r.Is6() {
				return fmt.Errorf("remote %q is not an IPv6 address", a[1])
			}
		}
		c.Ifconfig6 = pf
	case "push":
		opt := a[0]
		if strings.TrimSpace(opt) == "" || strings.ContainsAny(opt, "\r\n\x00") {
			return errors.New("empty or multi-line option")
		}
		if toks, err := config.Tokenize(opt); err != nil || len(toks) == 0 {
			return fmt.Errorf("option %q cannot be parsed by the client", opt)
		}
		c.Push = append(c.Push, opt)
	case "push-reset":
		c.PushReset = true
	case "disable":
		c.Disable = true
	}
	return nil
}

func argRange(n [2]int) string {
	switch {
	case n[0] == 1 && n[1] == 1:
		return "1 argument"
	case n[0] == n[1]:
		return fmt.Sprintf("%d arguments", n[0])
	}
	return fmt.Sprintf("%d to %d arguments", n[0], n[1])
}
