package demo

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"weft/node"
)

// Options configures a demo run.
type Options struct {
	Clients  int           // number of clients (default 4), alternating UDP and TCP
	Duration time.Duration // how long the traffic phase lasts (default 10 s)
	BulkMiB  int           // size of each client-to-client transfer (default 16)
	Out      io.Writer     // progress and summary (default os.Stdout)
	Dir      string        // where the PKI and configs go (default a temp dir)
}

// ClientResult is one client's line in the summary.
type ClientResult struct {
	Name      string
	Proto     string
	Addrs     []netip.Prefix
	Handshake time.Duration
	Requests  int
	ReqErrors int
	BulkMbps  float64
	BulkOK    bool
	Probes    int
	Lost      int
	RTT       time.Duration
	PktsOut   uint64
	PktsIn    uint64
}

// Result is the outcome of a demo run.
type Result struct {
	Clients []ClientResult
	Elapsed time.Duration
}

// OK reports whether every check of the run passed.
func (r *Result) OK() bool {
	for _, c := range r.Clients {
		if c.ReqErrors > 0 || !c.BulkOK || c.Requests == 0 || c.Probes == 0 || c.Lost*100 > c.Probes {
			return false
		}
	}
	return len(r.Clients) > 0
}

// Run starts a server and clients in this process on the user-space stack, over
// loopback UDP and TCP, moves traffic through them and prints a summary.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Clients <= 0 {
		o.Clients = 4
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.BulkMiB <= 0 {
		o.BulkMiB = 16
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "weft-demo-")
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	started := time.Now()
	say := func(format string, a ...any) { fmt.Fprintf(o.Out, format+"\n", a...) }

	names := make([]string, o.Clients)
	for i := range names {
		names[i] = fmt.Sprintf("client%d", i+1)
	}
	setup, err := NewSetup(o.Dir, names)
	if err != nil {
		return nil, err
	}
	srvConf, err := setup.ServerConfig([]string{"udp 127.0.0.1:0", "tcp 127.0.0.1:0", "udp [::1]:0"})
	if err != nil {
		return nil, err
	}
	say("weft demo: a server and %d clients in one process, on a user-space TCP/IP stack (no root, no TUN)", o.Clients)
	srv, err := node.Start(ctx, srvConf, node.Options{})
	if err != nil {
		return nil, fmt.Errorf("demo: server: %w", err)
	}
	defer srv.Close()
	listens := map[string]netip.AddrPort{}
	for _, l := range srv.ListenAddrs() {
		key := l.Proto
		if l.Addr.Addr().Is6() {
			key += "6"
		}
		listens[key] = l.Addr
		say("  server listening on %s %s", l.Proto, l.Addr)
	}
	stopServices, err := serve(srv)
	if err != nil {
		return nil, err
	}
	defer stopServices()

	// Clients: alternate UDP/IPv4, TCP/IPv4 and UDP/IPv6.
	type cl struct {
		n   *node.Node
		res *ClientResult
	}
	kinds := []struct{ proto, key string }{{"udp", "udp"}, {"tcp", "tcp"}, {"udp", "udp6"}}
	clients := make([]cl, o.Clients)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i, name := range names {
		k := kinds[i%len(kinds)]
		path, err := setup.ClientConfig(name, k.proto, listens[k.key])
		if err != nil {
			return nil, err
		}
		res := &ClientResult{Name: name, Proto: k.proto + map[bool]string{true: "/IPv6", false: "/IPv4"}[listens[k.key].Addr().Is6()]}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			n, err := node.Start(ctx, path, node.Options{})
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				err = n.WaitConnected(cctx)
				cancel()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("demo: %s: %w", name, err)
				}
				if n != nil {
					n.Close()
				}
				return
			}
			res.Handshake = n.Stats().HandshakeTime
			if res.Handshake == 0 {
				res.Handshake = time.Since(t0)
			}
			res.Addrs = n.Addrs()
			clients[i] = cl{n: n, res: res}
			say("  %-8s connected over %-9s in %-7s tunnel %s", name, res.Proto, res.Handshake.Round(time.Millisecond), prefixes(res.Addrs))
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c.n != nil {
				c.n.Close()
			}
		}
	}()
	if firstErr != nil {
		return nil, firstErr
	}

	say("traffic for %s: HTTP requests to the server, UDP probes, and a %d MiB transfer from each client to the next one through the server", o.Duration, o.BulkMiB)
	deadline := time.Now().Add(o.Duration)
	tctx, cancel := context.WithDeadline(ctx, deadline.Add(30*time.Second))
	defer cancel()
	for i := range clients {
		c, next := clients[i], clients[(i+1)%len(clients)]
		wg.Add(3)
		go func() { defer wg.Done(); httpLoop(tctx, c.n, c.res, deadline, &mu) }()
		go func() { defer wg.Done(); probeLoop(tctx, c.n, c.res, deadline, &mu) }()
		go func() { defer wg.Done(); bulk(tctx, c.n, next.n, o.BulkMiB, c.res, &mu) }()
	}
	progressDone := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				mu.Lock()
				reqs, probes, done := 0, 0, 0
				for _, c := range clients {
					reqs += c.res.Requests
					probes += c.res.Probes
					if c.res.BulkMbps > 0 || c.res.BulkOK {
						done++
					}
				}
				mu.Unlock()
				say("  … %2.0fs: %d HTTP requests, %d probes, %d/%d transfers done", time.Since(deadline.Add(-o.Duration)).Seconds(), reqs, probes, done, len(clients))
			}
		}
	}()
	wg.Wait()
	close(progressDone)

	res := &Result{Elapsed: time.Since(started)}
	for _, c := range clients {
		st := c.n.Stats()
		c.res.PktsOut, c.res.PktsIn = st.TunPacketsIn, st.TunPacketsOut
		res.Clients = append(res.Clients, *c.res)
	}
	printSummary(o.Out, res)
	if !res.OK() {
		return res, errors.New("demo: some checks failed (see the summary)")
	}
	return res, nil
}

// serve runs the server's tunnel services: HTTP on 10.8.0.1:80 and a UDP echo on
// 10.8.0.1:7.
func serve(srv *node.Node) (func(), error) {
	ln, err := srv.Listen("tcp", "10.8.0.1:80")
	if err != nil {
		return nil, fmt.Errorf("demo: HTTP listener: %w", err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "weft demo server says hello to %s\n", r.RemoteAddr)
	}), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	pc, err := srv.ListenPacket("udp", "10.8.0.1:7")
	if err != nil {
		hs.Close()
		return nil, fmt.Errorf("demo: UDP echo: %w", err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return func() { hs.Close(); pc.Close() }, nil
}

func httpLoop(ctx context.Context, n *node.Node, res *ClientResult, until time.Time, mu *sync.Mutex) {
	hc := &http.Client{Transport: &http.Transport{DialContext: n.Dial, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	for time.Now().Before(until) && ctx.Err() == nil {
		resp, err := hc.Get("http://10.8.0.1/")
		ok := err == nil
		if ok {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok = err == nil && resp.StatusCode == http.StatusOK
		}
		mu.Lock()
		if ok {
			res.Requests++
		} else {
			res.ReqErrors++
		}
		mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
}

func probeLoop(ctx context.Context, n *node.Node, res *ClientResult, until time.Time, mu *sync.Mutex) {
	c, err := n.Dial(ctx, "udp", "10.8.0.1:7")
	if err != nil {
		return
	}
	defer c.Close()
	buf := make([]byte, 64)
	var total time.Duration
	got := 0
	for seq := uint64(0); time.Now().Before(until) && ctx.Err() == nil; seq++ {
		var msg [16]byte
		binary.BigEndian.PutUint64(msg[:], seq)
		t0 := time.Now()
		c.SetDeadline(t0.Add(time.Second))
		_, err := c.Write(msg[:])
		ok := false
		for err == nil {
			var k int
			k, err = c.Read(buf)
			if err == nil && k >= 8 && binary.BigEndian.Uint64(buf) == seq {
				ok = true
				break
			}
		}
		mu.Lock()
		res.Probes++
		if ok {
			got++
			total += time.Since(t0)
			res.RTT = total / time.Duration(got)
		} else {
			res.Lost++
		}
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
}

// bulk sends size MiB from one client to another through the server and checks the
// SHA-256 at the far end.
func bulk(ctx context.Context, from, to *node.Node, size int, res *ClientResult, mu *sync.Mutex) {
	var dst netip.Addr
	for _, p := range to.Addrs() {
		if p.Addr().Is4() {
			dst = p.Addr()
		}
	}
	ln, err := to.Listen("tcp", netip.AddrPortFrom(dst, 0).String())
	if err != nil {
		return
	}
	defer ln.Close()
	sums := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(sums)
			return
		}
		defer c.Close()
		h := sha256.New()
		io.Copy(h, c)
		var s [32]byte
		copy(s[:], h.Sum(nil))
		sums <- s
	}()
	data := make([]byte, size<<20)
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for i := 0; i+8 <= len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], rng.Uint64())
	}
	want := sha256.Sum256(data)
	t0 := time.Now()
	c, err := from.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return
	}
	_, err = c.Write(data)
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	} else {
		c.Close()
	}
	var got [32]byte
	select {
	case got = <-sums:
	case <-ctx.Done():
	}
	c.Close()
	elapsed := time.Since(t0)
	mu.Lock()
	res.BulkOK = err == nil && got == want
	res.BulkMbps = float64(len(data)*8) / elapsed.Seconds() / 1e6
	mu.Unlock()
}

func prefixes(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, " ")
}

func printSummary(w io.Writer, r *Result) {
	sort.Slice(r.Clients, func(i, j int) bool { return r.Clients[i].Name < r.Clients[j].Name })
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "client\tlink\ttunnel addresses\thandshake\tHTTP ok/err\tbulk Mbit/s\tbulk sha256\tprobes\tloss\tRTT\tpackets out/in")
	for _, c := range r.Clients {
		sum := "ok"
		if !c.BulkOK {
			sum = "FAILED"
		}
		loss := 0.0
		if c.Probes > 0 {
			loss = 100 * float64(c.Lost) / float64(c.Probes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%.0f\t%s\t%d\t%.1f%%\t%s\t%d/%d\n",
			c.Name, c.Proto, prefixes(c.Addrs), c.Handshake.Round(time.Millisecond), c.Requests, c.ReqErrors,
			c.BulkMbps, sum, c.Probes, loss, c.RTT.Round(10*time.Microsecond), c.PktsOut, c.PktsIn)
	}
	tw.Flush()
	verdict := "all checks passed"
	if !r.OK() {
		verdict = "SOME CHECKS FAILED"
	}
	fmt.Fprintf(w, "\n%s in %s\n", verdict, r.Elapsed.Round(100*time.Millisecond))
}

var _ = net.ErrClosed
