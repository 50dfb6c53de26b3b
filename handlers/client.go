// Package handlers connects the pure OpenVPN session engine (package ovpn) to the
// reactor, the transports and the tunnel device. A handler owns the lifecycle of a
// VPN role: for the client, connecting to a remote, reconnecting on restarts, bringing
// the tunnel device up with the pushed addresses and routes, and the graceful exit.
//
// All session state lives on one reactor shard: reader goroutines post packets to the
// shard, and the shard's timer drives the session's deadlines.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"weft/controlwrap"
	"weft/ovpn"
	"weft/reactor"
	"weft/transport/tcp"
	"weft/transport/udp"
	"weft/tun"
)

// Remote is one server address to try.
type Remote struct {
	Host  string
	Port  int
	Proto string // udp, udp4, udp6, tcp, tcp4, tcp6
}

func (r Remote) String() string {
	return fmt.Sprintf("[%s]%s", r.Proto, net.JoinHostPort(r.Host, strconv.Itoa(r.Port)))
}

func (r Remote) isTCP() bool { return r.Proto == "tcp" || r.Proto == "tcp4" || r.Proto == "tcp6" }

// ClientParams configures a Client.
type ClientParams struct {
	Remotes      []Remote
	RemoteRandom bool
	// Session is the template for every session; its Wrapper is replaced by NewWrapper.
	Session    ovpn.Config
	NewWrapper func() (controlwrap.Wrapper, error)
	// ConnectRetry is the pause between attempts, doubling up to ConnectRetryMax.
	ConnectRetry    time.Duration
	ConnectRetryMax time.Duration
	// ConnectTimeout bounds a TCP connect (server-poll-timeout).
	ConnectTimeout time.Duration
	// MaxAttempts stops after this many failed attempts (0: forever).
	MaxAttempts int
	// Device names the TUN device ("tun" lets the kernel pick tunN).
	Device string
	TunMTU int
	// OpenTUN creates the tunnel device; nil uses the kernel TUN. Configure applies
	// addresses and routes; nil uses netlink.
	OpenTUN   func(name string, mtu int) (tun.Device, error)
	Configure func(name string, c tun.LinkConfig) error
	// RouteNoPull ignores pushed routes.
	RouteNoPull bool
	// OnEvent, if set, receives lifecycle events; it must not block.
	OnEvent func(Event)
	// DataParams sizes the data path.
	DataParams
	Logger *slog.Logger
}

// Client is an OpenVPN client: one session at a time, reconnecting as needed.
type Client struct {
	p   ClientParams
	log *slog.Logger
	r   *reactor.Reactor
	sh  *reactor.Shard

	// Owned by the shard goroutine.
	cur      *attempt
	dev      tun.Device
	devName  string
	applied  *tun.LinkConfig
	attempts int
	// warnedComp: the compression (VORACLE) warning is logged once per client.
	warnedComp bool

	events  chan attemptEvent
	closing atomic.Bool
	live    atomic.Pointer[attempt] // the attempt the data path uses
	devA    atomic.Pointer[tun.Device]
	devMu   sync.Mutex

	statsMu sync.Mutex
	stats   ovpn.Stats
}

// attempt is one connection: a transport and a session.
type attempt struct {
	id     uint64
	sess   *ovpn.Session
	remote Remote
	udp    *udp.Conn
	raddr  netip.AddrPort
	tcp    *tcp.Conn
	msgs   []udp.Message
	wmu    sync.Mutex // serialises UDP writes of the shard and the TUN reader
	done   bool
	closed chan struct{}
}

type attemptEvent struct {
	a  *attempt
	ev ovpn.Event
}

const sessionTimer = 1

// NewClient validates params and returns a client ready to Run.
func NewClient(p ClientParams) (*Client, error) {
	if len(p.Remotes) == 0 {
		return nil, errors.New("client: no remote configured")
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.ConnectRetry <= 0 {
		p.ConnectRetry = time.Second
	}
	if p.ConnectRetryMax <= 0 {
		p.ConnectRetryMax = 300 * time.Second
	}
	if p.ConnectTimeout <= 0 {
		p.ConnectTimeout = 10 * time.Second
	}
	if p.NewWrapper == nil {
		p.NewWrapper = func() (controlwrap.Wrapper, error) { return controlwrap.NewNone(), nil }
	}
	if p.OpenTUN == nil {
		p.OpenTUN = tun.Create
	}
	if p.Configure == nil {
		p.Configure = tun.Configure
	}
	if p.TunMTU == 0 {
		p.TunMTU = 1500
	}
	p.DataParams.setDefaults()
	c := &Client{p: p, log: p.Logger, events: make(chan attemptEvent, 16)}
	c.r = reactor.New(reactor.Config{Shards: 1, Logger: p.Logger, OnTimer: c.onTimer})
	c.sh = c.r.Shard(0)
	return c, nil
}

// Stats returns the counters of the current session.
func (c *Client) Stats() ovpn.Stats {
	c.statsMu.Lock()
	st := c.stats
	c.statsMu.Unlock()
	if a := c.live.Load(); a != nil {
		return a.sess.DataPath().Merge(st)
	}
	return st
}

// ErrAuthFailed is returned by Run when the server refused the client.
var ErrAuthFailed = errors.New("authentication failed")

// Run connects and keeps the tunnel up until ctx is cancelled (then it sends the exit
// notification and returns nil) or a fatal error occurs.
func (c *Client) Run(ctx context.Context) error {
	defer c.event(Event{Kind: EventClosed})
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan error, 1)
	go func() { rdone <- c.r.Run(rctx) }()
	defer func() {
		c.closing.Store(true)
		if c.dev != nil {
			c.dev.Close()
		}
		rcancel()
		<-rdone
	}()

	remotes := append([]Remote(nil), c.p.Remotes...)
	if c.p.RemoteRandom {
		rand.Shuffle(len(remotes), func(i, j int) { remotes[i], remotes[j] = remotes[j], remotes[i] })
	}
	retry := c.p.ConnectRetry
	var id uint64
	for i := 0; ; i++ {
		remote := remotes[i%len(remotes)]
		id++
		a, err := c.connect(ctx, id, remote)
		if err != nil {
			c.log.Warn("connection attempt failed", "remote", remote.String(), "err", err)
		} else {
			ev, err := c.wait(ctx, a)
			switch {
			case err != nil: // ctx cancelled: graceful exit done
				return nil
			case ev.Kind == ovpn.EventAuthFailed:
				c.log.Error(ev.Reason)
				c.event(Event{Kind: EventAuthFailed, Remote: remote.String(), Reason: ev.Reason})
				return fmt.Errorf("%w: %s", ErrAuthFailed, ev.Reason)
			case ev.Kind == ovpn.EventFatal:
				c.log.Error("fatal: " + ev.Reason)
				return errors.New(ev.Reason)
			case ev.Kind == ovpn.EventHalt:
				c.log.Error("halting: " + ev.Reason)
				return errors.New(ev.Reason)
			default:
				c.log.Warn("connection reset, restarting", "reason", ev.Reason)
				c.event(Event{Kind: EventReconnecting, Remote: remote.String(), Reason: ev.Reason})
			}
			if a.sess.Connected() {
				retry = c.p.ConnectRetry
			}
		}
		c.attempts++
		if c.p.MaxAttempts > 0 && c.attempts >= c.p.MaxAttempts {
			return fmt.Errorf("giving up after %d connection attempts", c.attempts)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
		retry = min(retry*2, c.p.ConnectRetryMax)
	}
}

// wait blocks until the attempt ends with an event, or ctx is cancelled (then it
// performs the graceful exit and returns ctx's error).
func (c *Client) wait(ctx context.Context, a *attempt) (ovpn.Event, error) {
	for {
		select {
		case ae := <-c.events:
			if ae.a != a {
				continue
			}
			switch ae.ev.Kind {
			case ovpn.EventConnected, ovpn.EventRenegotiated:
				continue
			}
			c.closeAttempt(a)
			return ae.ev, nil
		case <-ctx.Done():
			c.gracefulExit(a)
			return ovpn.Event{}, ctx.Err()
		}
	}
}

func (c *Client) gracefulExit(a *attempt) {
	waitCh := make(chan time.Duration, 1)
	c.sh.Post(func(now time.Time) {
		if a.done {
			waitCh <- 0
			return
		}
		d := a.sess.Close(now)
		c.drive(now, a)
		waitCh <- d
	})
	d := <-waitCh
	if d > 0 {
		c.log.Info("sending exit notification to the server")
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			doneCh := make(chan bool, 1)
			c.sh.Post(func(now time.Time) { doneCh <- a.done || a.sess.ExitDelivered() })
			if <-doneCh {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	c.closeAttempt(a)
	c.log.Info("exiting")
}

func (c *Client) closeAttempt(a *attempt) {
	done := make(chan struct{})
	c.sh.Post(func(now time.Time) {
		a.done = true
		c.live.CompareAndSwap(a, nil)
		if c.cur == a {
			c.cur = nil
			c.sh.Cancel(sessionTimer)
		}
		close(done)
	})
	<-done
	if a.udp != nil {
		a.udp.Close()
	}
	if a.tcp != nil {
		a.tcp.Close()
	}
	<-a.closed
}

// connect opens the transport for remote and starts a session on the shard.
func (c *Client) connect(ctx context.Context, id uint64, remote Remote) (*attempt, error) {
	a := &attempt{id: id, remote: remote, closed: make(chan struct{})}
	rcfg := c.p.Session
	w, err := c.p.NewWrapper()
	if err != nil {
		return nil, err
	}
	rcfg.Wrapper = w
	rcfg.TCP = remote.isTCP()
	c.log.Info("connecting", "remote", remote.String())
	c.event(Event{Kind: EventConnecting, Remote: remote.String()})
	if remote.isTCP() {
		dctx, cancel := context.WithTimeout(ctx, c.p.ConnectTimeout)
		conn, err := tcp.Dial(dctx, remote.Proto, net.JoinHostPort(remote.Host, strconv.Itoa(remote.Port)), netip.AddrPort{}, tcp.Options{})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("TCP connect to %s: %w", remote, err)
		}
		a.tcp = conn
		c.log.Info("TCP connection established", "local", conn.LocalAddr().String(), "remote", conn.RemoteAddr().String())
	} else {
		raddr, err := resolve(ctx, remote)
		if err != nil {
			return nil, err
		}
		network := "udp4"
		local := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
		if raddr.Addr().Is6() {
			network = "udp6"
			local = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
		}
		conn, err := udp.Listen(network, local, udp.Options{RecvBuffer: c.p.SocketBuffer, SendBuffer: c.p.SocketBuffer})
		if err != nil {
			return nil, fmt.Errorf("UDP socket: %w", err)
		}
		a.udp, a.raddr = conn, raddr
		a.msgs = make([]udp.Message, 0, 64)
		c.log.Info("UDP link", "local", conn.LocalAddr().String(), "remote", raddr.String())
	}
	started := make(chan error, 1)
	c.sh.Post(func(now time.Time) {
		sess, err := ovpn.NewSession(rcfg, now)
		if err != nil {
			started <- err
			return
		}
		a.sess = sess
		c.cur = a
		c.drive(now, a)
		started <- nil
	})
	if err := <-started; err != nil {
		if a.udp != nil {
			a.udp.Close()
		}
		if a.tcp != nil {
			a.tcp.Close()
		}
		return nil, err
	}
	c.r.Go(func(ctx context.Context) error {
		defer close(a.closed)
		c.readLink(a)
		return nil
	})
	return a, nil
}

func resolve(ctx context.Context, r Remote) (netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(r.Host); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), uint16(r.Port)), nil
	}
	network := "ip"
	switch r.Proto {
	case "udp4":
		network = "ip4"
	case "udp6":
		network = "ip6"
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, network, r.Host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: %w", r.Host, err)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(r.Port)), nil
}

// readLink reads packets from the attempt's transport. Data packets are decrypted
// right here and written to the tunnel device; control packets go to the shard.
func (c *Client) readLink(a *attempt) {
	dp := a.sess.DataPath()
	w := newTUNWriter(c.device, &c.devMu, c.log, !c.p.Pipeline)
	defer w.close()
	rx := w.get()
	deliver := func() {
		if ctl := rx.takeControl(); len(ctl) > 0 {
			c.sh.Post(func(now time.Time) { c.onLink(now, a, ctl) })
		}
		w.put(rx)
		rx = w.get()
	}
	if a.tcp != nil {
		read := tcpReader(a.tcp, func(now time.Time, pkt []byte) { rx.add(now, dp, pkt) })
		for {
			err := read()
			deliver()
			if err != nil {
				c.sh.Post(func(now time.Time) { c.linkFailed(a, err) })
				return
			}
		}
	}
	msgs := linkBuffers(c.p.LinkBatch, c.p.LinkBufSize)
	read := a.udp.ReadBatch
	if c.p.LinkBufSize >= udp.MaxDatagram {
		read = a.udp.ReadCoalesced // datagrams are decrypted where the kernel put them (each capped, so that no append can reach the next)
	}
	for {
		n, err := read(msgs)
		if n > 0 {
			now := time.Now()
			for i := range n {
				m := &msgs[i]
				if m.Addr != a.raddr || m.N == 0 {
					continue
				}
				for off, seg := 0, m.SegmentSize(); off < m.N; off += seg {
					rx.add(now, dp, m.Buf[off:min(off+seg, m.N):min(off+seg, m.N)])
				}
			}
			deliver()
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.sh.Post(func(now time.Time) { c.linkFailed(a, err) })
			}
			w.put(rx)
			return
		}
	}
}

func (c *Client) linkFailed(a *attempt, err error) {
	if a.done {
		return
	}
	a.done = true
	reason := "link error: " + err.Error()
	if a.tcp != nil {
		reason = "connection reset by server: " + err.Error()
	}
	c.events <- attemptEvent{a: a, ev: ovpn.Event{Kind: ovpn.EventRestart, Reason: reason}}
}

func (c *Client) onLink(now time.Time, a *attempt, pkts [][]byte) {
	if a.done {
		return
	}
	for _, p := range pkts {
		a.sess.HandlePacket(now, p)
	}
	c.drive(now, a)
}

func (c *Client) onTimer(_ int, now time.Time, id uint64) {
	a := c.cur
	if a == nil || a.done || id != sessionTimer {
		return
	}
	a.sess.Tick(now)
	c.drive(now, a)
}

// drive moves the session's output to the link and the tunnel, handles its events
// and re-arms its timer. It runs on the shard goroutine.
func (c *Client) drive(now time.Time, a *attempt) {
	out := a.sess.Outgoing()
	if len(out) > 0 {
		var err error
		if a.tcp != nil {
			err = a.tcp.WritePackets(out)
		} else {
			a.msgs = a.msgs[:0]
			for _, p := range out {
				a.msgs = append(a.msgs, udp.Message{Buf: p, N: len(p), Addr: a.raddr})
			}
			a.wmu.Lock()
			_, err = a.udp.WriteBatch(a.msgs)
			a.wmu.Unlock()
		}
		if err != nil {
			c.log.Debug("link write failed", "err", err)
		}
	}
	if in := a.sess.Delivered(); len(in) > 0 && c.dev != nil {
		c.writeTUN(in)
	}
	for _, ev := range a.sess.Events() {
		c.handleEvent(now, a, ev)
	}
	c.statsMu.Lock()
	c.stats = a.sess.ControlStats()
	c.statsMu.Unlock()
	if a.done {
		return
	}
	if d := a.sess.NextDeadline(); !d.IsZero() {
		c.sh.Schedule(sessionTimer, d)
	}
}

func (c *Client) handleEvent(now time.Time, a *attempt, ev ovpn.Event) {
	switch ev.Kind {
	case ovpn.EventConnected:
		if err := c.bringUp(ev.Pushed); err != nil {
			c.log.Error("tunnel device setup failed", "err", err)
			a.done = true
			c.events <- attemptEvent{a: a, ev: ovpn.Event{Kind: ovpn.EventFatal, Reason: "tunnel device: " + err.Error()}}
			return
		}
		c.live.Store(a)
		if w := a.sess.CompressionWarning(); w != "" && !c.warnedComp {
			c.warnedComp = true
			c.log.Warn(w)
		}
		st := a.sess.Stats()
		var addrs []netip.Prefix
		if c.applied != nil {
			for _, ad := range c.applied.Addrs {
				addrs = append(addrs, ad.Prefix)
			}
		}
		c.event(Event{Kind: EventAddress, Remote: a.remote.String(), Addrs: addrs})
		var dhcp [][]string
		if ev.Pushed != nil {
			dhcp = ev.Pushed.DHCPOptions
		}
		c.event(Event{Kind: EventConnected, Remote: a.remote.String(), Addrs: addrs, Handshake: st.HandshakeTime, DHCPOptions: dhcp})
		c.log.Info("Initialization Sequence Completed", "cipher", a.sess.Cipher().String(),
			"handshake", st.HandshakeTime.Round(time.Millisecond).String(), "device", c.devName)
	case ovpn.EventRenegotiated:
		c.log.Info("data channel renegotiated", "key_id", ev.KeyID)
		c.event(Event{Kind: EventRenegotiated, Remote: a.remote.String()})
	default:
		a.done = true
	}
	c.events <- attemptEvent{a: a, ev: ev}
}

// bringUp creates the tunnel device on first use and applies the pushed addresses and
// routes. The device persists across reconnects (OpenVPN's persist-tun behaviour).
func (c *Client) bringUp(p *ovpn.Pushed) error {
	lc := linkConfig(p, c.p.TunMTU, c.p.RouteNoPull)
	if c.dev == nil {
		name := c.p.Device
		if name == "" || name == "tun" {
			name = "tun%d"
		}
		dev, err := c.p.OpenTUN(name, lc.MTU)
		if err != nil {
			return fmt.Errorf("open TUN: %w", err)
		}
		n, err := dev.Name()
		if err != nil {
			dev.Close()
			return err
		}
		c.dev, c.devName = dev, n
		c.devA.Store(&dev)
		c.r.Go(func(ctx context.Context) error {
			c.readTUN(dev)
			return nil
		})
	} else if c.applied != nil && sameLink(c.applied, &lc) {
		return nil
	}
	if err := c.p.Configure(c.devName, lc); err != nil {
		return err
	}
	c.applied = &lc
	c.log.Info("tunnel device configured", "device", c.devName, "addrs", addrList(lc.Addrs), "routes", len(lc.Routes), "mtu", lc.MTU)
	return nil
}

func sameLink(a, b *tun.LinkConfig) bool {
	return fmt.Sprint(*a) == fmt.Sprint(*b)
}

// linkConfig turns pushed options into device settings.
func linkConfig(p *ovpn.Pushed, mtu int, noRoutes bool) tun.LinkConfig {
	lc := tun.LinkConfig{MTU: mtu, Up: true}
	if p == nil {
		return lc
	}
	if p.TunMTU > 0 {
		lc.MTU = p.TunMTU
	}
	gw := p.RouteGateway
	if pf, ok := p.IPv4Prefix(); ok {
		a := tun.Addr{Prefix: pf}
		if p.Topology != "subnet" {
			a.Peer = p.Remote
			if !gw.IsValid() {
				gw = p.Remote
			}
		}
		lc.Addrs = append(lc.Addrs, a)
	}
	if p.Local6.IsValid() {
		lc.Addrs = append(lc.Addrs, tun.Addr{Prefix: p.Local6})
	}
	if noRoutes {
		return lc
	}
	for _, r := range p.Routes {
		g := r.Gateway
		if !g.IsValid() {
			g = gw
		}
		lc.Routes = append(lc.Routes, tun.Route{Dst: r.Net, Gateway: g, Metric: r.Metric})
	}
	for _, r := range p.Routes6 {
		lc.Routes = append(lc.Routes, tun.Route{Dst: r.Net, Gateway: r.Gateway, Metric: r.Metric})
	}
	if p.RedirectGateway != nil && gw.IsValid() {
		for _, half := range []string{"0.0.0.0/1", "128.0.0.0/1"} {
			lc.Routes = append(lc.Routes, tun.Route{Dst: netip.MustParsePrefix(half), Gateway: gw})
		}
	}
	return lc
}

// readTUN reads the tunnel device; the batches are encrypted with the current
// session's data path and sent on its link, by a second goroutine under load (see
// tunPipeline) or inline for embedded nodes.
func (c *Client) readTUN(dev tun.Device) {
	var tx txBatch
	var msgs []udp.Message
	process := func(list []*pktBatch) {
		a := c.live.Load()
		if a == nil {
			return
		}
		now := time.Now()
		dp := a.sess.DataPath()
		for _, b := range list {
			for i := range b.n {
				tx.add(now, dp, b.packet(i))
			}
		}
		msgs = c.sendData(a, tx.out, msgs)
		tx.reset()
	}
	p := newTUNPipeline(dev, c.p.TunMTU, process)
	fatal := func(err error) bool { return deviceClosed(c.closing.Load(), err) }
	if !c.p.Pipeline {
		p.inline(fatal, c.log)
		return
	}
	p.run(fatal, c.log)
}

// sendData writes encrypted packets to the attempt's link.
func (c *Client) sendData(a *attempt, pkts [][]byte, msgs []udp.Message) []udp.Message {
	if len(pkts) == 0 {
		return msgs
	}
	var err error
	if a.tcp != nil {
		err = a.tcp.WritePackets(pkts)
	} else {
		msgs = msgs[:0]
		for _, p := range pkts {
			msgs = append(msgs, udp.Message{Buf: p, N: len(p), Addr: a.raddr})
		}
		a.wmu.Lock()
		_, err = a.udp.WriteBatch(msgs)
		a.wmu.Unlock()
	}
	if err != nil {
		c.log.Debug("link write failed", "err", err)
	}
	return msgs
}

func (c *Client) device() tun.Device {
	if d := c.devA.Load(); d != nil {
		return *d
	}
	return nil
}

func (c *Client) writeTUN(pkts [][]byte) {
	bufs := make([][]byte, len(pkts))
	for i, p := range pkts {
		b := make([]byte, tun.Headroom+len(p))
		copy(b[tun.Headroom:], p)
		bufs[i] = b
	}
	c.devMu.Lock()
	_, err := c.dev.Write(bufs, tun.Headroom)
	c.devMu.Unlock()
	if err != nil {
		c.log.Debug("TUN write failed", "err", err)
	}
}

func addrList(as []tun.Addr) string {
	var parts []string
	for _, a := range as {
		s := a.Prefix.String()
		if a.Peer.IsValid() {
			s += " peer " + a.Peer.String()
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func (c *Client) event(e Event) {
	if c.p.OnEvent != nil {
		e.Time = time.Now()
		c.p.OnEvent(e)
	}
}
