// Package testpkt builds IPv4 and IPv6 packets with valid checksums for tests
// that write packets to tunnel devices: ICMP echo requests, UDP datagrams and
// TCP segments. It is test support; nothing on the data path uses it.
package testpkt

import (
	"encoding/binary"
	"net/netip"
)

const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// Checksum adds the 16-bit big-endian words of b (a last odd byte padded with
// zero) to sum, without folding.
func Checksum(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// Fold folds sum to 16 bits and complements it: the value of a checksum field.
func Fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// ipv4 returns an IPv4 header (no options, TTL 64, DF as given) followed by n
// zero bytes, with the header checksum set.
func ipv4(src, dst netip.Addr, proto byte, id uint16, df bool, n int) []byte {
	p := make([]byte, 20+n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], id)
	if df {
		p[6] = 0x40
	}
	p[8] = 64
	p[9] = proto
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], Fold(Checksum(0, p[:20])))
	return p
}

// pseudo4 is the IPv4 pseudo-header sum of a packet built by ipv4.
func pseudo4(p []byte) uint32 {
	return Checksum(0, p[12:20]) + uint32(p[9]) + uint32(len(p)-20)
}

// ICMP4Echo builds an ICMP echo request.
func ICMP4Echo(src, dst netip.Addr, id, seq uint16, payload []byte) []byte {
	p := ipv4(src, dst, protoICMP, 0, false, 8+len(payload))
	icmp := p[20:]
	icmp[0] = 8 // echo request
	binary.BigEndian.PutUint16(icmp[4:], id)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	copy(icmp[8:], payload)
	binary.BigEndian.PutUint16(icmp[2:], Fold(Checksum(0, icmp)))
	return p
}

// ICMP6Echo builds an ICMPv6 echo request.
func ICMP6Echo(src, dst netip.Addr, id, seq uint16, payload []byte) []byte {
	p := make([]byte, 40+8+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(8+len(payload)))
	p[6] = protoICMPv6
	p[7] = 64
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	icmp := p[40:]
	icmp[0] = 128 // echo request
	binary.BigEndian.PutUint16(icmp[4:], id)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	copy(icmp[8:], payload)
	// Pseudo-header: src, dst, upper-layer length, next header.
	sum := Checksum(0, p[8:40]) + uint32(len(icmp)) + protoICMPv6
	binary.BigEndian.PutUint16(icmp[2:], Fold(Checksum(sum, icmp)))
	return p
}

// UDP4 builds an IPv4 UDP datagram.
func UDP4(src, dst netip.AddrPort, payload []byte) []byte {
	p := ipv4(src.Addr(), dst.Addr(), protoUDP, 0, false, 8+len(payload))
	u := p[20:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	binary.BigEndian.PutUint16(u[6:], Fold(Checksum(pseudo4(p), u)))
	return p
}

// TCP4 builds an IPv4 TCP segment with flags ACK, acknowledgment number 1 and a
// 20-byte header; id is the IPv4 identification (DF is set).
func TCP4(src, dst netip.AddrPort, seq uint32, id uint16, payload []byte) []byte {
	p := ipv4(src.Addr(), dst.Addr(), protoTCP, id, true, 20+len(payload))
	t := p[20:]
	binary.BigEndian.PutUint16(t[0:], src.Port())
	binary.BigEndian.PutUint16(t[2:], dst.Port())
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], 1)
	t[12] = 5 << 4 // data offset: 5 words
	t[13] = 0x10   // ACK
	binary.BigEndian.PutUint16(t[14:], 65535)
	copy(t[20:], payload)
	binary.BigEndian.PutUint16(t[16:], Fold(Checksum(pseudo4(p), t)))
	return p
}
