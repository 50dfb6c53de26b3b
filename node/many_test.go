package node_test

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"weft/internal/demo"
	"weft/node"
)

// TestHundredNodes runs one server and 99 clients in one process on the user-space
// stack: every client must reach the server and its neighbour (client to client),
// and the memory per node is reported.
func TestHundredNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("100 nodes take a few seconds; skipped with -short")
	}
	const clients = 99
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	names := make([]string, clients)
	for i := range names {
		names[i] = fmt.Sprintf("c%02d", i)
	}
	setup, err := demo.NewSetup(t.TempDir(), names)
	if err != nil {
		t.Fatal(err)
	}
	srvConf, err := setup.ServerConfig([]string{"udp 127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	srv, err := node.Start(ctx, srvConf, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	remote := srv.ListenAddrs()[0].Addr
	stop := echo(t, srv, "10.8.0.1:7")
	defer stop()

	nodes := make([]*node.Node, clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	sem := make(chan struct{}, 16)
	for i, name := range names {
		path, err := setup.ClientConfig(name, "udp", remote)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			n, err := node.Start(ctx, path, node.Options{})
			if err == nil {
				err = n.WaitConnected(ctx)
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				return
			}
			nodes[i] = n
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perNode := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / (clients + 1)
	t.Logf("%d nodes in one process: %d KiB heap per node, %d goroutines", clients+1, perNode/1024, runtime.NumGoroutine())

	// Every client runs an echo on its tunnel address; each one probes the server
	// and its neighbour.
	addrs := make([]netip.Addr, clients)
	for i, n := range nodes {
		for _, p := range n.Addrs() {
			if p.Addr().Is4() {
				addrs[i] = p.Addr()
			}
		}
		defer echo(t, n, netip.AddrPortFrom(addrs[i], 7).String())()
	}
	if got := srv.Stats().Peers; got != clients {
		t.Fatalf("server has %d peers, want %d", got, clients)
	}
	fails := make(chan string, 2*clients)
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, dst := range []string{"10.8.0.1:7", netip.AddrPortFrom(addrs[(i+1)%clients], 7).String()} {
				if err := probe(ctx, n, dst); err != nil {
					fails <- fmt.Sprintf("%s -> %s: %v", names[i], dst, err)
				}
			}
		}()
	}
	wg.Wait()
	close(fails)
	for f := range fails {
		t.Error(f)
	}
}

func echo(t *testing.T, n *node.Node, addr string) func() {
	t.Helper()
	pc, err := n.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:k], from)
		}
	}()
	return func() { pc.Close() }
}

// probe sends a datagram and waits for its echo, retrying a few times.
func probe(ctx context.Context, n *node.Node, dst string) error {
	c, err := n.Dial(ctx, "udp", dst)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 64)
	for try := 0; try < 5; try++ {
		msg := fmt.Sprintf("probe %d", try)
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		if k, err := c.Read(buf); err == nil && string(buf[:k]) == msg {
			return nil
		}
	}
	return fmt.Errorf("no echo after 5 tries")
}
