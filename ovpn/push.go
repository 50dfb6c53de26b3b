package ovpn

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"weft/compress"
	"weft/config"
)

// Route4 is a pushed IPv4 route.
type Route4 struct {
	Net     netip.Prefix
	Gateway netip.Addr // invalid: the route-gateway or the VPN peer
	Metric  int
}

// Route6 is a pushed IPv6 route.
type Route6 struct {
	Net     netip.Prefix
	Gateway netip.Addr
	Metric  int
}

// Pushed holds the options a server pushed (§13.2). Options weft does not act on are
// kept in Ignored so they can be logged.
type Pushed struct {
	// Topology is "subnet", "net30" or "p2p" ("" when not pushed: net30 is assumed).
	Topology string
	// Local is the tunnel IPv4 address; Netmask (subnet) or Remote (net30/p2p) come
	// with it.
	Local   netip.Addr
	Netmask netip.Addr
	Remote  netip.Addr
	// Local6 is the tunnel IPv6 address and prefix; Remote6 the IPv6 next hop.
	Local6  netip.Prefix
	Remote6 netip.Addr
	// RouteGateway is the default gateway for pushed routes (subnet topology).
	RouteGateway netip.Addr
	// RouteGatewayDHCP is set for "route-gateway dhcp".
	RouteGatewayDHCP bool
	Routes           []Route4
	Routes6          []Route6
	// RedirectGateway holds the flags of redirect-gateway (nil when not pushed).
	RedirectGateway []string
	// DHCPOptions holds each dhcp-option's arguments (e.g. ["DNS", "10.8.0.1"]).
	DHCPOptions [][]string
	// PeerID is the pushed peer-id, or -1.
	PeerID      int32
	Cipher      string
	Ping        int
	PingRestart int
	PingExit    int
	TunMTU      int
	// EKM is set when the server asked for TLS keying-material export.
	EKM    bool
	CCExit bool
	// Compression holds pushed comp-lzo / compress options.
	Compression compress.Spec
	// Ignored lists options that were accepted but have no effect in weft.
	Ignored []string
	// Raw is the list of options as received.
	Raw []string
}

// NewPushed returns an empty option set.
func NewPushed() *Pushed { return &Pushed{PeerID: -1, Ping: -1, PingRestart: -1, PingExit: -1} }

// ApplyPushOptions parses one PUSH_REPLY message body (after "PUSH_REPLY,") into p. It
// reports whether more PUSH_REPLY messages follow (push-continuation 2).
func ApplyPushOptions(p *Pushed, body string) (more bool, err error) {
	if body == "" {
		return false, nil
	}
	for _, opt := range strings.Split(body, ",") {
		opt = strings.TrimSpace(opt)
		if opt == "" {
			continue
		}
		args, err := config.Tokenize(opt)
		if err != nil {
			return false, fmt.Errorf("pushed option %q: %w", opt, err)
		}
		if len(args) == 0 {
			continue
		}
		p.Raw = append(p.Raw, opt)
		c, err := applyPushOption(p, args)
		if err != nil {
			return false, fmt.Errorf("pushed option %q: %w", opt, err)
		}
		if c == 2 {
			more = true
		}
	}
	return more, nil
}

func applyPushOption(p *Pushed, a []string) (cont int, err error) {
	need := func(n int) error {
		if len(a) < n+1 {
			return fmt.Errorf("needs %d argument(s)", n)
		}
		return nil
	}
	switch a[0] {
	case "push-continuation":
		if err := need(1); err != nil {
			return 0, err
		}
		return strconv.Atoi(a[1])
	case "topology":
		if err := need(1); err != nil {
			return 0, err
		}
		switch a[1] {
		case "subnet", "net30", "p2p":
			p.Topology = a[1]
		default:
			return 0, fmt.Errorf("unknown topology %q", a[1])
		}
	case "ifconfig":
		if err := need(2); err != nil {
			return 0, err
		}
		l, err := netip.ParseAddr(a[1])
		if err != nil || !l.Is4() {
			return 0, fmt.Errorf("bad local address %q", a[1])
		}
		r, err := netip.ParseAddr(a[2])
		if err != nil || !r.Is4() {
			return 0, fmt.Errorf("bad netmask/remote %q", a[2])
		}
		p.Local, p.Netmask, p.Remote = l, r, r
	case "ifconfig-ipv6":
		if err := need(1); err != nil {
			return 0, err
		}
		pf, err := netip.ParsePrefix(a[1])
		if err != nil || !pf.Addr().Is6() {
			return 0, fmt.Errorf("bad IPv6 address %q", a[1])
		}
		p.Local6 = pf
		if len(a) > 2 {
			r, err := netip.ParseAddr(a[2])
			if err != nil {
				return 0, fmt.Errorf("bad IPv6 remote %q", a[2])
			}
			p.Remote6 = r
		}
	case "route-gateway":
		if err := need(1); err != nil {
			return 0, err
		}
		if a[1] == "dhcp" {
			p.RouteGatewayDHCP = true
			break
		}
		g, err := netip.ParseAddr(a[1])
		if err != nil || !g.Is4() {
			return 0, fmt.Errorf("bad gateway %q", a[1])
		}
		p.RouteGateway = g
	case "route":
		if err := need(1); err != nil {
			return 0, err
		}
		r, err := parseRoute4(a[1:])
		if err != nil {
			return 0, err
		}
		p.Routes = append(p.Routes, r)
	case "route-ipv6":
		if err := need(1); err != nil {
			return 0, err
		}
		pf, err := netip.ParsePrefix(a[1])
		if err != nil || !pf.Addr().Is6() {
			return 0, fmt.Errorf("bad IPv6 network %q", a[1])
		}
		r := Route6{Net: pf.Masked()}
		if len(a) > 2 {
			if g, err := netip.ParseAddr(a[2]); err == nil {
				r.Gateway = g
			}
		}
		if len(a) > 3 {
			r.Metric, _ = strconv.Atoi(a[3])
		}
		p.Routes6 = append(p.Routes6, r)
	case "redirect-gateway":
		p.RedirectGateway = append([]string{}, a[1:]...)
	case "dhcp-option":
		if err := need(1); err != nil {
			return 0, err
		}
		p.DHCPOptions = append(p.DHCPOptions, append([]string{}, a[1:]...))
	case "peer-id":
		if err := need(1); err != nil {
			return 0, err
		}
		id, err := strconv.ParseUint(a[1], 10, 32)
		if err != nil || id >= 0xFFFFFF {
			return 0, fmt.Errorf("bad peer-id %q", a[1])
		}
		p.PeerID = int32(id)
	case "cipher":
		if err := need(1); err != nil {
			return 0, err
		}
		p.Cipher = a[1]
	case "ping", "ping-restart", "ping-exit", "tun-mtu":
		if err := need(1); err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(a[1])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad number %q", a[1])
		}
		switch a[0] {
		case "ping":
			p.Ping = n
		case "ping-restart":
			p.PingRestart = n
		case "ping-exit":
			p.PingExit = n
		case "tun-mtu":
			p.TunMTU = n
		}
	case "comp-lzo":
		p.Compression.CompLZO = "adaptive"
		if len(a) > 1 {
			p.Compression.CompLZO = a[1]
		}
	case "compress":
		p.Compression.Compress = "stub"
		if len(a) > 1 {
			p.Compression.Compress = a[1]
		}
	case "key-derivation":
		if err := need(1); err != nil {
			return 0, err
		}
		if a[1] == "tls-ekm" {
			p.EKM = true
		}
	case "protocol-flags":
		for _, f := range a[1:] {
			switch f {
			case "tls-ekm":
				p.EKM = true
			case "cc-exit":
				p.CCExit = true
			default:
				p.Ignored = append(p.Ignored, "protocol-flags "+f)
			}
		}
	default:
		p.Ignored = append(p.Ignored, strings.Join(a, " "))
	}
	return 0, nil
}

func parseRoute4(a []string) (Route4, error) {
	var r Route4
	netS := a[0]
	mask := "255.255.255.255"
	if len(a) > 1 && a[1] != "default" {
		mask = a[1]
	}
	var n netip.Addr
	switch netS {
	case "vpn_gateway", "net_gateway", "remote_host":
		return r, fmt.Errorf("route to %s is not supported", netS)
	default:
		var err error
		n, err = netip.ParseAddr(netS)
		if err != nil || !n.Is4() {
			return r, fmt.Errorf("bad network %q", netS)
		}
	}
	bits, err := maskBits(mask)
	if err != nil {
		return r, err
	}
	r.Net = netip.PrefixFrom(n, bits).Masked()
	if len(a) > 2 && a[2] != "vpn_gateway" && a[2] != "default" {
		g, err := netip.ParseAddr(a[2])
		if err != nil || !g.Is4() {
			return r, fmt.Errorf("bad gateway %q", a[2])
		}
		r.Gateway = g
	}
	if len(a) > 3 {
		r.Metric, _ = strconv.Atoi(a[3])
	}
	return r, nil
}

// maskBits converts a dotted IPv4 netmask to a prefix length.
func maskBits(mask string) (int, error) {
	m, err := netip.ParseAddr(mask)
	if err != nil || !m.Is4() {
		return 0, fmt.Errorf("bad netmask %q", mask)
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	bits := 0
	for v&0x80000000 != 0 {
		bits++
		v <<= 1
	}
	if v != 0 {
		return 0, fmt.Errorf("netmask %q is not contiguous", mask)
	}
	return bits, nil
}

// IPv4Prefix returns the tunnel IPv4 address with its prefix length: the netmask in
// subnet topology, /32 otherwise (the peer is then the point-to-point remote).
func (p *Pushed) IPv4Prefix() (netip.Prefix, bool) {
	if !p.Local.IsValid() {
		return netip.Prefix{}, false
	}
	if p.Topology == "subnet" {
		bits, err := maskBits(p.Netmask.String())
		if err != nil {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(p.Local, bits), true
	}
	return netip.PrefixFrom(p.Local, 32), true
}
