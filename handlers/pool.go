package handlers

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// addrPool hands out tunnel addresses from a range, lowest free first.
type addrPool struct {
	mu    sync.Mutex
	first netip.Addr
	size  int
	step  int // addresses per client (1 in subnet topology, 4 in net30)
	used  map[int]bool
}

// newPool4 builds the IPv4 pool of a `server NET MASK` network: subnet topology
// hands out .2 .. broadcast-2 (the server is .1); net30 hands out /30 blocks after the
// server's own block.
func newPool4(network netip.Prefix, topology string, start, end netip.Addr) (*addrPool, error) {
	if !network.Addr().Is4() {
		return nil, fmt.Errorf("IPv4 pool %s is not IPv4", network)
	}
	n := network.Masked()
	total := 1 << (32 - n.Bits())
	p := &addrPool{used: map[int]bool{}}
	switch topology {
	case "net30":
		if total < 8 {
			return nil, fmt.Errorf("network %s is too small for net30 topology", network)
		}
		p.step = 4
		p.first = addN(n.Addr(), 4)
		p.size = (total - 4) / 4
	default:
		if total < 4 {
			return nil, fmt.Errorf("network %s is too small for a pool", network)
		}
		p.step = 1
		p.first = addN(n.Addr(), 2)
		p.size = total - 4
	}
	if start.IsValid() {
		p.step = 1
		p.first = start
		p.size = diff(start, end) + 1
		if p.size <= 0 {
			return nil, fmt.Errorf("ifconfig-pool %s-%s is empty", start, end)
		}
	}
	return p, nil
}

// newPool6 builds the IPv6 pool of `server-ipv6 NET/BITS`: the server is ::1 and
// clients get ::1000 upwards, as OpenVPN does.
func newPool6(network netip.Prefix) (*addrPool, error) {
	if !network.Addr().Is6() || network.Bits() > 112 {
		return nil, fmt.Errorf("IPv6 pool %s must be an IPv6 network of /112 or larger", network)
	}
	return &addrPool{first: addN(network.Masked().Addr(), 0x1000), size: 0xF000 - 1, step: 1, used: map[int]bool{}}, nil
}

var errPoolFull = errors.New("address pool exhausted")

// get returns the lowest free address (for net30, the client's address in its block).
func (p *addrPool) get() (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < p.size; i++ {
		if !p.used[i] {
			p.used[i] = true
			return p.addr(i), nil
		}
	}
	return netip.Addr{}, errPoolFull
}

func (p *addrPool) addr(i int) netip.Addr {
	a := addN(p.first, i*p.step)
	if p.step == 4 {
		a = addN(a, 2) // net30: .x+2 is the client, .x+1 its peer
	}
	return a
}

// reserve marks a specific address used (ifconfig-push); addresses outside the pool
// are accepted as they are.
func (p *addrPool) reserve(a netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < p.size; i++ {
		if p.addr(i) == a {
			p.used[i] = true
			return
		}
	}
}

func (p *addrPool) put(a netip.Addr) {
	if p == nil || !a.IsValid() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < p.size; i++ {
		if p.used[i] && p.addr(i) == a {
			delete(p.used, i)
			return
		}
	}
}

// addN adds n to an address.
func addN(a netip.Addr, n int) netip.Addr {
	b := a.AsSlice()
	carry := n
	for i := len(b) - 1; i >= 0 && carry != 0; i-- {
		v := int(b[i]) + carry
		b[i] = byte(v & 0xff)
		carry = v >> 8
	}
	r, _ := netip.AddrFromSlice(b)
	return r
}

// diff returns b - a for two IPv4 addresses.
func diff(a, b netip.Addr) int {
	x, y := a.As4(), b.As4()
	av := int(x[0])<<24 | int(x[1])<<16 | int(x[2])<<8 | int(x[3])
	bv := int(y[0])<<24 | int(y[1])<<16 | int(y[2])<<8 | int(y[3])
	return bv - av
}
