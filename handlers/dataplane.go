package handlers

import (
	"sync"
	"time"

	"weft/ovpn"
	"weft/transport/udp"
	"weft/tun"
	"weft/wire"
)

// rxBatch decrypts a batch of link packets straight into tunnel-device buffers
// (with the device's headroom in front), so the data path needs no copy and no
// allocation in steady state. Packets the session itself must see (control packets,
// OCC messages) are collected for posting to its shard.
type rxBatch struct {
	bufs    [][]byte
	out     [][]byte
	control [][]byte
}

// add handles one packet for dp. It reports false when dp is nil (no session).
func (r *rxBatch) add(now time.Time, dp *ovpn.DataPath, pkt []byte) {
	op, _ := wire.SplitHeader(pkt[0])
	if !op.IsData() || dp == nil {
		r.control = append(r.control, append([]byte(nil), pkt...))
		return
	}
	i := len(r.out)
	dst := growBuf(&r.bufs, i, tun.Headroom+len(pkt))[:tun.Headroom]
	out, kind, err := dp.Decrypt(now, dst, pkt)
	if err != nil {
		return
	}
	switch kind {
	case ovpn.DataIP:
		r.out = append(r.out, out)
	case ovpn.DataControl:
		r.control = append(r.control, append([]byte(nil), pkt...))
	}
}

// flushTUN writes the decrypted packets to dev (serialised by mu) and resets the batch.
func (r *rxBatch) flushTUN(dev tun.Device, mu *sync.Mutex) error {
	var err error
	if len(r.out) > 0 && dev != nil {
		mu.Lock()
		_, err = dev.Write(r.out, tun.Headroom)
		mu.Unlock()
	}
	clear(r.out)
	r.out = r.out[:0]
	return err
}

// takeControl returns the control packets collected so far.
func (r *rxBatch) takeControl() [][]byte {
	c := r.control
	r.control = nil
	return c
}

// txBatch encrypts tunnel packets into reusable link buffers.
type txBatch struct {
	bufs [][]byte
	out  [][]byte
}

func (t *txBatch) add(now time.Time, dp *ovpn.DataPath, pkt []byte) {
	if dp == nil {
		return
	}
	i := len(t.out)
	out, err := dp.Encrypt(now, growBuf(&t.bufs, i, len(pkt)+dp.Overhead()+16)[:0], pkt)
	if err != nil {
		return
	}
	t.out = append(t.out, out)
}

func (t *txBatch) reset() {
	clear(t.out)
	t.out = t.out[:0]
}

// growBuf returns buffer i of *bufs with at least n bytes of capacity, allocating or
// replacing it when needed (buffers are reused from batch to batch, so the steady
// state allocates nothing). Buffers start at 2 KiB: packets are MTU-sized.
func growBuf(bufs *[][]byte, i, n int) []byte {
	for len(*bufs) <= i {
		*bufs = append(*bufs, nil)
	}
	if cap((*bufs)[i]) < n {
		(*bufs)[i] = make([]byte, 0, max(n, 2048))
	}
	return (*bufs)[i]
}

// linkBuffers returns UDP read messages: batch buffers of size bytes each.
func linkBuffers(batch, size int) []udp.Message {
	msgs := make([]udp.Message, batch)
	for i := range msgs {
		msgs[i].Buf = make([]byte, size)
	}
	return msgs
}
