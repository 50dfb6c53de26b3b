// Package forward implements weft's port-forwarding rules for the
// user-space network stack, in the config syntax
//
//	forward tcp 127.0.0.1:8080 10.8.0.1:80
//	reverse-forward tcp 10.8.0.2:22 127.0.0.1:22
//
// A forward rule listens on the host (the local Network) and dials its
// target through the VPN; a reverse-forward rule listens on the VPN stack
// and dials a service on the host. Both work for TCP (each accepted
// connection is relayed to a new connection to the target, with
// half-close) and for UDP (each source address gets its own session, a
// connected socket to the target, closed after IdleTimeout without
// traffic).
//
// The two sides are Networks: Host for the host's sockets and
// StackNetwork for a netstack.Stack.
package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"weft/internal/netaddr"
)

// Defaults for a Rule's zero-valued tuning fields.
const (
	DefaultUDPIdleTimeout = 60 * time.Second
	DefaultDialTimeout    = 30 * time.Second
	DefaultMaxConns       = 1024
)

// Network is where a rule listens or dials: the host or the VPN.
type Network interface {
	// Dial connects to addr ("ip:port") over network ("tcp" or "udp").
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
	// Listen listens for TCP connections on addr ("ip:port").
	Listen(network, addr string) (net.Listener, error)
	// ListenPacket opens a UDP socket bound to addr ("ip:port").
	ListenPacket(network, addr string) (net.PacketConn, error)
}

// Rule is one forward or reverse-forward rule.
type Rule struct {
	// Reverse makes the rule listen on the VPN and dial the host
	// (reverse-forward); otherwise it listens on the host and dials
	// through the VPN (forward).
	Reverse bool
	// Proto is "tcp" or "udp".
	Proto string
	// Listen is where connections or datagrams are accepted.
	Listen netip.AddrPort
	// Target is where they are relayed to.
	Target netip.AddrPort

	// The fields below are not part of the config syntax; callers may set
	// them before Run.

	// UDPIdleTimeout ends a UDP session after this long without a
	// datagram in either direction (0: DefaultUDPIdleTimeout).
	UDPIdleTimeout time.Duration
	// DialTimeout bounds connecting to the target (0: DefaultDialTimeout).
	DialTimeout time.Duration
	// MaxConns bounds concurrent TCP connections or UDP sessions (0:
	// DefaultMaxConns). Beyond it, TCP clients wait in the listen backlog
	// and datagrams from new UDP sources are dropped.
	MaxConns int
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Directive returns the config directive of r: "forward" or
// "reverse-forward".
func (r Rule) Directive() string {
	if r.Reverse {
		return "reverse-forward"
	}
	return "forward"
}

// String returns r in the config syntax.
func (r Rule) String() string {
	return strings.Join([]string{r.Directive(), r.Proto, r.Listen.String(), r.Target.String()}, " ")
}

// ParseRule parses a rule's arguments, the words after the directive
// name: PROTO LISTEN TARGET, where PROTO is tcp or udp and LISTEN and
// TARGET are IP:PORT (IPv6 in brackets) with a non-zero port. It returns a
// forward rule; set Reverse for reverse-forward, or use ParseDirective.
func ParseRule(args []string) (Rule, error) {
	if len(args) != 3 {
		return Rule{}, fmt.Errorf("want 3 arguments (tcp|udp LISTEN-IP:PORT TARGET-IP:PORT), got %d", len(args))
	}
	var r Rule
	switch p := strings.ToLower(args[0]); p {
	case "tcp", "udp":
		r.Proto = p
	default:
		return Rule{}, fmt.Errorf("protocol %q: want tcp or udp", args[0])
	}
	var err error
	if r.Listen, err = parseAddrPort(args[1]); err != nil {
		return Rule{}, fmt.Errorf("listen address: %w", err)
	}
	if r.Target, err = parseAddrPort(args[2]); err != nil {
		return Rule{}, fmt.Errorf("target address: %w", err)
	}
	if r.Target.Addr().IsUnspecified() {
		return Rule{}, fmt.Errorf("target address %s: unspecified address", args[2])
	}
	return r, nil
}

// ParseDirective parses a whole rule: name is "forward" or
// "reverse-forward" and args the words after it. Errors name the
// directive.
func ParseDirective(name string, args []string) (Rule, error) {
	var reverse bool
	switch name {
	case "forward":
	case "reverse-forward":
		reverse = true
	default:
		return Rule{}, fmt.Errorf("forward: unknown directive %q", name)
	}
	r, err := ParseRule(args)
	if err != nil {
		return Rule{}, fmt.Errorf("%s: %w", name, err)
	}
	r.Reverse = reverse
	return r, nil
}

func parseAddrPort(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: want IP:PORT: %w", s, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: host %q is not an IP address", s, host)
	}
	if ip.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%q: zoned addresses are not supported", s)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil || pn == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: port %q: want 1-65535", s, port)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(pn)), nil
}

func orDefault[T time.Duration | int](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Run serves rule until ctx is cancelled, then closes its listener and
// every connection or session it relays, waits for them, and returns nil.
// It returns an error if it cannot listen, or if accepting fails for a
// reason other than cancellation. local is the host, vpn the VPN stack.
func Run(ctx context.Context, rule Rule, local, vpn Network) error {
	if !rule.Listen.IsValid() || !rule.Target.IsValid() {
		return fmt.Errorf("forward: %s: listen and target addresses are required", rule.Directive())
	}
	listenOn, dialOn := local, vpn
	if rule.Reverse {
		listenOn, dialOn = vpn, local
	}
	if listenOn == nil || dialOn == nil {
		return fmt.Errorf("forward: %s: nil network", rule)
	}
	log := rule.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("rule", rule.String())
	switch rule.Proto {
	case "tcp":
		return runTCP(ctx, rule, listenOn, dialOn, log)
	case "udp":
		return runUDP(ctx, rule, listenOn, dialOn, log)
	}
	return fmt.Errorf("forward: %s: protocol %q: want tcp or udp", rule.Directive(), rule.Proto)
}

func runTCP(ctx context.Context, rule Rule, listenOn, dialOn Network, log *slog.Logger) error {
	if ctx.Err() != nil {
		return nil
	}
	l, err := listenOn.Listen("tcp", rule.Listen.String())
	if err != nil {
		return fmt.Errorf("forward: %s: listen: %w", rule, err)
	}
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer l.Close()
	log.Debug("forward: listening", "addr", l.Addr().String())

	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, orDefault(rule.MaxConns, DefaultMaxConns))
	var delay time.Duration
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		c, err := l.Accept()
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				return nil
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("forward: %s: accept: %w", rule, err)
		}
		delay = 0
		wg.Go(func() {
			defer func() { <-sem }()
			relayTCP(ctx, rule, c, dialOn, log)
		})
	}
}

// relayTCP connects c to the rule's target and copies both ways.
func relayTCP(ctx context.Context, rule Rule, c net.Conn, dialOn Network, log *slog.Logger) {
	defer c.Close()
	dctx, cancel := context.WithTimeout(ctx, orDefault(rule.DialTimeout, DefaultDialTimeout))
	out, err := dialOn.Dial(dctx, "tcp", rule.Target.String())
	cancel()
	if err != nil {
		log.Debug("forward: dial failed", "client", c.RemoteAddr().String(), "err", err)
		return
	}
	defer out.Close()
	// Cancellation aborts the relay.
	stop := context.AfterFunc(ctx, func() { c.Close(); out.Close() })
	defer stop()
	log.Debug("forward: relaying", "client", c.RemoteAddr().String(), "via", out.LocalAddr().String())
	var wg sync.WaitGroup
	wg.Go(func() { pipe(out, c) })
	pipe(c, out)
	wg.Wait()
}

// pipe copies src to dst. A clean EOF half-closes dst so the other
// direction can finish; an error aborts both connections.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
	}
	src.Close()
	dst.Close()
}

// udpSession is one source address's connected socket to the target.
type udpSession struct {
	client net.Addr
	conn   net.Conn
	last   atomic.Int64 // unix nanos of the last datagram either way
}

func (s *udpSession) touch() { s.last.Store(time.Now().UnixNano()) }

func runUDP(ctx context.Context, rule Rule, listenOn, dialOn Network, log *slog.Logger) error {
	if ctx.Err() != nil {
		return nil
	}
	pc, err := listenOn.ListenPacket("udp", rule.Listen.String())
	if err != nil {
		return fmt.Errorf("forward: %s: listen: %w", rule, err)
	}
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	defer pc.Close()
	log.Debug("forward: listening", "addr", pc.LocalAddr().String())

	idle := orDefault(rule.UDPIdleTimeout, DefaultUDPIdleTimeout)
	maxSessions := orDefault(rule.MaxConns, DefaultMaxConns)
	var (
		mu       sync.Mutex
		sessions = make(map[netip.AddrPort]*udpSession) // guarded by mu
		wg       sync.WaitGroup
	)
	defer func() {
		mu.Lock()
		for _, s := range sessions {
			s.conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()

	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("forward: %s: read: %w", rule, err)
		}
		key, ok := netaddr.AddrPortOf(from)
		if !ok {
			continue
		}
		mu.Lock()
		s := sessions[key]
		full := len(sessions) >= maxSessions
		mu.Unlock()
		if s == nil {
			if full {
				log.Debug("forward: too many UDP sessions, dropping", "client", key.String())
				continue
			}
			// Dialing a UDP socket sends nothing, so this does not block
			// the loop for long.
			dctx, cancel := context.WithTimeout(ctx, orDefault(rule.DialTimeout, DefaultDialTimeout))
			conn, err := dialOn.Dial(dctx, "udp", rule.Target.String())
			cancel()
			if err != nil {
				log.Debug("forward: UDP dial failed", "client", key.String(), "err", err)
				continue
			}
			s = &udpSession{client: from, conn: conn}
			s.touch()
			mu.Lock()
			sessions[key] = s
			mu.Unlock()
			log.Debug("forward: UDP session", "client", key.String(), "via", conn.LocalAddr().String())
			wg.Go(func() {
				replies(s, pc, idle)
				mu.Lock()
				if sessions[key] == s {
					delete(sessions, key)
				}
				mu.Unlock()
				s.conn.Close()
				log.Debug("forward: UDP session ended", "client", key.String())
			})
		}
		s.touch()
		if _, err := s.conn.Write(buf[:n]); err != nil {
			log.Debug("forward: UDP send failed", "client", key.String(), "err", err)
		}
	}
}

// replies copies the target's datagrams back to the session's client until
// the session is idle for idle or its socket fails.
func replies(s *udpSession, pc net.PacketConn, idle time.Duration) {
	buf := make([]byte, 65536)
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(idle))
		n, err := s.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, s.last.Load())) < idle {
				continue // the client sent recently: keep the session
			}
			return
		}
		s.touch()
		if _, err := pc.WriteTo(buf[:n], s.client); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}
