package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addr is an interface address.
type Addr struct {
	// Prefix is the local address and its prefix length, e.g. 10.8.0.1/24.
	Prefix netip.Prefix
	// Peer, if valid, makes this a point-to-point address (OpenVPN's
	// net30/p2p topology: "ifconfig 10.8.0.6 10.8.0.5"): Prefix.Addr() is the
	// local end and Peer the remote end, and Prefix.Bits() applies to Peer
	// (use /32 for a single peer).
	Peer netip.Addr
}

// Route is a route through the interface.
type Route struct {
	// Dst is the destination network.
	Dst netip.Prefix
	// Gateway is the next hop; zero means directly through the interface.
	Gateway netip.Addr
	// Metric is the route priority (lower wins); 0 is the kernel default.
	Metric int
}

// LinkConfig is the layer-3 configuration of an interface.
type LinkConfig struct {
	// MTU, if positive, is set on the link.
	MTU int
	// Addrs are added (or replaced). IPv6 addresses are added with
	// IFA_F_NODAD, so they are usable at once instead of after duplicate
	// address detection.
	Addrs []Addr
	// Routes are added (or replaced) after the addresses and link state.
	Routes []Route
	// Up brings the link up before routes are added.
	Up bool
}

// Configure applies c to interface name: MTU, addresses, link up, routes, in
// that order. It is idempotent: existing addresses and routes are replaced.
// Errors name the interface and the failed operation. It needs
// CAP_NET_ADMIN.
func Configure(name string, c LinkConfig) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tun: %s: find link: %w", name, err)
	}
	if c.MTU > 0 {
		if err := netlink.LinkSetMTU(link, c.MTU); err != nil {
			return fmt.Errorf("tun: %s: set mtu %d: %w", name, c.MTU, err)
		}
	}
	for _, a := range c.Addrs {
		na, err := nlAddr(a)
		if err != nil {
			return fmt.Errorf("tun: %s: add address %v: %w", name, a.Prefix, err)
		}
		if err := netlink.AddrReplace(link, na); err != nil {
			return fmt.Errorf("tun: %s: add address %v: %w", name, a.Prefix, err)
		}
	}
	if c.Up {
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("tun: %s: set up: %w", name, err)
		}
	}
	return addRoutes(name, link, c.Routes)
}

// Deconfigure undoes Configure: it removes c's routes and addresses and, if
// c.Up, brings the link down. Routes and addresses that are already gone
// are skipped; other failures are joined. A vanished interface is not an
// error (its addresses and routes went with it).
func Deconfigure(name string, c LinkConfig) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("tun: %s: find link: %w", name, err)
	}
	errs := []error{delRoutes(name, link, c.Routes)}
	for _, a := range c.Addrs {
		na, err := nlAddr(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("tun: %s: delete address %v: %w", name, a.Prefix, err))
			continue
		}
		if err := netlink.AddrDel(link, na); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("tun: %s: delete address %v: %w", name, a.Prefix, err))
		}
	}
	if c.Up {
		if err := netlink.LinkSetDown(link); err != nil {
			errs = append(errs, fmt.Errorf("tun: %s: set down: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// AddRoutes adds (or replaces) routes through interface name, for routes
// pushed after the link is configured.
func AddRoutes(name string, routes []Route) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tun: %s: find link: %w", name, err)
	}
	return addRoutes(name, link, routes)
}

// DelRoutes removes routes through interface name; routes already gone are
// skipped.
func DelRoutes(name string, routes []Route) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tun: %s: find link: %w", name, err)
	}
	return delRoutes(name, link, routes)
}

func addRoutes(name string, link netlink.Link, routes []Route) error {
	for _, r := range routes {
		nr, err := nlRoute(link, r)
		if err == nil {
			err = netlink.RouteReplace(nr)
		}
		if err != nil {
			return fmt.Errorf("tun: %s: add route %s: %w", name, routeString(r), err)
		}
	}
	return nil
}

func delRoutes(name string, link netlink.Link, routes []Route) error {
	var errs []error
	for _, r := range routes {
		nr, err := nlRoute(link, r)
		if err == nil {
			err = netlink.RouteDel(nr)
			if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("tun: %s: delete route %s: %w", name, routeString(r), err))
		}
	}
	return errors.Join(errs...)
}

func routeString(r Route) string {
	s := r.Dst.String()
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	return s
}

func ipNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

func nlAddr(a Addr) (*netlink.Addr, error) {
	if !a.Prefix.IsValid() || a.Prefix.Addr().Is4In6() {
		return nil, fmt.Errorf("invalid prefix %v", a.Prefix)
	}
	na := &netlink.Addr{IPNet: ipNet(a.Prefix)}
	if a.Peer.IsValid() {
		if a.Peer.Is4() != a.Prefix.Addr().Is4() {
			return nil, fmt.Errorf("peer %v and local address differ in family", a.Peer)
		}
		na.Peer = ipNet(netip.PrefixFrom(a.Peer, a.Prefix.Bits()))
	}
	if a.Prefix.Addr().Is6() {
		na.Flags = unix.IFA_F_NODAD
	}
	return na, nil
}

func nlRoute(link netlink.Link, r Route) (*netlink.Route, error) {
	if !r.Dst.IsValid() || r.Dst.Addr().Is4In6() {
		return nil, fmt.Errorf("invalid destination %v", r.Dst)
	}
	nr := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       ipNet(r.Dst.Masked()),
		Priority:  r.Metric,
	}
	if r.Gateway.IsValid() {
		if r.Gateway.Is4() != r.Dst.Addr().Is4() {
			return nil, fmt.Errorf("gateway %v and destination differ in family", r.Gateway)
		}
		nr.Gw = net.IP(r.Gateway.AsSlice())
	} else if r.Dst.Addr().Is4() {
		nr.Scope = netlink.SCOPE_LINK
	}
	return nr, nil
}
