// Package node embeds weft in Go programs: it starts an OpenVPN-compatible client or
// server in-process from a config file or a parsed config, and gives the program
// sockets on the tunnel (Dial, Listen, ListenPacket), a stream of lifecycle events,
// statistics and a graceful Close.
//
// By default a node runs on a user-space TCP/IP stack (gVisor netstack), so it needs
// no root and no TUN device, and any number of nodes can run in one process. With
// Options.KernelTUN it uses a kernel TUN device instead (root needed) and the tunnel
// is then reached through the host's sockets.
//
// A node never calls os.Exit, installs no signal handlers and uses no globals.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"weft/config"
	"weft/handlers"
	"weft/netstack"
	"weft/tun"
)

// Options tunes a node.
type Options struct {
	// KernelTUN uses a kernel TUN device instead of the user-space stack.
	KernelTUN bool
	// TLSEngine overrides the config's tls-engine ("" keeps it).
	TLSEngine string
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// EventBuffer is the capacity of the Events channel (default 64). When it is
	// full, further events are dropped and counted in Stats.EventsDropped.
	EventBuffer int
}

// Event is a lifecycle event: connecting, connected, address-assigned,
// reconnecting, peer-up, peer-down, renegotiated, auth-failed, closed.
type Event = handlers.Event

// Event kinds, re-exported for convenience.
const (
	EventConnecting   = handlers.EventConnecting
	EventConnected    = handlers.EventConnected
	EventAddress      = handlers.EventAddress
	EventReconnecting = handlers.EventReconnecting
	EventPeerUp       = handlers.EventPeerUp
	EventPeerDown     = handlers.EventPeerDown
	EventRenegotiated = handlers.EventRenegotiated
	EventAuthFailed   = handlers.EventAuthFailed
	EventClosed       = handlers.EventClosed
)

// Stats summarises a node's traffic.
type Stats struct {
	// Bytes and packets through the tunnel device (user data).
	TunPacketsIn, TunPacketsOut uint64
	// Packets and bytes on the link (encrypted).
	LinkPacketsIn, LinkPacketsOut uint64
	LinkBytesIn, LinkBytesOut     uint64
	// Drops: failed authentication, replays, malformed packets, packets before
	// keys were ready.
	Drops uint64
	// HandshakeTime is the client's last handshake duration.
	HandshakeTime time.Duration
	// Peers is the number of connected clients (server).
	Peers int
	// EventsDropped counts events lost because the Events channel was full.
	EventsDropped uint64
	// Stack holds the user-space stack's link counters (zero with KernelTUN).
	Stack netstack.Stats
}

// ErrKernelTUN is returned by Dial and Listen on a node that uses a kernel TUN
// device: use the host's sockets instead.
var ErrKernelTUN = errors.New("node: kernel TUN mode has no in-process sockets; use the net package")

// Node is a running client or server.
type Node struct {
	opts   Options
	stack  *netstack.Stack
	client *handlers.Client
	server *handlers.Server
	events chan Event
	cancel context.CancelFunc
	done   chan error

	mu        sync.Mutex
	addrs     []netip.Prefix
	connected chan struct{}
	connOnce  sync.Once
	dropped   uint64
	dhcp      [][]string
	closers   []func()
	closeOnce sync.Once
	closeErr  error
}

// Start parses the OpenVPN config file at path and starts a client (`client` or
// `tls-client`/`pull`) or a server (`server`, `mode server`).
func Start(ctx context.Context, path string, opts Options) (*Node, error) {
	if isServerConfig(path) {
		c, err := config.ParseServerFile(path)
		if err != nil {
			return nil, err
		}
		return StartServer(ctx, c, opts)
	}
	c, err := config.ParseClientFile(path)
	if err != nil {
		return nil, err
	}
	return StartClient(ctx, c, opts)
}

// isServerConfig looks for server-mode directives.
func isServerConfig(path string) bool {
	ds, err := config.LexFile(path)
	if err != nil {
		return false
	}
	for _, d := range ds {
		switch d.Name {
		case "server", "server-ipv6", "tls-server", "listen":
			return true
		case "mode":
			if len(d.Args) > 0 && d.Args[0] == "server" {
				return true
			}
		case "client", "tls-client", "pull", "remote":
			return false
		}
	}
	return false
}

func newNode(opts Options) *Node {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 64
	}
	return &Node{opts: opts, events: make(chan Event, opts.EventBuffer), done: make(chan error, 1), connected: make(chan struct{})}
}

func (n *Node) onEvent(e Event) {
	switch e.Kind {
	case EventAddress, EventConnected:
		if len(e.Addrs) > 0 {
			n.mu.Lock()
			n.addrs = append([]netip.Prefix(nil), e.Addrs...)
			n.mu.Unlock()
		}
		if e.Kind == EventConnected {
			n.mu.Lock()
			n.dhcp = e.DHCPOptions
			n.mu.Unlock()
			n.connOnce.Do(func() { close(n.connected) })
		}
	}
	select {
	case n.events <- e:
	default:
		n.mu.Lock()
		n.dropped++
		n.mu.Unlock()
	}
}

// userspace creates the stack and returns the device hooks for the handlers.
func (n *Node) userspace(mtu int) (func(string, int) (tun.Device, error), func(string, tun.LinkConfig) error, error) {
	if n.opts.KernelTUN {
		return nil, nil, nil
	}
	st, err := netstack.New(netstack.Options{MTU: mtu, Logger: n.opts.Logger, Name: "weft"})
	if err != nil {
		return nil, nil, err
	}
	n.stack = st
	open := func(string, int) (tun.Device, error) { return st.Device(), nil }
	configure := func(_ string, c tun.LinkConfig) error { return st.Configure(c) }
	return open, configure, nil
}

// StartClient starts a client from a parsed config.
func StartClient(ctx context.Context, c *config.Client, opts Options) (*Node, error) {
	n := newNode(opts)
	p, err := handlers.ClientParamsFromConfig(c, opts.TLSEngine, n.opts.Logger)
	if err != nil {
		return nil, err
	}
	if p.OpenTUN, p.Configure, err = n.userspace(c.TunMTU); err != nil {
		return nil, err
	}
	p.OnEvent = n.onEvent
	if !n.opts.KernelTUN {
		p.LinkBatch, p.LinkBufSize, p.SocketBuffer = 8, 4096, 1<<20
	}
	if n.client, err = handlers.NewClient(p); err != nil {
		n.closeStack()
		return nil, err
	}
	n.run(ctx, n.client.Run)
	return n, nil
}

// StartServer starts a server from a parsed config and returns once its listeners
// are open.
func StartServer(ctx context.Context, c *config.Server, opts Options) (*Node, error) {
	n := newNode(opts)
	p, err := handlers.ServerParamsFromConfig(c, opts.TLSEngine, n.opts.Logger)
	if err != nil {
		return nil, err
	}
	if p.OpenTUN, p.Configure, err = n.userspace(c.TunMTU); err != nil {
		return nil, err
	}
	p.OnEvent = n.onEvent
	if !n.opts.KernelTUN {
		p.LinkBatch, p.LinkBufSize, p.SocketBuffer = 32, 4096, 4<<20
	}
	if n.server, err = handlers.NewServer(p); err != nil {
		n.closeStack()
		return nil, err
	}
	n.run(ctx, n.server.Run)
	select {
	case <-n.server.Ready():
	case err := <-n.done:
		n.cancel()
		n.closeStack()
		if err == nil {
			err = errors.New("node: server stopped before it was ready")
		}
		return nil, err
	case <-ctx.Done():
		n.Close()
		return nil, ctx.Err()
	}
	if n.stack != nil {
		n.mu.Lock()
		n.addrs = n.stack.Addrs()
		n.mu.Unlock()
	}
	n.connOnce.Do(func() { close(n.connected) })
	return n, nil
}

// WaitConnected blocks until a client has its tunnel up (a server is up once
// started), the node stops, or ctx ends.
func (n *Node) WaitConnected(ctx context.Context) error {
	select {
	case <-n.connected:
		return nil
	case err := <-n.done:
		n.done <- err
		if err == nil {
			err = errors.New("node: stopped")
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Events returns the node's lifecycle events.
func (n *Node) Events() <-chan Event { return n.events }

// Addrs returns the node's tunnel addresses.
func (n *Node) Addrs() []netip.Prefix {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]netip.Prefix(nil), n.addrs...)
}

// ListenAddrs returns a server's bound listener addresses.
func (n *Node) ListenAddrs() []handlers.Listen {
	if n.server == nil {
		return nil
	}
	return n.server.Addrs()
}

// Dial connects to address over the tunnel ("tcp", "tcp4", "tcp6", "udp", …).
func (n *Node) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if n.stack == nil {
		return nil, ErrKernelTUN
	}
	return n.stack.DialContext(ctx, network, address)
}

// Listen listens for TCP connections on a tunnel address ("" or an unspecified
// host means every tunnel address).
func (n *Node) Listen(network, address string) (net.Listener, error) {
	if n.stack == nil {
		return nil, ErrKernelTUN
	}
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, fmt.Errorf("node: Listen: unsupported network %q", network)
	}
	ap, err := parseListenAddr(address)
	if err != nil {
		return nil, err
	}
	return n.stack.ListenTCP(ap)
}

// ListenPacket opens a UDP socket on a tunnel address.
func (n *Node) ListenPacket(network, address string) (net.PacketConn, error) {
	if n.stack == nil {
		return nil, ErrKernelTUN
	}
	if network != "udp" && network != "udp4" && network != "udp6" {
		return nil, fmt.Errorf("node: ListenPacket: unsupported network %q", network)
	}
	ap, err := parseListenAddr(address)
	if err != nil {
		return nil, err
	}
	return n.stack.ListenUDP(ap)
}

func parseListenAddr(address string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("node: address %q: %w", address, err)
	}
	pn, err := net.LookupPort("tcp", port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("node: port %q: %w", port, err)
	}
	var ip netip.Addr
	if host != "" {
		if ip, err = netip.ParseAddr(host); err != nil {
			return netip.AddrPort{}, fmt.Errorf("node: host %q: %w", host, err)
		}
	}
	return netip.AddrPortFrom(ip, uint16(pn)), nil
}

// Stack returns the user-space stack (nil with KernelTUN), for SOCKS5 servers and
// port forwards.
func (n *Node) Stack() *netstack.Stack { return n.stack }

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	var st Stats
	if n.client != nil {
		s := n.client.Stats()
		st.TunPacketsIn, st.TunPacketsOut = s.TunIn, s.TunOut
		st.LinkPacketsIn, st.LinkPacketsOut = s.LinkIn, s.LinkOut
		st.LinkBytesIn, st.LinkBytesOut = s.LinkInBytes, s.LinkOutBy
		st.Drops = s.DropAuth + s.DropReplay + s.DropMalformed + s.DropControlAuth + s.DataPacketsBeforeKeying
		st.HandshakeTime = s.HandshakeTime
	}
	if n.server != nil {
		st.Peers = n.server.Connected()
		for _, p := range n.server.Status() {
			st.LinkBytesIn += p.BytesIn
			st.LinkBytesOut += p.BytesOut
		}
	}
	if n.stack != nil {
		st.Stack = n.stack.Stats()
	}
	n.mu.Lock()
	st.EventsDropped = n.dropped
	n.mu.Unlock()
	return st
}

// Close stops the node gracefully (a client sends its exit notification, a server
// tells its clients to reconnect) and releases everything.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		closers := n.closers
		n.closers = nil
		n.mu.Unlock()
		for _, f := range closers {
			f()
		}
		if n.cancel != nil {
			n.cancel()
		}
		select {
		case err := <-n.done:
			n.closeErr = err
		case <-time.After(15 * time.Second):
			n.closeErr = errors.New("node: did not stop within 15s")
		}
		n.closeStack()
	})
	return n.closeErr
}

func (n *Node) closeStack() {
	if n.stack != nil {
		n.stack.Close()
	}
}

// onClose registers f to run when the node closes.
func (n *Node) onClose(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closers = append(n.closers, f)
}

// run starts the handler on a context that outlives ctx's cancellation (Close ends
// it, so the exit notification still goes out) and reports its end on n.done.
func (n *Node) run(ctx context.Context, fn func(context.Context) error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	go func() { n.done <- fn(rctx) }()
}
