package tun

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"weft/internal/testpkt"
)

// envMQInNetns marks the re-executed test binary running inside the
// namespace of TestKernelMultiQueue.
const envMQInNetns = "WEFT_TUN_MQ_TEST_IN_NETNS"

func TestCreateMultiQueueArgs(t *testing.T) {
	for _, q := range []int{0, -1, MaxQueues + 1} {
		if _, err := CreateMultiQueue("weftbad%d", 1400, q); err == nil || !strings.Contains(err.Error(), "queues") {
			t.Errorf("CreateMultiQueue with %d queues: %v, want an error about queues", q, err)
		}
	}
}

// TestKernelMultiQueue creates real multi-queue TUN devices inside a fresh
// network namespace (re-executing this test there with "ip netns exec").
func TestKernelMultiQueue(t *testing.T) {
	if os.Getenv(envMQInNetns) != "" {
		kernelMultiQueue(t)
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
	ns := fmt.Sprintf("weft-tunmq-%d", os.Getpid())
	if out, err := exec.Command(ipCmd, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ipCmd, "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	cmd := exec.Command(ipCmd, "netns", "exec", ns, os.Args[0],
		"-test.run=^TestKernelMultiQueue$", "-test.v", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), envMQInNetns+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("inside netns %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("test in netns failed: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestKernelMultiQueue")) {
		t.Fatal("test in netns did not pass")
	}
}

func kernelMultiQueue(t *testing.T) {
	t.Run("offload", func(t *testing.T) { multiQueueTraffic(t, true) })
	t.Run("plain", func(t *testing.T) { multiQueueTraffic(t, false) }) // the fallback
	t.Run("one queue", func(t *testing.T) {
		devs, err := CreateMultiQueue("weftmq%d", 1400, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer devs[0].Close()
		if _, ok := devs[0].(*kernelDevice); !ok || len(devs) != 1 {
			t.Fatalf("CreateMultiQueue(1) = %T x %d, want one Create device", devs[0], len(devs))
		}
		if b := devs[0].BatchSize(); b != 128 {
			t.Errorf("BatchSize = %d, want 128 as from Create", b)
		}
		if m, err := devs[0].MTU(); err != nil || m != 1400 {
			t.Errorf("MTU = %d, %v; want 1400", m, err)
		}
	})
}

// queuePacket is a packet read from queue q by a Read that returned batch
// packets.
type queuePacket struct {
	q, batch int
	p        []byte
}

func multiQueueTraffic(t *testing.T, vnetHdr bool) {
	const queues = 2
	devs, err := createQueues("weftmq%d", 1400, queues, vnetHdr)
	if err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	defer func() {
		for _, d := range devs {
			d.Close()
		}
		readers.Wait()
	}()
	name, err := devs[0].Name()
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range devs {
		n, err := d.Name()
		if err != nil || n != name {
			t.Fatalf("queue %d is on %q, %v; queue 0 on %q", i, n, err, name)
		}
		want := 1
		if vnetHdr {
			want = 128
		}
		if b := d.BatchSize(); b != want {
			t.Fatalf("queue %d BatchSize = %d, want %d", i, b, want)
		}
	}
	if m, err := devs[1].MTU(); err != nil || m != 1400 {
		t.Fatalf("MTU = %d, %v; want 1400", m, err)
	}
	if err := Configure(name, LinkConfig{Addrs: []Addr{{Prefix: netip.PrefixFrom(tunLocal4, 24)}}, Up: true}); err != nil {
		t.Fatal(err)
	}

	pkts := make(chan queuePacket, 1024)
	for q, d := range devs {
		readers.Go(func() {
			bufs := make([][]byte, d.BatchSize())
			for i := range bufs {
				bufs[i] = make([]byte, offset+65535)
			}
			sizes := make([]int, len(bufs))
			for {
				n, err := d.Read(bufs, sizes, offset)
				if err != nil {
					return
				}
				for i := range n {
					pkts <- queuePacket{q, n, bytes.Clone(bufs[i][offset : offset+sizes[i]])}
				}
			}
		})
	}
	next := func(what string, match func([]byte) bool) queuePacket {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case qp := <-pkts:
				if match(qp.p) {
					return qp
				}
			case <-timeout:
				t.Fatalf("no %s read from the TUN", what)
			}
		}
	}
	udpTo := func(port int) func([]byte) bool {
		return func(p []byte) bool {
			return len(p) >= 28 && p[0] == 0x45 && p[9] == unix.IPPROTO_UDP &&
				netip.AddrFrom4([4]byte(p[16:20])) == tunPeer4 && int(binary.BigEndian.Uint16(p[22:24])) == port
		}
	}

	// Kernel → TUN: flows to 32 ports spread over both queues.
	sock, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	perQueue := make([]int, queues)
	for port := 20000; port < 20032; port++ {
		dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(tunPeer4, uint16(port)))
		if _, err := sock.WriteToUDP([]byte("spread"), dst); err != nil {
			t.Fatal(err)
		}
		perQueue[next(fmt.Sprintf("UDP to port %d", port), udpTo(port)).q]++
	}
	t.Logf("32 flows over the queues: %v", perQueue)
	for q, n := range perQueue {
		if n == 0 {
			t.Errorf("queue %d got none of 32 flows: %v", q, perQueue)
		}
	}

	// Kernel → TUN with UDP GSO: one 8000-byte send in 1000-byte segments
	// comes out as 8 datagrams; with offloads (USO, Linux 6.2) the kernel
	// hands the super-packet to the queue, which splits it in one Read.
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], 1000)
	gsoDst := netip.AddrPortFrom(tunPeer4, 9999)
	if _, _, err := sock.WriteMsgUDPAddrPort(bytes.Repeat([]byte("g"), 8000), oob, gsoDst); err != nil {
		t.Fatalf("UDP GSO send: %v", err)
	}
	maxBatch := 0
	for i := range 8 {
		qp := next(fmt.Sprintf("GSO segment %d", i), udpTo(9999))
		if len(qp.p) != 1028 {
			t.Fatalf("GSO segment %d: %d bytes, want 1028", i, len(qp.p))
		}
		maxBatch = max(maxBatch, qp.batch)
	}
	t.Logf("UDP GSO send of 8 segments: largest Read batch %d", maxBatch)
	if vnetHdr && usoKernel() && maxBatch != 8 {
		t.Errorf("UDP GSO send came out in Reads of at most %d packets, want one Read of 8", maxBatch)
	}

	// TUN → kernel: an ICMP echo request written to each queue gets a reply
	// on some queue.
	for q, d := range devs {
		req := testpkt.ICMP4Echo(tunPeer4, tunLocal4, 0x51, uint16(q), []byte("mq ping"))
		if n, err := d.Write([][]byte{append(make([]byte, offset), req...)}, offset); err != nil || n != 1 {
			t.Fatalf("queue %d: Write = %d, %v", q, n, err)
		}
		reply := next(fmt.Sprintf("echo reply to queue %d", q), func(p []byte) bool {
			return len(p) >= 28 && p[0] == 0x45 && p[9] == unix.IPPROTO_ICMP && p[20] == 0 &&
				binary.BigEndian.Uint16(p[26:28]) == uint16(q)
		})
		if !bytes.Equal(reply.p[28:], []byte("mq ping")) {
			t.Fatalf("echo reply payload %q", reply.p[28:])
		}
		t.Logf("echo request on queue %d, reply on queue %d", q, reply.q)
	}

	// TUN → kernel, batched: 8 datagrams of one flow in one Write to queue
	// 1 (which coalesces them with offloads) reach a local socket intact.
	rx, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tunLocal4, 7777)))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var bufs [][]byte
	for i := range 8 {
		p := testpkt.UDP4(netip.AddrPortFrom(tunPeer4, 5000), netip.AddrPortFrom(tunLocal4, 7777), fmt.Appendf(bytes.Repeat([]byte{'w'}, 900), "%d", i))
		bufs = append(bufs, append(make([]byte, offset), p...))
	}
	if n, err := devs[1].Write(bufs, offset); err != nil || n != len(bufs) {
		t.Fatalf("Write of %d UDP packets = %d, %v", len(bufs), n, err)
	}
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	for i := range 8 {
		n, from, err := rx.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d of a batched Write: %v", i, err)
		}
		if want := fmt.Appendf(bytes.Repeat([]byte{'w'}, 900), "%d", i); !bytes.Equal(buf[:n], want) || from.Addr() != tunPeer4 {
			t.Fatalf("datagram %d from %v: %d bytes, want %d", i, from, n, len(want))
		}
	}

	// Flow affinity: the kernel answers a UDP flow on the queue that wrote
	// its last packet.
	for round := range 2 {
		for flow := range queues {
			port := 6000 + flow
			q := (flow + round) % queues // each flow moves to the other queue
			d := devs[q]
			p := testpkt.UDP4(netip.AddrPortFrom(tunPeer4, uint16(port)), netip.AddrPortFrom(tunLocal4, 7777), []byte("ask"))
			if _, err := d.Write([][]byte{append(make([]byte, offset), p...)}, offset); err != nil {
				t.Fatal(err)
			}
			n, from, err := rx.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[:n]) != "ask" {
				t.Fatalf("flow written to queue %d: read %q, %v", q, buf[:n], err)
			}
			if _, err := rx.WriteToUDPAddrPort([]byte("answer"), from); err != nil {
				t.Fatal(err)
			}
			if got := next(fmt.Sprintf("answer to port %d", port), udpTo(port)).q; got != q {
				t.Errorf("round %d: flow written to queue %d answered on queue %d", round, q, got)
			}
		}
	}
}

// usoKernel reports whether the kernel has TUN UDP segmentation offload
// (Linux 6.2).
func usoKernel() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	return major > 6 || major == 6 && minor >= 2
}
