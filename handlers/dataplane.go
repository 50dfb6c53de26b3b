package handlers

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"weft/ovpn"
	"weft/transport/tcp"
	"weft/transport/udp"
	"weft/tun"
	"weft/wire"
)

// DataParams sizes and shapes the data path of a client or server. The zero value
// gives the defaults.
type DataParams struct {
	// LinkBatch and LinkBufSize size each UDP receive batch (defaults 64 datagrams
	// of udp.MaxDatagram bytes, which lets GRO batch and the readers decrypt the
	// coalesced datagrams in place). Embedded nodes use small buffers to keep
	// memory per node low.
	LinkBatch, LinkBufSize int
	// SocketBuffer is each UDP socket's receive and send buffer size (default 16
	// MiB: with GRO one datagram in the queue carries up to 64 packets, and a
	// reader descheduled for a few milliseconds must not lose them).
	SocketBuffer int
	// Pipeline splits each data direction over two goroutines: one reads the
	// tunnel device while another encrypts and sends the previous batch, and one
	// receives and decrypts while another writes the previous batch to the device.
	// Off (the default), one goroutine per direction does everything, which on a
	// box whose cores are all busy anyway is faster (no hand-off; see the
	// data-pipeline directive).
	Pipeline bool
}

func (d *DataParams) setDefaults() {
	if d.LinkBatch <= 0 {
		d.LinkBatch = 64
	}
	if d.SocketBuffer <= 0 {
		d.SocketBuffer = 16 << 20
	}
	if d.LinkBufSize <= 0 {
		d.LinkBufSize = udp.MaxDatagram
	}
}

// rxBatch decrypts a batch of link packets straight into tunnel-device buffers
// (with the device's headroom in front), so the data path needs no copy and no
// allocation in steady state. Packets the session itself must see (control packets,
// OCC messages) are collected for posting to its shard.
type rxBatch struct {
	least   int // capacity of new buffers (rxBufLeast for devices that coalesce)
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
	out, kind, err := dp.Decrypt(now, r.slot(len(pkt)), pkt)
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

// slot returns the buffer for the next packet of the batch (n bytes at most), empty
// after the device's headroom.
func (r *rxBatch) slot(n int) []byte {
	return growBuf(&r.bufs, len(r.out), tun.Headroom+n, max(r.least, linkBufLeast))[:tun.Headroom]
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
	out, err := dp.Encrypt(now, growBuf(&t.bufs, i, len(pkt)+dp.Overhead()+16, linkBufLeast)[:0], pkt)
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
// state allocates nothing). New buffers get at least least bytes of capacity.
func growBuf(bufs *[][]byte, i, n, least int) []byte {
	for len(*bufs) <= i {
		*bufs = append(*bufs, nil)
	}
	if cap((*bufs)[i]) < n {
		(*bufs)[i] = make([]byte, 0, max(n, least))
	}
	return (*bufs)[i]
}

// Buffer sizes for growBuf. Link buffers hold one MTU-sized datagram. Buffers of
// decrypted packets bound for a kernel TUN device need room for a whole GRO
// super-packet: the device's Write coalesces the packets of one TCP or UDP flow by
// appending their payloads to the first packet's buffer, and only does so when that
// buffer's capacity allows (with 2 KiB buffers it never coalesced, and the kernel
// took every 1.4 KB packet through its stack on its own). The memory is allocated
// once per batch slot and only the pages written are ever touched. Devices that do
// not coalesce (tun.Coalesces) get link-sized buffers.
const (
	linkBufLeast = 2048
	rxBufLeast   = tun.Headroom + 65535
)

// tcpReader returns a function that runs one c.ReadPackets, passing every non-empty
// packet to fn with the time it came in. The clock is read once per call: all
// packets of one ReadPackets call came in with the same socket read.
func tcpReader(c *tcp.Conn, fn func(now time.Time, pkt []byte)) func() error {
	var now time.Time
	onPacket := func(pkt []byte) {
		if len(pkt) == 0 {
			return
		}
		if now.IsZero() {
			now = time.Now()
		}
		fn(now, pkt)
	}
	return func() error {
		now = time.Time{}
		return c.ReadPackets(onPacket)
	}
}

// linkBuffers returns UDP read messages: batch buffers of size bytes each.
func linkBuffers(batch, size int) []udp.Message {
	msgs := make([]udp.Message, batch)
	for i := range msgs {
		msgs[i].Buf = make([]byte, size)
	}
	return msgs
}

// pktBatch is one read from a tunnel device.
type pktBatch struct {
	bufs  [][]byte
	sizes []int
	n     int
}

func (b *pktBatch) packet(i int) []byte {
	return b.bufs[i][tun.Headroom : tun.Headroom+b.sizes[i]]
}

// tunPipeline reads a tunnel device on one goroutine and hands the batches, in
// order, to another that encrypts and sends them, so that under load reading and
// encryption run on different cores (as wireguard-go's pipeline does) while each
// flow keeps its order. process receives every batch that is waiting at once, so a
// busy sender sends larger batches (fewer syscalls, more GSO coalescing).
type tunPipeline struct {
	dev     tun.Device
	free    chan *pktBatch
	full    chan *pktBatch
	process func(batches []*pktBatch)
}

// pipelineDepth is how many device reads may wait for the sender.
const pipelineDepth = 4

func newTUNPipeline(dev tun.Device, mtu int, process func([]*pktBatch)) *tunPipeline {
	batch := max(dev.BatchSize(), 1)
	p := &tunPipeline{dev: dev, free: make(chan *pktBatch, pipelineDepth), full: make(chan *pktBatch, pipelineDepth), process: process}
	for range pipelineDepth {
		b := &pktBatch{bufs: make([][]byte, batch), sizes: make([]int, batch)}
		for i := range b.bufs {
			b.bufs[i] = make([]byte, tun.Headroom+max(mtu, 1500)+64)
		}
		p.free <- b
	}
	return p
}

// run reads until fatal reports a read error as fatal (the device closed) or the
// device keeps failing; it returns once the sender has drained.
func (p *tunPipeline) run(fatal func(error) bool, log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var list []*pktBatch
		for b := range p.full {
			list = append(list[:0], b)
		drain:
			for len(list) < pipelineDepth {
				select {
				case more, ok := <-p.full:
					if !ok {
						break drain
					}
					list = append(list, more)
				default:
					break drain
				}
			}
			p.process(list)
			for _, b := range list {
				p.free <- b
			}
		}
	}()
	defer func() {
		close(p.full)
		<-done
	}()
	failures := 0
	for {
		b := <-p.free
		n, err := p.dev.Read(b.bufs, b.sizes, tun.Headroom)
		b.n = n
		if n > 0 {
			failures = 0
			p.full <- b
		} else {
			p.free <- b
		}
		if err == nil {
			continue
		}
		if fatal(err) {
			return
		}
		// A super-packet that does not split into the batch is dropped by the
		// device; keep reading, but give up on a device that only fails.
		failures++
		log.Debug("TUN read error", "err", err)
		if failures > 1000 {
			log.Error("TUN device keeps failing, stopping reads", "err", err)
			return
		}
	}
}

// inline runs the same loop without the hand-off: one goroutine reads, encrypts and
// sends (the default; less memory and no wake-up between the stages).
func (p *tunPipeline) inline(fatal func(error) bool, log *slog.Logger) {
	b := <-p.free
	list := []*pktBatch{b}
	failures := 0
	for {
		n, err := p.dev.Read(b.bufs, b.sizes, tun.Headroom)
		b.n = n
		if n > 0 {
			failures = 0
			p.process(list)
		}
		if err == nil {
			continue
		}
		if fatal(err) {
			return
		}
		failures++
		log.Debug("TUN read error", "err", err)
		if failures > 1000 {
			log.Error("TUN device keeps failing, stopping reads", "err", err)
			return
		}
	}
}

// deviceClosed reports whether a read error means the device is gone.
func deviceClosed(closing bool, err error) bool {
	return closing || errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, tun.ErrClosed)
}

// tunWriter writes decrypted batches to the tunnel device on a goroutine of its own,
// so that under load the link reader (receive, GRO split, decrypt) and the device
// write (which carries the kernel's delivery to the local stack) run on different
// cores. Batches keep their order. With inline set it writes synchronously instead.
type tunWriter struct {
	dev    func() tun.Device
	mu     *sync.Mutex
	log    *slog.Logger
	inline bool
	free   chan *rxBatch
	full   chan *rxBatch
	done   chan struct{}
}

func newTUNWriter(dev func() tun.Device, mu *sync.Mutex, log *slog.Logger, inline bool) *tunWriter {
	w := &tunWriter{dev: dev, mu: mu, log: log, inline: inline}
	depth := 1
	if !inline {
		depth = pipelineDepth
	}
	w.free = make(chan *rxBatch, depth)
	least := rxBufLeast
	if d := dev(); d != nil && !tun.Coalesces(d) {
		least = linkBufLeast
	}
	for range depth {
		w.free <- &rxBatch{least: least}
	}
	if !inline {
		w.full = make(chan *rxBatch, depth)
		w.done = make(chan struct{})
		go func() {
			defer close(w.done)
			for rx := range w.full {
				w.write(rx)
				w.free <- rx
			}
		}()
	}
	return w
}

// get returns an empty batch to decrypt into.
func (w *tunWriter) get() *rxBatch { return <-w.free }

// put hands a filled batch over for writing (its control packets must have been
// taken already).
func (w *tunWriter) put(rx *rxBatch) {
	if w.inline || len(rx.out) == 0 {
		w.write(rx)
		w.free <- rx
		return
	}
	w.full <- rx
}

func (w *tunWriter) write(rx *rxBatch) {
	if err := rx.flushTUN(w.dev(), w.mu); err != nil {
		w.log.Debug("TUN write failed", "err", err)
	}
}

// close waits for the pending batches to be written.
func (w *tunWriter) close() {
	if w.full != nil {
		close(w.full)
		<-w.done
	}
}
