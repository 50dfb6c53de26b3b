// Package tcp implements OpenVPN's TCP transport: every OpenVPN packet is
// preceded on the stream by its length as a big-endian uint16 (the length
// covers the packet only, not the prefix).
//
// Deframer and AppendFrame are the pure framing layer; Conn and Listener add
// stream sockets that read and write packets in batches.
package tcp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderLen is the size of the length prefix.
const HeaderLen = 2

// MaxPacket is the largest packet the framing can express.
const MaxPacket = 65535

// ErrFrameLength is returned (wrapped) for a frame whose length is 0 or above
// the configured maximum. The stream cannot be resynchronised after it.
var ErrFrameLength = errors.New("tcp: bad frame length")

// ErrPacketSize is returned (wrapped) when asked to frame a packet that is
// empty or longer than MaxPacket.
var ErrPacketSize = errors.New("tcp: packet size out of range")

// AppendFrame appends the length prefix and pkt to dst. pkt must be 1 to
// MaxPacket bytes long; otherwise AppendFrame returns dst unchanged, and
// callers that cannot guarantee the size should check it first (Conn does).
func AppendFrame(dst, pkt []byte) []byte {
	if len(pkt) == 0 || len(pkt) > MaxPacket {
		return dst
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(pkt)))
	return append(dst, pkt...)
}

// Deframer splits a byte stream into packets. Feed it bytes as they arrive and
// call Next until it reports no complete packet. The zero value accepts
// packets up to MaxPacket bytes.
type Deframer struct {
	max int
	buf []byte
	off int // start of unconsumed bytes in buf
	err error
}

// NewDeframer returns a Deframer that rejects frames longer than max bytes
// (max <= 0 or above MaxPacket means MaxPacket).
func NewDeframer(max int) *Deframer {
	d := &Deframer{}
	d.SetMax(max)
	return d
}

// SetMax changes the largest accepted packet length (see NewDeframer).
func (d *Deframer) SetMax(max int) {
	if max <= 0 || max > MaxPacket {
		max = MaxPacket
	}
	d.max = max
}

func (d *Deframer) limit() int {
	if d.max == 0 {
		return MaxPacket
	}
	return d.max
}

// Feed appends stream bytes. It copies b, and may move bytes that earlier Next
// calls returned: packets from Next are only valid until the next Feed.
func (d *Deframer) Feed(b []byte) {
	if d.off > 0 && (d.off == len(d.buf) || len(d.buf)+len(b) > cap(d.buf)) {
		n := copy(d.buf, d.buf[d.off:])
		d.buf = d.buf[:n]
		d.off = 0
	}
	d.buf = append(d.buf, b...)
}

// Buffered returns the number of bytes fed but not yet returned as packets.
func (d *Deframer) Buffered() int { return len(d.buf) - d.off }

// Next returns the next complete packet, or ok false if more bytes are
// needed. The packet aliases the Deframer's buffer and is valid until the
// next Feed (or ReadFrom). A frame length of 0 or above the maximum returns an
// error wrapping ErrFrameLength, and every later call returns it too.
func (d *Deframer) Next() (pkt []byte, ok bool, err error) {
	if d.err != nil {
		return nil, false, d.err
	}
	rest := d.buf[d.off:]
	if len(rest) < HeaderLen {
		return nil, false, nil
	}
	n := int(binary.BigEndian.Uint16(rest))
	if n == 0 || n > d.limit() {
		d.err = fmt.Errorf("%w: %d (max %d)", ErrFrameLength, n, d.limit())
		return nil, false, d.err
	}
	if len(rest) < HeaderLen+n {
		return nil, false, nil
	}
	d.off += HeaderLen + n
	return rest[HeaderLen : HeaderLen+n], true, nil
}

// space returns a slice of at least min free bytes at the end of the buffer
// for reading directly into, compacting or growing as needed. The caller
// commits what it wrote with commit.
func (d *Deframer) space(min int) []byte {
	if d.off > 0 && (d.off == len(d.buf) || cap(d.buf)-len(d.buf) < min) {
		n := copy(d.buf, d.buf[d.off:])
		d.buf = d.buf[:n]
		d.off = 0
	}
	if cap(d.buf)-len(d.buf) < min {
		nb := make([]byte, len(d.buf), max(2*cap(d.buf), len(d.buf)+min))
		copy(nb, d.buf)
		d.buf = nb
	}
	return d.buf[len(d.buf):cap(d.buf)]
}

func (d *Deframer) commit(n int) { d.buf = d.buf[:len(d.buf)+n] }
