package ovpn

import (
	"crypto/rand"
	"net/netip"
	"testing"
	"time"

	"weft/controlwrap"
	"weft/wire"
)

func TestCookieValidity(t *testing.T) {
	c, err := NewCookies(rand.Reader, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	addr := netip.MustParseAddrPort("10.0.0.2:5000")
	cli := wire.SessionID{1, 2, 3, 4, 5, 6, 7, 8}
	id := c.ID(now, addr, cli)
	cases := []struct {
		name  string
		at    time.Time
		addr  netip.AddrPort
		cli   wire.SessionID
		valid bool
	}{
		{"same", now, addr, cli, true},
		{"30s later", now.Add(30 * time.Second), addr, cli, true},
		{"59s later", now.Add(59 * time.Second), addr, cli, true},
		{"2min later", now.Add(2 * time.Minute), addr, cli, false},
		{"other port", now, netip.MustParseAddrPort("10.0.0.2:5001"), cli, false},
		{"other sid", now, addr, wire.SessionID{9}, false},
	}
	for _, tc := range cases {
		if got := c.Valid(tc.at, tc.addr, tc.cli, id); got != tc.valid {
			t.Errorf("%s: Valid = %v, want %v", tc.name, got, tc.valid)
		}
	}
}

// TestStatelessHandshake runs the 2.6 UDP server flow: a stateless reply to the
// client's reset, then a session created from the cookie by the client's next packet.
func TestStatelessHandshake(t *testing.T) {
	n := newPair(t, pairOpts{wrap: wrapCrypt})
	cookies, err := NewCookies(rand.Reader, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort("10.0.0.2:5000")
	shared := wrapper(t, wrapCrypt, true)
	auth := shared.(controlwrap.Authenticator)

	reset := copyAll(n.c.Outgoing())
	if len(reset) != 1 {
		t.Fatalf("client sent %d packets, want its reset", len(reset))
	}
	plain, err := auth.Authenticate(reset[0])
	if err != nil {
		t.Fatal(err)
	}
	cp, err := wire.ParseControl(plain)
	if err != nil || cp.Opcode != wire.OpHardResetClientV2 {
		t.Fatalf("ParseControl = %v, %v", cp.Opcode, err)
	}
	cookie := cookies.ID(n.now, addr, cp.SessionID)
	reply, err := StatelessReset(n.now, shared, cookie, cp.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	n.c.HandlePacket(n.now, reply)
	next := copyAll(n.c.Outgoing())
	if len(next) == 0 {
		t.Fatal("client sent nothing after the server reset")
	}
	plain, err = auth.Authenticate(next[0])
	if err != nil {
		t.Fatal(err)
	}
	cp, err = wire.ParseControl(plain)
	if err != nil {
		t.Fatal(err)
	}
	if len(cp.Acks) == 0 || !cookies.Valid(n.now, addr, cp.SessionID, cp.RemoteSessionID) {
		t.Fatalf("client's second packet does not carry a valid cookie ACK: %+v", cp)
	}
	cfg := n.s.cfg
	cfg.Wrapper = wrapper(t, wrapCrypt, true)
	srv, err := NewServerSessionFromCookie(cfg, n.now, cookie, cp.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	n.s = srv
	for _, p := range next {
		n.s.HandlePacket(n.now, p)
	}
	n.connect(10 * time.Second)
	n.exchange(20)
}
