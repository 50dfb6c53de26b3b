// Package socks5 is a SOCKS5 server (RFC 1928) for weft's rootless mode:
// local applications point at it and their connections leave through the
// VPN's user-space network stack.
//
// It implements the no-authentication method, the CONNECT and UDP
// ASSOCIATE commands and the IPv4, IPv6 and DOMAIN address types. BIND is
// answered with "command not supported". Outbound connections and sockets
// come from the injected Server.Dial and Server.ListenPacket (for weft,
// closures over a netstack.Stack), and domain names are resolved by the
// injected Server.Resolver, typically DNSResolver over the DNS servers the
// VPN pushed (DNSServers extracts them from dhcp-option).
//
// The server is bounded: a handshake must complete within HandshakeTimeout,
// resolving and dialing within DialTimeout, at most MaxConns client
// connections are served at once (further clients wait in the listener's
// backlog), and idle UDP associations and, optionally, idle TCP relays are
// closed. The client-facing UDP relay socket of an association is a host
// socket on the address the client connected to, and it only accepts
// datagrams from the client's IP address.
package socks5

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"weft/internal/netaddr"
)

// Defaults for the Server's zero-valued fields.
const (
	DefaultMaxConns         = 256
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultDialTimeout      = 30 * time.Second
	DefaultUDPIdleTimeout   = 2 * time.Minute
)

// maxUDPNames bounds an association's cache of resolved names.
const maxUDPNames = 64

// Resolver resolves host names; *net.Resolver implements it. network is
// "ip", "ip4" or "ip6".
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("socks5: server closed")

// Server is a SOCKS5 server. Set its fields before the first Serve and do
// not change them afterwards. The zero value serves through the host's
// network with the system resolver.
type Server struct {
	// Dial opens CONNECT targets; it is called with network "tcp" and an
	// "ip:port" address. nil dials with a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ListenPacket opens the outbound socket of a UDP association; it is
	// called with network "udp" and address ":0" (any address, any port).
	// The socket must accept WriteTo with *net.UDPAddr of either family.
	// nil uses a net.ListenConfig.
	ListenPacket func(ctx context.Context, network, addr string) (net.PacketConn, error)
	// Resolver resolves DOMAIN addresses; nil uses net.DefaultResolver.
	Resolver Resolver
	// Logger receives per-connection debug logs; nil discards them.
	Logger *slog.Logger
	// MaxConns bounds the client connections served at once (0:
	// DefaultMaxConns).
	MaxConns int
	// HandshakeTimeout bounds method negotiation and the request (0:
	// DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
	// DialTimeout bounds resolving and connecting a CONNECT target, and
	// each name lookup of a UDP association (0: DefaultDialTimeout).
	DialTimeout time.Duration
	// IdleTimeout closes a CONNECT relay after this long without data in
	// either direction (0: never).
	IdleTimeout time.Duration
	// UDPIdleTimeout closes a UDP association after this long without a
	// datagram in either direction (0: DefaultUDPIdleTimeout).
	UDPIdleTimeout time.Duration

	initOnce sync.Once
	sem      chan struct{}
	done     chan struct{}
	baseCtx  context.Context // cancelled by Close; bounds dials
	cancel   context.CancelFunc
	log      *slog.Logger

	mu        sync.Mutex
	closed    bool                      // guarded by mu
	listeners map[net.Listener]struct{} // guarded by mu
	sessions  map[*session]struct{}     // guarded by mu
	wg        sync.WaitGroup
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		n := s.MaxConns
		if n <= 0 {
			n = DefaultMaxConns
		}
		s.sem = make(chan struct{}, n)
		s.done = make(chan struct{})
		s.baseCtx, s.cancel = context.WithCancel(context.Background())
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.New(slog.DiscardHandler)
		}
		s.listeners = make(map[net.Listener]struct{})
		s.sessions = make(map[*session]struct{})
	})
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// session holds what one client connection opened, so Close can abort it.
type session struct {
	mu      sync.Mutex
	closers []io.Closer // guarded by mu
	closed  bool        // guarded by mu
}

// add registers c to be closed with the session; if the session is already
// closed it closes c and reports false.
func (ss *session) add(c io.Closer) bool {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		c.Close()
		return false
	}
	ss.closers = append(ss.closers, c)
	ss.mu.Unlock()
	return true
}

func (ss *session) close() {
	ss.mu.Lock()
	cs := ss.closers
	ss.closers, ss.closed = nil, true
	ss.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// Serve accepts SOCKS5 clients on l until Close (then it returns
// ErrServerClosed) or until Accept fails permanently. It closes l on
// return. Serve may be called for several listeners at once.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	var delay time.Duration
	for {
		// Take a connection slot before accepting: when MaxConns clients
		// are being served, new ones wait in the backlog.
		select {
		case s.sem <- struct{}{}:
		case <-s.done:
			return ErrServerClosed
		}
		c, err := l.Accept()
		if err != nil {
			<-s.sem
			if s.isClosed() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// Out of file descriptors and the like: back off, as
				// net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Debug("socks5: accept failed, retrying", "err", err, "delay", delay)
				select {
				case <-time.After(delay):
					continue
				case <-s.done:
					return ErrServerClosed
				}
			}
			return fmt.Errorf("socks5: accept: %w", err)
		}
		delay = 0
		ss := &session{}
		ss.add(c)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			ss.close()
			<-s.sem
			return ErrServerClosed
		}
		s.sessions[ss] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer func() {
				ss.close()
				s.mu.Lock()
				delete(s.sessions, ss)
				s.mu.Unlock()
				<-s.sem
				s.wg.Done()
			}()
			s.handle(ss, c)
		}()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops every Serve, closes their listeners and every client
// connection and relay, and waits for the connection handlers to return.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	close(s.done)
	s.cancel()
	ls := make([]net.Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	ss := make([]*session, 0, len(s.sessions))
	for x := range s.sessions {
		ss = append(ss, x)
	}
	s.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, x := range ss {
		x.close()
	}
	s.wg.Wait()
	return nil
}

// handle serves one client connection.
func (s *Server) handle(ss *session, c net.Conn) {
	log := s.log.With("client", c.RemoteAddr().String())
	_ = c.SetDeadline(time.Now().Add(orDefault(s.HandshakeTimeout, DefaultHandshakeTimeout)))
	if err := negotiate(c); err != nil {
		log.Debug("socks5: negotiation failed", "err", err)
		return
	}
	req, err := readRequest(c)
	if err != nil {
		log.Debug("socks5: bad request", "err", err)
		if rep, ok := replyForParseErr(err); ok {
			writeReply(c, rep, Addr{})
		}
		return
	}
	log = log.With("cmd", req.Command.String(), "target", req.Addr.String())
	switch req.Command {
	case Connect:
		s.connect(ss, c, req, log)
	case UDPAssociate:
		s.associate(ss, c, req, log)
	default:
		log.Debug("socks5: command not supported")
		writeReply(c, CommandNotSupported, Addr{})
	}
}

// negotiate reads the method selection message and selects "no
// authentication required" (RFC 1928 §3).
func negotiate(c net.Conn) error {
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if hdr[0] != Version {
		return fmt.Errorf("greeting: %w %d", ErrVersion, hdr[0])
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return fmt.Errorf("read methods: %w", err)
	}
	if !bytes.Contains(methods, []byte{MethodNoAuth}) {
		_, _ = c.Write([]byte{Version, MethodNoAcceptable})
		return fmt.Errorf("client offers no acceptable method (%x)", methods)
	}
	if _, err := c.Write([]byte{Version, MethodNoAuth}); err != nil {
		return fmt.Errorf("write method: %w", err)
	}
	return nil
}

// replyForParseErr maps a request parse error to the reply owed to the
// client; a read error gets none.
func replyForParseErr(err error) (Reply, bool) {
	switch {
	case errors.Is(err, ErrCommand):
		return CommandNotSupported, true
	case errors.Is(err, ErrAddrType):
		return AddressTypeNotSupported, true
	case errors.Is(err, ErrVersion), errors.Is(err, ErrReserved), errors.Is(err, ErrBadAddr):
		return GeneralFailure, true
	}
	return 0, false
}

func writeReply(c net.Conn, rep Reply, bnd Addr) {
	_, _ = c.Write(appendReply(nil, rep, bnd))
}

// resolve returns the addresses to try for a.
func (s *Server) resolve(ctx context.Context, a Addr) ([]netip.AddrPort, error) {
	if a.IP.IsValid() {
		return []netip.AddrPort{netip.AddrPortFrom(a.IP, a.Port)}, nil
	}
	r := s.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupNetIP(ctx, "ip", a.Name)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", a.Name, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("resolve %q: no addresses", a.Name)
	}
	out := make([]netip.AddrPort, 0, min(len(ips), 4))
	for _, ip := range ips[:min(len(ips), 4)] {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), a.Port))
	}
	return out, nil
}

func (s *Server) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if s.Dial != nil {
		return s.Dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (s *Server) listenPacket(ctx context.Context, network, addr string) (net.PacketConn, error) {
	if s.ListenPacket != nil {
		return s.ListenPacket(ctx, network, addr)
	}
	var lc net.ListenConfig
	return lc.ListenPacket(ctx, network, addr)
}

// connect serves CONNECT: dial the target, reply, relay.
func (s *Server) connect(ss *session, c net.Conn, req Request, log *slog.Logger) {
	if req.Addr.Port == 0 {
		writeReply(c, GeneralFailure, Addr{})
		return
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, orDefault(s.DialTimeout, DefaultDialTimeout))
	defer cancel()
	targets, err := s.resolve(ctx, req.Addr)
	if err != nil {
		log.Debug("socks5: resolve failed", "err", err)
		writeReply(c, HostUnreachable, Addr{})
		return
	}
	var out net.Conn
	for _, t := range targets {
		out, err = s.dial(ctx, "tcp", t.String())
		if err == nil {
			break
		}
		log.Debug("socks5: dial failed", "addr", t.String(), "err", err)
	}
	if err != nil {
		writeReply(c, replyForDialErr(err), Addr{})
		return
	}
	if !ss.add(out) {
		return
	}
	bnd, _ := netaddr.AddrPortOf(out.LocalAddr())
	if _, err := c.Write(appendReply(nil, Succeeded, AddrFromAddrPort(bnd))); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	log.Debug("socks5: connected", "via", bnd.String())
	s.relay(c, out)
}

// replyForDialErr maps a dial error to a reply code. gVisor's errors are
// plain strings, so their messages are matched too.
func replyForDialErr(err error) Reply {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return NetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return HostUnreachable
	}
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "refused"):
		return ConnectionRefused
	case strings.Contains(msg, "network is unreachable"):
		return NetworkUnreachable
	case strings.Contains(msg, "no route to host"), strings.Contains(msg, "host is unreachable"),
		strings.Contains(msg, "timed out"):
		return HostUnreachable
	}
	return GeneralFailure
}

// relay copies both ways between a and b until both directions end. A
// direction that ends cleanly half-closes its destination, so the other
// direction can finish; an error aborts both.
func (s *Server) relay(a, b net.Conn) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Go(func() { s.pipe(b, a, &last) })
	s.pipe(a, b, &last)
	wg.Wait()
}

// pipe copies src to dst. With an IdleTimeout, reads time out and the copy
// ends once neither direction (sharing last) has moved data for that long.
func (s *Server) pipe(dst, src net.Conn, last *atomic.Int64) {
	buf := make([]byte, 32<<10)
	idle := s.IdleTimeout
	for {
		if idle > 0 {
			_ = src.SetReadDeadline(time.Now().Add(idle))
		}
		n, err := src.Read(buf)
		if n > 0 {
			last.Store(time.Now().UnixNano())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				dst.Close()
				return
			}
		}
		if err == nil {
			continue
		}
		var ne net.Error
		if idle > 0 && errors.As(err, &ne) && ne.Timeout() &&
			time.Since(time.Unix(0, last.Load())) < idle {
			continue // the other direction is active
		}
		if errors.Is(err, io.EOF) {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				return
			}
		}
		src.Close()
		dst.Close()
		return
	}
}

// associate serves UDP ASSOCIATE (RFC 1928 §7): a host UDP socket facing
// the client, an outbound socket from ListenPacket, and two relay loops,
// for as long as the TCP connection stays open and datagrams flow.
func (s *Server) associate(ss *session, c net.Conn, req Request, log *slog.Logger) {
	local, ok := netaddr.AddrPortOf(c.LocalAddr())
	if !ok {
		writeReply(c, GeneralFailure, Addr{})
		return
	}
	clientAP, ok := netaddr.AddrPortOf(c.RemoteAddr())
	if !ok {
		writeReply(c, GeneralFailure, Addr{})
		return
	}
	relay, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local.Addr(), 0)))
	if err != nil {
		log.Debug("socks5: relay socket", "err", err)
		writeReply(c, GeneralFailure, Addr{})
		return
	}
	if !ss.add(relay) {
		return
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, orDefault(s.DialTimeout, DefaultDialTimeout))
	out, err := s.listenPacket(ctx, "udp", ":0")
	cancel()
	if err != nil {
		log.Debug("socks5: outbound socket", "err", err)
		writeReply(c, GeneralFailure, Addr{})
		return
	}
	if !ss.add(out) {
		return
	}
	bnd := relay.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := c.Write(appendReply(nil, Succeeded, AddrFromAddrPort(bnd))); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	log.Debug("socks5: UDP association", "relay", bnd.String())

	a := &association{
		s:        s,
		relay:    relay,
		out:      out,
		clientIP: clientAP.Addr().Unmap(),
		idle:     orDefault(s.UDPIdleTimeout, DefaultUDPIdleTimeout),
		names:    make(map[string]netip.Addr),
		log:      log,
	}
	// The client may announce the address it will send from.
	if req.Addr.IP.IsValid() && !req.Addr.IP.IsUnspecified() && req.Addr.Port != 0 {
		ap := netip.AddrPortFrom(req.Addr.IP, req.Addr.Port)
		a.client.Store(&ap)
	}
	a.touch()
	var wg sync.WaitGroup
	// When either loop ends (idle, error), end the association by closing
	// the control connection, which ends the wait below.
	wg.Go(func() { a.fromClient(); c.Close() })
	wg.Go(func() { a.toClient(); c.Close() })
	// The association lives as long as the TCP connection (RFC 1928 §7).
	_, _ = io.Copy(io.Discard, c)
	relay.Close()
	out.Close()
	wg.Wait()
	log.Debug("socks5: UDP association ended")
}

// association is one UDP ASSOCIATE relay.
type association struct {
	s        *Server
	relay    *net.UDPConn   // faces the client
	out      net.PacketConn // faces the targets
	clientIP netip.Addr
	client   atomic.Pointer[netip.AddrPort] // where replies go, once known
	last     atomic.Int64                   // unix nanos of the last datagram
	idle     time.Duration
	names    map[string]netip.Addr // owned by fromClient
	log      *slog.Logger
}

func (a *association) touch() { a.last.Store(time.Now().UnixNano()) }

// retry reports whether a read error is only a deadline in an association
// that is still active (the read re-arms); any other error, or a deadline
// that found the whole association idle, ends the loop.
func (a *association) retry(err error) bool {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	return time.Since(time.Unix(0, a.last.Load())) < a.idle
}

// fromClient relays client datagrams to their targets.
func (a *association) fromClient() {
	buf := make([]byte, 65536)
	for {
		_ = a.relay.SetReadDeadline(time.Now().Add(a.idle))
		n, from, err := a.relay.ReadFromUDPAddrPort(buf)
		if err != nil {
			if a.retry(err) {
				continue
			}
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if from.Addr() != a.clientIP {
			continue // RFC 1928 §7: only the client's address
		}
		if want := a.client.Load(); want != nil && *want != from {
			continue
		}
		frag, dst, payload, err := ParseDatagram(buf[:n])
		if err != nil || frag != 0 || dst.Port == 0 {
			continue // malformed, or fragmented (not supported): drop
		}
		ip, ok := a.lookup(dst)
		if !ok {
			continue
		}
		if a.client.Load() == nil {
			a.client.Store(&from)
		}
		a.touch()
		to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, dst.Port))
		if _, err := a.out.WriteTo(payload, to); err != nil {
			a.log.Debug("socks5: UDP send failed", "to", to.String(), "err", err)
		}
	}
}

// lookup returns dst's IP, resolving (and caching) names.
func (a *association) lookup(dst Addr) (netip.Addr, bool) {
	if dst.IP.IsValid() {
		return dst.IP, true
	}
	if ip, ok := a.names[dst.Name]; ok {
		return ip, true
	}
	ctx, cancel := context.WithTimeout(a.s.baseCtx, orDefault(a.s.DialTimeout, DefaultDialTimeout))
	defer cancel()
	aps, err := a.s.resolve(ctx, dst)
	if err != nil {
		a.log.Debug("socks5: UDP target not resolved", "name", dst.Name, "err", err)
		return netip.Addr{}, false
	}
	if len(a.names) >= maxUDPNames {
		clear(a.names)
	}
	a.names[dst.Name] = aps[0].Addr()
	return aps[0].Addr(), true
}

// toClient relays target datagrams back to the client with their source.
func (a *association) toClient() {
	buf := make([]byte, 65536)
	var pkt []byte
	for {
		_ = a.out.SetReadDeadline(time.Now().Add(a.idle))
		n, from, err := a.out.ReadFrom(buf)
		if err != nil {
			if a.retry(err) {
				continue
			}
			return
		}
		src, ok := netaddr.AddrPortOf(from)
		client := a.client.Load()
		if !ok || client == nil {
			continue
		}
		a.touch()
		pkt = AppendDatagram(pkt[:0], AddrFromAddrPort(src), buf[:n])
		if _, err := a.relay.WriteToUDPAddrPort(pkt, *client); err != nil {
			a.log.Debug("socks5: UDP reply failed", "err", err)
		}
	}
}
