package ovpn

import (
	"bytes"
	"testing"
	"time"

	"weft/datachan"
)

func FuzzParseKeyMethod2(f *testing.F) {
	m := &KeyMethod2{Options: "V4,dev-type tun", Username: "u", Password: "p", PeerInfo: "IV_VER=2.6.14\nIV_PROTO=142\n"}
	f.Add(AppendKeyMethod2(nil, m, true), true)
	f.Add(AppendKeyMethod2(nil, m, false), false)
	f.Add([]byte{0, 0, 0, 0, 2}, true)
	f.Add([]byte{0, 0, 0, 0, 1}, false)
	f.Fuzz(func(t *testing.T, b []byte, fromClient bool) {
		km, n, err := ParseKeyMethod2(b, fromClient)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		// Re-encoding a parsed message and parsing it again gives the same fields.
		again, _, err := ParseKeyMethod2(AppendKeyMethod2(nil, km, fromClient), fromClient)
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		if again.Options != km.Options || again.PeerInfo != km.PeerInfo || again.Source != km.Source {
			t.Fatal("round trip changed the message")
		}
	})
}

func FuzzApplyPushOptions(f *testing.F) {
	f.Add("tun-ipv6,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 60,ifconfig-ipv6 fd00:8::1000/64 fd00:8::1,ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM,protocol-flags cc-exit tls-ekm dyn-tls-crypt,tun-mtu 1500")
	f.Add("route 192.168.1.0 255.255.255.0,route-ipv6 2001:db8::/32,redirect-gateway def1 bypass-dhcp,dhcp-option DNS 10.8.0.1,push-continuation 2")
	f.Add(`route "10.0.0.0" 255.0.0.0 10.8.0.1 5,key-derivation tls-ekm,peer-id 16777215`)
	f.Add(",,,")
	f.Fuzz(func(t *testing.T, body string) {
		p := NewPushed()
		_, _ = ApplyPushOptions(p, body)
		if _, ok := p.IPv4Prefix(); ok && !p.Local.IsValid() {
			t.Fatal("prefix without an address")
		}
	})
}

// FuzzSessionPackets feeds arbitrary packets to a connected client session: nothing may
// panic, and the session must still carry data afterwards.
func FuzzSessionPackets(f *testing.F) {
	f.Add([]byte{0x48, 0, 0, 0, 0, 0, 0, 1}, uint8(0))
	f.Add([]byte{0x20, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 1}, uint8(1))
	f.Add([]byte{0x28}, uint8(2))
	f.Add(bytes.Repeat([]byte{0x38}, 60), uint8(3))
	n := newPairF(f)
	f.Fuzz(func(t *testing.T, pkt []byte, _ uint8) {
		n.c.HandlePacket(n.now, pkt)
		n.s.HandlePacket(n.now, pkt)
		n.c.Outgoing()
		n.s.Outgoing()
		n.c.Delivered()
		n.s.Delivered()
		if !n.c.Connected() || n.c.closed {
			t.Fatalf("session broken by a packet: events %v", n.c.Events())
		}
	})
}

func newPairF(f *testing.F) *testNet {
	n := newPair(f, pairOpts{wrap: wrapCrypt, clientCiphers: []datachan.Cipher{datachan.AES256GCM}})
	n.connect(10 * time.Second)
	return n
}
