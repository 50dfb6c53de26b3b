package test

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"weft/controlwrap"
	"weft/test/harness"
	"weft/wire"
)

// floodResult summarises a UDP flood against a server.
type floodResult struct {
	garbage, validResets, spoofed, dataSpoofs int
	replies                                   int64 // P_CONTROL_HARD_RESET_SERVER_V2 received back
	end                                       time.Time
}

func (r floodResult) String() string {
	return fmt.Sprintf("%d garbage + %d tls-crypt-valid resets + %d spoofed-source + %d fake data packets; %d stateless server resets came back",
		r.garbage, r.validResets, r.spoofed, r.dataSpoofs, r.replies)
}

// floodSpec says what to send from namespace ns.
type floodSpec struct {
	ns            string
	src4, src6    netip.Addr       // the namespace's underlay addresses
	targets       []netip.AddrPort // UDP listeners of the server
	staticKey     string           // tls-crypt key file (for authentic-looking resets)
	garbage       int              // packets with a (fake) hard-reset opcode and random bytes
	validResets   int              // tls-crypt-wrapped P_CONTROL_HARD_RESET_CLIENT_V2, never followed up
	spoofed       int              // raw IPv4 packets with forged source addresses (garbage or valid resets)
	spoofNet      netip.Prefix     // forged source addresses are taken from here
	dataSpoofs    int              // P_DATA_V2 packets with random payloads and peer-ids 0..dataPeerIDs-1
	dataPeerIDs   int
	sockets       int // UDP sockets (source ports) per family
	replyDeadline time.Duration
}

// flood sends the packets of spec and counts the stateless replies.
func flood(spec floodSpec) (floodResult, error) {
	var res floodResult
	key, err := os.ReadFile(spec.staticKey)
	if err != nil {
		return res, err
	}
	sk, err := controlwrap.ParseStaticKey(key)
	if err != nil {
		return res, err
	}
	wrap, err := controlwrap.NewTLSCrypt(sk, false)
	if err != nil {
		return res, err
	}
	validReset := func() ([]byte, error) {
		var sid wire.SessionID
		_, _ = rand.Read(sid[:])
		cp := wire.ControlPacket{Opcode: wire.OpHardResetClientV2, SessionID: sid}
		return wrap.Wrap(time.Now(), nil, cp.Append(nil))
	}
	garbage := func() []byte {
		b := make([]byte, 14+mrand.IntN(286))
		_, _ = rand.Read(b)
		switch x := mrand.IntN(10); {
		case x < 8:
			b[0] = wire.HeaderByte(wire.OpHardResetClientV2, 0)
		case x == 8:
			b[0] = wire.HeaderByte(wire.OpHardResetClientV3, 0)
		default:
			b[0] = wire.HeaderByte(wire.OpControlV1, 0)
		}
		return b
	}

	// Sockets in the flood namespace; readers count the server's replies.
	var socks []*net.UDPConn
	defer func() {
		for _, c := range socks {
			c.Close()
		}
	}()
	var replies atomic.Int64
	var wg sync.WaitGroup
	for _, src := range []netip.Addr{spec.src4, spec.src6} {
		if !src.IsValid() {
			continue
		}
		for range spec.sockets {
			c, err := harness.ListenUDPIn(spec.ns, netip.AddrPortFrom(src, 0))
			if err != nil {
				return res, err
			}
			socks = append(socks, c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 2048)
				for {
					n, _, err := c.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					if n > 0 {
						if op, _ := wire.SplitHeader(buf[0]); op == wire.OpHardResetServerV2 {
							replies.Add(1)
						}
					}
				}
			}()
		}
	}
	// sockFor picks a socket of the target's family.
	sockFor := func(i int, dst netip.AddrPort) *net.UDPConn {
		var fam []*net.UDPConn
		for _, c := range socks {
			if c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Is4() == dst.Addr().Is4() {
				fam = append(fam, c)
			}
		}
		if len(fam) == 0 {
			return nil
		}
		return fam[i%len(fam)]
	}
	send := func(i int, b []byte) {
		dst := spec.targets[i%len(spec.targets)]
		if c := sockFor(i/len(spec.targets), dst); c != nil {
			_, _ = c.WriteToUDPAddrPort(b, dst)
		}
		if i%64 == 63 {
			time.Sleep(time.Millisecond) // bursts of 64: a flood, but one the veth queue keeps
		}
	}
	for i := range spec.garbage {
		send(i, garbage())
		res.garbage++
	}
	for i := range spec.validResets {
		b, err := validReset()
		if err != nil {
			return res, err
		}
		send(i, b)
		res.validResets++
	}
	for i := range spec.dataSpoofs {
		b := make([]byte, 4+8+16+mrand.IntN(200))
		_, _ = rand.Read(b)
		id := uint32(i % max(spec.dataPeerIDs, 1))
		binary.BigEndian.PutUint32(b[:4], id)
		b[0] = wire.HeaderByte(wire.OpDataV2, 0)
		send(i, b)
		res.dataSpoofs++
	}
	if spec.spoofed > 0 {
		n, err := floodSpoofed(spec, validReset, garbage)
		res.spoofed = n
		if err != nil {
			return res, err
		}
	}
	res.end = time.Now()
	time.Sleep(spec.replyDeadline)
	for _, c := range socks {
		c.Close()
	}
	wg.Wait()
	res.replies = replies.Load()
	return res, nil
}

// floodSpoofed sends spec.spoofed raw IPv4/UDP packets with source addresses
// forged from spec.spoofNet to the IPv4 targets.
func floodSpoofed(spec floodSpec, validReset func() ([]byte, error), garbage func() []byte) (int, error) {
	var v4 []netip.AddrPort
	for _, t := range spec.targets {
		if t.Addr().Is4() {
			v4 = append(v4, t)
		}
	}
	if len(v4) == 0 {
		return 0, nil
	}
	fd := -1
	err := harness.InNetns(spec.ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("raw socket: %w", err)
	}
	defer unix.Close(fd)
	base := spec.spoofNet.Masked().Addr().As4()
	hostBits := 32 - spec.spoofNet.Bits()
	sent := 0
	for i := range spec.spoofed {
		var payload []byte
		if i%2 == 0 {
			payload, err = validReset()
			if err != nil {
				return sent, err
			}
		} else {
			payload = garbage()
		}
		dst := v4[i%len(v4)]
		src := base
		h := uint32(2 + mrand.IntN(1<<hostBits-3))
		src[2] |= byte(h >> 8)
		src[3] |= byte(h)
		pkt := make([]byte, 28+len(payload))
		pkt[0] = 0x45
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		pkt[8] = 64
		pkt[9] = unix.IPPROTO_UDP
		copy(pkt[12:16], src[:])
		d := dst.Addr().As4()
		copy(pkt[16:20], d[:])
		binary.BigEndian.PutUint16(pkt[20:], uint16(1024+mrand.IntN(60000)))
		binary.BigEndian.PutUint16(pkt[22:], dst.Port())
		binary.BigEndian.PutUint16(pkt[24:], uint16(8+len(payload)))
		copy(pkt[28:], payload)
		if err := unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: d}); err != nil {
			return sent, fmt.Errorf("raw send: %w", err)
		}
		sent++
		if i%64 == 63 {
			time.Sleep(time.Millisecond)
		}
	}
	return sent, nil
}
