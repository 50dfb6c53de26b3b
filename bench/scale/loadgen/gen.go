package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"weft/controlwrap"
	"weft/ovpn"
	"weft/reactor"
	"weft/transport/tcp"
	"weft/wire"
)

// genConfig describes the sessions a generator runs.
type genConfig struct {
	TCP        bool
	Server     netip.AddrPort
	Session    ovpn.Config // client role template; Wrapper comes from NewWrapper
	NewWrapper func() (controlwrap.Wrapper, error)
	Shards     int
	// SourceIPs spreads TCP connections over several local addresses (127.0.0.x)
	// so large runs do not exhaust the ephemeral ports of one address.
	SourceIPs []netip.Addr
}

// gen runs client sessions on a reactor: one UDP socket (connected to the
// server) or one TCP connection per session, each read by a goroutine that
// posts packets to the session's shard; timers run on the shard's wheel.
type gen struct {
	cfg    genConfig
	r      *reactor.Reactor
	shards []map[uint64]*attempt // per shard, touched only on its goroutine
	nextID atomic.Uint64

	inflight    atomic.Int64 // handshakes started and not finished
	maxInflight atomic.Int64
	connected   atomic.Int64 // sessions currently connected

	mu          sync.Mutex
	idleDrops   map[string]int // connected sessions that ended, by reason
	sendErrors  int
	cancel      context.CancelFunc
	reactorDone chan struct{}
}

func newGen(cfg genConfig) *gen {
	g := &gen{cfg: cfg, idleDrops: map[string]int{}, reactorDone: make(chan struct{})}
	g.r = reactor.New(reactor.Config{Shards: cfg.Shards, OnTimer: g.onTimer, QueueLen: 4096})
	g.shards = make([]map[uint64]*attempt, g.r.NumShards())
	for i := range g.shards {
		g.shards[i] = map[uint64]*attempt{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { _ = g.r.Run(ctx); close(g.reactorDone) }()
	return g
}

func (g *gen) stop() {
	g.cancel()
	select {
	case <-g.reactorDone:
	case <-time.After(5 * time.Second):
	}
}

// attempt is one session on one socket. A logical client that fails before it
// connects is retried with a new attempt.
type attempt struct {
	id      uint64
	logical int
	try     int
	w       *wave
	g       *gen
	sh      *reactor.Shard
	shIdx   int
	sess    *ovpn.Session
	udp     *net.UDPConn
	tcp     *tcp.Conn
	start   time.Time
	closing bool

	// owned by the shard
	connected bool
	finished  bool
	ctlOut    int // control packets sent before connecting
	ctlIn     int // control packets received before connecting
}

// wave connects n logical clients with at most conc handshakes in flight.
type wave struct {
	n, conc  int
	maxTries int
	sem      chan struct{}
	retry    chan int // logical clients to try again
	allDone  chan struct{}

	mu          sync.Mutex
	remaining   int
	tries       map[int]int
	first, last time.Time
	latencies   []time.Duration
	doneAt      []time.Time
	ctlOut      []int
	ctlIn       []int
	connected   []*attempt
	failed      int
	retries     int
	reasons     map[string]int
	live        map[uint64]*attempt // attempts in flight
	closed      bool
}

// WaveResult is what one wave measured.
type WaveResult struct {
	N, Conc        int
	Connected      int
	Failed         int // logical clients that never connected (all tries failed)
	TimedOut       int // logical clients still handshaking at the wave deadline
	Retries        int
	Seconds        float64 // first attempt start to last connection
	Rate           float64 // connected / Seconds
	Rate90         float64 // 90% of N / time until 90% of N were connected (less tail-sensitive)
	MaxInflight    int64
	LatP50, LatP90 float64 // ms
	LatP99, LatMax float64
	CtlOutMean     float64 // client control packets sent per handshake
	CtlInMean      float64 // control packets received per handshake
	CtlOutMin      int
	CtlInMin       int
	CtlOutP99      int
	CtlInP99       int
	FailReasons    map[string]int
	connectedList  []*attempt
}

// runWave connects n clients (conc in flight at most, up to maxTries attempts
// each) and returns when all are connected or given up, or at deadline.
func (g *gen) runWave(n, conc, maxTries int, deadline time.Time) *WaveResult {
	w := &wave{n: n, conc: conc, maxTries: maxTries, sem: make(chan struct{}, conc),
		retry: make(chan int, n), allDone: make(chan struct{}), remaining: n,
		tries: map[int]int{}, reasons: map[string]int{}, live: map[uint64]*attempt{}}
	g.maxInflight.Store(0)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	next := 0
	timedOut := false
loop:
	for {
		// Take a slot, then a client: retries first, then new ones.
		select {
		case w.sem <- struct{}{}:
		case <-w.allDone:
			break loop
		case <-timer.C:
			timedOut = true
			break loop
		}
		var logical int
		select {
		case logical = <-w.retry:
		default:
			if next < n {
				logical = next
				next++
			} else {
				select {
				case logical = <-w.retry:
				case <-w.allDone:
					<-w.sem
					break loop
				case <-timer.C:
					<-w.sem
					timedOut = true
					break loop
				}
			}
		}
		w.mu.Lock()
		w.tries[logical]++
		try := w.tries[logical]
		if w.first.IsZero() {
			w.first = time.Now()
		}
		w.mu.Unlock()
		go g.launch(w, logical, try)
	}
	// Stop what is still handshaking.
	w.mu.Lock()
	w.closed = true
	live := make([]*attempt, 0, len(w.live))
	for _, a := range w.live {
		live = append(live, a)
	}
	w.mu.Unlock()
	for _, a := range live {
		a.sh.Post(func(now time.Time) { g.finish(a, "") })
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	res := &WaveResult{N: n, Conc: conc, Connected: len(w.connected), Failed: w.failed,
		Retries: w.retries, MaxInflight: g.maxInflight.Load(), FailReasons: w.reasons, connectedList: w.connected}
	if timedOut {
		res.TimedOut = n - res.Connected - res.Failed
	}
	if len(w.connected) > 0 {
		res.Seconds = w.last.Sub(w.first).Seconds()
		if res.Seconds > 0 {
			res.Rate = float64(res.Connected) / res.Seconds
		}
	}
	if k := (n*9 + 9) / 10; k > 0 && len(w.doneAt) >= k {
		if d := w.doneAt[k-1].Sub(w.first).Seconds(); d > 0 {
			res.Rate90 = float64(k) / d
		}
	}
	lat := slices.Clone(w.latencies)
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	if len(lat) > 0 {
		res.LatP50, res.LatP90, res.LatP99, res.LatMax = ms(pct(lat, 50)), ms(pct(lat, 90)), ms(pct(lat, 99)), ms(lat[len(lat)-1])
	}
	res.CtlOutMean, res.CtlOutMin, res.CtlOutP99 = intStats(w.ctlOut)
	res.CtlInMean, res.CtlInMin, res.CtlInP99 = intStats(w.ctlIn)
	return res
}

func pct[T any](sorted []T, p int) T {
	i := (len(sorted)*p + 99) / 100
	if i > 0 {
		i--
	}
	return sorted[min(i, len(sorted)-1)]
}

func intStats(v []int) (mean float64, minv, p99 int) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	sum := 0
	for _, x := range s {
		sum += x
	}
	return float64(sum) / float64(len(s)), s[0], pct(s, 99)
}

// launch opens the socket of a new attempt and starts its session on a shard.
func (g *gen) launch(w *wave, logical, try int) {
	a := &attempt{id: g.nextID.Add(1), logical: logical, try: try, w: w, g: g}
	a.shIdx = int(a.id % uint64(g.r.NumShards()))
	a.sh = g.r.Shard(a.shIdx)
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.sem
		return
	}
	w.live[a.id] = a
	w.mu.Unlock()
	n := g.inflight.Add(1)
	for {
		m := g.maxInflight.Load()
		if n <= m || g.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	var err error
	if g.cfg.TCP {
		var laddr netip.AddrPort
		if len(g.cfg.SourceIPs) > 0 {
			laddr = netip.AddrPortFrom(g.cfg.SourceIPs[int(a.id)%len(g.cfg.SourceIPs)], 0)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		a.tcp, err = tcp.Dial(ctx, "tcp4", g.cfg.Server.String(), laddr, tcp.Options{ReadSize: 4096})
		cancel()
	} else {
		a.udp, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(g.cfg.Server))
	}
	if err != nil {
		a.sh.Post(func(now time.Time) { g.finish(a, "dial: "+errors.Unwrap(err).Error()) })
		return
	}
	a.sh.Post(func(now time.Time) {
		cfg := g.cfg.Session
		wr, err := g.cfg.NewWrapper()
		if err != nil {
			g.finish(a, "wrapper: "+err.Error())
			return
		}
		cfg.Wrapper = wr
		cfg.TCP = g.cfg.TCP
		a.sess, err = ovpn.NewSession(cfg, now)
		if err != nil {
			g.finish(a, "session: "+err.Error())
			return
		}
		a.start = now
		g.shards[a.shIdx][a.id] = a
		g.drive(now, a)
	})
	go g.read(a)
}

// read forwards the attempt's packets to its shard until the socket closes.
func (g *gen) read(a *attempt) {
	post := func(pkt []byte) {
		a.sh.Post(func(now time.Time) {
			if a.finished || a.sess == nil {
				return
			}
			if !a.connected {
				if op, _ := wire.SplitHeader(pkt[0]); op.IsControl() {
					a.ctlIn++
				}
			}
			a.sess.HandlePacket(now, pkt)
			g.drive(now, a)
		})
	}
	if a.tcp != nil {
		for {
			err := a.tcp.ReadPackets(func(pkt []byte) {
				if len(pkt) > 0 {
					post(append([]byte(nil), pkt...))
				}
			})
			if err != nil {
				a.sh.Post(func(now time.Time) { g.finish(a, "link: "+shortErr(err)) })
				return
			}
		}
	}
	buf := make([]byte, 4096)
	for {
		n, err := a.udp.Read(buf)
		if n > 0 {
			post(append([]byte(nil), buf[:n]...))
		}
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				// ICMP port unreachable on a connected socket: keep going, the
				// session's timers decide.
				continue
			}
			if !errors.Is(err, net.ErrClosed) {
				a.sh.Post(func(now time.Time) { g.finish(a, "link: "+shortErr(err)) })
			}
			return
		}
	}
}

func shortErr(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

func (g *gen) onTimer(shard int, now time.Time, id uint64) {
	a := g.shards[shard][id]
	if a == nil || a.finished || a.sess == nil {
		return
	}
	a.sess.Tick(now)
	g.drive(now, a)
}

// drive sends the session's output, handles its events and re-arms its timer.
func (g *gen) drive(now time.Time, a *attempt) {
	if a.finished || a.sess == nil {
		return
	}
	out := a.sess.Outgoing()
	if len(out) > 0 {
		if !a.connected {
			for _, p := range out {
				if op, _ := wire.SplitHeader(p[0]); op.IsControl() {
					a.ctlOut++
				}
			}
		}
		var err error
		if a.tcp != nil {
			err = a.tcp.WritePackets(out)
		} else {
			for _, p := range out {
				if _, e := a.udp.Write(p); e != nil && err == nil {
					err = e
				}
			}
		}
		if err != nil {
			g.mu.Lock()
			g.sendErrors++
			g.mu.Unlock()
		}
	}
	_ = a.sess.Delivered()
	for _, ev := range a.sess.Events() {
		switch ev.Kind {
		case ovpn.EventConnected:
			g.onConnected(now, a)
		case ovpn.EventRenegotiated:
		default:
			if a.closing && ev.Kind == ovpn.EventExit {
				continue
			}
			g.finish(a, ev.Kind.String()+": "+ev.Reason)
			return
		}
	}
	if d := a.sess.NextDeadline(); !d.IsZero() {
		a.sh.Schedule(a.id, d)
	}
}

func (g *gen) onConnected(now time.Time, a *attempt) {
	if a.connected {
		return
	}
	a.connected = true
	g.inflight.Add(-1)
	g.connected.Add(1)
	w := a.w
	w.mu.Lock()
	delete(w.live, a.id)
	w.last = time.Now()
	w.latencies = append(w.latencies, now.Sub(a.start))
	w.doneAt = append(w.doneAt, w.last)
	w.ctlOut = append(w.ctlOut, a.ctlOut)
	w.ctlIn = append(w.ctlIn, a.ctlIn)
	w.connected = append(w.connected, a)
	w.remaining--
	if w.remaining == 0 {
		close(w.allDone)
	}
	w.mu.Unlock()
	<-w.sem
}

// finish ends an attempt (on its shard). reason "" is a deliberate stop.
func (g *gen) finish(a *attempt, reason string) {
	if a.finished {
		return
	}
	a.finished = true
	a.sh.Cancel(a.id)
	delete(g.shards[a.shIdx], a.id)
	if a.udp != nil {
		a.udp.Close()
	}
	if a.tcp != nil {
		a.tcp.Close()
	}
	if a.connected {
		g.connected.Add(-1)
		if reason != "" && !a.closing {
			g.mu.Lock()
			g.idleDrops[reasonKey(reason)]++
			g.mu.Unlock()
		}
		return
	}
	g.inflight.Add(-1)
	w := a.w
	w.mu.Lock()
	delete(w.live, a.id)
	if reason == "" || w.closed {
		w.mu.Unlock()
		if reason == "" {
			return
		}
		<-w.sem
		return
	}
	w.reasons[reasonKey(reason)]++
	retry := w.tries[a.logical] < w.maxTries
	if retry {
		w.retries++
	} else {
		w.failed++
		w.remaining--
		if w.remaining == 0 {
			close(w.allDone)
		}
	}
	w.mu.Unlock()
	<-w.sem
	if retry {
		w.retry <- a.logical
	}
}

// reasonKey shortens a failure reason for counting.
func reasonKey(r string) string {
	if len(r) > 90 {
		r = r[:90]
	}
	return r
}

// closeAll ends the given connected sessions gracefully (exit notification),
// then closes their sockets after grace.
func (g *gen) closeAll(list []*attempt, grace time.Duration) {
	var wg sync.WaitGroup
	for _, a := range list {
		wg.Add(1)
		a.sh.Post(func(now time.Time) {
			defer wg.Done()
			if a.finished {
				return
			}
			a.closing = true
			a.sess.Close(now)
			g.drive(now, a)
		})
	}
	wg.Wait()
	time.Sleep(grace)
	for _, a := range list {
		wg.Add(1)
		a.sh.Post(func(now time.Time) { defer wg.Done(); g.finish(a, "") })
	}
	wg.Wait()
}

// dropSummary returns the idle-drop counts.
func (g *gen) dropSummary() (int, map[string]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	out := map[string]int{}
	for k, v := range g.idleDrops {
		n += v
		out[k] = v
	}
	return n, out
}

func (r *WaveResult) String() string {
	return fmt.Sprintf("connected %d/%d in %.2fs (%.0f/s, conc %d, max in flight %d), failed %d, timed out %d, retries %d, latency p50 %.0fms p99 %.0fms",
		r.Connected, r.N, r.Seconds, r.Rate, r.Conc, r.MaxInflight, r.Failed, r.TimedOut, r.Retries, r.LatP50, r.LatP99)
}
