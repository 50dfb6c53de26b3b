package tun

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"weft/internal/testpkt"
)

// envInNetns marks the re-executed test binary running inside the namespace.
const envInNetns = "WEFT_TUN_TEST_IN_NETNS"

// TestKernelTUN creates a real TUN device inside a fresh network namespace.
// The outer test creates the namespace and re-executes this test in it with
// "ip netns exec", so nothing touches the host's network configuration.
func TestKernelTUN(t *testing.T) {
	if os.Getenv(envInNetns) != "" {
		kernelTUN(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING KERNEL TUN TEST: needs root (CAP_NET_ADMIN) to create a TUN and a network namespace")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("SKIPPING KERNEL TUN TEST: /dev/net/tun unavailable: %v", err)
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("SKIPPING KERNEL TUN TEST: iproute2 'ip' not found")
	}
	ns := fmt.Sprintf("weft-tun-%d", os.Getpid())
	if out, err := exec.Command(ipCmd, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ipCmd, "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	cmd := exec.Command(ipCmd, "netns", "exec", ns, os.Args[0],
		"-test.run=^TestKernelTUN$", "-test.v", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), envInNetns+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("inside netns %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("test in netns failed: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestKernelTUN")) {
		t.Fatal("test in netns did not pass")
	}
}

var (
	tunLocal4 = netip.MustParseAddr("10.99.0.1")
	tunPeer4  = netip.MustParseAddr("10.99.0.2")
	tunLocal6 = netip.MustParseAddr("fd00:99::1")
	tunPeer6  = netip.MustParseAddr("fd00:99::2")
)

// offset leaves Headroom plus room for a protocol header, like weft does.
const offset = Headroom + 32

func kernelTUN(t *testing.T) {
	dev, err := Create("wefttest%d", 1400)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	name, err := dev.Name()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("created %s, batch size %d", name, dev.BatchSize())

	cfg := LinkConfig{
		MTU: 1380,
		Addrs: []Addr{
			{Prefix: netip.PrefixFrom(tunLocal4, 24)},
			{Prefix: netip.PrefixFrom(tunLocal6, 64)},
			{Prefix: netip.MustParsePrefix("10.97.0.6/32"), Peer: netip.MustParseAddr("10.97.0.5")},
		},
		Routes: []Route{
			{Dst: netip.MustParsePrefix("10.98.0.0/16"), Gateway: tunPeer4, Metric: 50},
			{Dst: netip.MustParsePrefix("fd00:98::/64"), Metric: 10},
		},
		Up: true,
	}
	if err := Configure(name, cfg); err != nil {
		t.Fatal(err)
	}
	if err := Configure(name, cfg); err != nil {
		t.Fatalf("Configure is not idempotent: %v", err)
	}
	if m, err := dev.MTU(); err != nil || m != 1380 {
		t.Fatalf("MTU = %d, %v; want 1380", m, err)
	}
	checkLink(t, name)

	// Reader: forward copies of every packet read from the TUN.
	pkts := make(chan []byte, 256)
	go func() {
		bufs := make([][]byte, dev.BatchSize())
		for i := range bufs {
			bufs[i] = make([]byte, offset+65535)
		}
		sizes := make([]int, len(bufs))
		for {
			n, err := dev.Read(bufs, sizes, offset)
			if err != nil {
				close(pkts)
				return
			}
			for i := range n {
				pkts <- bytes.Clone(bufs[i][offset : offset+sizes[i]])
			}
		}
	}()

	// Kernel → TUN: UDP to the on-link peer and through the gateway route.
	for _, dst := range []string{"10.99.0.2:9999", "10.98.1.1:9999"} {
		c, err := net.Dial("udp4", dst)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("hello weft " + dst)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		c.Close()
		p := waitPacket(t, pkts, "UDP to "+dst, func(p []byte) bool {
			return len(p) >= 28 && p[0]>>4 == 4 && p[9] == unix.IPPROTO_UDP &&
				netip.AddrFrom4([4]byte(p[16:20])).String()+":9999" == dst &&
				binary.BigEndian.Uint16(p[22:24]) == 9999
		})
		ihl := int(p[0]&0xf) * 4
		if !bytes.Equal(p[ihl+8:], msg) {
			t.Fatalf("UDP payload = %q, want %q", p[ihl+8:], msg)
		}
		if src := netip.AddrFrom4([4]byte(p[12:16])); src != tunLocal4 {
			t.Fatalf("UDP source %v, want %v", src, tunLocal4)
		}
	}

	// TUN → kernel: an ICMP echo request written to the TUN gets a reply.
	req := testpkt.ICMP4Echo(tunPeer4, tunLocal4, 0x77, 1, []byte("weft ping"))
	if n, err := dev.Write([][]byte{append(make([]byte, offset), req...)}, offset); err != nil || n != 1 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	reply := waitPacket(t, pkts, "ICMP echo reply", func(p []byte) bool {
		return len(p) >= 28 && p[0]>>4 == 4 && p[9] == unix.IPPROTO_ICMP && p[20] == 0
	})
	if src, dst := netip.AddrFrom4([4]byte(reply[12:16])), netip.AddrFrom4([4]byte(reply[16:20])); src != tunLocal4 || dst != tunPeer4 {
		t.Fatalf("echo reply %v → %v", src, dst)
	}
	if id, seq := binary.BigEndian.Uint16(reply[24:26]), binary.BigEndian.Uint16(reply[26:28]); id != 0x77 || seq != 1 {
		t.Fatalf("echo reply id %#x seq %d", id, seq)
	}
	if !bytes.Equal(reply[28:], []byte("weft ping")) {
		t.Fatalf("echo reply payload %q", reply[28:])
	}

	// IPv6: the address answers at once (IFA_F_NODAD: no tentative period).
	req6 := testpkt.ICMP6Echo(tunPeer6, tunLocal6, 0x66, 2, []byte("weft ping6"))
	if _, err := dev.Write([][]byte{append(make([]byte, offset), req6...)}, offset); err != nil {
		t.Fatalf("Write v6: %v", err)
	}
	reply6 := waitPacket(t, pkts, "ICMPv6 echo reply", func(p []byte) bool {
		return len(p) >= 48 && p[0]>>4 == 6 && p[6] == unix.IPPROTO_ICMPV6 && p[40] == 129
	})
	if src := netip.AddrFrom16([16]byte(reply6[8:24])); src != tunLocal6 {
		t.Fatalf("ICMPv6 reply from %v", src)
	}
	if !bytes.Equal(reply6[48:], []byte("weft ping6")) {
		t.Fatalf("ICMPv6 reply payload %q", reply6[48:])
	}

	// Deconfigure removes routes and addresses.
	if err := Deconfigure(name, cfg); err != nil {
		t.Fatal(err)
	}
	link, _ := netlink.LinkByName(name)
	if addrs, _ := netlink.AddrList(link, netlink.FAMILY_V4); len(addrs) != 0 {
		t.Fatalf("addresses left after Deconfigure: %v", addrs)
	}
	if routes, _ := netlink.RouteList(link, netlink.FAMILY_ALL); len(routes) != 0 {
		for _, r := range routes {
			if r.Dst != nil && (r.Dst.String() == "10.98.0.0/16" || r.Dst.String() == "fd00:98::/64") {
				t.Fatalf("route left after Deconfigure: %v", r)
			}
		}
	}
	if err := Deconfigure(name, cfg); err != nil {
		t.Fatalf("second Deconfigure: %v", err)
	}
	if err := Configure("weft-no-such-if", cfg); err == nil || !bytes.Contains([]byte(err.Error()), []byte("weft-no-such-if")) {
		t.Fatalf("Configure of a missing interface: %v", err)
	}

	dev.Close()
	for range pkts { // the reader exits once Read fails after Close
	}
}

// checkLink verifies addresses and routes as the kernel reports them.
func checkLink(t *testing.T, name string) {
	t.Helper()
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		t.Fatal("link is not up")
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]netlink.Addr{}
	for _, a := range addrs {
		seen[a.IPNet.String()] = a
	}
	for _, want := range []string{"10.99.0.1/24", "fd00:99::1/64", "10.97.0.6/32"} {
		if _, ok := seen[want]; !ok {
			t.Fatalf("address %s missing; have %v", want, addrs)
		}
	}
	if a := seen["fd00:99::1/64"]; a.Flags&unix.IFA_F_TENTATIVE != 0 || a.Flags&unix.IFA_F_NODAD == 0 {
		t.Fatalf("IPv6 address flags %#x: want NODAD, not tentative", a.Flags)
	}
	if p := seen["10.97.0.6/32"].Peer; p == nil || p.IP.String() != "10.97.0.5" {
		t.Fatalf("point-to-point peer = %v, want 10.97.0.5", p)
	}
	routes, err := netlink.RouteList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var gw4, r6 bool
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		switch r.Dst.String() {
		case "10.98.0.0/16":
			gw4 = r.Gw.String() == "10.99.0.2" && r.Priority == 50
		case "fd00:98::/64":
			r6 = r.Priority == 10
		}
	}
	if !gw4 || !r6 {
		t.Fatalf("routes missing or wrong (v4 via gw: %v, v6: %v): %v", gw4, r6, routes)
	}
}

func waitPacket(t *testing.T, pkts <-chan []byte, what string, match func([]byte) bool) []byte {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p, ok := <-pkts:
			if !ok {
				t.Fatalf("TUN reader stopped while waiting for %s", what)
			}
			if match(p) {
				return p
			}
			t.Logf("skipping packet (%d bytes, version %d) while waiting for %s", len(p), p[0]>>4, what)
		case <-timeout:
			t.Fatalf("no %s read from the TUN", what)
		}
	}
}
