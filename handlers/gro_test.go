package handlers

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"weft/tun"

	"weft/internal/testpkt"
)

// TestDecryptedBatchCoalesces writes one batch of 32 in-order TCP segments of one
// flow, placed in an rxBatch's buffers exactly as the link readers place decrypted
// packets, to a kernel TUN device, and checks the kernel received them as one or
// two GRO super-packets (the device's rx_packets), not as 32 packets. It guards the
// buffer sizing: the device only coalesces into buffers with room for the result.
// It runs in a network namespace of its own (root).
func TestDecryptedBatchCoalesces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and a TUN device")
	}
	type result struct {
		rx   uint64
		skip string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		// The thread stays in the new namespace and exits with this goroutine,
		// because it is never unlocked.
		runtime.LockOSThread()
		rx, skip, err := writeSegments(32)
		res <- result{rx, skip, err}
	}()
	r := <-res
	switch {
	case r.skip != "":
		t.Skip(r.skip)
	case r.err != nil:
		t.Fatal(r.err)
	}
	t.Logf("32 segments written as %d packets", r.rx)
	if r.rx == 0 || r.rx > 2 {
		t.Fatalf("the kernel received %d packets for 32 coalescable segments, want 1 or 2 (GRO)", r.rx)
	}
}

// writeSegments creates a namespace and a TUN device in it (on the calling,
// locked thread), writes n TCP segments through a tunWriter and returns how many
// packets the device counted.
func writeSegments(n int) (uint64, string, error) {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return 0, fmt.Sprintf("cannot create a network namespace: %v", err), nil
	}
	dev, err := tun.Create("wgro%d", 1420)
	if err != nil {
		return 0, fmt.Sprintf("no TUN device: %v", err), nil
	}
	defer dev.Close()
	name, err := dev.Name()
	if err != nil {
		return 0, "", err
	}
	local := netip.MustParsePrefix("10.77.0.1/24")
	if err := tun.Configure(name, tun.LinkConfig{MTU: 1420, Addrs: []tun.Addr{{Prefix: local}}, Up: true}); err != nil {
		return 0, "", fmt.Errorf("configure %s: %w", name, err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return 0, "", err
	}
	before := link.Attrs().Statistics.RxPackets

	var mu sync.Mutex
	w := newTUNWriter(func() tun.Device { return dev }, &mu, slog.New(slog.DiscardHandler), true)
	rx := w.get()
	src, dst := netip.MustParseAddr("10.77.0.2"), local.Addr()
	payload := make([]byte, 1368)
	for i := range n {
		for j := range payload {
			payload[j] = byte(i + j)
		}
		pkt := testpkt.TCP4(netip.AddrPortFrom(src, 40000), netip.AddrPortFrom(dst, 5555), uint32(1000+i*len(payload)), uint16(i), payload)
		rx.out = append(rx.out, append(rx.slot(len(pkt)), pkt...)) // headroom, then the packet
	}
	w.put(rx)
	w.close()

	link, err = netlink.LinkByName(name)
	if err != nil {
		return 0, "", err
	}
	if st := link.Attrs().Statistics; st.RxDropped > 0 {
		return 0, "", fmt.Errorf("the device dropped %d packets (malformed?)", st.RxDropped)
	}
	return link.Attrs().Statistics.RxPackets - before, "", nil
}
