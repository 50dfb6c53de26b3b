package routing

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestLongestPrefixMatch(t *testing.T) {
	tb := New[string]()
	tb.Insert(netip.MustParsePrefix("10.8.0.2/32"), "client-a")
	tb.Insert(netip.MustParsePrefix("10.8.0.3/32"), "client-b")
	tb.Insert(netip.MustParsePrefix("192.168.10.0/24"), "iroute-b")
	tb.Insert(netip.MustParsePrefix("192.168.0.0/16"), "wide")
	tb.Insert(netip.MustParsePrefix("fd00:8::1000/128"), "client-a6")
	tb.Insert(netip.MustParsePrefix("2001:db8::/32"), "iroute-a6")
	cases := []struct {
		addr string
		want string
		ok   bool
	}{
		{"10.8.0.2", "client-a", true},
		{"10.8.0.3", "client-b", true},
		{"10.8.0.4", "", false},
		{"192.168.10.7", "iroute-b", true},
		{"192.168.11.7", "wide", true},
		{"::ffff:10.8.0.2", "client-a", true},
		{"fd00:8::1000", "client-a6", true},
		{"fd00:8::1001", "", false},
		{"2001:db8:1::5", "iroute-a6", true},
	}
	for _, tc := range cases {
		got, ok := tb.Lookup(netip.MustParseAddr(tc.addr))
		if got != tc.want || ok != tc.ok {
			t.Errorf("Lookup(%s) = %q, %v; want %q, %v", tc.addr, got, ok, tc.want, tc.ok)
		}
	}
	c := tb.Clone()
	c.Delete(netip.MustParsePrefix("192.168.10.0/24"))
	if got, _ := c.Lookup(netip.MustParseAddr("192.168.10.7")); got != "wide" {
		t.Errorf("after Delete, Lookup = %q, want wide", got)
	}
	if got, _ := tb.Lookup(netip.MustParseAddr("192.168.10.7")); got != "iroute-b" {
		t.Errorf("Delete on a clone changed the original: %q", got)
	}
	if tb.Len() != 6 || c.Len() != 5 {
		t.Errorf("Len = %d, %d; want 6, 5", tb.Len(), c.Len())
	}
}

// TestAgainstLinearScan compares lookups with a brute-force longest match.
func TestAgainstLinearScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	tb := New[int]()
	var prefixes []netip.Prefix
	for i := 0; i < 300; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		p, _ := a.Prefix(8 + rng.IntN(25))
		tb.Insert(p, i)
		prefixes = append(prefixes, p)
	}
	for i := 0; i < 5000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		best, bestBits, found := -1, -1, false
		for j, p := range prefixes {
			if p.Contains(a) && p.Bits() >= bestBits {
				best, bestBits, found = j, p.Bits(), true
			}
		}
		got, ok := tb.Lookup(a)
		if ok != found || (found && prefixes[got] != prefixes[best]) {
			t.Fatalf("Lookup(%s) = %d,%v; want prefix %v", a, got, ok, prefixes[best])
		}
	}
}
