package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// splitHostPort parses HOST:PORT as used by weft directives (socks-listen,
// forward, reverse-forward). HOST is an IPv4 address, an IPv6 address in
// brackets ("[2001:db8::1]:443") or a host name; PORT is a decimal number
// in minPort..65535.
func splitHostPort(what, s string, minPort int) (string, int, error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: want HOST:PORT, with IPv6 addresses in brackets, e.g. [2001:db8::1]:443", what, s)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%s %q: empty host", what, s)
	}
	if strings.HasPrefix(s, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return "", 0, fmt.Errorf("%s %q: brackets are only for IPv6 addresses", what, s)
		}
	} else if _, err := netip.ParseAddr(host); err != nil && !isHostName(host) {
		return "", 0, fmt.Errorf("%s %q: %q is neither an IP address nor a host name", what, s, host)
	}
	port, err := parseIntArg("port", ps, minPort, 65535)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", what, s, err)
	}
	return host, port, nil
}

// isHostName reports whether s is a plausible DNS host name: labels of
// letters, digits, '-' and '_' separated by dots.
func isHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Listen is one address a server accepts clients on (the listen directive,
// or proto/local/port when no listen is given).
type Listen struct {
	// Proto is udp, udp4, udp6, tcp, tcp4 or tcp6. "udp" and "tcp" on the
	// IPv6 wildcard address are dual-stack.
	Proto string
	// Addr is the local address and port; the address is never a zero
	// netip.Addr (wildcards are 0.0.0.0 or ::). Port 0 asks the kernel for a
	// free port.
	Addr netip.AddrPort
}

// String returns "PROTO ADDR:PORT".
func (l Listen) String() string { return l.Proto + " " + l.Addr.String() }

var listenProtos = []string{"udp", "udp4", "udp6", "tcp", "tcp4", "tcp6"}

// wildcard returns the any-address for proto: 0.0.0.0 for the IPv4-only
// protocols, else :: (dual-stack for udp and tcp).
func wildcard(proto string) netip.Addr {
	if strings.HasSuffix(proto, "4") {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// checkFamily checks that addr suits proto's address family.
func checkFamily(proto string, a netip.Addr) error {
	switch {
	case strings.HasSuffix(proto, "4") && !a.Is4():
		return fmt.Errorf("%s needs an IPv4 address, got %s", proto, a)
	case strings.HasSuffix(proto, "6") && !a.Is6():
		return fmt.Errorf("%s needs an IPv6 address, got %s", proto, a)
	}
	return nil
}

// ParseListen parses the arguments of weft's listen directive:
// PROTO HOST:PORT, where PROTO is udp, udp4, udp6, tcp, tcp4 or tcp6 and
// HOST is an IPv4 address, an IPv6 address in brackets, or "*" for all
// addresses (0.0.0.0 for udp4/tcp4, [::] otherwise, which is dual-stack
// for udp and tcp). PORT may be 0 (any free port).
func ParseListen(proto, hostport string) (Listen, error) {
	if !slices.Contains(listenProtos, proto) {
		return Listen{}, fmt.Errorf("unknown protocol %q (want %s)", proto, orList(listenProtos))
	}
	host, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		return Listen{}, fmt.Errorf("address %q: want HOST:PORT, with HOST an IPv4 address, [IPv6] or *", hostport)
	}
	port, err := parseIntArg("port", ps, 0, 65535)
	if err != nil {
		return Listen{}, err
	}
	var a netip.Addr
	switch {
	case host == "*" && !strings.HasPrefix(hostport, "["):
		a = wildcard(proto)
	case strings.HasPrefix(hostport, "["):
		if a, err = netip.ParseAddr(host); err != nil || !a.Is6() {
			return Listen{}, fmt.Errorf("address %q: brackets are only for IPv6 addresses", hostport)
		}
	default:
		if a, err = netip.ParseAddr(host); err != nil || !a.Is4() {
			return Listen{}, fmt.Errorf("address %q: HOST must be an IPv4 address, [IPv6] or *", hostport)
		}
	}
	if err := checkFamily(proto, a); err != nil {
		return Listen{}, err
	}
	return Listen{Proto: proto, Addr: netip.AddrPortFrom(a, uint16(port))}, nil
}

// parseIPv4 parses an IPv4 address literal.
func parseIPv4(what, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%s %q is not an IPv4 address", what, s)
	}
	return a, nil
}

// ParseNetmask parses a dotted IPv4 netmask (such as 255.255.255.0) and
// returns its prefix length; the mask must be contiguous.
func ParseNetmask(s string) (int, error) {
	a, err := parseIPv4("netmask", s)
	if err != nil {
		return 0, err
	}
	b := a.As4()
	ones, bits := net.IPMask(b[:]).Size()
	if bits == 0 {
		return 0, fmt.Errorf("netmask %q is not contiguous", s)
	}
	return ones, nil
}

// ParseIPv4Net parses an IPv4 network given as address and dotted netmask.
// With exact, host bits set in the address are an error; otherwise they
// are cleared.
func ParseIPv4Net(network, netmask string, exact bool) (netip.Prefix, error) {
	a, err := parseIPv4("network", network)
	if err != nil {
		return netip.Prefix{}, err
	}
	bits, err := ParseNetmask(netmask)
	if err != nil {
		return netip.Prefix{}, err
	}
	pf := netip.PrefixFrom(a, bits)
	if exact && pf.Masked().Addr() != a {
		return netip.Prefix{}, fmt.Errorf("network %s and netmask %s are inconsistent (host bits set; did you mean %s?)", network, netmask, pf.Masked().Addr())
	}
	return pf.Masked(), nil
}

// ParseIPv6Net parses an IPv6 network NET/BITS. With exact, host bits set
// are an error; otherwise they are cleared.
func ParseIPv6Net(s string, exact bool) (netip.Prefix, error) {
	pf, err := netip.ParsePrefix(s)
	if err != nil || !pf.Addr().Is6() || pf.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv6 network (want ADDR/BITS)", s)
	}
	if exact && pf.Masked() != pf {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set (did you mean %s?)", s, pf.Masked())
	}
	return pf.Masked(), nil
}
