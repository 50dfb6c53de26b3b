package handlers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"weft/controlwrap"
	"weft/ovpn"
	"weft/reactor"
	"weft/routing"
	"weft/transport/tcp"
	"weft/transport/udp"
	"weft/tun"
	"weft/wire"
)

// Listen is one address a server accepts clients on.
type Listen struct {
	Proto string // udp, udp4, udp6, tcp, tcp4, tcp6
	Addr  netip.AddrPort
}

func (l Listen) String() string { return l.Proto + " " + l.Addr.String() }

func (l Listen) isTCP() bool { return strings.HasPrefix(l.Proto, "tcp") }

// CCD is the per-client configuration from client-config-dir (§ OpenVPN's CCD files).
type CCD struct {
	IRoutes     []netip.Prefix
	Ifconfig    netip.Addr // ifconfig-push local address
	IfconfigNet netip.Addr // its netmask (subnet) or remote (net30)
	Ifconfig6   netip.Prefix
	Push        []string
	PushReset   bool
	Disable     bool
}

// ServerParams configures a Server.
type ServerParams struct {
	Listens []Listen
	// Session is the template for every client session (role server).
	Session    ovpn.Config
	NewWrapper func() (controlwrap.Wrapper, error)

	// Network and Network6 are the `server` / `server-ipv6` networks; the server takes
	// the first host address (.1, ::1) and clients get addresses from the pools.
	Network   netip.Prefix
	Network6  netip.Prefix
	Topology  string // subnet (default) or net30
	PoolStart netip.Addr
	PoolEnd   netip.Addr
	// NoPool gives clients addresses only through ifconfig-push (server … nopool).
	NoPool bool
	// Routes are kernel routes added to the server's tunnel device (route,
	// route-ipv6): networks behind clients' iroutes.
	Routes []netip.Prefix
	// RenegSecMin randomises each client's renegotiation interval between it and
	// Session.RenegSec, as OpenVPN servers do.
	RenegSecMin time.Duration
	// Push lists options pushed to every client.
	Push           []string
	ClientToClient bool
	DuplicateCN    bool
	MaxClients     int
	// CCD returns the client-config-dir entry for a common name (nil: none).
	CCD func(cn string) (*CCD, error)
	// CCDExclusive refuses clients without a client-config-dir entry.
	CCDExclusive bool
	// Ping and PingRestart are the pushed keepalive values (keepalive A B pushes
	// ping A, ping-restart B; the server itself uses ping A, ping-restart 2B).
	PushPing, PushPingRestart int
	// ExplicitExitNotify makes the server send RESTART to clients on shutdown
	// (2: RESTART,[N]).
	ExplicitExitNotify int

	StatusFile     string
	StatusInterval time.Duration
	StatusVersion  int

	Device    string
	TunMTU    int
	OpenTUN   func(name string, mtu int) (tun.Device, error)
	Configure func(name string, c tun.LinkConfig) error
	// DataParams sizes the data path (one UDP receive batch per socket, one
	// pipeline per TUN queue).
	DataParams
	// Queues is the number of TUN queues and UDP sockets per listener (default:
	// the number of shards). It only applies to the kernel TUN (OpenTUN unset).
	Queues int
	Shards int
	// OnEvent, if set, receives peer-up/peer-down events; it must not block.
	OnEvent func(Event)
	Logger  *slog.Logger
}

// Server serves OpenVPN clients on any number of UDP and TCP listeners from one
// reactor, one peer table and one routing table.
type Server struct {
	p       ServerParams
	log     *slog.Logger
	r       *reactor.Reactor
	cookies *ovpn.Cookies
	pool4   *addrPool
	pool6   *addrPool
	local4  netip.Addr
	local6  netip.Addr

	mu     sync.RWMutex
	byAddr map[peerKey]*peer // UDP peers by listener and source address
	byID   map[int32]*peer
	byCN   map[string][]*peer
	nextID int32
	routes atomic.Pointer[routing.Table[*peer]]
	// routesMu serialises route updates (copy-on-write) without blocking the
	// packet lookups that take mu.
	routesMu sync.Mutex

	queues  []*devQueue
	devName string

	udps      []*udpListener
	tcps      []*tcp.Listener
	closing   atomic.Bool
	ready     chan struct{}
	started   time.Time
	connected atomic.Int64

	// Counters.
	dropNoRoute   atomic.Uint64
	dropSpoofed   atomic.Uint64
	dropStateless atomic.Uint64
}

type peerKey struct {
	l    int
	addr netip.AddrPort
}

// udpListener is one `listen udp…` address: a group of SO_REUSEPORT sockets (one
// per shard) that the kernel steers by peer-id, so each client's data packets are
// always read by the same goroutine.
type udpListener struct {
	idx   int
	l     Listen
	conns []*udpSock
}

type udpSock struct {
	conn *udp.Conn
	wmu  sync.Mutex // serialises writes of shards and data-path goroutines
}

// sock returns the socket a peer's packets are sent from.
func (u *udpListener) sock(id int32) *udpSock { return u.conns[int(id)%len(u.conns)] }

// devQueue is one queue of the (multi-queue) tunnel device.
type devQueue struct {
	dev tun.Device
	mu  sync.Mutex
}

func (q *devQueue) write(bufs [][]byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, err := q.dev.Write(bufs, tun.Headroom)
	return err
}

// peer is one client. Its session is owned by its shard; fields read from other
// goroutines are immutable or atomic.
type peer struct {
	id        int32
	shard     *reactor.Shard
	sess      *ovpn.Session
	remoteSID wire.SessionID
	udp       *udpListener
	addr      atomic.Pointer[netip.AddrPort]
	tcp       *tcp.Conn
	listen    Listen

	// Owned by the shard.
	cn        string
	ip4, ip6  netip.Addr
	iroutes   []netip.Prefix
	since     time.Time
	connected bool
	closed    bool
	msgs      []udp.Message
	bytesIn   atomic.Uint64
	bytesOut  atomic.Uint64
	dpp       atomic.Pointer[ovpn.DataPath]
}

// dp returns the peer's data path (nil before its session exists).
func (p *peer) dp() *ovpn.DataPath { return p.dpp.Load() }

func (p *peer) realAddr() string {
	if p.tcp != nil {
		return p.tcp.RemoteAddr().String()
	}
	return p.addr.Load().String()
}

// NewServer validates params and returns a server ready to Run.
func NewServer(p ServerParams) (*Server, error) {
	if len(p.Listens) == 0 {
		return nil, errors.New("server: no listen address configured")
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.NewWrapper == nil {
		p.NewWrapper = func() (controlwrap.Wrapper, error) { return controlwrap.NewNone(), nil }
	}
	if p.Configure == nil {
		p.Configure = tun.Configure
	}
	if p.TunMTU == 0 {
		p.TunMTU = 1500
	}
	p.DataParams.setDefaults()
	if p.MaxClients <= 0 {
		p.MaxClients = 1024
	}
	if p.Topology == "" {
		p.Topology = "subnet"
	}
	if p.StatusVersion == 0 {
		p.StatusVersion = 1
	}
	if p.StatusInterval == 0 {
		p.StatusInterval = 60 * time.Second
	}
	p.Session.Role = ovpn.RoleServer
	s := &Server{p: p, log: p.Logger, ready: make(chan struct{}), byAddr: map[peerKey]*peer{}, byID: map[int32]*peer{}, byCN: map[string][]*peer{}}
	s.routes.Store(routing.New[*peer]())
	var err error
	if p.Network.IsValid() && (!p.NoPool || p.PoolStart.IsValid()) {
		if s.pool4, err = newPool4(p.Network, p.Topology, p.PoolStart, p.PoolEnd); err != nil {
			return nil, err
		}
	}
	if p.Network.IsValid() {
		s.local4 = addN(p.Network.Masked().Addr(), 1)
	}
	if p.Network6.IsValid() {
		if s.pool6, err = newPool6(p.Network6); err != nil {
			return nil, err
		}
		s.local6 = addN(p.Network6.Masked().Addr(), 1)
	}
	hw := p.Session.HandWindow
	if hw == 0 {
		hw = 60 * time.Second
	}
	if s.cookies, err = ovpn.NewCookies(rand.Reader, hw); err != nil {
		return nil, err
	}
	s.r = reactor.New(reactor.Config{Shards: p.Shards, Logger: p.Logger, OnTimer: s.onTimer})
	if s.p.Queues <= 0 {
		s.p.Queues = s.r.NumShards()
	}
	if s.p.OpenTUN != nil {
		s.p.Queues = 1
	}
	return s, nil
}

// Run opens the listeners and the tunnel device and serves until ctx is cancelled;
// then it tells clients to reconnect (RESTART) and returns.
func (s *Server) Run(ctx context.Context) error {
	s.started = time.Now()
	if err := s.openDevice(); err != nil {
		return err
	}
	if err := s.openListeners(); err != nil {
		s.closeAll()
		return err
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan error, 1)
	go func() { rdone <- s.r.Run(rctx) }()
	for _, u := range s.udps {
		for i, sk := range u.conns {
			s.r.Go(func(context.Context) error { s.readUDP(u, sk, i); return nil })
		}
	}
	for i, l := range s.tcps {
		s.r.Go(func(context.Context) error { s.acceptTCP(i, l); return nil })
	}
	for _, q := range s.queues {
		s.r.Go(func(context.Context) error { s.readTUN(q); return nil })
	}
	if s.p.StatusFile != "" {
		s.r.Go(func(c context.Context) error { s.statusLoop(c); return nil })
	}
	s.log.Info("Initialization Sequence Completed", "listeners", len(s.p.Listens), "device", s.devName, "shards", s.r.NumShards())
	close(s.ready)

	var err error
	select {
	case <-ctx.Done():
	case err = <-rdone:
		rdone <- err
	}
	s.shutdown()
	s.closing.Store(true)
	s.closeAll()
	rcancel()
	if e := <-rdone; err == nil {
		err = e
	}
	return err
}

// Ready is closed once the listeners are open and the server serves clients.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs returns the bound listener addresses (useful with port 0), once Ready.
func (s *Server) Addrs() []Listen {
	var out []Listen
	for _, u := range s.udps {
		out = append(out, Listen{Proto: u.l.Proto, Addr: u.conns[0].conn.LocalAddr()})
	}
	for i, l := range s.tcps {
		out = append(out, Listen{Proto: s.tcpListens()[i].Proto, Addr: l.Addr()})
	}
	return out
}

func (s *Server) tcpListens() []Listen {
	var out []Listen
	for _, l := range s.p.Listens {
		if l.isTCP() {
			out = append(out, l)
		}
	}
	return out
}

func (s *Server) openDevice() error {
	name := s.p.Device
	if name == "" || name == "tun" {
		name = "tun%d"
	}
	var devs []tun.Device
	if s.p.OpenTUN != nil {
		dev, err := s.p.OpenTUN(name, s.p.TunMTU)
		if err != nil {
			return fmt.Errorf("open TUN: %w", err)
		}
		devs = []tun.Device{dev}
	} else {
		var err error
		if devs, err = tun.CreateMultiQueue(name, s.p.TunMTU, s.p.Queues); err != nil {
			return fmt.Errorf("open TUN: %w", err)
		}
	}
	for _, d := range devs {
		s.queues = append(s.queues, &devQueue{dev: d})
	}
	var err error
	if s.devName, err = devs[0].Name(); err != nil {
		return err
	}
	lc := tun.LinkConfig{MTU: s.p.TunMTU, Up: true}
	if s.local4.IsValid() {
		if s.p.Topology == "net30" {
			peer := addN(s.local4, 1)
			lc.Addrs = append(lc.Addrs, tun.Addr{Prefix: netip.PrefixFrom(s.local4, 32), Peer: peer})
			lc.Routes = append(lc.Routes, tun.Route{Dst: s.p.Network.Masked(), Gateway: peer})
		} else {
			lc.Addrs = append(lc.Addrs, tun.Addr{Prefix: netip.PrefixFrom(s.local4, s.p.Network.Bits())})
		}
	}
	if s.local6.IsValid() {
		lc.Addrs = append(lc.Addrs, tun.Addr{Prefix: netip.PrefixFrom(s.local6, s.p.Network6.Bits())})
	}
	for _, r := range s.p.Routes {
		lc.Routes = append(lc.Routes, tun.Route{Dst: r})
	}
	if err := s.p.Configure(s.devName, lc); err != nil {
		return fmt.Errorf("configure %s: %w", s.devName, err)
	}
	return nil
}

func (s *Server) openListeners() error {
	for _, l := range s.p.Listens {
		if l.isTCP() {
			network := l.Proto
			if network == "tcp" && l.Addr.Addr().Is4() {
				network = "tcp4"
			}
			// 16 KiB read buffers: a TCP client's framed packets are MTU-sized and
			// the buffer is held for the connection's lifetime.
			tl, err := tcp.Listen(network, l.Addr, tcp.Options{ReadSize: 16 << 10})
			if err != nil {
				return fmt.Errorf("listen %s: %w", l, err)
			}
			s.tcps = append(s.tcps, tl)
			s.log.Info("listening", "proto", l.Proto, "addr", tl.Addr().String())
			continue
		}
		network := l.Proto
		if network == "udp" && l.Addr.Addr().Is4() {
			network = "udp4"
		}
		conns, err := udp.ListenGroup(network, l.Addr, s.p.Queues, udp.Options{RecvBuffer: s.p.SocketBuffer, SendBuffer: s.p.SocketBuffer})
		if err != nil {
			return fmt.Errorf("listen %s: %w", l, err)
		}
		u := &udpListener{idx: len(s.udps), l: l}
		for _, c := range conns {
			u.conns = append(u.conns, &udpSock{conn: c})
		}
		s.udps = append(s.udps, u)
		gso, gro := conns[0].Offloads()
		s.log.Info("listening", "proto", l.Proto, "addr", conns[0].LocalAddr().String(), "sockets", len(conns), "steered", conns[0].Steered(), "gso", gso, "gro", gro)
	}
	return nil
}

func (s *Server) closeAll() {
	for _, u := range s.udps {
		for _, c := range u.conns {
			c.conn.Close()
		}
	}
	for _, l := range s.tcps {
		l.Close()
	}
	for _, q := range s.queues {
		q.dev.Close()
	}
}

// shutdown tells every client to reconnect and gives the messages a moment to go out.
func (s *Server) shutdown() {
	s.mu.RLock()
	peers := make([]*peer, 0, len(s.byID))
	for _, p := range s.byID {
		peers = append(peers, p)
	}
	s.mu.RUnlock()
	if len(peers) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		p.shard.Post(func(now time.Time) {
			defer wg.Done()
			if p.closed || !p.connected {
				return
			}
			if p.udp == nil || s.p.ExplicitExitNotify > 0 {
				p.sess.SendRestart(now, s.p.ExplicitExitNotify == 2)
				s.drive(now, p)
			}
		})
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
}

func (s *Server) shardFor(id int32) *reactor.Shard {
	return s.r.Shard(int(id) % s.r.NumShards())
}

// allocID returns a free peer-id (never 0xFFFFFF) or -1 when max-clients is reached.
func (s *Server) allocIDLocked() int32 {
	if len(s.byID) >= s.p.MaxClients {
		return -1
	}
	for {
		id := s.nextID
		s.nextID = (s.nextID + 1) % int32(s.p.MaxClients)
		if _, used := s.byID[id]; !used {
			return id
		}
	}
}

func (s *Server) newSessionConfig(p *peer) (ovpn.Config, error) {
	cfg := s.p.Session
	w, err := s.p.NewWrapper()
	if err != nil {
		return cfg, err
	}
	cfg.Wrapper = w
	cfg.PeerID = p.id
	if max, min := cfg.RenegSec, s.p.RenegSecMin; max > 0 && min > 0 && min < max {
		// Spread renegotiations: max − random % (max − min), per client.
		cfg.RenegSec = max - time.Duration(mrand.Int64N(int64(max-min)))
	}
	cfg.TCP = p.tcp != nil
	cfg.Authorize = func(ci *ovpn.ClientInfo) ([]string, error) { return s.authorize(p, ci) }
	return cfg, nil
}

// readUDP reads one UDP listener and dispatches packets to their peers' shards.
// Packets from unknown sources go through the stateless cookie exchange first.
func (s *Server) readUDP(u *udpListener, sk *udpSock, qi int) {
	msgs := linkBuffers(s.p.LinkBatch, s.p.LinkBufSize)
	w, err := s.p.NewWrapper()
	if err != nil {
		s.log.Error("control wrapper", "err", err)
		return
	}
	auth, _ := w.(controlwrap.Authenticator)
	rx := newServerRx(s, s.queues[qi%len(s.queues)])
	read := sk.conn.ReadBatch
	if s.p.LinkBufSize >= udp.MaxDatagram {
		read = sk.conn.ReadCoalesced // datagrams are handled where the kernel put them (each capped, so that no append can reach the next)
	}
	for {
		n, err := read(msgs)
		now := time.Now()
		for i := range n {
			m := &msgs[i]
			for off, seg := 0, m.SegmentSize(); off < m.N; off += seg {
				pkt := m.Buf[off:min(off+seg, m.N):min(off+seg, m.N)]
				if p := s.lookupUDP(u, m.Addr, pkt); p != nil {
					rx.packet(now, p, pkt)
					continue
				}
				s.stateless(now, u, sk, w, auth, m.Addr, pkt)
			}
		}
		rx.flush()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !s.closing.Load() {
				s.log.Error("UDP read failed", "listener", u.l.String(), "err", err)
			}
			return
		}
	}
}

// serverRx is the per-goroutine receive path of the server: it decrypts data packets
// with the peer's data path, routes them (to the tunnel device, or re-encrypted to
// another client with client-to-client) and collects control packets for the peers'
// shards. Buffers are reused from batch to batch.
type serverRx struct {
	s     *Server
	q     *devQueue
	least int // capacity of new decryption buffers (see rxBufLeast)
	bufs  [][]byte
	used  int
	toDev [][]byte
	fwd   map[*peer]*txBatch
	ctl   map[*peer][][]byte
	msgs  []udp.Message
}

func newServerRx(s *Server, q *devQueue) *serverRx {
	least := linkBufLeast
	if q.dev == nil || tun.Coalesces(q.dev) {
		least = rxBufLeast
	}
	return &serverRx{s: s, q: q, least: least, fwd: map[*peer]*txBatch{}, ctl: map[*peer][][]byte{}}
}

func (r *serverRx) packet(now time.Time, p *peer, pkt []byte) {
	op, _ := wire.SplitHeader(pkt[0])
	dp := p.dp()
	if !op.IsData() || dp == nil {
		r.ctl[p] = append(r.ctl[p], append([]byte(nil), pkt...))
		return
	}
	dst := growBuf(&r.bufs, r.used, tun.Headroom+len(pkt), r.least)[:tun.Headroom]
	out, kind, err := dp.Decrypt(now, dst, pkt)
	if err != nil {
		return
	}
	p.bytesIn.Add(uint64(len(pkt)))
	switch kind {
	case ovpn.DataControl:
		r.ctl[p] = append(r.ctl[p], append([]byte(nil), pkt...))
		return
	case ovpn.DataPing:
		return
	}
	r.used++
	plain := out[tun.Headroom:]
	src, dstIP, ok := ipAddrs(plain)
	routes := r.s.routes.Load()
	if !ok {
		r.s.dropSpoofed.Add(1)
		return
	}
	if q, ok := routes.Lookup(src); !ok || q != p {
		r.s.dropSpoofed.Add(1)
		return
	}
	if r.s.p.ClientToClient {
		if q, ok := routes.Lookup(dstIP); ok && q != p {
			tx := r.fwd[q]
			if tx == nil {
				tx = &txBatch{}
				r.fwd[q] = tx
			}
			tx.add(now, q.dp(), plain)
			return
		}
	}
	r.toDev = append(r.toDev, out)
}

func (r *serverRx) flush() {
	if len(r.toDev) > 0 {
		if err := r.q.write(r.toDev); err != nil {
			r.s.log.Debug("TUN write failed", "err", err)
		}
		clear(r.toDev)
		r.toDev = r.toDev[:0]
	}
	r.used = 0
	for q, tx := range r.fwd {
		if len(tx.out) > 0 {
			r.msgs = r.s.sendLink(q, tx.out, r.msgs)
			tx.reset()
		}
	}
	for p, pkts := range r.ctl {
		r.s.postPackets(p, pkts)
		delete(r.ctl, p)
	}
}

// sendLink writes already encrypted packets to a peer's link.
func (s *Server) sendLink(q *peer, pkts [][]byte, msgs []udp.Message) []udp.Message {
	for _, b := range pkts {
		q.bytesOut.Add(uint64(len(b)))
	}
	var err error
	if q.tcp != nil {
		err = q.tcp.WritePackets(pkts)
	} else {
		addr := *q.addr.Load()
		msgs = msgs[:0]
		for _, b := range pkts {
			msgs = append(msgs, udp.Message{Buf: b, N: len(b), Addr: addr})
		}
		sk := q.udp.sock(q.id)
		sk.wmu.Lock()
		_, err = sk.conn.WriteBatch(msgs)
		sk.wmu.Unlock()
	}
	if err != nil {
		s.log.Debug("link write failed", "peer_id", q.id, "err", err)
	}
	return msgs
}

// lookupUDP finds the peer a packet belongs to: by peer-id for P_DATA_V2 (which lets
// a client float to a new address), else by source address and session id.
func (s *Server) lookupUDP(u *udpListener, from netip.AddrPort, pkt []byte) *peer {
	op, _ := wire.SplitHeader(pkt[0])
	s.mu.RLock()
	defer s.mu.RUnlock()
	if op == wire.OpDataV2 && len(pkt) >= 4 {
		id := int32(pkt[1])<<16 | int32(pkt[2])<<8 | int32(pkt[3])
		if p := s.byID[id]; p != nil && p.udp == u {
			if *p.addr.Load() != from {
				s.postFloat(p, from, append([]byte(nil), pkt...))
				return nil
			}
			return p
		}
	}
	p := s.byAddr[peerKey{u.idx, from}]
	if p == nil {
		if op.IsData() {
			s.dropStateless.Add(1)
		}
		return nil
	}
	if op.IsControl() {
		// A new session from a known address (a client restarted) goes through the
		// stateless path; it replaces the old peer once it authenticates.
		if _, _, sid, err := wire.PeekControl(pkt); err == nil && sid != p.remoteSID {
			return nil
		}
	}
	return p
}

// postFloat hands a data packet from a new address to the peer; if it
// authenticates, the peer moves to that address (OpenVPN's float).
func (s *Server) postFloat(p *peer, from netip.AddrPort, pkt []byte) {
	p.shard.Post(func(now time.Time) {
		if p.closed {
			return
		}
		before := p.sess.Stats().LinkIn - p.sess.Stats().DropAuth - p.sess.Stats().DropReplay - p.sess.Stats().DropMalformed - p.sess.Stats().DropNoKey
		p.sess.HandlePacket(now, pkt)
		st := p.sess.Stats()
		after := st.LinkIn - st.DropAuth - st.DropReplay - st.DropMalformed - st.DropNoKey
		if after > before {
			old := *p.addr.Load()
			s.mu.Lock()
			if s.byAddr[peerKey{p.udp.idx, old}] == p {
				delete(s.byAddr, peerKey{p.udp.idx, old})
			}
			s.byAddr[peerKey{p.udp.idx, from}] = p
			s.mu.Unlock()
			p.addr.Store(&from)
			s.log.Info("client floated to a new address", "cn", p.cn, "from", old.String(), "to", from.String())
		}
		s.drive(now, p)
	})
}

func (s *Server) postPackets(p *peer, pkts [][]byte) {
	p.shard.Post(func(now time.Time) {
		if p.closed {
			return
		}
		for _, pkt := range pkts {
			p.bytesIn.Add(uint64(len(pkt)))
			p.sess.HandlePacket(now, pkt)
		}
		s.drive(now, p)
	})
}

// stateless handles a packet from an unknown address (§6.2): a client reset gets a
// stateless reply; a control packet that ACKs a valid cookie creates the session.
func (s *Server) stateless(now time.Time, u *udpListener, sk *udpSock, w controlwrap.Wrapper, auth controlwrap.Authenticator, from netip.AddrPort, pkt []byte) {
	op, kid := wire.SplitHeader(pkt[0])
	if kid != 0 || (op != wire.OpHardResetClientV2 && op != wire.OpControlV1 && op != wire.OpAckV1) || auth == nil {
		s.dropStateless.Add(1)
		return
	}
	plain, err := auth.Authenticate(pkt)
	if err != nil {
		s.dropStateless.Add(1)
		return
	}
	cp, err := wire.ParseControl(plain)
	if err != nil {
		s.dropStateless.Add(1)
		return
	}
	if op == wire.OpHardResetClientV2 {
		if cp.MsgID != 0 {
			s.dropStateless.Add(1)
			return
		}
		reply, err := ovpn.StatelessReset(now, w, s.cookies.ID(now, from, cp.SessionID), cp.SessionID)
		if err != nil {
			return
		}
		sk.wmu.Lock()
		_ = sk.conn.WriteTo(reply, from)
		sk.wmu.Unlock()
		return
	}
	if len(cp.Acks) == 0 || !s.cookies.Valid(now, from, cp.SessionID, cp.RemoteSessionID) {
		s.dropStateless.Add(1)
		return
	}
	s.mu.Lock()
	if old := s.byAddr[peerKey{u.idx, from}]; old != nil && old.remoteSID == cp.SessionID {
		// Raced with another packet of the same new session: just deliver it.
		s.mu.Unlock()
		s.postPackets(old, [][]byte{append([]byte(nil), pkt...)})
		return
	}
	id := s.allocIDLocked()
	if id < 0 {
		s.mu.Unlock()
		s.log.Warn("max-clients reached, refusing a client", "from", from.String())
		return
	}
	p := &peer{id: id, shard: s.shardFor(id), remoteSID: cp.SessionID, udp: u, listen: u.l}
	p.addr.Store(&from)
	old := s.byAddr[peerKey{u.idx, from}]
	s.byID[id] = p
	s.byAddr[peerKey{u.idx, from}] = p
	s.mu.Unlock()
	if old != nil {
		s.log.Info("client started a new session from the same address; dropping the old one", "from", from.String())
		old.shard.Post(func(now time.Time) { s.removePeer(old, "replaced by a new session") })
	}
	cookie := cp.RemoteSessionID
	pktCopy := append([]byte(nil), pkt...)
	p.shard.Post(func(now time.Time) {
		cfg, err := s.newSessionConfig(p)
		if err == nil {
			p.sess, err = ovpn.NewServerSessionFromCookie(cfg, now, cookie, cp.SessionID)
		}
		if err != nil {
			s.log.Error("session setup failed", "from", from.String(), "err", err)
			p.closed = true
			s.unregister(p)
			return
		}
		p.since = time.Now()
		p.dpp.Store(p.sess.DataPath())
		s.log.Debug("new client session", "from", from.String(), "peer_id", id)
		p.sess.HandlePacket(now, pktCopy)
		s.drive(now, p)
	})
}

// acceptTCP accepts TCP clients; each connection is a peer from the start (no
// cookie on TCP, §2).
func (s *Server) acceptTCP(idx int, l *tcp.Listener) {
	listen := s.tcpListens()[idx]
	for {
		c, err := l.Accept()
		if err != nil {
			if !s.closing.Load() && !errors.Is(err, net.ErrClosed) {
				s.log.Error("TCP accept failed", "listener", listen.String(), "err", err)
			}
			return
		}
		s.mu.Lock()
		id := s.allocIDLocked()
		if id < 0 {
			s.mu.Unlock()
			c.Close()
			s.log.Warn("max-clients reached, refusing a TCP client", "from", c.RemoteAddr().String())
			continue
		}
		p := &peer{id: id, shard: s.shardFor(id), tcp: c, listen: listen}
		ra := c.RemoteAddr()
		p.addr.Store(&ra)
		s.byID[id] = p
		s.mu.Unlock()
		ready := make(chan bool, 1)
		p.shard.Post(func(now time.Time) {
			cfg, err := s.newSessionConfig(p)
			if err == nil {
				p.sess, err = ovpn.NewSession(cfg, now)
			}
			if err != nil {
				s.log.Error("session setup failed", "from", ra.String(), "err", err)
				p.closed = true
				s.unregister(p)
				ready <- false
				return
			}
			p.since = time.Now()
			p.dpp.Store(p.sess.DataPath())
			s.drive(now, p)
			ready <- true
		})
		if !<-ready {
			c.Close()
			continue
		}
		go s.readTCP(p)
	}
}

func (s *Server) readTCP(p *peer) {
	rx := newServerRx(s, s.queues[int(p.id)%len(s.queues)])
	read := tcpReader(p.tcp, func(now time.Time, pkt []byte) { rx.packet(now, p, pkt) })
	for {
		err := read()
		rx.flush()
		if err != nil {
			p.shard.Post(func(now time.Time) { s.removePeer(p, "connection closed: "+err.Error()) })
			return
		}
	}
}

func (s *Server) onTimer(_ int, now time.Time, id uint64) {
	s.mu.RLock()
	p := s.byID[int32(id)]
	s.mu.RUnlock()
	if p == nil || p.closed || p.sess == nil {
		return
	}
	p.sess.Tick(now)
	s.drive(now, p)
}

// drive flushes a peer's session output and handles its events (on its shard).
func (s *Server) drive(now time.Time, p *peer) {
	if p.sess == nil {
		return
	}
	// Routes must exist before the PUSH_REPLY leaves, or the client's first packets
	// could arrive before the server knows its address.
	evs := p.sess.Events()
	for _, ev := range evs {
		if ev.Kind == ovpn.EventConnected {
			s.peerEvent(now, p, ev)
		}
	}
	if out := p.sess.Outgoing(); len(out) > 0 && !p.closed {
		p.msgs = s.sendLink(p, out, p.msgs)
	}
	if in := p.sess.Delivered(); len(in) > 0 {
		s.fromClient(now, p, in)
	}
	for _, ev := range evs {
		if ev.Kind != ovpn.EventConnected {
			s.peerEvent(now, p, ev)
		}
	}
	if p.closed {
		return
	}
	if d := p.sess.NextDeadline(); !d.IsZero() {
		p.shard.Schedule(uint64(p.id), d)
	}
}

func (s *Server) peerEvent(now time.Time, p *peer, ev ovpn.Event) {
	switch ev.Kind {
	case ovpn.EventConnected:
		p.connected = true
		s.connected.Add(1)
		s.addRoutes(p)
		s.event(Event{Kind: EventPeerUp, Peer: p.cn, Remote: p.realAddr(), Addrs: p.prefixes(), Handshake: p.sess.Stats().HandshakeTime})
		s.log.Info("client connected", "cn", p.cn, "from", p.realAddr(), "peer_id", p.id,
			"ip", p.ip4.String(), "ip6", p.ip6.String(), "cipher", p.sess.Cipher().String())
	case ovpn.EventRenegotiated:
		s.log.Debug("client key renegotiated", "cn", p.cn, "key_id", ev.KeyID)
	case ovpn.EventAuthFailed:
		// Leave the session a moment so AUTH_FAILED reaches the client.
		s.log.Warn("client authentication failed", "cn", p.cn, "from", p.realAddr(), "reason", ev.Reason)
		time.AfterFunc(2*time.Second, func() {
			p.shard.Post(func(now time.Time) { s.removePeer(p, "authentication failed") })
		})
	case ovpn.EventExit:
		s.log.Info("client sent an exit notification", "cn", p.cn, "from", p.realAddr())
		s.removePeer(p, ev.Reason)
	default:
		s.removePeer(p, ev.Reason)
	}
}

// authorize runs on the peer's shard when key method 2 arrived: it checks duplicate
// common names and client-config-dir, assigns addresses and builds the push list.
func (s *Server) authorize(p *peer, ci *ovpn.ClientInfo) ([]string, error) {
	p.cn = ci.CommonName
	var ccd *CCD
	if s.p.CCDExclusive && p.cn == "" {
		return nil, errors.New("client has no common name and ccd-exclusive is set")
	}
	if s.p.CCD != nil && p.cn != "" {
		var err error
		if ccd, err = s.p.CCD(p.cn); err != nil {
			s.log.Warn("client-config-dir entry unusable", "cn", p.cn, "err", err)
			return nil, errors.New("client configuration error")
		}
		if ccd != nil && ccd.Disable {
			return nil, errors.New("client is disabled")
		}
	}
	if !s.p.DuplicateCN && p.cn != "" {
		s.mu.Lock()
		olds := append([]*peer(nil), s.byCN[p.cn]...)
		s.byCN[p.cn] = append(s.byCN[p.cn], p)
		s.mu.Unlock()
		for _, old := range olds {
			if old == p {
				continue
			}
			s.log.Info("new connection by client will replace its previous session (no duplicate-cn)", "cn", p.cn)
			old.shard.Post(func(now time.Time) { s.removePeer(old, "replaced by a new connection with the same common name") })
		}
	}
	var push []string
	if ccd == nil || !ccd.PushReset {
		push = append(push, s.p.Push...)
	}
	if ccd != nil {
		push = append(push, ccd.Push...)
		p.iroutes = ccd.IRoutes
	}
	if s.p.PushPing > 0 {
		push = append(push, fmt.Sprintf("ping %d", s.p.PushPing))
	}
	if s.p.PushPingRestart > 0 {
		push = append(push, fmt.Sprintf("ping-restart %d", s.p.PushPingRestart))
	}
	if s.local4.IsValid() && s.pool4 == nil && (ccd == nil || !ccd.Ifconfig.IsValid()) {
		return nil, errors.New("no ifconfig-push for this client and the server has no address pool (nopool)")
	}
	if s.pool4 != nil || (ccd != nil && ccd.Ifconfig.IsValid()) {
		if ccd != nil && ccd.Ifconfig.IsValid() {
			p.ip4 = ccd.Ifconfig
			if s.pool4 != nil {
				s.pool4.reserve(p.ip4)
			}
		} else {
			ip, err := s.pool4.get()
			if err != nil {
				return nil, fmt.Errorf("no IPv4 address available: %w", err)
			}
			p.ip4 = ip
		}
		if s.p.Topology == "net30" {
			push = append(push, "topology net30", "route "+s.local4.String(),
				fmt.Sprintf("ifconfig %s %s", p.ip4, addN(p.ip4, -1)))
		} else {
			mask := net.CIDRMask(s.p.Network.Bits(), 32)
			push = append(push, "route-gateway "+s.local4.String(), "topology subnet",
				fmt.Sprintf("ifconfig %s %s", p.ip4, net.IP(mask).String()))
		}
	}
	if s.pool6 != nil || (ccd != nil && ccd.Ifconfig6.IsValid()) {
		bits := 64
		if s.p.Network6.IsValid() {
			bits = s.p.Network6.Bits()
		}
		if ccd != nil && ccd.Ifconfig6.IsValid() {
			p.ip6 = ccd.Ifconfig6.Addr()
			bits = ccd.Ifconfig6.Bits()
		} else {
			ip, err := s.pool6.get()
			if err != nil {
				return nil, fmt.Errorf("no IPv6 address available: %w", err)
			}
			p.ip6 = ip
		}
		push = append(push, fmt.Sprintf("ifconfig-ipv6 %s/%d %s", p.ip6, bits, s.local6))
	}
	return push, nil
}

func (s *Server) addRoutes(p *peer) {
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	t := s.routes.Load().Clone()
	if p.ip4.IsValid() {
		t.Insert(netip.PrefixFrom(p.ip4, 32), p)
	}
	if p.ip6.IsValid() {
		t.Insert(netip.PrefixFrom(p.ip6, 128), p)
	}
	for _, r := range p.iroutes {
		t.Insert(r, p)
	}
	s.routes.Store(t)
	if len(p.iroutes) > 0 {
		var kr []tun.Route
		for _, r := range p.iroutes {
			kr = append(kr, tun.Route{Dst: r})
		}
		if err := tun.AddRoutes(s.devName, kr); err != nil {
			s.log.Debug("kernel route for iroute not added (add a `route` directive)", "err", err)
		}
	}
}

// removePeer ends a peer's session and frees its resources (on its shard).
func (s *Server) removePeer(p *peer, reason string) {
	if p.closed {
		return
	}
	p.closed = true
	p.shard.Cancel(uint64(p.id))
	if p.connected {
		s.connected.Add(-1)
	}
	s.unregister(p)
	if p.tcp != nil {
		p.tcp.Close()
	}
	s.pool4.put(p.ip4)
	s.pool6.put(p.ip6)
	if p.connected {
		s.log.Info("client session ended", "cn", p.cn, "from", p.realAddr(), "reason", reason)
	} else {
		s.log.Warn("client refused or handshake failed", "cn", p.cn, "from", p.realAddr(), "reason", reason)
	}
	if p.connected {
		s.event(Event{Kind: EventPeerDown, Peer: p.cn, Remote: p.realAddr(), Reason: reason})
	}
}

func (s *Server) unregister(p *peer) {
	s.mu.Lock()
	if s.byID[p.id] == p {
		delete(s.byID, p.id)
	}
	if p.udp != nil {
		k := peerKey{p.udp.idx, *p.addr.Load()}
		if s.byAddr[k] == p {
			delete(s.byAddr, k)
		}
	}
	if list := s.byCN[p.cn]; len(list) > 0 {
		out := list[:0]
		for _, q := range list {
			if q != p {
				out = append(out, q)
			}
		}
		if len(out) == 0 {
			delete(s.byCN, p.cn)
		} else {
			s.byCN[p.cn] = out
		}
	}
	s.mu.Unlock()
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	t := s.routes.Load()
	changed := false
	nt := t.Clone()
	for _, pf := range append([]netip.Prefix{netip.PrefixFrom(p.ip4, 32), netip.PrefixFrom(p.ip6, 128)}, p.iroutes...) {
		if !pf.IsValid() {
			continue
		}
		if q, ok := t.Lookup(pf.Addr()); ok && q == p {
			nt.Delete(pf)
			changed = true
		}
	}
	if changed {
		s.routes.Store(nt)
	}
}

// fromClient routes decrypted packets from a client: to another client
// (client-to-client) or to the tunnel device. Packets whose source address is not the
// client's own (or an iroute) are dropped, as OpenVPN does.
func (s *Server) fromClient(now time.Time, p *peer, pkts [][]byte) {
	var toDev [][]byte
	routes := s.routes.Load()
	for _, pkt := range pkts {
		src, dst, ok := ipAddrs(pkt)
		if !ok {
			s.dropSpoofed.Add(1)
			continue
		}
		if q, ok := routes.Lookup(src); !ok || q != p {
			s.dropSpoofed.Add(1)
			continue
		}
		if q, ok := routes.Lookup(dst); ok && q != p {
			if !s.p.ClientToClient {
				// Without client-to-client the kernel decides (and may route back).
				toDev = append(toDev, pkt)
				continue
			}
			s.sendToPeer(q, [][]byte{pkt})
			continue
		}
		toDev = append(toDev, pkt)
	}
	if len(toDev) > 0 {
		s.writeTUN(toDev)
	}
}

func (s *Server) sendToPeer(q *peer, pkts [][]byte) {
	q.shard.Post(func(now time.Time) {
		if q.closed || q.sess == nil {
			return
		}
		for _, pkt := range pkts {
			q.sess.SendIP(now, pkt)
		}
		s.drive(now, q)
	})
}

func (s *Server) writeTUN(pkts [][]byte) {
	bufs := make([][]byte, len(pkts))
	for i, pk := range pkts {
		b := make([]byte, tun.Headroom+len(pk))
		copy(b[tun.Headroom:], pk)
		bufs[i] = b
	}
	if err := s.queues[0].write(bufs); err != nil {
		s.log.Debug("TUN write failed", "err", err)
	}
}

// readTUN reads one tunnel queue and routes its packets to the client owning their
// destination (longest-prefix match), encrypting them with that client's data path;
// packets without a route are dropped and counted. Reading and encrypting run on two
// goroutines (see tunPipeline) when Pipeline is set, else on one.
func (s *Server) readTUN(q *devQueue) {
	per := map[*peer]*txBatch{}
	var msgs []udp.Message
	process := func(list []*pktBatch) {
		routes := s.routes.Load()
		now := time.Now()
		for _, b := range list {
			for i := range b.n {
				pkt := b.packet(i)
				_, dst, ok := ipAddrs(pkt)
				if !ok {
					continue
				}
				peer, ok := routes.Lookup(dst)
				if !ok {
					s.dropNoRoute.Add(1)
					continue
				}
				tx := per[peer]
				if tx == nil {
					tx = &txBatch{}
					per[peer] = tx
				}
				tx.add(now, peer.dp(), pkt)
			}
		}
		for peer, tx := range per {
			if len(tx.out) > 0 {
				msgs = s.sendLink(peer, tx.out, msgs)
			}
			tx.reset()
			if len(per) > 64 {
				delete(per, peer)
			}
		}
	}
	p := newTUNPipeline(q.dev, s.p.TunMTU, process)
	fatal := func(err error) bool { return deviceClosed(s.closing.Load(), err) }
	if !s.p.Pipeline {
		p.inline(fatal, s.log)
		return
	}
	p.run(fatal, s.log)
}

// ipAddrs returns the source and destination of an IPv4 or IPv6 packet.
func ipAddrs(pkt []byte) (src, dst netip.Addr, ok bool) {
	if len(pkt) < 1 {
		return
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return
		}
		return netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20])), true
	case 6:
		if len(pkt) < 40 {
			return
		}
		return netip.AddrFrom16([16]byte(pkt[8:24])), netip.AddrFrom16([16]byte(pkt[24:40])), true
	}
	return
}

// PeerStatus is one connected client as the status file shows it.
type PeerStatus struct {
	CommonName string
	RealAddr   string
	IP4, IP6   netip.Addr
	BytesIn    uint64
	BytesOut   uint64
	Since      time.Time
	PeerID     int32
	Cipher     string
	Username   string
}

// Status returns the connected clients, sorted by common name and peer-id.
func (s *Server) Status() []PeerStatus {
	s.mu.RLock()
	peers := make([]*peer, 0, len(s.byID))
	for _, p := range s.byID {
		peers = append(peers, p)
	}
	s.mu.RUnlock()
	var out []PeerStatus
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		ok := p.shard.TryPost(func(time.Time) {
			defer wg.Done()
			if p.closed || !p.connected {
				return
			}
			st := PeerStatus{CommonName: p.cn, RealAddr: p.statusAddr(), IP4: p.ip4, IP6: p.ip6,
				BytesIn: p.bytesIn.Load(), BytesOut: p.bytesOut.Load(), Since: p.since, PeerID: p.id, Cipher: p.sess.Cipher().String()}
			if ci := p.sess.Client(); ci != nil {
				st.Username = ci.Username
			}
			mu.Lock()
			out = append(out, st)
			mu.Unlock()
		})
		if !ok {
			wg.Done()
		}
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool {
		if out[i].CommonName != out[j].CommonName {
			return out[i].CommonName < out[j].CommonName
		}
		return out[i].PeerID < out[j].PeerID
	})
	return out
}

// Connected returns the number of connected clients.
func (s *Server) Connected() int { return int(s.connected.Load()) }

func (s *Server) statusLoop(ctx context.Context) {
	t := time.NewTicker(s.p.StatusInterval)
	defer t.Stop()
	for {
		if err := s.writeStatus(); err != nil {
			s.log.Warn("status file not written", "file", s.p.StatusFile, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) writeStatus() error {
	b := FormatStatus(s.Status(), s.p.StatusVersion, time.Now())
	tmp := s.p.StatusFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.p.StatusFile)
}

func (s *Server) event(e Event) {
	if s.p.OnEvent != nil {
		e.Time = time.Now()
		s.p.OnEvent(e)
	}
}

func (p *peer) prefixes() []netip.Prefix {
	var out []netip.Prefix
	if p.ip4.IsValid() {
		out = append(out, netip.PrefixFrom(p.ip4, 32))
	}
	if p.ip6.IsValid() {
		out = append(out, netip.PrefixFrom(p.ip6, 128))
	}
	return out
}

// statusAddr is the real address as OpenVPN's status file writes it: IPv4 as
// addr:port, IPv6 as the bare address.
func (p *peer) statusAddr() string {
	var a netip.AddrPort
	if p.tcp != nil {
		a = p.tcp.RemoteAddr()
	} else {
		a = *p.addr.Load()
	}
	if a.Addr().Unmap().Is4() {
		return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()).String()
	}
	return a.Addr().String()
}
