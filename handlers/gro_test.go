package handlers

import (
	"encoding/binary"
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
		pkt := tcpSegment(src, dst, 40000, 5555, uint32(1000+i*len(payload)), uint16(i), payload)
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

// tcpSegment builds an IPv4 TCP segment (flags ACK) with valid checksums.
func tcpSegment(src, dst netip.Addr, sport, dport uint16, seq uint32, id uint16, payload []byte) []byte {
	const ihl, thl = 20, 20
	b := make([]byte, ihl+thl+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:], id)
	b[6] = 0x40 // DF
	b[8] = 64
	b[9] = unix.IPPROTO_TCP
	s4, d4 := src.As4(), dst.As4()
	copy(b[12:], s4[:])
	copy(b[16:], d4[:])
	binary.BigEndian.PutUint16(b[10:], ^fold16(sum16(0, b[:ihl])))
	t := b[ihl:]
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], 1)
	t[12] = thl / 4 << 4
	t[13] = 0x10 // ACK
	binary.BigEndian.PutUint16(t[14:], 65535)
	copy(t[thl:], payload)
	pseudo := make([]byte, 12)
	copy(pseudo, s4[:])
	copy(pseudo[4:], d4[:])
	pseudo[9] = unix.IPPROTO_TCP
	binary.BigEndian.PutUint16(pseudo[10:], uint16(len(t)))
	binary.BigEndian.PutUint16(t[16:], ^fold16(sum16(sum16(0, pseudo), t)))
	return b
}

func sum16(s uint32, b []byte) uint32 {
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold16(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
