// Package netstack is weft's user-space network stack: a virtual interface
// built on gVisor's TCP/IP stack (gvisor.dev/gvisor/pkg/tcpip) that stands in
// for the kernel TUN, so a VPN client needs no root and no CAP_NET_ADMIN.
//
// A Stack terminates IPv4 and IPv6 traffic for the addresses given to
// Configure: TCP and UDP through DialContext, ListenTCP and ListenUDP, and
// ICMP echo (it answers pings). Its Device is a weft tun.Device, so the
// client handler drives it exactly like the kernel TUN: packets the stack
// sends are returned in batches by Device().Read and go into the tunnel;
// packets from the tunnel are injected with Device().Write. To use it with
// the client handler:
//
//	st, err := netstack.New(netstack.Options{MTU: 1500, Logger: log})
//	...
//	params.OpenTUN = func(string, int) (tun.Device, error) { return st.Device(), nil }
//	params.Configure = func(_ string, c tun.LinkConfig) error { return st.Configure(c) }
//
// The link endpoint is weft's own (not gVisor's channel endpoint): outbound
// packets wait in a FIFO bounded by Options.QueueLen and Read dequeues up to
// a whole batch per call without allocating. A full FIFO tail-drops and
// counts (see Stats), like a NIC transmit queue.
//
// Several Stacks may live in one process; there is no package state. Close
// stops every goroutine the Stack started.
//
// The gVisor version is pinned in go.mod. gVisor's pkg/sync links into
// runtime internals (gopark and wait-reason constants), so re-check the pin
// whenever the Go toolchain changes. With Go 1.26 the pinned version's
// wait-reason constants are stale, so its parked goroutines (the TCP
// processors, GOMAXPROCS per Stack) show as "GC scavenge wait" in goroutine
// dumps; that is cosmetic.
package netstack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"weft/tun"
)

const (
	nicID            tcpip.NICID = 1
	defaultMTU                   = 1500
	defaultQueueLen              = 4096
	defaultName                  = "netstack"
	minMTU                       = 68 // RFC 791; IPv6 needs 1280
	maxMTU                       = 65535
	tcpReceiveBufMax             = 8 << 20
	tcpSendBufMax                = 6 << 20
)

// Options configures a Stack.
type Options struct {
	// MTU is the link MTU; 0 means 1500. Configure may change it. TCP's MSS
	// follows it, so set it to the tunnel MTU.
	MTU int
	// Logger receives debug logs (configuration, dropped packets); nil
	// discards them.
	Logger *slog.Logger
	// Name is what the Device's Name reports; "" means "netstack".
	Name string
	// QueueLen bounds the packets waiting to be read from the Device; 0
	// means 4096. Beyond it packets are dropped (and counted in Stats).
	// The queue holds references to packets that TCP keeps for
	// retransmission anyway, so depth costs little memory; 4096 packets
	// (about 5.6 MiB at MTU 1420) absorb the burst of one flow's full send
	// window, where 1024 tail-dropped during single-flow benchmarks.
	QueueLen int

	// rack keeps gVisor's RACK loss detection on (tests and benchmarks
	// compare both settings; see tune).
	rack bool
}

// Stats counts packets crossing a Stack's virtual link.
type Stats struct {
	// OutPackets is the number of packets the stack queued for Device.Read.
	OutPackets uint64
	// OutDropped is the number of outbound packets dropped: the queue was
	// full, the device was closed, or a packet did not fit a Read buffer.
	OutDropped uint64
	// InPackets is the number of packets Device.Write delivered to the
	// stack. The stack may still discard them (bad checksum, no listener).
	InPackets uint64
	// InDropped is the number of packets Device.Write discarded because
	// they were not IPv4 or IPv6.
	InDropped uint64
}

// Stack is a user-space TCP/IP stack with one virtual layer-3 interface.
// Its methods are safe for concurrent use.
type Stack struct {
	ipstack *stack.Stack
	link    *link
	log     *slog.Logger

	mu     sync.Mutex
	routes []tun.Route // guarded by mu; includes the on-link routes of addresses
	closed bool        // guarded by mu
}

// New creates a Stack with no addresses and no routes; call Configure.
func New(opts Options) (*Stack, error) {
	if opts.MTU == 0 {
		opts.MTU = defaultMTU
	}
	if opts.MTU < minMTU || opts.MTU > maxMTU {
		return nil, fmt.Errorf("netstack: MTU %d out of range [%d, %d]", opts.MTU, minMTU, maxMTU)
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = defaultQueueLen
	}
	if opts.Name == "" {
		opts.Name = defaultName
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ipstack := stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{
			tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6,
		},
		// Connections to the stack's own addresses loop back inside it,
		// as they would through the kernel.
		HandleLocal: true,
	})
	if err := tune(ipstack, opts.rack); err != nil {
		ipstack.Destroy()
		return nil, err
	}
	l := newLink(opts.Name, opts.MTU, opts.QueueLen, opts.Logger)
	if err := ipstack.CreateNICWithOptions(nicID, endpoint{l}, stack.NICOptions{Name: opts.Name}); err != nil {
		ipstack.Destroy()
		return nil, fmt.Errorf("netstack: create NIC: %w", tcpipErr(err))
	}
	return &Stack{ipstack: ipstack, link: l, log: opts.Logger}, nil
}

// tune sets the TCP options, following tailscale's netstack
// (wgengine/netstack/netstack.go), for the reasons given inline.
func tune(s *stack.Stack, rack bool) error {
	// SACK is off by default in gVisor. A tunnel loses packets in bursts
	// (a full queue, a lost UDP datagram carrying one packet), and without
	// SACK every loss beyond the first of a window costs a round trip or a
	// retransmission timeout.
	sack := tcpip.TCPSACKEnabled(true)
	// gVisor's RACK performs poorly: ACKs are not handled in time, which
	// causes spurious retransmissions and a collapsed congestion window
	// (tailscale/tailscale#9707, gvisor#9778). 0 keeps classic SACK-based
	// recovery.
	recovery := tcpip.TCPRecovery(0)
	if rack {
		recovery = tcpip.TCPRACKLossDetection
	}
	// Reno is gVisor's default today; set it explicitly so an upstream
	// change cannot switch us to cubic, whose congestion-window arithmetic
	// overflows (gvisor#11632).
	cc := tcpip.CongestionControlOption("reno")
	// Explicit buffer ranges: gVisor's default maximum (4 MiB) limits one
	// flow to 4 MiB per round trip, too little for a fast tunnel with tens
	// of milliseconds of RTT. The defaults stay at 1 MiB and receive-buffer
	// moderation grows a connection's window only when it carries bulk
	// data, so idle connections stay cheap. Buffers are limits, not
	// allocations.
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcp.DefaultReceiveBufferSize, Max: tcpReceiveBufMax}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcp.DefaultSendBufferSize, Max: tcpSendBufMax}
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	opts := []struct {
		name string
		opt  tcpip.SettableTransportProtocolOption
	}{
		{"SACK", &sack}, {"recovery", &recovery}, {"congestion control", &cc},
		{"receive buffer", &rcv}, {"send buffer", &snd}, {"receive buffer moderation", &moderate},
	}
	for _, o := range opts {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o.opt); err != nil {
			return fmt.Errorf("netstack: set TCP %s: %w", o.name, tcpipErr(err))
		}
	}
	return nil
}

// Device returns the Stack's virtual interface. It is the same device on
// every call. Closing it detaches the link (reads and writes fail and what
// the stack sends is dropped) but leaves the Stack running; Stack.Close
// closes both.
func (s *Stack) Device() tun.Device { return device{s.link} }

// Stats returns the link's packet counters.
func (s *Stack) Stats() Stats {
	return Stats{
		OutPackets: s.link.outPackets.Load(),
		OutDropped: s.link.outDropped.Load(),
		InPackets:  s.link.inPackets.Load(),
		InDropped:  s.link.inDropped.Load(),
	}
}

// ErrClosed is returned (wrapped) by the Stack's methods after Close.
var ErrClosed = errors.New("netstack: stack closed")

// Configure applies c like tun.Configure does to a kernel interface: the
// MTU, then the addresses, then the routes. An address adds the on-link
// route of its prefix (or, with a Peer, of the peer's prefix) as the kernel
// does. It is idempotent: an address already present is replaced if its
// prefix length differs, and a route with the same destination and metric
// is replaced. Gateways are kept but do not matter on a layer-3 link; among
// routes of equal prefix length the lowest metric wins. c.Up is ignored (the
// link is always up).
func (s *Stack) Configure(c tun.LinkConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("netstack: configure: %w (%w)", ErrClosed, net.ErrClosed)
	}
	if c.MTU > 0 {
		if c.MTU < minMTU || c.MTU > maxMTU {
			return fmt.Errorf("netstack: set mtu %d: out of range [%d, %d]", c.MTU, minMTU, maxMTU)
		}
		if err := s.ipstack.SetNICMTU(nicID, uint32(c.MTU)); err != nil {
			return fmt.Errorf("netstack: set mtu %d: %w", c.MTU, tcpipErr(err))
		}
	}
	for _, a := range c.Addrs {
		if err := s.addAddrLocked(a); err != nil {
			return fmt.Errorf("netstack: add address %v: %w", a.Prefix, err)
		}
	}
	for _, r := range c.Routes {
		if err := checkRoute(r); err != nil {
			return fmt.Errorf("netstack: add route %v: %w", r.Dst, err)
		}
		s.setRouteLocked(r)
	}
	s.applyRoutesLocked()
	s.log.Debug("netstack: configured", "device", s.link.name, "mtu", c.MTU,
		"addrs", fmt.Sprint(c.Addrs), "routes", len(c.Routes))
	return nil
}

func (s *Stack) addAddrLocked(a tun.Addr) error {
	p := a.Prefix
	if !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return fmt.Errorf("invalid prefix %v", p)
	}
	addr, bits := p.Addr(), p.Bits()
	onLink := p.Masked()
	if a.Peer.IsValid() {
		if a.Peer.Is4() != addr.Is4() || a.Peer.Is4In6() {
			return fmt.Errorf("peer %v and local address differ in family", a.Peer)
		}
		// Point-to-point: the local end is a host address and the prefix
		// length applies to the peer (ip addr add L peer P/bits).
		onLink = netip.PrefixFrom(a.Peer, bits).Masked()
		bits = addr.BitLen()
	}
	pa := tcpip.ProtocolAddress{
		Protocol:          protocolOf(addr),
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpipAddr(addr), PrefixLen: bits},
	}
	present := false
	for _, have := range s.ipstack.AllAddresses()[nicID] {
		if have.AddressWithPrefix.Address != pa.AddressWithPrefix.Address {
			continue
		}
		if have.AddressWithPrefix.PrefixLen == bits {
			present = true
		} else if err := s.ipstack.RemoveAddress(nicID, have.AddressWithPrefix.Address); err != nil {
			return fmt.Errorf("replace: %w", tcpipErr(err))
		}
	}
	if !present {
		if err := s.ipstack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return tcpipErr(err)
		}
	}
	s.setRouteLocked(tun.Route{Dst: onLink})
	return nil
}

func checkRoute(r tun.Route) error {
	if !r.Dst.IsValid() || r.Dst.Addr().Is4In6() || r.Dst.Addr().Zone() != "" {
		return fmt.Errorf("invalid destination %v", r.Dst)
	}
	if r.Gateway.IsValid() && r.Gateway.Is4() != r.Dst.Addr().Is4() {
		return fmt.Errorf("gateway %v and destination differ in family", r.Gateway)
	}
	if r.Metric < 0 {
		return fmt.Errorf("negative metric %d", r.Metric)
	}
	return nil
}

// setRouteLocked adds r, replacing a route with the same destination and
// metric.
func (s *Stack) setRouteLocked(r tun.Route) {
	r.Dst = r.Dst.Masked()
	for i, have := range s.routes {
		if have.Dst == r.Dst && have.Metric == r.Metric {
			s.routes[i] = r
			return
		}
	}
	s.routes = append(s.routes, r)
}

// applyRoutesLocked installs s.routes. gVisor picks the first matching
// route of a table kept in order of decreasing prefix length, so routes of
// equal length are given in order of increasing metric.
func (s *Stack) applyRoutesLocked() {
	rs := slices.Clone(s.routes)
	slices.SortStableFunc(rs, func(a, b tun.Route) int {
		if c := cmp.Compare(b.Dst.Bits(), a.Dst.Bits()); c != 0 {
			return c
		}
		return cmp.Compare(a.Metric, b.Metric)
	})
	table := make([]tcpip.Route, 0, len(rs))
	for _, r := range rs {
		tr := tcpip.Route{
			Destination: tcpip.AddressWithPrefix{Address: tcpipAddr(r.Dst.Addr()), PrefixLen: r.Dst.Bits()}.Subnet(),
			NIC:         nicID,
		}
		if r.Gateway.IsValid() {
			tr.Gateway = tcpipAddr(r.Gateway)
		}
		table = append(table, tr)
	}
	s.ipstack.SetRouteTable(table)
}

// Addrs returns the addresses currently assigned, in no particular order.
func (s *Stack) Addrs() []netip.Prefix {
	var out []netip.Prefix
	for _, pa := range s.ipstack.AllAddresses()[nicID] {
		a, ok := netip.AddrFromSlice(pa.AddressWithPrefix.Address.AsSlice())
		if !ok || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			// gVisor adds 255.255.255.255 itself once IPv4 is enabled.
			continue
		}
		out = append(out, netip.PrefixFrom(a, pa.AddressWithPrefix.PrefixLen))
	}
	return out
}

func (s *Stack) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Stack) checkOpen(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("netstack: %s: %w (%w)", op, ErrClosed, net.ErrClosed)
	}
	return nil
}

// DialContext connects to address over the stack. network is "tcp",
// "tcp4", "tcp6", "udp", "udp4" or "udp6"; address is "ip:port" with an IP
// literal (names are not resolved here: resolve them first, e.g. with a
// net.Resolver that dials through this Stack). A UDP conn is connected: it
// sends to and receives from address only. ctx bounds the TCP handshake.
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := s.checkOpen("dial " + network + " " + address); err != nil {
		return nil, err
	}
	kind, ap, err := parseDialTarget(network, address)
	if err != nil {
		return nil, fmt.Errorf("netstack: dial %s %s: %w", network, address, err)
	}
	fa := fullAddr(ap)
	proto := protocolOf(ap.Addr())
	if kind == "tcp" {
		c, err := gonet.DialContextTCP(ctx, s.ipstack, fa, proto)
		if err != nil {
			return nil, fmt.Errorf("netstack: dial %s %s: %w", network, address, err)
		}
		return c, nil
	}
	c, err := gonet.DialUDP(s.ipstack, nil, &fa, proto)
	if err != nil {
		return nil, fmt.Errorf("netstack: dial %s %s: %w", network, address, err)
	}
	return &udpConn{UDPConn: c, v4: proto == ipv4.ProtocolNumber, stack: s}, nil
}

// parseDialTarget checks network and address. It returns "tcp" or "udp"
// and the unmapped address.
func parseDialTarget(network, address string) (string, netip.AddrPort, error) {
	var kind string
	var want4, want6 bool
	switch network {
	case "tcp", "udp":
	case "tcp4", "udp4":
		want4 = true
	case "tcp6", "udp6":
		want6 = true
	default:
		return "", netip.AddrPort{}, fmt.Errorf("unsupported network %q", network)
	}
	kind = network[:3]
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("bad address: %w", err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("host %q is not an IP address (resolve names before dialing)", host)
	}
	if ip.Zone() != "" {
		return "", netip.AddrPort{}, fmt.Errorf("zoned address %q not supported", host)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil || pn == 0 {
		return "", netip.AddrPort{}, fmt.Errorf("bad port %q", port)
	}
	ip = ip.Unmap()
	if (want4 && !ip.Is4()) || (want6 && !ip.Is6()) {
		return "", netip.AddrPort{}, fmt.Errorf("address %v does not match network %s", ip, network)
	}
	return kind, netip.AddrPortFrom(ip, uint16(pn)), nil
}

// ListenTCP listens for TCP connections on addr. An IPv4 address listens on
// IPv4 only; an IPv6 address on IPv6 only; the unspecified IPv6 address (or
// the zero AddrPort's missing address) listens on both. Port 0 picks a free
// port (see the listener's Addr). After Close, a blocked Accept returns an
// error matching net.ErrClosed.
func (s *Stack) ListenTCP(addr netip.AddrPort) (net.Listener, error) {
	if err := s.checkOpen("listen tcp " + addr.String()); err != nil {
		return nil, err
	}
	fa, proto := bindAddr(addr)
	l, err := gonet.ListenTCP(s.ipstack, fa, proto)
	if err != nil {
		return nil, fmt.Errorf("netstack: listen tcp %v: %w", addr, err)
	}
	return &tcpListener{TCPListener: l, stack: s}, nil
}

// ListenUDP opens a UDP socket bound to addr (address rules as for
// ListenTCP). WriteTo accepts any net.Addr whose String is "ip:port";
// ReadFrom reports *net.UDPAddr with IPv4 senders unmapped.
func (s *Stack) ListenUDP(addr netip.AddrPort) (net.PacketConn, error) {
	if err := s.checkOpen("listen udp " + addr.String()); err != nil {
		return nil, err
	}
	fa, proto := bindAddr(addr)
	c, err := gonet.DialUDP(s.ipstack, &fa, nil, proto)
	if err != nil {
		return nil, fmt.Errorf("netstack: listen udp %v: %w", addr, err)
	}
	return &udpConn{UDPConn: c, v4: proto == ipv4.ProtocolNumber, stack: s}, nil
}

// bindAddr maps a listen address to gVisor's form: an empty address for
// "any", and the network protocol (IPv6 for the dual-stack wildcard).
func bindAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	a := ap.Addr().Unmap()
	switch {
	case !a.IsValid():
		return tcpip.FullAddress{Port: ap.Port()}, ipv6.ProtocolNumber
	case a.IsUnspecified():
		return tcpip.FullAddress{Port: ap.Port()}, protocolOf(a)
	}
	return tcpip.FullAddress{Addr: tcpipAddr(a), Port: ap.Port()}, protocolOf(a)
}

// Close closes the device, aborts every connection and listener of the
// Stack and waits for the stack's goroutines to exit. Later calls do
// nothing.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.link.closeDevice()
	s.ipstack.Close()
	s.ipstack.Wait()
	return nil
}

func protocolOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

func tcpipAddr(a netip.Addr) tcpip.Address {
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4())
	}
	return tcpip.AddrFrom16(a.As16())
}

func fullAddr(ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{Addr: tcpipAddr(ap.Addr()), Port: ap.Port()}
}

// tcpipErr converts gVisor's error interface (not an error) at the boundary.
func tcpipErr(e tcpip.Error) error {
	if e == nil {
		return nil
	}
	return errors.New(e.String())
}
