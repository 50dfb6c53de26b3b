package udp

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// MaxGroup is the largest socket count ListenGroup accepts.
const MaxGroup = 1024

// ListenGroup opens n sockets on laddr with SO_REUSEPORT (a zero port picks
// one ephemeral port for all of them) and returns them in the kernel's group
// order. network and opts are as for Listen; opts.ReusePort is implied.
//
// For n > 1 it attaches a classic BPF program to the group
// (SO_ATTACH_REUSEPORT_CBPF) that steers each datagram to a socket:
//
//   - OpenVPN P_DATA_V2 packets (opcode byte0>>3 == 9, at least 4 bytes) go
//     to socket peer_id % n, where peer_id is payload bytes 1..3 (big
//     endian), whatever the source address or port: a peer's data always
//     reaches the shard that owns the peer, also after a float or NAT
//     rebinding;
//   - every other datagram (control packets, P_DATA_V1, runts) goes where
//     the kernel's own keyed hash of the source and destination address and
//     port puts it (the program declines to choose), so that handshakes from
//     many clients spread over the group while the packets of one source
//     stay on one socket, in order. The reader forwards them to the owning
//     shard if needed.
//
// The socket index is the position in the kernel's group, which is the order
// of binding as long as no member is closed: close the whole group together.
// Other sockets must not join the same address with SO_REUSEPORT (under the
// same user) while the group is in use. If the kernel refuses the program
// (before Linux 4.5), the sockets still form a group, which the kernel
// balances by its own flow hash, and Steered reports false.
func ListenGroup(network string, laddr netip.AddrPort, n int, opts Options) ([]*Conn, error) {
	if n < 1 || n > MaxGroup {
		return nil, fmt.Errorf("udp: listen group: %d sockets not in [1, %d]", n, MaxGroup)
	}
	opts.ReusePort = true
	first, err := Listen(network, laddr, opts)
	if err != nil {
		return nil, err
	}
	conns := []*Conn{first}
	fail := func(err error) ([]*Conn, error) {
		for _, c := range conns {
			c.Close()
		}
		return nil, err
	}
	// Bind the others to exactly the address the first one got.
	bound, ok := first.uc.LocalAddr().(*net.UDPAddr)
	if !ok {
		return fail(fmt.Errorf("udp: listen group: unexpected local address %v", first.uc.LocalAddr()))
	}
	addr := net.JoinHostPort("", strconv.Itoa(bound.Port))
	if laddr.Addr().IsValid() {
		addr = netip.AddrPortFrom(laddr.Addr(), uint16(bound.Port)).String()
	}
	for range n - 1 {
		c, err := listenAddr(network, addr, opts)
		if err != nil {
			return fail(fmt.Errorf("udp: listen group: %w", err))
		}
		conns = append(conns, c)
	}
	if n == 1 || attachSteering(first, uint32(n)) == nil {
		for _, c := range conns {
			c.steered = true
		}
	}
	return conns, nil
}

// attachSteering attaches the steering program to c's reuseport group; it is
// a variable so that tests can force the fallback.
var attachSteering = func(c *Conn, n uint32) error {
	prog, err := steeringProgram(n)
	if err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	var serr error
	if err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog)
	}); err != nil {
		return fmt.Errorf("udp: attach steering program: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("udp: attach steering program: %w", serr)
	}
	return nil
}

// opDataV2 is the OpenVPN P_DATA_V2 opcode.
const opDataV2 = 9

// steeringProgram assembles the group's classic BPF program for n sockets.
// Offsets are relative to the UDP payload: the kernel pulls the UDP header
// before it runs the program. The program returns the socket index for
// P_DATA_V2, and n otherwise: an index out of range makes the kernel pick
// the socket by its own hash of the 4-tuple, keyed with a boot-time secret
// (reuseport_select_sock falls back to reuseport_select_sock_by_hash).
func steeringProgram(n uint32) ([]bpf.RawInstruction, error) {
	prog := []bpf.Instruction{
		// if payload[0] >> 3 != P_DATA_V2 || len < 4: return n
		bpf.LoadAbsolute{Off: 0, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 3},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: opDataV2, SkipTrue: 6},
		bpf.LoadExtension{Num: bpf.ExtLen},
		bpf.JumpIf{Cond: bpf.JumpLessThan, Val: 4, SkipTrue: 4},
		// return (payload[0:4] & 0xFFFFFF) % n: the peer-id
		bpf.LoadAbsolute{Off: 0, Size: 4},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xFFFFFF},
		bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: n},
		bpf.RetA{},
		bpf.RetConstant{Val: n},
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("assemble steering program: %w", err)
	}
	return raw, nil
}
