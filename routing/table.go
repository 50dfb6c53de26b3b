// Package routing is weft's user-space routing table: longest-prefix match over IPv4
// and IPv6 prefixes, mapping tunnel addresses and iroutes to peers.
//
// A Table is immutable once published: writers build a new one with Clone, Insert and
// Delete, then publish it (for example through an atomic.Pointer), so the data path
// looks routes up without locks.
package routing

import (
	"net/netip"
	"slices"
)

// Table maps prefixes to values of type V.
type Table[V any] struct {
	// byLen[bits] holds the prefixes of that length, keyed by their masked address.
	v4, v6 map[int]map[netip.Addr]V
	// lens lists the prefix lengths in use, longest first.
	lens4, lens6 []int
}

// New returns an empty table.
func New[V any]() *Table[V] {
	return &Table[V]{v4: map[int]map[netip.Addr]V{}, v6: map[int]map[netip.Addr]V{}}
}

// Clone returns a copy that can be changed without affecting t.
func (t *Table[V]) Clone() *Table[V] {
	c := New[V]()
	for bits, m := range t.v4 {
		c.v4[bits] = maps(m)
	}
	for bits, m := range t.v6 {
		c.v6[bits] = maps(m)
	}
	c.lens4 = slices.Clone(t.lens4)
	c.lens6 = slices.Clone(t.lens6)
	return c
}

func maps[V any](m map[netip.Addr]V) map[netip.Addr]V {
	c := make(map[netip.Addr]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (t *Table[V]) family(a netip.Addr) (map[int]map[netip.Addr]V, *[]int) {
	if a.Is4() {
		return t.v4, &t.lens4
	}
	return t.v6, &t.lens6
}

// Insert adds or replaces the route for p.
func (t *Table[V]) Insert(p netip.Prefix, v V) {
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
	fam, lens := t.family(p.Addr())
	m := fam[p.Bits()]
	if m == nil {
		m = map[netip.Addr]V{}
		fam[p.Bits()] = m
		*lens = append(*lens, p.Bits())
		slices.SortFunc(*lens, func(a, b int) int { return b - a })
	}
	m[p.Addr()] = v
}

// Delete removes the route for p, if any.
func (t *Table[V]) Delete(p netip.Prefix) {
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
	fam, lens := t.family(p.Addr())
	m := fam[p.Bits()]
	if m == nil {
		return
	}
	delete(m, p.Addr())
	if len(m) == 0 {
		delete(fam, p.Bits())
		*lens = slices.DeleteFunc(*lens, func(b int) bool { return b == p.Bits() })
	}
}

// Lookup returns the value of the longest prefix containing a.
func (t *Table[V]) Lookup(a netip.Addr) (V, bool) {
	a = a.Unmap()
	fam, lens := t.family(a)
	for _, bits := range *lens {
		k, _ := a.Prefix(bits)
		if v, ok := fam[bits][k.Addr()]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

// Len returns the number of routes.
func (t *Table[V]) Len() int {
	n := 0
	for _, m := range t.v4 {
		n += len(m)
	}
	for _, m := range t.v6 {
		n += len(m)
	}
	return n
}
