package node_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"weft/internal/demo"
	"weft/node"
)

// TestNodesInOneProcess starts a server node and two client nodes on the user-space
// stack (no root): HTTP from a client to a server tunnel address, and a checksummed
// bulk transfer from one client to the other through the server.
func TestNodesInOneProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	setup, err := demo.NewSetup(t.TempDir(), []string{"alice", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	srvConf, err := setup.ServerConfig([]string{"udp 127.0.0.1:0", "tcp 127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := node.Start(ctx, srvConf, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var udpAddr, tcpAddr netip.AddrPort
	for _, l := range srv.ListenAddrs() {
		if l.Proto == "tcp" {
			tcpAddr = l.Addr
		} else {
			udpAddr = l.Addr
		}
	}
	// An HTTP server on the server's tunnel address.
	ln, err := srv.Listen("tcp", "10.8.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))

	start := func(cn, proto string, remote netip.AddrPort) *node.Node {
		path, err := setup.ClientConfig(cn, proto, remote)
		if err != nil {
			t.Fatal(err)
		}
		n, err := node.Start(ctx, path, node.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.WaitConnected(ctx); err != nil {
			t.Fatalf("%s: %v", cn, err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	alice := start("alice", "udp", udpAddr)
	bob := start("bob", "tcp", tcpAddr)

	hc := &http.Client{Transport: &http.Transport{DialContext: alice.Dial}, Timeout: 10 * time.Second}
	resp, err := hc.Get("http://10.8.0.1/weft")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello /weft" {
		t.Fatalf("GET = %q", body)
	}

	// Bulk transfer alice -> bob, through the server (client-to-client), over IPv6.
	var bobAddr netip.Addr
	for _, p := range bob.Addrs() {
		if p.Addr().Is6() {
			bobAddr = p.Addr()
		}
	}
	if !bobAddr.IsValid() {
		t.Fatalf("bob has no IPv6 tunnel address: %v", bob.Addrs())
	}
	bl, err := bob.Listen("tcp", netip.AddrPortFrom(bobAddr, 9000).String())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan [32]byte, 1)
	go func() {
		c, err := bl.Accept()
		if err != nil {
			return
		}
		h := sha256.New()
		io.Copy(h, c)
		c.Close()
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		got <- sum
	}()
	data := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	c, err := alice.Dial(ctx, "tcp", netip.AddrPortFrom(bobAddr, 9000).String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case sum := <-got:
		if sum != sha256.Sum256(data) {
			t.Fatal("bulk transfer checksum mismatch")
		}
	case <-ctx.Done():
		t.Fatal("bulk transfer timed out")
	}
	if st := srv.Stats(); st.Peers != 2 {
		t.Errorf("server has %d peers, want 2", st.Peers)
	}
	if st := alice.Stats(); st.TunPacketsIn == 0 || st.LinkBytesOut == 0 {
		t.Errorf("alice stats look empty: %+v", st)
	}
	var _ net.Conn = c
}
