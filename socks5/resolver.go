package socks5

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
)

// DNSResolver returns a resolver that sends its queries to servers through
// dial, for example a netstack.Stack's DialContext, so names are resolved by
// the DNS servers the VPN pushed, over the tunnel. It uses Go's resolver
// (PreferGo), which still honours /etc/hosts and the options (timeouts,
// attempts, ndots, search) of /etc/resolv.conf but never its nameservers:
// each query goes to the next of servers in turn, trying the others if a
// dial fails. dial is called with network "udp" (or "tcp" for truncated
// answers) and "ip:port"; a UDP conn it returns must also be a
// net.PacketConn.
//
// With no servers (nothing pushed) or a nil dial, it returns
// net.DefaultResolver, the system's.
func DNSResolver(servers []netip.AddrPort, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *net.Resolver {
	if len(servers) == 0 || dial == nil {
		return net.DefaultResolver
	}
	servers = slices.Clone(servers)
	var next atomic.Uint32
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			start := int(next.Add(1) - 1)
			var errs []error
			for i := range servers {
				srv := servers[(start+i)%len(servers)]
				c, err := dial(ctx, network, srv.String())
				if err == nil {
					return c, nil
				}
				errs = append(errs, err)
				if ctx.Err() != nil {
					break
				}
			}
			return nil, fmt.Errorf("socks5: dial DNS server: %w", errors.Join(errs...))
		},
	}
}

// DNSServers returns the DNS servers (port 53) among OpenVPN dhcp-option
// arguments as pushed, e.g. ["DNS", "10.8.0.1"] or ["DNS6", "fd00::1"]
// (ovpn.Pushed.DHCPOptions), in order and without duplicates. Malformed
// entries are skipped.
func DNSServers(dhcpOptions [][]string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, o := range dhcpOptions {
		if len(o) < 2 || (!strings.EqualFold(o[0], "DNS") && !strings.EqualFold(o[0], "DNS6")) {
			continue
		}
		ip, err := netip.ParseAddr(o[1])
		if err != nil || ip.Zone() != "" {
			continue
		}
		ap := netip.AddrPortFrom(ip.Unmap(), 53)
		if !slices.Contains(out, ap) {
			out = append(out, ap)
		}
	}
	return out
}
