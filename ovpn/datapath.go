package ovpn

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"weft/compress"
	"weft/datachan"
	"weft/wire"
)

// DataPath is the part of a session the data plane uses. It is safe for concurrent
// use, so the goroutines that read the tunnel device and the link can encrypt and
// decrypt without passing every packet through the session's shard. The session
// publishes an immutable key set whenever its keys change (a new key, a retired
// key, the switch of the send key after a renegotiation).
type DataPath struct {
	set atomic.Pointer[keySet]

	lastRecv atomic.Int64 // unix nanoseconds of the last authenticated packet
	lastSent atomic.Int64

	tunIn, tunOut           atomic.Uint64
	linkIn, linkOut         atomic.Uint64
	linkInBytes, linkOutByt atomic.Uint64
	dropAuth, dropReplay    atomic.Uint64
	dropNoKey, dropMalform  atomic.Uint64
	notReady                atomic.Uint64
	needReneg               atomic.Bool
	dropDecomp              atomic.Uint64

	// tx and rx frame payloads for compression (nil: no framing configured).
	tx, rx atomic.Pointer[framer]
}

// framer serialises one compress.Framing (it keeps buffers between calls).
type framer struct {
	mu      sync.Mutex
	f       compress.Framing
	scratch []byte
}

// keyCounters counts a key's traffic for reneg-bytes / reneg-pkts.
type keyCounters struct {
	bytes, packets atomic.Int64
}

// keySet is one published view of a session's data keys.
type keySet struct {
	send    *datachan.Keys
	sendID  uint8
	sendCtr *keyCounters
	peerID  int32
	// pending is the newest key, ready but not yet used for sending: the first data
	// packet the peer sends with it proves the peer has it, and sending switches.
	pending    *datachan.Keys
	pendingID  uint8
	pendingCtr *keyCounters
	recv       [8]*datachan.Keys
	recvCtr    [8]*keyCounters
}

// DataKind says what a decrypted data packet is.
type DataKind uint8

// Kinds of data packet.
const (
	// DataIP is an IP packet for the tunnel device.
	DataIP DataKind = iota
	// DataPing is a keepalive ping; nothing to do.
	DataPing
	// DataControl is an OCC message the session must handle: pass the packet to
	// Session.HandlePacket on the session's shard.
	DataControl
)

// ErrNoKey means the data path has no usable key (not connected, or a packet for a
// key_id it does not have).
var ErrNoKey = errors.New("ovpn: no data channel key")

// Overhead is the number of bytes Encrypt adds to a packet.
func (d *DataPath) Overhead() int {
	if ks := d.set.Load(); ks != nil {
		return datachan.Overhead(ks.peerID)
	}
	return datachan.Overhead(0)
}

// Ready reports whether the data path can encrypt.
func (d *DataPath) Ready() bool {
	ks := d.set.Load()
	return ks != nil && ks.send != nil
}

// Encrypt appends the data-channel packet for an IP packet to dst. It does not
// allocate when dst has room for len(pkt)+Overhead()+16 bytes.
func (d *DataPath) Encrypt(now time.Time, dst, pkt []byte) ([]byte, error) {
	out, err := d.seal(now, dst, pkt)
	if err == nil {
		d.tunIn.Add(1)
	}
	return out, err
}

func (d *DataPath) seal(now time.Time, dst, payload []byte) ([]byte, error) {
	ks := d.set.Load()
	if ks == nil || ks.send == nil {
		d.notReady.Add(1)
		return dst, ErrNoKey
	}
	var out []byte
	var err error
	if fr := d.tx.Load(); fr != nil {
		fr.mu.Lock()
		fr.scratch = fr.f.Encode(fr.scratch[:0], payload)
		out, err = ks.send.Seal(dst, ks.sendID, ks.peerID, fr.scratch)
		fr.mu.Unlock()
	} else {
		out, err = ks.send.Seal(dst, ks.sendID, ks.peerID, payload)
	}
	if err != nil {
		d.needReneg.Store(true)
		return dst, err
	}
	if ks.send.SendPID() >= datachan.PIDWrapTrigger {
		d.needReneg.Store(true)
	}
	ks.sendCtr.bytes.Add(int64(len(payload)))
	ks.sendCtr.packets.Add(1)
	d.linkOut.Add(1)
	d.linkOutByt.Add(uint64(len(out) - len(dst)))
	d.lastSent.Store(now.UnixNano())
	return out, nil
}

// Decrypt authenticates a data packet and appends its plaintext to dst. It does not
// allocate when dst has room for len(pkt) bytes (pkt may be decrypted in place).
func (d *DataPath) Decrypt(now time.Time, dst, pkt []byte) ([]byte, DataKind, error) {
	d.linkIn.Add(1)
	d.linkInBytes.Add(uint64(len(pkt)))
	if len(pkt) == 0 {
		d.dropMalform.Add(1)
		return dst, 0, datachan.ErrShort
	}
	_, kid := wire.SplitHeader(pkt[0])
	ks := d.set.Load()
	if ks == nil || ks.recv[kid] == nil {
		d.dropNoKey.Add(1)
		return dst, 0, ErrNoKey
	}
	out, err := ks.recv[kid].Open(now, dst, pkt)
	if err != nil {
		switch {
		case errors.Is(err, datachan.ErrReplay):
			d.dropReplay.Add(1)
		case errors.Is(err, datachan.ErrAuth):
			d.dropAuth.Add(1)
		default:
			d.dropMalform.Add(1)
		}
		return dst, 0, err
	}
	d.lastRecv.Store(now.UnixNano())
	plain := out[len(dst):]
	if fr := d.rx.Load(); fr != nil {
		fr.mu.Lock()
		dec, err := fr.f.Decode(plain[:0], plain)
		fr.mu.Unlock()
		if err != nil {
			d.dropDecomp.Add(1)
			return dst, 0, err
		}
		if len(dec) > 0 && (cap(plain) < len(dec) || &plain[:1][0] != &dec[0]) {
			// Decompression outgrew the buffer and allocated.
			out = append(out[:len(dst)], dec...)
		} else {
			out = out[:len(dst)+len(dec)]
		}
		plain = out[len(dst):]
	}
	ks.recvCtr[kid].bytes.Add(int64(len(plain)))
	ks.recvCtr[kid].packets.Add(1)
	if ks.pending != nil && kid == ks.pendingID && ks.recv[kid] == ks.pending {
		// The peer uses the new key: switch sending to it.
		next := *ks
		next.send, next.sendID, next.sendCtr = ks.pending, ks.pendingID, ks.pendingCtr
		next.pending, next.pendingCtr = nil, nil
		d.set.CompareAndSwap(ks, &next)
	}
	switch {
	case bytes.Equal(plain, pingMagic[:]):
		return out, DataPing, nil
	case len(plain) >= len(occMagic) && bytes.Equal(plain[:len(occMagic)], occMagic[:]):
		return out, DataControl, nil
	}
	d.tunOut.Add(1)
	return out, DataIP, nil
}

func (d *DataPath) touchRecv(now time.Time) { d.lastRecv.Store(now.UnixNano()) }

func (d *DataPath) recvTime() time.Time { return time.Unix(0, d.lastRecv.Load()) }

func (d *DataPath) sentTime() time.Time { return time.Unix(0, d.lastSent.Load()) }

// setFraming installs the compression framing for both directions.
func (d *DataPath) setFraming(spec compress.Spec) error {
	if spec.CompLZO == "" && spec.Compress == "" {
		d.tx.Store(nil)
		d.rx.Store(nil)
		return nil
	}
	tx, err := compress.New(spec)
	if err != nil {
		return err
	}
	rx, err := compress.New(spec)
	if err != nil {
		return err
	}
	d.tx.Store(&framer{f: tx})
	d.rx.Store(&framer{f: rx})
	return nil
}

// Merge returns st (a snapshot of the session's control-channel counters) with the
// data path's live counters filled in. It is safe to call from any goroutine.
func (d *DataPath) Merge(st Stats) Stats {
	st.TunIn = d.tunIn.Load()
	st.TunOut = d.tunOut.Load()
	st.LinkIn += d.linkIn.Load()
	st.LinkInBytes += d.linkInBytes.Load()
	st.LinkOut += d.linkOut.Load()
	st.LinkOutBy += d.linkOutByt.Load()
	st.DropAuth = d.dropAuth.Load()
	st.DropReplay = d.dropReplay.Load()
	st.DropNoKey += d.dropNoKey.Load()
	st.DropMalformed += d.dropMalform.Load() + d.dropDecomp.Load()
	st.DataPacketsBeforeKeying += d.notReady.Load()
	return st
}
